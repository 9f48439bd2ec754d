// Escapes tried against `xbuild build` and refused (as root, real runc): WORKDIR
// /proc/self/fd/N for N = 3..20 (the shape of CVE-2024-21626: a leaked host fd as the working
// directory), and context symlinks to /etc/passwd and ../../.. named as COPY sources. In every
// case the step fails or stays inside the container, and no host file is read or written.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "integration/build_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::ToolOut;
using testing::WriteTestFile;

class CliBuildEscapeTest : public testing::BuildTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildTest::SetUp());
    host_ = tmp_.Sub("host");
    WriteTestFile(host_, "secret", "host-secret-5d1e\n");
  }

  // "../" often enough to climb from any working directory to its root.
  static std::string Up() {
    std::string s;
    for (int i = 0; i < 24; ++i) s += "../";
    return s;
  }

  std::string host_;
};

TEST_F(CliBuildEscapeTest, WorkdirOnAProcFdStaysInsideTheContainer) {
  int failed = 0;
  for (int n = 3; n <= 20; ++n) {
    std::string pwned = host_ + "/pwned-" + std::to_string(n);
    WriteTestFile(ctx_, "Dockerfile",
                  "FROM base:1\n"
                  "WORKDIR /proc/self/fd/" + std::to_string(n) + "\n"
                  "RUN cat " + Up() + host_.substr(1) + "/secret; "
                  "echo owned > " + Up() + pwned.substr(1) + "; "
                  "ls " + Up() + host_.substr(1) + "; true\n");
    ToolOut b = Xb({"build", "--no-cache", "-t", "esc:" + std::to_string(n), ctx_});
    failed += b.code != 0;
    EXPECT_EQ(b.err.find("host-secret-5d1e"), std::string::npos) << "fd " << n << " read a host file:\n" << b.err;
    EXPECT_EQ(b.out.find("host-secret-5d1e"), std::string::npos) << b.out;
    EXPECT_FALSE(std::filesystem::exists(pwned)) << "fd " << n << " wrote a host file";
  }
  EXPECT_EQ(testing::ReadTestFile(host_ + "/secret"), "host-secret-5d1e\n");
  std::error_code ec;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(host_, ec), {}), 1) << "only the secret in " << host_;
  // The store is still whole: a normal build works after all of that.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo fine\n");
  ToolOut ok = Xb({"build", "-t", "after:1", ctx_});
  EXPECT_EQ(ok.code, 0) << ok.err;
  RecordProperty("steps_refused", failed);
}

TEST_F(CliBuildEscapeTest, ContextSymlinksNamedAsSourcesResolveInsideTheContext) {
  WriteTestFile(ctx_, "ok.txt", "in the context\n");
  ASSERT_EQ(::symlink("/etc/passwd", (ctx_ + "/passwd-link").c_str()), 0);
  ASSERT_EQ(::symlink("../../..", (ctx_ + "/up").c_str()), 0);
  ASSERT_EQ(::symlink(host_.c_str(), (ctx_ + "/hostdir").c_str()), 0);
  // Each COPY names a symlink that points out of the context as its source.
  const char* sources[] = {"passwd-link", "up/etc/passwd", "hostdir/secret", "up" };
  for (const char* src : sources) {
    WriteTestFile(ctx_, "Dockerfile", std::string("FROM base:1\nCOPY ") + src + " /got\nRUN cat /got || ls -la /got\n");
    ToolOut b = Xb({"build", "--no-cache", ctx_});
    std::string all = b.out + b.err;
    EXPECT_EQ(all.find("root:x:0:0"), std::string::npos) << src << " read the host's /etc/passwd:\n" << all;
    EXPECT_EQ(all.find("host-secret-5d1e"), std::string::npos) << src << " read a host file:\n" << all;
  }
  // Symlinks inside a copied directory are copied as symlinks, not followed.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nCOPY . /ctx\nRUN for f in passwd-link up hostdir; do readlink /ctx/$f; done && cat /ctx/ok.txt\n");
  ToolOut b = Xb({"build", "--no-cache", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find(" /etc/passwd\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" ../../..\n"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find("root:x:0:0"), std::string::npos) << b.err;
  EXPECT_EQ(testing::ReadTestFile(host_ + "/secret"), "host-secret-5d1e\n");
}

}  // namespace
}  // namespace xbuild
