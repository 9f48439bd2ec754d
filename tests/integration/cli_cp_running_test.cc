// cp on a running container with real runc: it sees what the container's processes see (its
// tmpfs mounts, which live in no directory of the host; a read-only bind refuses writes), links
// the container plants there still resolve inside it, never on the host, and a directory is
// never copied into itself through a bind.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/fs.h"
#include "core/strings.h"
#include "integration/container_fixture.h"

namespace xbuild::testing {
namespace {

namespace fs = std::filesystem;

class CpRunningTest : public ContainerTest {
 protected:
  void TearDown() override {
    for (const std::string& name : PsNames(true)) (void)Xb({"rm", "-f", name});
    ContainerTest::TearDown();
  }

  // `exec REF sh -c SCRIPT`; fails the test when it does.
  ToolOut Exec(const std::string& ref, const std::string& script) {
    ToolOut r = Xb({"exec", ref, "sh", "-c", script});
    EXPECT_EQ(r.code, 0) << script << ": " << r.err;
    return r;
  }
};

TEST_F(CpRunningTest, CopiesInAndOutOfATmpfsMount) {
  ASSERT_FALSE(RunDetached({"--name", "tm", "--tmpfs", "/scratch", "base:1", "/bin/busybox", "sleep", "1000"}).empty());
  std::string out = tmp_.Sub("out");
  WriteTestFile(out, "in.txt", "into the tmpfs\n");
  WriteTestFile(out, "dir/a", "a\n");
  ToolOut in = Xb({"cp", out + "/in.txt", "tm:/scratch/in.txt"});
  ASSERT_EQ(in.code, 0) << in.err;
  EXPECT_EQ(Exec("tm", "cat /scratch/in.txt").out, "into the tmpfs\n");
  ASSERT_EQ(Xb({"cp", out + "/dir", "tm:/scratch/"}).code, 0);
  EXPECT_EQ(Exec("tm", "cat /scratch/dir/a").out, "a\n");
  // It is the container's tmpfs that holds them, not its writable layer.
  EXPECT_EQ(Exec("tm", "busybox grep ' /scratch ' /proc/mounts | busybox cut -d' ' -f3").out, "tmpfs\n");

  Exec("tm", "echo made inside > /scratch/made");
  ToolOut back = Xb({"cp", "tm:/scratch/made", out + "/made"});
  ASSERT_EQ(back.code, 0) << back.err;
  EXPECT_EQ(core::ReadFile(out + "/made").value_or(""), "made inside\n");
  ToolOut whole = Xb({"cp", "tm:/scratch", out + "/whole"});
  ASSERT_EQ(whole.code, 0) << whole.err;
  EXPECT_EQ(core::ReadFile(out + "/whole/in.txt").value_or(""), "into the tmpfs\n");
}

TEST_F(CpRunningTest, ReadOnlyBindRefusesWrites) {
  std::string host = tmp_.Sub("ro");
  WriteTestFile(host, "kept", "kept\n");
  ASSERT_FALSE(RunDetached({"--name", "rob", "-v", host + ":/ro:ro", "base:1", "/bin/busybox", "sleep", "1000"}).empty());
  std::string out = tmp_.Sub("out");
  WriteTestFile(out, "new", "new\n");
  ToolOut w = Xb({"cp", out + "/new", "rob:/ro/new"});
  EXPECT_NE(w.code, 0);
  EXPECT_FALSE(fs::exists(host + "/new"));
  ASSERT_EQ(Xb({"cp", "rob:/ro/kept", out + "/kept"}).code, 0);
  EXPECT_EQ(core::ReadFile(out + "/kept").value_or(""), "kept\n");
}

TEST_F(CpRunningTest, ADirectoryIsNeverCopiedIntoItself) {
  // The bind's host directory is the container's /data: copying one into the other would read
  // what it writes, without end.
  std::string host = tmp_.Sub("data");
  WriteTestFile(host, "f", "f\n");
  ASSERT_FALSE(RunDetached({"--name", "self", "-v", host + ":/data", "base:1", "/bin/busybox", "sleep", "1000"}).empty());
  ToolOut out = Xb({"cp", "self:/data", host + "/"});
  EXPECT_EQ(out.code, 1) << out.err;
  EXPECT_NE(out.err.find("into itself"), std::string::npos) << out.err;
  ToolOut in = Xb({"cp", host, "self:/data/sub"});
  EXPECT_EQ(in.code, 1) << in.err;
  EXPECT_NE(in.err.find("into itself"), std::string::npos) << in.err;
  EXPECT_EQ(core::ReadFile(host + "/f").value_or(""), "f\n");
}

TEST_F(CpRunningTest, LinksInTheContainerNeverReachTheHost) {
  std::string host = tmp_.Sub("hostside");
  WriteTestFile(host, "secret", "host secret\n");
  WriteTestFile(host, "victim", "untouched\n");
  ASSERT_FALSE(RunDetached({"--name", "evil", "--tmpfs", "/scratch", "base:1", "/bin/busybox", "sleep", "1000"}).empty());
  // Links to host paths, absolute and climbing.
  Exec("evil", "cd /scratch && busybox ln -s " + host + "/secret abs && busybox ln -s " + host + " absdir && " +
                   "busybox ln -s ../../../../../../../../.." + host + " up && busybox ln -s " + host +
                   "/victim wfile");
  std::string out = tmp_.Sub("out");
  WriteTestFile(out, "payload", "pwned\n");

  for (const char* src : {"evil:/scratch/absdir/secret", "evil:/scratch/up/secret"}) {
    ToolOut c = Xb({"cp", src, out + "/got"});
    EXPECT_NE(c.code, 0) << src;
    EXPECT_FALSE(fs::exists(out + "/got")) << src;
  }
  ToolOut follow = Xb({"cp", "-L", "evil:/scratch/abs", out + "/got"});
  EXPECT_NE(follow.code, 0);
  EXPECT_FALSE(fs::exists(out + "/got"));
  ASSERT_EQ(Xb({"cp", "evil:/scratch/abs", out + "/link"}).code, 0);  // the link itself
  EXPECT_TRUE(fs::is_symlink(out + "/link"));

  Xb({"cp", out + "/payload", "evil:/scratch/absdir/planted"});
  Xb({"cp", out + "/payload", "evil:/scratch/up/planted2"});
  Xb({"cp", out + "/payload", "evil:/scratch/wfile"});
  EXPECT_FALSE(fs::exists(host + "/planted"));
  EXPECT_FALSE(fs::exists(host + "/planted2"));
  EXPECT_EQ(core::ReadFile(host + "/victim").value_or(""), "untouched\n");
  EXPECT_EQ(core::ReadFile(host + "/secret").value_or(""), "host secret\n");
}

TEST_F(CpRunningTest, AContainerThatEndedIsCopiedFromItsLayer) {
  // The record may still say running for an instant after the process ended; either way the
  // copy works on the container's files, or fails, and never on another process's root.
  ASSERT_FALSE(RunDetached({"--name", "quick", "base:1", "sh", "-c", "echo layer > /f"}).empty());
  ASSERT_TRUE(WaitState("quick", "exited"));
  std::string out = tmp_.Sub("out");
  ASSERT_TRUE(core::MkdirAll(out).ok());
  ToolOut c = Xb({"cp", "quick:/f", out + "/f"});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(core::ReadFile(out + "/f").value_or(""), "layer\n");
}

}  // namespace
}  // namespace xbuild::testing
