// Kept containers end to end with real runc: run (foreground and -d), ps, logs, exec, stop,
// kill, start, rm, container prune, inspect; a monitor killed outright; --rm leaving nothing.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "integration/container_fixture.h"

namespace xbuild::testing {
namespace {

namespace fs = std::filesystem;

TEST_F(ContainerTest, DetachedLifecycleRunExecPsStopRm) {
  std::string id = RunDetached({"--name", "web", "-e", "GREETING=hello", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(State("web"), "running");

  ToolOut ps = Xb({"ps"});
  ASSERT_EQ(ps.code, 0) << ps.err;
  EXPECT_NE(ps.out.find("CONTAINER ID"), std::string::npos);
  EXPECT_NE(ps.out.find(id.substr(0, 12)), std::string::npos) << ps.out;
  EXPECT_NE(ps.out.find("\"/bin/busybox sleep …\""), std::string::npos) << ps.out;
  EXPECT_NE(ps.out.find("Up "), std::string::npos) << ps.out;
  EXPECT_NE(ps.out.find("web"), std::string::npos) << ps.out;

  // exec: output, environment of the container plus -e, exit codes as Docker's.
  ToolOut hi = Xb({"exec", "web", "sh", "-c", "echo $GREETING $EXTRA; echo err >&2"});
  EXPECT_EQ(hi.code, 0) << hi.err;
  EXPECT_EQ(hi.out, "hello\n");
  EXPECT_EQ(hi.err, "err\n");
  ToolOut extra = Xb({"exec", "-e", "EXTRA=more", "-w", "/etc", id.substr(0, 12), "sh", "-c", "echo $EXTRA $(pwd)"});
  EXPECT_EQ(extra.code, 0) << extra.err;
  EXPECT_EQ(extra.out, "more /etc\n");
  EXPECT_EQ(Xb({"exec", "web", "sh", "-c", "exit 3"}).code, 3);
  EXPECT_EQ(Xb({"exec", "web", "nosuchcommand"}).code, 127);
  EXPECT_EQ(Xb({"exec", "web", "/etc"}).code, 126);
  ToolOut user = Xb({"exec", "-u", "65534:65534", "web", "/bin/busybox", "id", "-u"});
  EXPECT_EQ(user.code, 0) << user.err;
  EXPECT_EQ(user.out, "65534\n");

  // A command that only opens the store (and so runs the stale cleanup) leaves it alone.
  ASSERT_EQ(Xb({"images"}).code, 0);
  EXPECT_EQ(Xb({"exec", "web", "/bin/busybox", "true"}).code, 0);

  ToolOut rm_running = Xb({"rm", "web"});
  EXPECT_NE(rm_running.code, 0);
  EXPECT_NE(rm_running.err.find("running"), std::string::npos) << rm_running.err;

  // sleep as pid 1 has no handler for SIGTERM, so stop has to kill it after -t.
  ToolOut stop = Xb({"stop", "-t", "1", "web"});
  EXPECT_EQ(stop.code, 0) << stop.err;
  EXPECT_EQ(stop.out, "web\n");
  core::Json j = Inspect("web");
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["Running"], false);
  EXPECT_EQ(j["State"]["ExitCode"], 137);
  EXPECT_EQ(j["Name"], "/web");
  EXPECT_EQ(j["Id"], id);
  EXPECT_EQ(j["Config"]["Cmd"], core::Json({"/bin/busybox", "sleep", "1000"}));
  EXPECT_EQ(j["Config"]["Image"], "base:1");
  EXPECT_TRUE(PsNames(false).empty());
  ToolOut psa = Xb({"ps", "-a"});
  EXPECT_NE(psa.out.find("Exited (137)"), std::string::npos) << psa.out;

  ToolOut rm = Xb({"rm", "web"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_TRUE(PsNames(true).empty());
  EXPECT_FALSE(fs::exists(root_ + "/containers/" + id));
  EXPECT_FALSE(fs::exists(root_ + "/runc/" + id));
  EXPECT_FALSE(MountedUnderRoot());
  EXPECT_NE(Xb({"inspect", "web"}).code, 0);
}

TEST_F(ContainerTest, LogsFollowUntilExit) {
  std::string id = RunDetached(
      {"base:1", "sh", "-c", "echo one; sleep 1; echo two >&2; sleep 1; printf three"});
  ASSERT_FALSE(id.empty());
  ToolOut follow = Xb({"logs", "-f", id.substr(0, 12)});
  EXPECT_EQ(follow.code, 0) << follow.err;
  EXPECT_EQ(follow.out, "one\nthree");
  EXPECT_EQ(follow.err, "two\n");
  EXPECT_EQ(State(id), "exited");

  ToolOut tail = Xb({"logs", "--tail", "1", id});
  EXPECT_EQ(tail.out, "three");
  EXPECT_EQ(tail.err, "");
  ToolOut stamped = Xb({"logs", "-t", id});
  ASSERT_EQ(stamped.code, 0) << stamped.err;
  // "2024-05-01T10:00:00.123456789Z one"
  ASSERT_GT(stamped.out.size(), 31u);
  EXPECT_EQ(stamped.out[4], '-');
  EXPECT_EQ(stamped.out.substr(29, 5), "Z one") << stamped.out;
  EXPECT_EQ(Xb({"logs", "--since", "1h", id}).out, "one\nthree");

  // The log file is Docker's json-file format.
  auto text = core::ReadFile(root_ + "/containers/" + id + "/" + id + "-json.log");
  ASSERT_TRUE(text.ok());
  core::Json first = core::Json::parse(core::Split(*text, '\n')[0]);
  EXPECT_EQ(first["log"], "one\n");
  EXPECT_EQ(first["stream"], "stdout");
  EXPECT_TRUE(first["time"].is_string());
}

TEST_F(ContainerTest, RmLeavesNothing) {
  // The first run unpacks the image into its (committed, kept) snapshot.
  ToolOut fg = Xb({"run", "--rm", "base:1", "sh", "-c", "echo hi"});
  EXPECT_EQ(fg.code, 0) << fg.err;
  EXPECT_EQ(fg.out, "hi\n");
  EXPECT_EQ(Entries(root_ + "/containers"), 0u);
  EXPECT_EQ(Entries(root_ + "/runc"), 0u);
  EXPECT_FALSE(MountedUnderRoot());
  size_t snapshots_before = Entries(root_ + "/snapshots");
  ASSERT_EQ(Xb({"run", "--rm", "base:1", "sh", "-c", "echo more > /layer"}).code, 0);
  EXPECT_EQ(Entries(root_ + "/snapshots"), snapshots_before);

  std::string id = RunDetached({"--rm", "--name", "brief", "base:1", "sh", "-c", "sleep 1"});
  ASSERT_FALSE(id.empty());
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = PsNames(true).empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(gone);
  // The monitor may still be finishing its last steps after the record went: poll for those too.
  bool clean = false;
  for (int i = 0; i < 100 && !clean; ++i) {
    clean = Entries(root_ + "/containers") == 0 && Entries(root_ + "/runc") == 0 && !MountedUnderRoot() &&
            Entries(root_ + "/snapshots") == snapshots_before;
    if (!clean) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Entries(root_ + "/containers"), 0u);
  EXPECT_EQ(Entries(root_ + "/runc"), 0u);
  EXPECT_FALSE(MountedUnderRoot());
  EXPECT_EQ(Entries(root_ + "/snapshots"), snapshots_before);
  // The name is free again.
  std::string again = RunDetached({"--rm", "--name", "brief", "base:1", "/bin/busybox", "true"});
  EXPECT_FALSE(again.empty());
}

TEST_F(ContainerTest, ExitCodes) {
  EXPECT_EQ(Xb({"run", "base:1", "/bin/busybox", "true"}).code, 0);
  EXPECT_EQ(Xb({"run", "base:1", "sh", "-c", "exit 3"}).code, 3);
  ToolOut missing = Xb({"run", "--name", "missing", "base:1", "nosuchcommand"});
  EXPECT_EQ(missing.code, 127) << missing.err;
  EXPECT_EQ(Xb({"run", "base:1", "/etc"}).code, 126);
  EXPECT_EQ(Xb({"run", "--network", "bogus", "base:1", "/bin/busybox", "true"}).code, 125);
  // An image that is nowhere (the registry on loopback port 1 refuses): xbuild's own failure.
  EXPECT_EQ(Xb({"run", "127.0.0.1:1/nothing:1", "true"}).code, 125);
  EXPECT_EQ(Xb({"run", "-d", "base:1", "nosuchcommand"}).code, 127);
  // Foreground runs without --rm are kept, with the code recorded.
  core::Json j = Inspect("missing");
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["ExitCode"], 127);
  ToolOut exited3 = Xb({"ps", "-a", "--filter", "status=exited"});
  EXPECT_NE(exited3.out.find("Exited (3)"), std::string::npos) << exited3.out;
}

TEST_F(ContainerTest, KilledMonitorShowsExited) {
  std::string id = RunDetached({"--name", "victim", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_FALSE(id.empty());
  core::Json before = Inspect("victim");
  int pid = before["State"]["Pid"].get<int>();
  ASSERT_GT(pid, 0);
  pid_t monitor = MonitorPid(id);
  ASSERT_GT(monitor, 0);
  ASSERT_EQ(::kill(monitor, SIGKILL), 0);
  // Wait until the monitor is really gone (it is not our child: poll /proc).
  for (int i = 0; i < 300 && fs::exists("/proc/" + std::to_string(monitor)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  ToolOut psa = Xb({"ps", "-a"});
  EXPECT_NE(psa.out.find("Exited (137)"), std::string::npos) << psa.out;
  EXPECT_EQ(psa.out.find("Up "), std::string::npos) << psa.out;
  EXPECT_TRUE(PsNames(false).empty());
  EXPECT_EQ(State("victim"), "exited");
  EXPECT_FALSE(fs::exists(root_ + "/runc/" + id));
  // The lost process was killed with its runc state.
  bool dead = false;
  for (int i = 0; i < 300 && !dead; ++i) {
    auto stat = core::ReadFile("/proc/" + std::to_string(pid) + "/stat");
    dead = !stat.ok() || stat->find(") Z") != std::string::npos;
    if (!dead) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(dead);
  ToolOut rm = Xb({"rm", "victim"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_FALSE(fs::exists(root_ + "/containers/" + id));
  EXPECT_FALSE(MountedUnderRoot());
}

TEST_F(ContainerTest, StopKillsWhatIgnoresSigterm) {
  std::string id = RunDetached({"base:1", "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"});
  ASSERT_FALSE(id.empty());
  ToolOut stop = Xb({"stop", "-t", "1", id});
  EXPECT_EQ(stop.code, 0) << stop.err;
  core::Json j = Inspect(id);
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["ExitCode"], 137);

  // kill with a signal it does not ignore.
  std::string other = RunDetached({"--stop-signal", "SIGUSR1", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_FALSE(other.empty());
  EXPECT_EQ(Inspect(other)["Config"]["StopSignal"], "SIGUSR1");
  ToolOut kill = Xb({"kill", "-s", "TERM", other});
  EXPECT_EQ(kill.code, 0) << kill.err;  // runc delivers it; sleep as pid 1 ignores it
  EXPECT_EQ(State(other), "running");
  EXPECT_EQ(Xb({"kill", other}).code, 0);
  EXPECT_TRUE(WaitState(other, "exited"));
  EXPECT_EQ(Inspect(other)["State"]["ExitCode"], 137);
  EXPECT_NE(Xb({"kill", other}).code, 0);  // not running any more
}

TEST_F(ContainerTest, PruneKeepsRunning) {
  std::string running = RunDetached({"--name", "keeper", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_EQ(Xb({"run", "--name", "done1", "base:1", "/bin/busybox", "true"}).code, 0);
  ASSERT_EQ(Xb({"run", "--name", "done2", "base:1", "sh", "-c", "exit 2"}).code, 2);
  ToolOut prune = Xb({"container", "prune", "-f"});
  EXPECT_EQ(prune.code, 0) << prune.err;
  EXPECT_NE(prune.out.find("Deleted Containers:"), std::string::npos) << prune.out;
  EXPECT_NE(prune.out.find("Total reclaimed space:"), std::string::npos) << prune.out;
  EXPECT_EQ(PsNames(true), std::vector<std::string>{"keeper"});
  EXPECT_EQ(State("keeper"), "running");
  EXPECT_EQ(Xb({"rm", "-f", "keeper"}).code, 0);
  EXPECT_TRUE(PsNames(true).empty());
  EXPECT_FALSE(fs::exists(root_ + "/containers/" + running));
}

TEST_F(ContainerTest, NamesAreUniqueAndUsableEverywhere) {
  std::string id = RunDetached({"--name", "dup", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_FALSE(id.empty());
  ToolOut second = Xb({"run", "-d", "--name", "dup", "base:1", "/bin/busybox", "sleep", "1000"});
  EXPECT_EQ(second.code, 125);
  EXPECT_NE(second.err.find("already in use"), std::string::npos) << second.err;
  EXPECT_EQ(PsNames(true), std::vector<std::string>{"dup"});
  EXPECT_EQ(Xb({"exec", "dup", "/bin/busybox", "true"}).code, 0);
  EXPECT_EQ(Xb({"container", "inspect", "-f", "{{.Id}}", "dup"}).out, id + "\n");
  EXPECT_EQ(Xb({"container", "ls", "-q", "--filter", "name=dup"}).out, id.substr(0, 12) + "\n");
  EXPECT_EQ(Xb({"ps", "-q", "--no-trunc", "--filter", "id=" + id.substr(0, 6)}).out, id + "\n");
  EXPECT_EQ(Xb({"container", "stop", "-t", "0", "dup"}).code, 0);
  EXPECT_EQ(Xb({"container", "rm", "dup"}).code, 0);
  EXPECT_NE(Xb({"logs", "dup"}).code, 0);
}

TEST_F(ContainerTest, TwoContainersAtOnceAndStartAgain) {
  std::string a = RunDetached({"--name", "one", "base:1", "/bin/busybox", "sleep", "1000"});
  std::string b = RunDetached({"--name", "two", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  std::vector<std::string> names = PsNames(false);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(Xb({"exec", "one", "/bin/busybox", "hostname"}).out, a.substr(0, 12) + "\n");
  EXPECT_EQ(Xb({"exec", "two", "/bin/busybox", "hostname"}).out, b.substr(0, 12) + "\n");
  // Their writable layers are their own.
  EXPECT_EQ(Xb({"exec", "one", "sh", "-c", "echo a > /mark"}).code, 0);
  EXPECT_NE(Xb({"exec", "two", "/bin/busybox", "cat", "/mark"}).code, 0);
  EXPECT_EQ(Xb({"stop", "-t", "0", "one", "two"}).code, 0);

  // start runs the command again on the kept writable layer.
  ToolOut first = Xb({"run", "--name", "keep", "base:1", "sh", "-c", "cat /f 2>/dev/null; echo data > /f; echo ran"});
  EXPECT_EQ(first.out, "ran\n");
  ToolOut again = Xb({"start", "-a", "keep"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, "data\nran\n");
  ToolOut detached = Xb({"start", "keep"});
  EXPECT_EQ(detached.code, 0) << detached.err;
  EXPECT_TRUE(WaitState("keep", "exited"));
  EXPECT_EQ(Xb({"logs", "keep"}).out, "ran\ndata\nran\ndata\nran\n");

  ToolOut restart = Xb({"restart", "-t", "0", "one"});
  EXPECT_EQ(restart.code, 0) << restart.err;
  EXPECT_TRUE(WaitState("one", "running"));
  EXPECT_EQ(Xb({"exec", "one", "/bin/busybox", "cat", "/mark"}).out, "a\n");
  EXPECT_EQ(Xb({"rm", "-f", "one", "two", "keep"}).code, 0);
  EXPECT_TRUE(PsNames(true).empty());
}

}  // namespace
}  // namespace xbuild::testing
