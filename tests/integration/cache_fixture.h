// The base of the build cache tests (--cache-to / --cache-from): runner A is the BuildTest root,
// runner B a fresh state root holding only the same base image (loaded from A's archive), as a
// new CI machine would.
#pragma once

#include <string>
#include <vector>

#include "integration/build_fixture.h"

namespace xbuild::testing {

class CacheRunnersTest : public BuildTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildTest::SetUp());
    ASSERT_EQ(Xb({"save", "-o", tmp_.Sub("base.tar"), "base:1"}).code, 0);
    ASSERT_NO_FATAL_FAILURE(root_b_ = NewRunner("runner-b"));
  }

  // Another fresh runner with the base image.
  std::string NewRunner(const std::string& name) {
    std::string root = tmp_.Sub(name);
    ToolOut l = RunXbuild(root, {"load", "-i", tmp_.Sub("base.tar")});
    EXPECT_EQ(l.code, 0) << l.err;
    return root;
  }

  ToolOut B(const std::vector<std::string>& args) { return RunXbuild(root_b_, args); }

  // What the image prints when run on `root`.
  static std::string RunOutput(const std::string& root, const std::string& image) {
    ToolOut r = RunXbuild(root, {"run", "--rm", image});
    EXPECT_EQ(r.code, 0) << image << ": " << r.err;
    return r.out;
  }

  static std::string Layers(const std::string& root, const std::string& image) {
    return RunXbuild(root, {"inspect", "-f", "{{json .RootFS.Layers}}", image}).out;
  }

  std::string root_b_;
};

}  // namespace xbuild::testing
