// Build contexts end to end (as root, real runc and overlayfs): a tar archive as PATH, a tar or
// a bare Dockerfile on stdin, `-f -`; COPY keyed by the files it reads (a change elsewhere in
// the context reruns nothing); hostile archives confined to their extraction directory; the
// extraction directory gone after the build, after Ctrl-C, and after a SIGKILL.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "integration/build_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::ReadTestFile;
using testing::RunTool;
using testing::StepCached;
using testing::StepRan;
using testing::ToolOut;
using testing::WriteTestFile;

// A ustar archive written by hand, so that entries a tar tool would refuse to write ("../x",
// absolute names) can be made.
class TarWriter {
 public:
  void File(const std::string& name, const std::string& data, int mode = 0644) {
    Entry(name, '0', data, "", mode);
  }
  void Dir(const std::string& name) { Entry(name, '5', "", "", 0755); }
  void Symlink(const std::string& name, const std::string& target) {
    Entry(name, '2', "", target, 0777);
  }
  std::string Finish() { return out_ + std::string(1024, '\0'); }

 private:
  static void Octal(char* field, size_t len, uint64_t v) {
    std::snprintf(field, len, "%0*llo", static_cast<int>(len - 1),
                  static_cast<unsigned long long>(v));
  }
  void Entry(const std::string& name, char type, const std::string& data, const std::string& link,
             int mode) {
    char h[512] = {};
    std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
    Octal(h + 100, 8, static_cast<uint64_t>(mode));
    Octal(h + 108, 8, 0);
    Octal(h + 116, 8, 0);
    Octal(h + 124, 12, data.size());
    Octal(h + 136, 12, 1700000000);
    h[156] = type;
    std::memcpy(h + 157, link.data(), std::min<size_t>(link.size(), 100));
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    out_.append(h, sizeof h);
    out_ += data;
    out_.append((512 - data.size() % 512) % 512, '\0');
  }
  std::string out_;
};

class CliBuildContextTest : public testing::BuildTest {
 protected:
  // With stdin_data: what the build reads from stdin.
  ToolOut Xb(std::vector<std::string> args, std::optional<std::string> stdin_data = std::nullopt) {
    std::vector<std::string> argv = {XBUILD_BINARY, "--root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    core::RunOptions o;
    o.extra_env = {{"XBUILD_CONFIG", ""}};
    o.stdin_data = std::move(stdin_data);
    return RunTool(argv, o);
  }

  std::string Cat(const std::string& image, const std::string& path) {
    ToolOut o = Xb({"run", "--rm", image, "/bin/busybox", "cat", path});
    EXPECT_EQ(o.code, 0) << o.err;
    return o.out;
  }

  // The extraction directories left under the state root (with their owner file written, when
  // `owned`: only those are the cleanup's to remove).
  size_t ContextDirs(bool owned = false) {
    std::error_code ec;
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(root_ + "/contexts", ec)) {
      n += !owned || std::filesystem::exists(e.path() / "owner.json");
    }
    return n;
  }
};

