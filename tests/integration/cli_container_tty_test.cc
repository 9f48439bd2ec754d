// run -i/-t/-it, exec -it, -dt with real runc: the test gives xbuild a pty of its own (as a
// terminal emulator would) and checks what the container sees: a terminal, the window size
// (at start and after a resize), Ctrl-C as the process's SIGINT, stdin piped with -i, and our
// terminal's mode restored afterwards.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/fs.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "integration/build_fixture.h"
#include "integration/pty_child.h"

namespace xbuild::testing {
namespace {

class ContainerTtyTest : public BuildTest {
 protected:
  std::vector<std::string> Args(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", root_});
    return args;
  }
  ToolOut WithStdin(const std::vector<std::string>& args, const std::string& input) {
    std::vector<std::string> argv = {XBUILD_BINARY, "--root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    core::RunOptions opts;
    opts.stdin_data = input;
    auto r = core::RunProcess(argv, opts);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return {};
    return ToolOut{r->exit_code, r->out, r->err};
  }
};

TEST_F(ContainerTtyTest, RunItGivesTerminalWithWindowSize) {
  PtyChild c(Args({"run", "--rm", "-it", "base:1", "sh", "-c",
                   "[ -t 0 ] && [ -t 1 ] && echo IS_TTY; busybox tty; busybox stty size; exit 5"}),
             30, 100);
  EXPECT_EQ(c.Wait(), 5) << c.out();
  EXPECT_NE(c.out().find("IS_TTY"), std::string::npos) << c.out();
  EXPECT_NE(c.out().find("/dev/pts/"), std::string::npos) << c.out();
  EXPECT_NE(c.out().find("30 100"), std::string::npos) << c.out();
  EXPECT_TRUE(c.Canonical()) << "the terminal was left in raw mode";
}

TEST_F(ContainerTtyTest, ResizeReachesTheContainer) {
  PtyChild c(Args({"run", "--rm", "-it", "base:1", "sh", "-c", "echo READY; read x; busybox stty size"}), 24, 80);
  ASSERT_TRUE(c.ReadUntil("READY")) << c.out();
  c.Resize(40, 120);
  c.Write("go\r");
  EXPECT_EQ(c.Wait(), 0) << c.out();
  EXPECT_NE(c.out().find("40 120"), std::string::npos) << c.out();
}

TEST_F(ContainerTtyTest, CtrlCIsTheProcessSigint) {
  PtyChild c(Args({"run", "--rm", "-it", "base:1", "sh", "-c", kCtrlCScript}), 24, 80);
  ExpectCtrlCIsSigint(c);
}

TEST_F(ContainerTtyTest, InteractiveWithoutTtyPipesStdin) {
  ToolOut r = WithStdin({"run", "--rm", "-i", "base:1", "sh", "-c", "read x; echo got $x; [ -t 0 ] || echo NOT_TTY"},
                        "hi\n");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "got hi\nNOT_TTY\n");
  // Without -i the process reads /dev/null.
  ToolOut none = WithStdin({"run", "--rm", "base:1", "sh", "-c", "read x; echo got:$x"}, "hi\n");
  EXPECT_EQ(none.out, "got:\n");
  // -it needs a terminal to read from.
  ToolOut no_tty = WithStdin({"run", "--rm", "-it", "base:1", "sh", "-c", "true"}, "");
  EXPECT_NE(no_tty.code, 0);
  EXPECT_NE(no_tty.err.find("not a TTY"), std::string::npos) << no_tty.err;
}

TEST_F(ContainerTtyTest, DetachedTtyIsLoggedAsStdout) {
  ToolOut r = Xb({"run", "-dt", "--name", "ttylog", "base:1", "sh", "-c", "[ -t 1 ] && echo TTY_LOGGED"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string id = core::Trim(r.out);
  for (int i = 0; i < 300 && core::Trim(Xb({"inspect", "-f", "{{.State.Status}}", "ttylog"}).out) != "exited"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(core::Trim(Xb({"inspect", "-f", "{{.Config.Tty}}", "ttylog"}).out), "true");
  ToolOut logs = Xb({"logs", "ttylog"});
  EXPECT_NE(logs.out.find("TTY_LOGGED"), std::string::npos) << logs.out << logs.err;
  auto raw = core::ReadFile(root_ + "/containers/" + id + "/" + id + "-json.log");
  ASSERT_TRUE(raw.ok());
  EXPECT_NE(raw->find("\"stream\":\"stdout\""), std::string::npos) << *raw;
  EXPECT_EQ(raw->find("\"stream\":\"stderr\""), std::string::npos) << *raw;
  EXPECT_EQ(Xb({"rm", "ttylog"}).code, 0);
}

TEST_F(ContainerTtyTest, ExecItAndStartAi) {
  ToolOut r = Xb({"run", "-d", "--name", "busy", "base:1", "sh", "-c", "while :; do /bin/busybox sleep 1; done"});
  ASSERT_EQ(r.code, 0) << r.err;
  {
    PtyChild c(Args({"exec", "-it", "busy", "sh", "-c", "[ -t 0 ] && echo EXEC_TTY; busybox stty size; exit 4"}), 33, 90);
    EXPECT_EQ(c.Wait(), 4) << c.out();
    EXPECT_NE(c.out().find("EXEC_TTY"), std::string::npos) << c.out();
    EXPECT_NE(c.out().find("33 90"), std::string::npos) << c.out();
    EXPECT_TRUE(c.Canonical());
  }
  ToolOut piped = WithStdin({"exec", "-i", "busy", "sh", "-c", "read x; echo exec got $x"}, "there\n");
  EXPECT_EQ(piped.out, "exec got there\n") << piped.err;
  EXPECT_EQ(Xb({"rm", "-f", "busy"}).code, 0);

  // start -ai of a -it container: attached to our terminal again.
  ToolOut created = Xb({"run", "-dit", "--name", "again", "base:1", "sh", "-c", "read x; echo got $x"});
  ASSERT_EQ(created.code, 0) << created.err;
  ASSERT_EQ(Xb({"stop", "-t", "1", "again"}).code, 0);
  PtyChild c(Args({"start", "-ai", "again"}), 24, 80);
  c.Write("back\r");
  EXPECT_EQ(c.Wait(), 0) << c.out();
  EXPECT_NE(c.out().find("got back"), std::string::npos) << c.out();
  EXPECT_EQ(Xb({"rm", "-f", "again"}).code, 0);
}

}  // namespace
}  // namespace xbuild::testing
