// Signals and terminals of the processes xbuild runs, with real runc: a foreground run passes the
// signals it gets to the container's process (Docker's --sig-proxy: Ctrl-C at a terminal that
// is not raw, kill of the CLI), --sig-proxy=false stops the container instead, and `exec -dt`
// gives a detached process a terminal whose output goes nowhere, as in Docker.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/strings.h"
#include "integration/container_fixture.h"
#include "integration/pty_child.h"

namespace xbuild::testing {
namespace {

// Traps INT (noted, goes on) and TERM (exits 7); READY once both are set.
constexpr const char* kTrapScript =
    "trap 'echo GOT_INT' INT; trap 'echo GOT_TERM; exit 7' TERM; echo READY; "
    "while :; do /bin/busybox sleep 1; done";

class TtySignalsTest : public ContainerTest {
 protected:
  void TearDown() override {
    for (const std::string& name : PsNames(true)) (void)Xb({"rm", "-f", name});
    ContainerTest::TearDown();
  }

  std::vector<std::string> Args(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", root_});
    return args;
  }

  // Polls (up to 30 s) until the container's log holds `text`.
  bool WaitLog(const std::string& ref, const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      if (Xb({"logs", ref}).out.find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Polls (up to 30 s) until `exec REF cat PATH` prints something; that output.
  std::string WaitFile(const std::string& ref, const std::string& path) {
    for (int i = 0; i < 300; ++i) {
      ToolOut r = Xb({"exec", ref, "/bin/busybox", "cat", path});
      if (r.code == 0 && !r.out.empty()) return r.out;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "";
  }

  // Waits (up to 60 s) for a process started by SpawnXbuild; its exit code (-1: still running).
  static int WaitExit(pid_t pid) {
    for (int i = 0; i < 600; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
};

TEST_F(TtySignalsTest, CtrlCWithTtyButNoStdinIsTheProcessSigint) {
  // -t without -i: our terminal stays cooked, so Ctrl-C is a SIGINT to xbuild, passed on.
  PtyChild c(Args({"run", "--rm", "-t", "base:1", "sh", "-c", kCtrlCScript}), 24, 80);
  ExpectCtrlCIsSigint(c);
}

TEST_F(TtySignalsTest, SignalsToTheCliGoToTheProcess) {
  pid_t pid = SpawnXbuild({"run", "--name", "proxied", "base:1", "sh", "-c", kTrapScript});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(WaitLog("proxied", "READY"));
  // SIGINT no longer ends the run: the process notes it and keeps running.
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  ASSERT_TRUE(WaitLog("proxied", "GOT_INT"));
  EXPECT_EQ(State("proxied"), "running");
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  EXPECT_EQ(WaitExit(pid), 7);
  EXPECT_NE(Xb({"logs", "proxied"}).out.find("GOT_TERM"), std::string::npos);
  EXPECT_EQ(core::Trim(Xb({"inspect", "-f", "{{.State.ExitCode}}", "proxied"}).out), "7");
}

TEST_F(TtySignalsTest, SigProxyFalseStopsTheContainer) {
  pid_t pid = SpawnXbuild({"run", "--sig-proxy=false", "--name", "unproxied", "base:1", "sh", "-c", kTrapScript});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(WaitLog("unproxied", "READY"));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  EXPECT_NE(WaitExit(pid), 0);
  EXPECT_EQ(State("unproxied"), "exited");
  EXPECT_EQ(Xb({"logs", "unproxied"}).out.find("GOT_TERM"), std::string::npos);
}

TEST_F(TtySignalsTest, DetachedExecWithTtyHasATerminalAndItsOutputGoesNowhere) {
  std::string id = RunDetached({"--name", "dtexec", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_FALSE(id.empty());
  // Far more output than a pty buffers: it ends only if somebody reads the terminal. It then
  // keeps running, so an exec whose reader held our pipes would never return.
  ToolOut r = Xb({"exec", "-dt", "dtexec", "sh", "-c",
                  "[ -t 0 ] && [ -t 1 ] && busybox tty > /ttyname; busybox yes | busybox head -c 1000000; "
                  "echo done > /done; exec /bin/busybox sleep 1000"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(WaitFile("dtexec", "/done"), "done\n");
  EXPECT_TRUE(WaitFile("dtexec", "/ttyname").starts_with("/dev/pts/"));
  EXPECT_EQ(Xb({"logs", "dtexec"}).out, "");  // Docker keeps an exec's output out of the log
  ASSERT_EQ(Xb({"rm", "-f", "dtexec"}).code, 0);
}

}  // namespace
}  // namespace xbuild::testing