TEST_F(CliBuildContextTest, ATarArchiveIsAContext) {
  WriteTestFile(
      ctx_, "Dockerfile",
      "FROM base:1\nCOPY . /all/\nCOPY sub/b.txt /b.txt\nRUN cat /all/a.txt /b.txt > /both\n");
  WriteTestFile(ctx_, "other/Build.df", "FROM base:1\nCOPY a.txt /from-other\n");
  WriteTestFile(ctx_, ".dockerignore", "secret.txt\n");
  WriteTestFile(ctx_, "a.txt", "one\n");
  WriteTestFile(ctx_, "sub/b.txt", "bee\n");
  WriteTestFile(ctx_, "secret.txt", "do not ship\n");
  std::string tgz = tmp_.Sub("ctx.tar.gz");
  ToolOut t = RunTool({"tar", "-czf", tgz, "-C", ctx_, "."});
  ASSERT_EQ(t.code, 0) << t.err;

  ToolOut b = Xb({"build", "-t", "tar:1", tgz});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(Cat("tar:1", "/both"), "one\nbee\n");
  ToolOut ls = Xb({"run", "--rm", "tar:1", "/bin/busybox", "ls", "-a", "/all"});
  EXPECT_EQ(ls.out.find("secret.txt"), std::string::npos)
      << "the archive's .dockerignore applies: " << ls.out;
  EXPECT_NE(ls.out.find("a.txt"), std::string::npos) << ls.out;
  EXPECT_EQ(ContextDirs(), 0u) << "the extracted context is removed after the build";

  // -f names a file inside the archive; a missing one is an error that says so.
  ToolOut f = Xb({"build", "-t", "tar:2", "-f", "other/Build.df", tgz});
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(Cat("tar:2", "/from-other"), "one\n");
  ToolOut missing = Xb({"build", "-f", "nope.df", tgz});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("the context archive has no nope.df"), std::string::npos)
      << missing.err;
  EXPECT_EQ(ContextDirs(), 0u) << "removed on error too";

  // A file that is no archive is refused clearly.
  WriteTestFile(tmp_.path(), "plain.txt", "not a tar\n");
  ToolOut plain = Xb({"build", tmp_.Sub("plain.txt")});
  EXPECT_NE(plain.code, 0);
  EXPECT_NE(plain.err.find("neither a directory nor a tar archive"), std::string::npos)
      << plain.err;

  // The same archive on stdin.
  ToolOut s = Xb({"build", "-t", "stdin:1", "-"}, ReadTestFile(tgz));
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(Cat("stdin:1", "/both"), "one\nbee\n");
  EXPECT_EQ(ContextDirs(), 0u);
}

TEST_F(CliBuildContextTest, ADockerfileOnStdinBuildsWithoutAContext) {
  ToolOut b = Xb({"build", "-t", "noctx:1", "-"},
                 "FROM base:1\nRUN echo ran > /ran\nCOPY <<EOF /here\nheredoc\nEOF\n");
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(Cat("noctx:1", "/ran"), "ran\n");
  EXPECT_EQ(Cat("noctx:1", "/here"), "heredoc\n");
  ToolOut c = Xb({"build", "-"}, "FROM base:1\nCOPY a.txt /a.txt\n");
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.err.find("this build has no context to copy from"), std::string::npos) << c.err;
  EXPECT_EQ(ContextDirs(), 0u);

  // -f - with a directory context reads the Dockerfile from stdin and the files from the dir.
  WriteTestFile(ctx_, "a.txt", "from the dir\n");
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN false\n");
  ToolOut f = Xb({"build", "-t", "fstdin:1", "-f", "-", ctx_}, "FROM base:1\nCOPY a.txt /a.txt\n");
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(Cat("fstdin:1", "/a.txt"), "from the dir\n");
  ToolOut both = Xb({"build", "-f", "-", "-"}, "FROM base:1\n");
  EXPECT_NE(both.code, 0);
  EXPECT_NE(both.err.find("can't use stdin for both"), std::string::npos) << both.err;
}

