// The solver with the real runner (as root): a lowered Dockerfile's RUN steps run in the runc
// sandbox on overlay snapshots over an imported base image; a second solve is all cache hits;
// a failing step fails with Docker's message and leaves no active snapshot or container.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

#include "cache/image_store.h"
#include "core/context.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "integration/registry_fixture.h"
#include "exec/snapshot.h"
#include "frontend/ast.h"
#include "frontend/lower.h"
#include "solver/ops/result_cache.h"
#include "solver/ops/runner.h"
#include "unit/test_util.h"

namespace xbuild::solver::ops {
namespace {

class BuildRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "these tests run runc and mount overlayfs: run them as root";
    ctx_.root = tmp_.Sub("state");
    ASSERT_NO_FATAL_FAILURE(testing::ImportBusyboxImage(tmp_.path(), ctx_.root, "base:1"));
    auto s = cache::ImageStore::Open(ctx_);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    store_ = std::move(*s);
    snaps_ = std::make_unique<exec::Snapshotter>(*store_);
  }

  // Lowers and solves `dockerfile`; fills events and output.
  Result<Ref> Solve(const std::string& dockerfile) {
    auto df = frontend::ParseDockerfile(dockerfile);
    if (!df.ok()) return std::move(df).error();
    auto lowered = frontend::Lower(*df, frontend::LowerOptions{}, nullptr);
    if (!lowered.ok()) return std::move(lowered).error();
    RunnerOptions o;
    o.output = [&](const Vertex&, int, std::string_view data) {
      std::lock_guard<std::mutex> l(mu_);
      output_ += data;
    };
    BuildRunner runner(*store_, *snaps_, o);
    DbResultCache cache(*store_);
    SolveOptions so;
    so.on_event = [&](const SolveEvent& e) {
      std::lock_guard<std::mutex> l(mu_);
      if (e.state == VertexState::kStarted) started_.push_back(e.vertex->meta.description);
      if (e.state == VertexState::kCached) cached_.push_back(e.vertex->meta.description);
    };
    Solver solver(runner, cache, so);
    CancelToken cancel;
    return solver.Solve(lowered->definition, cancel);
  }

  testing::TempDir tmp_;
  core::Context ctx_;
  std::unique_ptr<cache::ImageStore> store_;
  std::unique_ptr<exec::Snapshotter> snaps_;
  std::mutex mu_;
  std::string output_;
  std::vector<std::string> started_, cached_;
};

TEST_F(BuildRunnerTest, RunsStepsInTheSandboxAndCachesThem) {
  std::string df = "FROM base:1\nRUN echo built > /out && cat /etc/hello\nRUN cat /out > /out2\n";
  auto r = Solve(df);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_NE(output_.find("hello"), std::string::npos) << output_;
  EXPECT_EQ(started_.size(), 3u);  // the base image source and two RUNs
  // The result is a committed snapshot whose view holds both steps' files over the base.
  auto view = snaps_->Prepare(r->id);
  ASSERT_TRUE(view.ok()) << view.error().ToString();
  auto mnt = snaps_->Mount(*view);
  ASSERT_TRUE(mnt.ok()) << mnt.error().ToString();
  EXPECT_EQ(testing::ReadTestFile(*mnt + "/out2"), "built\n");
  EXPECT_TRUE(core::Exists(*mnt + "/bin/busybox"));
  ASSERT_TRUE(snaps_->Unmount(*view).ok());
  ASSERT_TRUE(snaps_->Remove(*view).ok());

  started_.clear();
  auto again = Solve(df);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(again->id, r->id);
  EXPECT_TRUE(started_.empty()) << "a warm build runs nothing";
  EXPECT_EQ(cached_.size(), 3u);
}

TEST_F(BuildRunnerTest, AFailingStepFailsWithDockersMessageAndLeavesNothingActive) {
  auto r = Solve("FROM base:1\nRUN echo partial > /p && exit 3\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("did not complete successfully: exit code: 3"), std::string::npos)
      << r.error().ToString();
  EXPECT_NE(r.error().ToString().find("RUN echo partial"), std::string::npos) << r.error().ToString();
  auto all = store_->db().ListSnapshots();
  ASSERT_TRUE(all.ok());
  for (const auto& s : *all) EXPECT_EQ(s.kind, "committed") << s.id;
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(ctx_.root + "/containers", ec) || ec) << "a bundle was left behind";
  EXPECT_TRUE(std::filesystem::is_empty(ctx_.root + "/mounts", ec) || ec) << "a mount was left behind";
}

}  // namespace
}  // namespace xbuild::solver::ops
