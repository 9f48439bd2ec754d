// `xbuild image prune` (as root, real runc): dangling images go, tagged ones stay; with -a every
// image no container was made from goes, and an image a stopped container uses stays; the
// blobs nothing references are collected.
#include <gtest/gtest.h>

#include <filesystem>

#include "integration/build_fixture.h"

namespace xbuild {
namespace {

using testing::ToolOut;
using testing::WriteTestFile;

class CliImagePruneTest : public testing::BuildTest {
 protected:
  std::string Build(const std::string& marker, const std::vector<std::string>& tags) {
    WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo " + marker + " > /marker\n");
    std::vector<std::string> args = {"build", "-q"};
    for (const auto& t : tags) {
      args.push_back("-t");
      args.push_back(t);
    }
    args.push_back(ctx_);
    ToolOut b = Xb(args);
    EXPECT_EQ(b.code, 0) << b.err;
    return b.out.substr(0, b.out.find('\n'));
  }

  bool Exists(const std::string& id) { return Xb({"inspect", id}).code == 0; }
};

TEST_F(CliImagePruneTest, DanglingThenAllUnused) {
  std::string dangling = Build("dangling", {});
  std::string tagged = Build("tagged", {"keep:1"});
  std::string used = Build("used", {"used:1"});
  ToolOut run = Xb({"run", "--name", "user-of-used", "used:1", "sh", "-c", "exit 0"});
  ASSERT_EQ(run.code, 0) << run.err;

  ToolOut p = Xb({"image", "prune", "-f"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("deleted: " + dangling), std::string::npos) << p.out;
  EXPECT_FALSE(Exists(dangling));
  EXPECT_TRUE(Exists(tagged));
  EXPECT_TRUE(Exists("base:1"));

  p = Xb({"image", "prune", "-a", "-f"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("untagged: docker.io/library/keep:1"), std::string::npos) << p.out;
  EXPECT_FALSE(Exists(tagged));
  EXPECT_FALSE(Exists("base:1")) << "no container was made from the base";
  EXPECT_TRUE(Exists("used:1")) << "a stopped container uses it";
  EXPECT_NE(p.out.find("Total reclaimed space: "), std::string::npos);

  // Once the container is gone, the last image goes too, and no blob is left behind.
  ASSERT_EQ(Xb({"rm", "user-of-used"}).code, 0);
  ASSERT_EQ(Xb({"image", "prune", "-a", "-f"}).code, 0);
  EXPECT_FALSE(Exists("used:1"));
  std::error_code ec;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(root_ + "/content/blobs/sha256", ec), {}), 0);
}

}  // namespace
}  // namespace xbuild
