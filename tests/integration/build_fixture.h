// The base of the `xbuild build` integration tests: a fresh state root with a local busybox
// image imported as base:1, an empty context directory, and the binary run on that root.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "integration/registry_fixture.h"
#include "unit/test_util.h"

namespace xbuild::testing {

class BuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "builds run runc and mount overlayfs: run the tests as root";
    root_ = tmp_.Sub("state");
    ASSERT_NO_FATAL_FAILURE(ImportBusyboxImage(tmp_.Sub("rootfs"), root_, "base:1"));
    ctx_ = tmp_.Sub("ctx");
  }

  ToolOut Xb(const std::vector<std::string>& args) { return RunXbuild(root_, args); }

  TempDir tmp_;
  std::string root_, ctx_;
};

}  // namespace xbuild::testing
