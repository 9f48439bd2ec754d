// Overlay snapshots (as root): an imported image unpacked once, a step's upper dir over it with
// a whiteout, the layer made from that upper dir, and cleanup of what a killed process left.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "cache/image_store.h"
#include "core/context.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "integration/registry_fixture.h"
#include "exec/snapshot.h"
#include "image/layer.h"
#include "unit/test_util.h"

namespace xbuild::exec {
namespace {

using testing::TempDir;

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "snapshot tests mount overlayfs: run them as root";
    ctx_.root = tmp_.Sub("state");
    ASSERT_NO_FATAL_FAILURE(testing::ImportBusyboxImage(tmp_.path(), ctx_.root, "base:1"));
    auto s = cache::ImageStore::Open(ctx_);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    store_ = std::move(*s);
    auto img = store_->Resolve("base:1");
    ASSERT_TRUE(img.ok()) << img.error().ToString();
    img_ = *img;
  }

  TempDir tmp_;
  core::Context ctx_;
  std::unique_ptr<cache::ImageStore> store_;
  cache::ResolvedImage img_;
};

TEST_F(SnapshotTest, StepOverImageMakesAWhiteoutLayer) {
  Snapshotter snaps(*store_);
  auto base = snaps.FromImage(img_);
  ASSERT_TRUE(base.ok()) << base.error().ToString();
  EXPECT_TRUE(core::Exists(snaps.FsDir(*base) + "/bin/busybox"));
  auto again = snaps.FromImage(img_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *base) << "an image is unpacked once";

  auto step = snaps.Prepare(*base);
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  auto mnt = snaps.Mount(*step);
  ASSERT_TRUE(mnt.ok()) << mnt.error().ToString();
  EXPECT_TRUE(core::Exists(*mnt + "/etc/hello"));
  testing::WriteTestFile(*mnt, "app/new.txt", "new\n");
  ASSERT_EQ(::unlink((*mnt + "/etc/hello").c_str()), 0);
  ASSERT_TRUE(snaps.Unmount(*step).ok());
  ASSERT_TRUE(snaps.Commit(*step).ok());
  // Only the change is in the step's dir; the base is untouched.
  EXPECT_TRUE(core::Exists(snaps.FsDir(*step) + "/app/new.txt"));
  EXPECT_FALSE(core::Exists(snaps.FsDir(*step) + "/bin/busybox"));
  EXPECT_TRUE(core::Exists(snaps.FsDir(*base) + "/etc/hello"));

  // The step's layer: the new file and a whiteout for the deleted one.
  std::string tar_path = tmp_.Sub("layer.tar");
  {
    auto fd = core::Open(tar_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_TRUE(fd.ok());
    image::LayerOptions lo;
    lo.compression = image::Compression::kNone;
    auto lr = image::CreateLayer(snaps.FsDir(*step), image::DirKind::kOverlayUpper, fd->get(), lo);
    ASSERT_TRUE(lr.ok()) << lr.error().ToString();
  }
  auto list = core::RunProcess({"tar", "-tf", tar_path});
  ASSERT_TRUE(list.ok());
  EXPECT_NE(list->out.find("app/new.txt"), std::string::npos) << list->out;
  EXPECT_NE(list->out.find("etc/.wh.hello"), std::string::npos) << list->out;

  // A committed chain mounts read-only with the step's view.
  auto top = snaps.Prepare(*step);
  ASSERT_TRUE(top.ok());
  auto m2 = snaps.Mount(*top);
  ASSERT_TRUE(m2.ok()) << m2.error().ToString();
  EXPECT_TRUE(core::Exists(*m2 + "/app/new.txt"));
  EXPECT_TRUE(core::Exists(*m2 + "/bin/busybox"));
  EXPECT_FALSE(core::Exists(*m2 + "/etc/hello"));
  ASSERT_TRUE(snaps.Unmount(*top).ok());
  ASSERT_TRUE(snaps.Remove(*top).ok());
}

TEST_F(SnapshotTest, CleanupStaleUnmountsWhatADeadProcessLeft) {
  Snapshotter snaps(*store_);
  auto base = snaps.FromImage(img_);
  ASSERT_TRUE(base.ok()) << base.error().ToString();
  // A child prepares and mounts a snapshot, then dies without cleaning up (like SIGKILL).
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto s = cache::ImageStore::Open(ctx_);
    if (!s.ok()) ::_exit(2);
    Snapshotter child(**s);
    auto id = child.Prepare(*base);
    if (!id.ok() || !child.Mount(*id).ok()) ::_exit(3);
    (void)!::write(pipefd[1], id->data(), id->size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  char buf[64] = {0};
  ssize_t n = ::read(pipefd[0], buf, sizeof buf - 1);
  ::close(pipefd[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_GT(n, 0) << "child failed: " << WEXITSTATUS(st);
  std::string id(buf, static_cast<size_t>(n));
  std::string target = ctx_.root + "/mounts/" + id;
  auto mi = core::ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(mi.ok());
  ASSERT_NE(mi->find(target), std::string::npos) << "the child's mount should still be there";

  ASSERT_TRUE(snaps.CleanupStale().ok());
  mi = core::ReadFile("/proc/self/mountinfo");
  EXPECT_EQ(mi->find(target), std::string::npos) << "stale mount left behind";
  EXPECT_FALSE(core::Exists(target));
  EXPECT_FALSE(core::Exists(snaps.FsDir(id)));
  auto rec = store_->db().GetSnapshot(id);
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->has_value());
  // The committed base snapshot stays.
  EXPECT_TRUE(core::Exists(snaps.FsDir(*base) + "/bin/busybox"));
}

}  // namespace
}  // namespace xbuild::exec
