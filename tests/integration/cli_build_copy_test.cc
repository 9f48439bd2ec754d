// COPY --link, --parents and --exclude end to end (as root, real runc): a linked COPY is not
// rerun when the steps below it change and its layer is the same on either base; --parents
// keeps source paths (below a ./ pivot; `**` patterns); --exclude leaves files out. The
// results are compared file by file.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "core/json.h"
#include "integration/build_fixture.h"

namespace xbuild {
namespace {

using testing::ToolOut;
using testing::WriteTestFile;

class CliBuildCopyTest : public testing::BuildTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildTest::SetUp());
    WriteTestFile(ctx_, "src/a/x/one.txt", "1\n");
    WriteTestFile(ctx_, "src/b/two.txt", "2\n");
    WriteTestFile(ctx_, "src/b/three.md", "3\n");
    WriteTestFile(ctx_, "src/b/deep/four.txt", "4\n");
    WriteTestFile(ctx_, "other/o.txt", "o\n");
  }

  // Every regular file under `dir` in the image with its content: "path=content" lines, sorted.
  std::vector<std::string> Files(const std::string& image, const std::string& dir) {
    ToolOut o = Xb({"run", "--rm", image, "sh", "-c",
                    "find " + dir + " -type f | sort | while read f; do echo \"$f=$(cat $f)\"; done"});
    EXPECT_EQ(o.code, 0) << o.err;
    std::vector<std::string> out;
    std::istringstream in(o.out);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  core::Json Layers(const std::string& image) {
    ToolOut o = Xb({"inspect", "-f", "{{json .RootFS.Layers}}", image});
    EXPECT_EQ(o.code, 0) << o.err;
    return core::Json::parse(o.out, nullptr, false);
  }
};

TEST_F(CliBuildCopyTest, ParentsKeepPathsAndExcludeLeavesFilesOut) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "COPY --parents src/a/x/one.txt src/b/two.txt /p1/\n"
                "COPY --parents ./src/./b/two.txt /p2\n"
                "COPY --parents src/**/*.txt /p3/\n"
                "COPY --exclude=*.md --exclude=deep src/b/ /e/\n"
                "COPY --parents --exclude=**/deep src/b/*.* /p4/\n");
  ToolOut b = Xb({"build", "-t", "cp:1", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(Files("cp:1", "/p1"), (std::vector<std::string>{"/p1/src/a/x/one.txt=1", "/p1/src/b/two.txt=2"}));
  EXPECT_EQ(Files("cp:1", "/p2"), (std::vector<std::string>{"/p2/b/two.txt=2"}));
  EXPECT_EQ(Files("cp:1", "/p3"),
            (std::vector<std::string>{"/p3/src/a/x/one.txt=1", "/p3/src/b/deep/four.txt=4", "/p3/src/b/two.txt=2"}));
  EXPECT_EQ(Files("cp:1", "/e"), (std::vector<std::string>{"/e/two.txt=2"}));
  EXPECT_EQ(Files("cp:1", "/p4"), (std::vector<std::string>{"/p4/src/b/three.md=3", "/p4/src/b/two.txt=2"}));
}

TEST_F(CliBuildCopyTest, LinkedCopyIsNotRerunWhenTheBaseChanges) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "ARG MARK=1\n"
                "RUN echo base-$MARK > /marker\n"
                "COPY --link --chmod=600 other/o.txt /linked/o.txt\n"
                "COPY --link src/b/ /linked/b/\n"
                "RUN cat /marker /linked/o.txt && stat -c %a /linked/o.txt\n");
  ToolOut a = Xb({"build", "--progress=plain", "-t", "link:1", ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  ToolOut b = Xb({"build", "--progress=plain", "--build-arg", "MARK=2", "-t", "link:2", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  // The RUN below the links ran again; the linked COPYs did not.
  EXPECT_NE(b.err.find(" base-2\n"), std::string::npos) << b.err;
  for (const char* step : {"COPY --link --chmod=600 other/o.txt /linked/o.txt\n#", "COPY --link src/b/ /linked/b/\n#"}) {
    size_t at = b.err.find(step);
    ASSERT_NE(at, std::string::npos) << step << b.err;
    std::string n = b.err.substr(at + std::string(step).size() - 1);
    n = n.substr(0, n.find(' '));  // "#7"
    EXPECT_NE(b.err.find(n + " CACHED\n"), std::string::npos) << step << b.err;
  }
  EXPECT_EQ(Files("link:2", "/linked"),
            (std::vector<std::string>{"/linked/b/deep/four.txt=4", "/linked/b/three.md=3", "/linked/b/two.txt=2", "/linked/o.txt=o"}));
  // The linked layers are the same bytes on both bases; the base step's layer is not.
  core::Json l1 = Layers("link:1"), l2 = Layers("link:2");
  ASSERT_EQ(l1.size(), 5u) << l1.dump();
  ASSERT_EQ(l2.size(), 5u) << l2.dump();
  EXPECT_NE(l1[1], l2[1]);
  EXPECT_EQ(l1[2], l2[2]);
  EXPECT_EQ(l1[3], l2[3]);
}

}  // namespace
}  // namespace xbuild
