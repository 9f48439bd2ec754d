// The base of the container integration tests (cli_container_test, cli_network_test): BuildTest
// plus helpers to run detached containers and read their state.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "integration/build_fixture.h"

namespace xbuild::testing {

class ContainerTest : public BuildTest {
 protected:
  // `run -d ARGS...`: the new container's id (empty, with a test failure, when it did not start).
  std::string RunDetached(std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "-d"});
    ToolOut r = Xb(args);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string id = core::Trim(r.out);
    EXPECT_EQ(id.size(), 64u) << r.out;
    return id;
  }

  // The pid of the monitor running container `id` (monitor.json); 0 when there is none.
  int MonitorPid(const std::string& id) {
    auto text = core::ReadFile(root_ + "/containers/" + id + "/monitor.json");
    core::Json j = text.ok() ? core::Json::parse(*text, nullptr, false) : core::Json();
    return j.is_object() ? j.value("pid", 0) : 0;
  }

  std::string State(const std::string& ref) {
    return core::Trim(Xb({"inspect", "-f", "{{.State.Status}}", ref}).out);
  }

  // Polls (up to 30 s) until the container's status is `want`.
  bool WaitState(const std::string& ref, const std::string& want) {
    for (int i = 0; i < 300; ++i) {
      if (State(ref) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  core::Json Inspect(const std::string& ref) {
    ToolOut r = Xb({"inspect", ref});
    EXPECT_EQ(r.code, 0) << r.err;
    core::Json j = core::Json::parse(r.out, nullptr, false);
    return j.is_array() && !j.empty() ? j[0] : core::Json();
  }

  size_t Entries(const std::string& dir) {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator(); ++it) ++n;
    return n;
  }

  // A mount under the root other than a network's namespace (which lives as long as the
  // network: networks/<name>/netns).
  bool MountedUnderRoot() {
    auto mounts = core::ReadFile("/proc/self/mountinfo");
    if (!mounts.ok()) return false;
    for (const std::string& line : core::Split(*mounts, '\n')) {
      std::vector<std::string> fields = core::Split(line, ' ');
      if (fields.size() < 5 || !fields[4].starts_with(root_ + "/")) continue;
      if (fields[4].starts_with(root_ + "/networks/") && fields[4].ends_with("/netns")) continue;
      return true;
    }
    return false;
  }

  std::vector<std::string> PsNames(bool all) {
    std::vector<std::string> args = {"ps", "--format", "{{.Names}}"};
    if (all) args.push_back("-a");
    ToolOut r = Xb(args);
    EXPECT_EQ(r.code, 0) << r.err;
    std::vector<std::string> names;
    for (const std::string& line : core::Split(r.out, '\n')) {
      if (!line.empty()) names.push_back(line);
    }
    return names;
  }
};

}  // namespace xbuild::testing