TEST_F(CliBuildContextTest, OnlyTheCopyThatReadsAChangedFileRunsAgain) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "COPY a.txt /a.txt\n"
                "RUN echo after-a > /after-a\n"
                "COPY b*.txt /bs/\n"
                "RUN cat /bs/* > /after-b\n");
  WriteTestFile(ctx_, "a.txt", "a1\n");
  WriteTestFile(ctx_, "b1.txt", "b1\n");
  WriteTestFile(ctx_, "unread.txt", "u1\n");
  ToolOut first = Xb({"build", "-t", "sel:1", ctx_});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_TRUE(StepRan(first.err, "COPY a.txt /a.txt")) << first.err;
  EXPECT_EQ(Cat("sel:1", "/after-b"), "b1\n");
  const char* steps[] = {"COPY a.txt /a.txt", "RUN echo after-a > /after-a", "COPY b*.txt /bs/",
                         "RUN cat /bs/* > /after-b"};

  // A file no COPY reads: every step cached.
  WriteTestFile(ctx_, "unread.txt", "u2\n");
  WriteTestFile(ctx_, "new-unread.txt", "n\n");
  ToolOut same = Xb({"build", "-t", "sel:2", ctx_});
  ASSERT_EQ(same.code, 0) << same.err;
  for (const char* s : steps) EXPECT_TRUE(StepCached(same.err, s)) << s << "\n" << same.err;

  // A file the second COPY reads (its wildcard now matches one more): it and what follows run.
  WriteTestFile(ctx_, "b2.txt", "b2\n");
  ToolOut b = Xb({"build", "-t", "sel:3", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_TRUE(StepCached(b.err, steps[0])) << b.err;
  EXPECT_TRUE(StepCached(b.err, steps[1])) << b.err;
  EXPECT_TRUE(StepRan(b.err, steps[2])) << b.err;
  EXPECT_TRUE(StepRan(b.err, steps[3])) << b.err;
  EXPECT_EQ(Cat("sel:3", "/after-b"), "b1\nb2\n");

  // The first COPY's file: everything from it on runs.
  WriteTestFile(ctx_, "a.txt", "a2\n");
  ToolOut a = Xb({"build", "-t", "sel:4", ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  for (const char* s : steps) EXPECT_TRUE(StepRan(a.err, s)) << s << "\n" << a.err;
  EXPECT_EQ(Cat("sel:4", "/a.txt"), "a2\n");

  // Unchanged since: all cached, from the checksum cache kept under the state root.
  ToolOut again = Xb({"build", "-t", "sel:5", ctx_});
  ASSERT_EQ(again.code, 0) << again.err;
  for (const char* s : steps) EXPECT_TRUE(StepCached(again.err, s)) << s << "\n" << again.err;
  std::error_code ec;
  EXPECT_FALSE(std::filesystem::is_empty(root_ + "/checksums", ec))
      << "a checksum cache for the context";
}

TEST_F(CliBuildContextTest, AHostileArchiveStaysInItsDirectory) {
  std::string outside = tmp_.Sub("outside");
  ASSERT_TRUE(core::MkdirAll(outside).ok());
  WriteTestFile(tmp_.path(), "host.df", "FROM base:1\nRUN echo host dockerfile\n");
  auto written_outside = [&] {
    std::vector<std::string> found;
    for (auto it = std::filesystem::recursive_directory_iterator(tmp_.path()); it != decltype(it)();
         ++it) {
      if (it->path() == root_) {  // the store: its snapshots hold what the builds copied
        it.disable_recursion_pending();
        continue;
      }
      std::string name = it->path().filename().string();
      if (name == "escape" || name == "abs.txt" || name == "planted")
        found.push_back(it->path().string());
    }
    if (found.empty()) found.push_back("");  // so that found[0] in a message is always valid
    return found;
  };

  // A name climbing out: refused, nothing written.
  TarWriter climb;
  climb.File("Dockerfile", "FROM base:1\nRUN true\n");
  climb.File("../escape", "x\n");
  climb.File("../../../../../../escape", "x\n");
  ToolOut c = Xb({"build", "-"}, climb.Finish());
  EXPECT_NE(c.code, 0);
  EXPECT_NE(c.err.find("outside the destination"), std::string::npos) << c.err;
  EXPECT_EQ(written_outside(), std::vector<std::string>{""});
  EXPECT_EQ(ContextDirs(), 0u);
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root_, ec)) {
    EXPECT_NE(e.path().filename(), "escape") << e.path();
  }

  // Absolute names land inside; a symlink to a host directory is kept as a link, and an entry
  // written through it lands inside too; neither the Dockerfile nor .dockerignore can be a link
  // to a host file.
  TarWriter abs;
  abs.File("Dockerfile", "FROM base:1\nCOPY . /ctx/\nRUN ls /ctx > /listing\n");
  abs.File("/abs.txt", "absolute\n");
  abs.Symlink("out", outside);
  abs.File("out/planted", "through the link\n");
  abs.Symlink("host.df", tmp_.Sub("host.df"));
  abs.Symlink(".dockerignore", tmp_.Sub("host.df"));
  std::string archive = abs.Finish();
  ToolOut b = Xb({"build", "-t", "abs:1", "-"}, archive);
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(written_outside(), std::vector<std::string>{""});
  EXPECT_TRUE(std::filesystem::is_empty(outside));
  EXPECT_EQ(Cat("abs:1", "/ctx/abs.txt"), "absolute\n");
  ToolOut link = Xb({"run", "--rm", "abs:1", "/bin/busybox", "readlink", "/ctx/out"});
  EXPECT_EQ(link.out, outside + "\n");
  EXPECT_EQ(Cat("abs:1", "/ctx" + outside + "/planted"), "through the link\n")
      << "confined under the context";
  ToolOut df = Xb({"build", "-f", "host.df", "-"}, archive);
  EXPECT_NE(df.code, 0) << "a Dockerfile linked to a host file is not read";
  EXPECT_EQ(df.err.find("host dockerfile"), std::string::npos) << df.err;
  EXPECT_EQ(ContextDirs(), 0u);
}

TEST_F(CliBuildContextTest, ExtractedContextsGoOnCtrlCAndAfterAKill) {
  // `xbuild build -` reading a pipe that this test holds open: the build waits for more input.
  auto start = [&](int& write_end) {
    int in[2];
    EXPECT_EQ(::pipe(in), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(in[0], 0);
      ::close(in[1]);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execl(XBUILD_BINARY, XBUILD_BINARY, "--root", root_.c_str(), "build", "-", nullptr);
      ::_exit(127);
    }
    ::close(in[0]);
    write_end = in[1];
    // Started when its extraction directory, owner file written, is there.
    for (int i = 0; i < 3000 && ContextDirs(true) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return pid;
  };

  // Ctrl-C while the context still streams in on stdin.
  int in = -1;
  pid_t pid = start(in);
  ASSERT_GT(pid, 0);
  std::string head(10240, 'x');
  ASSERT_EQ(::write(in, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  ASSERT_EQ(ContextDirs(true), 1u) << "the build started spooling stdin";
  ::kill(pid, SIGINT);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ::close(in);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << "exits with an error, not by the signal";
  EXPECT_EQ(ContextDirs(), 0u) << "removed on Ctrl-C";

  // Ctrl-C while a step runs: the build is cancelled and its extracted context removed.
  TarWriter slow;
  slow.File("Dockerfile", "FROM base:1\nRUN sleep 60\n");
  std::string archive = tmp_.Sub("slow.tar");
  WriteTestFile(tmp_.path(), "slow.tar", slow.Finish());
  pid = SpawnXbuild({"build", archive});
  ASSERT_GE(pid, 0);
  ASSERT_TRUE(WaitForRunningStep()) << "the RUN step never started";
  ASSERT_EQ(ContextDirs(true), 1u);
  ::kill(pid, SIGINT);
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0);
  EXPECT_EQ(ContextDirs(), 0u) << "removed when the cancelled build returns";

  // SIGKILL: nothing can clean up then; the next command does.
  pid = start(in);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(ContextDirs(true), 1u);
  ::kill(pid, SIGKILL);
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ::close(in);
  EXPECT_EQ(ContextDirs(), 1u) << "left behind by the killed build";
  ASSERT_EQ(Xb({"images", "-q"}).code, 0);
  EXPECT_EQ(ContextDirs(), 0u) << "removed by the next command's cleanup";
}

}  // namespace
}  // namespace xbuild
