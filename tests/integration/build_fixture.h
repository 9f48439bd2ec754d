// The base of the `xbuild build` integration tests: a fresh state root with a local busybox
// image imported as base:1, an empty context directory, and the binary run on that root.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "integration/registry_fixture.h"
#include "unit/test_util.h"

namespace xbuild::testing {

// Plain progress prints a step as "#N <description>", then "#N CACHED" when it was cached.
// `text` is matched at the end of the description ("COPY a.txt /a.txt"), so the stage prefix
// may vary.
inline bool StepCached(const std::string& err, const std::string& text) {
  std::vector<std::string> lines = core::Split(err, '\n');
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const std::string& l = lines[i];
    size_t sp = l.find(' ');
    if (!l.starts_with('#') || sp == std::string::npos || !l.ends_with(text)) continue;
    if (lines[i + 1] == l.substr(0, sp) + " CACHED") return true;
  }
  return false;
}

inline bool StepRan(const std::string& err, const std::string& text) {
  return err.find(text + "\n") != std::string::npos && !StepCached(err, text);
}

class BuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "builds run runc and mount overlayfs: run the tests as root";
    root_ = tmp_.Sub("state");
    ASSERT_NO_FATAL_FAILURE(ImportBusyboxImage(tmp_.Sub("rootfs"), root_, "base:1"));
    ctx_ = tmp_.Sub("ctx");
  }

  // Networks: a network's namespace (networks/<name>/netns, a bind mount) lives as long as the
  // network, so the test root's are let go here, before the root is removed.
  void TearDown() override {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root_ + "/networks", ec)) {
      ::umount2((e.path() / "netns").c_str(), MNT_DETACH);
    }
  }

  ToolOut Xb(const std::vector<std::string>& args) { return RunXbuild(root_, args); }

  // Starts `xbuild --root ROOT args...` in the background (output to /dev/null) for tests that
  // interrupt it; returns its pid.
  pid_t SpawnXbuild(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {XBUILD_BINARY, "--root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_t pid = ::fork();
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(XBUILD_BINARY, cargv.data());
      ::_exit(127);
    }
    return pid;
  }

  // Waits (up to 30 s) until a RUN step's container bundle exists under the root.
  bool WaitForRunningStep() {
    for (int i = 0; i < 3000; ++i) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(root_ + "/containers", ec)) {
        if (std::filesystem::exists(e.path() / "config.json")) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  TempDir tmp_;
  std::string root_, ctx_;
};

}  // namespace xbuild::testing
