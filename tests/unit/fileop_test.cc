// File actions on real directories: COPY/ADD rules, confinement to the target, chmod/chown,
// wildcards and excludes, archives, mkdir/mkfile/rm/symlink.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/fs.h"
#include "core/subprocess.h"
#include "solver/ops/chmod.h"
#include "solver/ops/file_op.h"
#include "solver/ops/glob.h"
#include "unit/test_util.h"

namespace xbuild::solver::ops {
namespace {

using testing::ReadTestFile;
using testing::TempDir;
using testing::WriteTestFile;

bool IsRoot() { return ::geteuid() == 0; }

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

bool Missing(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR);
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

void SetMtime(const std::string& path, time_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

CopyAction Copy(std::string src, std::string dest) {
  CopyAction a;
  a.src_input = 1;
  a.src = std::move(src);
  a.dest = std::move(dest);
  return a;
}

// A context, a stage and a target, plus a directory outside all of them holding a sentinel
// that no action may touch.
class FileOpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_ = tmp_.Sub("ctx");
    stage_ = tmp_.Sub("stage");
    target_ = tmp_.Sub("target");
    outside_ = tmp_.Sub("outside");
    for (const std::string& d : {ctx_, stage_, target_, outside_})
      ASSERT_TRUE(core::MkdirAll(d).ok());
    WriteTestFile(outside_, "sentinel", "untouched");
  }

  void ExpectSentinel() {
    EXPECT_EQ(ReadTestFile(outside_ + "/sentinel"), "untouched");
    auto list = core::RunChecked({"ls", "-A", outside_});
    ASSERT_TRUE(list.ok());
    EXPECT_EQ(list->out, "sentinel\n") << "something was written outside the target";
  }

  FileOpEnv Env(bool from_context = true) {
    FileOpEnv env;
    env.target = target_;
    env.inputs = {{target_, false}, {from_context ? ctx_ : stage_, from_context}};
    env.resolve_owner = [](const ChownOpt& c) -> core::Result<std::pair<uint32_t, uint32_t>> {
      if (c.user == "app") return std::pair<uint32_t, uint32_t>{1234, 5678};
      if (c.user == "1000")
        return std::pair<uint32_t, uint32_t>{1000, c.group.empty() ? 1000u : 2000u};
      return core::Error(core::Code::kNotFound, "unknown user " + c.user);
    };
    return env;
  }

  core::Status Run(std::vector<FileAction> actions, bool from_context = true) {
    FileOp op;
    for (auto& a : actions) op.actions.push_back({op.actions.empty() ? 0 : -1, std::move(a)});
    return ApplyFileOp(op, Env(from_context));
  }

  std::string T(const std::string& rel) const { return target_ + "/" + rel; }

  TempDir tmp_;
  std::string ctx_, stage_, target_, outside_;
};

// ---- COPY: names, directories, metadata ----

TEST_F(FileOpTest, FileIntoDirectoryKeepsNameModeAndMtime) {
  WriteTestFile(ctx_, "run.sh", "#!/bin/sh\n", 0751);
  SetMtime(ctx_ + "/run.sh", 1000000);
  ASSERT_TRUE(Run({Copy("run.sh", "/usr/local/bin/")}).ok());
  EXPECT_EQ(ReadTestFile(T("usr/local/bin/run.sh")), "#!/bin/sh\n");
  struct stat st = Lstat(T("usr/local/bin/run.sh"));
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  EXPECT_EQ(st.st_mtime, 1000000);
  EXPECT_EQ(Lstat(T("usr/local")).st_mode & 07777, 0755u);  // created parents
}

TEST_F(FileOpTest, DestWithoutSlashIsTheFileName) {
  WriteTestFile(ctx_, "a.conf", "x");
  ASSERT_TRUE(Run({Copy("a.conf", "/etc/app.conf")}).ok());
  EXPECT_EQ(ReadTestFile(T("etc/app.conf")), "x");
  EXPECT_TRUE(Missing(T("etc/app.conf/a.conf")));
}

TEST_F(FileOpTest, DestWithoutSlashThatIsADirectoryReceivesTheFile) {
  WriteTestFile(ctx_, "a.conf", "x");
  ASSERT_TRUE(core::MkdirAll(T("etc")).ok());
  ASSERT_TRUE(Run({Copy("a.conf", "/etc")}).ok());
  EXPECT_EQ(ReadTestFile(T("etc/a.conf")), "x");
}

TEST_F(FileOpTest, WithoutCreateDestPathTheParentMustExist) {
  WriteTestFile(ctx_, "f", "x");
  CopyAction a = Copy("f", "/no/such/dir/");
  a.create_dest_path = false;
  EXPECT_EQ(Run({a}).error().code(), core::Code::kNotFound);
  EXPECT_TRUE(Missing(T("no")));
  ASSERT_TRUE(core::MkdirAll(T("yes")).ok());
  a.dest = "/yes/";
  EXPECT_TRUE(Run({a}).ok());
  EXPECT_EQ(ReadTestFile(T("yes/f")), "x");
}

TEST_F(FileOpTest, DirectorySourceCopiesItsContents) {
  WriteTestFile(ctx_, "src/main.c", "int main;");
  WriteTestFile(ctx_, "src/lib/util.c", "util");
  ::chmod((ctx_ + "/src/lib").c_str(), 0750);
  ASSERT_TRUE(Run({Copy("src", "/app")}).ok());
  EXPECT_EQ(ReadTestFile(T("app/main.c")), "int main;");
  EXPECT_EQ(ReadTestFile(T("app/lib/util.c")), "util");
  EXPECT_TRUE(Missing(T("app/src")));
  EXPECT_EQ(Lstat(T("app/lib")).st_mode & 07777, 0750u);
  EXPECT_EQ(Lstat(T("app")).st_mode & 07777, 0755u);  // made like a parent, not like src/

  // "." is the whole context; an existing file is overwritten, other entries stay.
  WriteTestFile(target_, "app/old", "old");
  WriteTestFile(ctx_, "src/main.c", "v2");
  ASSERT_TRUE(Run({Copy("./src/", "/app/")}).ok());
  EXPECT_EQ(ReadTestFile(T("app/main.c")), "v2");
  EXPECT_EQ(ReadTestFile(T("app/old")), "old");
}

TEST_F(FileOpTest, MissingSourceNamesThePath) {
  auto s = Run({Copy("nope/missing.txt", "/x/")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), core::Code::kNotFound);
  EXPECT_NE(s.error().message().find("lstat /nope/missing.txt"), std::string::npos)
      << s.error().ToString();
  EXPECT_NE(s.error().ToString().find("No such file or directory"), std::string::npos);

  FileOp op;
  CopyAction a = Copy("f", "/f");
  op.actions.push_back({0, a});
  FileOpEnv env = Env();
  env.inputs[1].root = "";  // scratch
  EXPECT_EQ(ApplyFileOp(op, env).error().code(), core::Code::kNotFound);
}

TEST_F(FileOpTest, MtimeClampedToTimestamp) {
  WriteTestFile(ctx_, "d/new", "n");
  WriteTestFile(ctx_, "d/old", "o");
  SetMtime(ctx_ + "/d/new", 2000000000);
  SetMtime(ctx_ + "/d/old", 1000);
  CopyAction a = Copy("d", "/d/");
  a.timestamp = 1700000000;
  ASSERT_TRUE(Run({a}).ok());
  EXPECT_EQ(Lstat(T("d/new")).st_mtime, 1700000000);
  EXPECT_EQ(Lstat(T("d/old")).st_mtime, 1000);
}

TEST_F(FileOpTest, HardlinksStayHardlinked) {
  WriteTestFile(ctx_, "d/a", "same");
  ASSERT_EQ(::link((ctx_ + "/d/a").c_str(), (ctx_ + "/d/b").c_str()), 0);
  ASSERT_TRUE(Run({Copy("d", "/d/")}).ok());
  EXPECT_EQ(Lstat(T("d/a")).st_ino, Lstat(T("d/b")).st_ino);
  EXPECT_EQ(ReadTestFile(T("d/b")), "same");
}

TEST_F(FileOpTest, XattrsAreCopiedWhenTheFilesystemHasThem) {
  WriteTestFile(ctx_, "f", "x");
  if (::setxattr((ctx_ + "/f").c_str(), "user.xbuild", "v", 1, 0) != 0) {
    GTEST_SKIP() << "no user xattrs on this filesystem";
  }
  ASSERT_TRUE(Run({Copy("f", "/f")}).ok());
  char buf[8];
  ASSERT_EQ(::getxattr(T("f").c_str(), "user.xbuild", buf, sizeof buf), 1);
  EXPECT_EQ(buf[0], 'v');
}

// ---- symlinks and confinement ----

TEST_F(FileOpTest, SymlinksInsideACopiedTreeStaySymlinks) {
  WriteTestFile(ctx_, "d/real", "r");
  ASSERT_EQ(::symlink("real", (ctx_ + "/d/rel").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", (ctx_ + "/d/abs").c_str()), 0);
  ASSERT_EQ(::symlink("../../../..", (ctx_ + "/d/up").c_str()), 0);
  ASSERT_TRUE(Run({Copy("d", "/d/")}).ok());
  EXPECT_EQ(ReadLink(T("d/rel")), "real");
  EXPECT_EQ(ReadLink(T("d/abs")), "/etc/passwd");
  EXPECT_EQ(ReadLink(T("d/up")), "../../../..");
  ExpectSentinel();
}

TEST_F(FileOpTest, SymlinkNamedAsSourceIsFollowedInsideItsRoot) {
  // A context symlink to /etc/passwd reads <context>/etc/passwd...
  ASSERT_EQ(::symlink("/etc/passwd", (ctx_ + "/passwd").c_str()), 0);
  WriteTestFile(ctx_, "etc/passwd", "fake");
  ASSERT_TRUE(Run({Copy("passwd", "/out/")}).ok());
  EXPECT_EQ(ReadTestFile(T("out/passwd")), "fake");
  // ...or fails when the context has none; the host's file is never read.
  ASSERT_TRUE(core::RemoveAll(ctx_ + "/etc").ok());
  auto s = Run({Copy("passwd", "/out2/")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), core::Code::kNotFound);
  EXPECT_TRUE(Missing(T("out2/passwd")));

  // A link to the outside through the absolute path of a real directory stays inside too.
  ASSERT_EQ(::symlink((outside_ + "/sentinel").c_str(), (ctx_ + "/abs").c_str()), 0);
  EXPECT_FALSE(Run({Copy("abs", "/o/")}).ok());

  // "../../.." stops at the context root: its contents are copied.
  WriteTestFile(ctx_, "top.txt", "top");
  ASSERT_EQ(::symlink("../../..", (ctx_ + "/up").c_str()), 0);
  ASSERT_TRUE(Run({Copy("up", "/up/")}).ok());
  EXPECT_EQ(ReadTestFile(T("up/top.txt")), "top");
  EXPECT_TRUE(Missing(T("up/sentinel")));
  ExpectSentinel();
}

TEST_F(FileOpTest, SymlinkSourceNotFollowedWhenAsked) {
  WriteTestFile(ctx_, "real", "r");
  ASSERT_EQ(::symlink("real", (ctx_ + "/link").c_str()), 0);
  CopyAction a = Copy("link", "/l");
  a.follow_symlinks = false;
  ASSERT_TRUE(Run({a}).ok());
  EXPECT_EQ(ReadLink(T("l")), "real");
}

TEST_F(FileOpTest, TargetSymlinksResolveInsideTheTarget) {
  WriteTestFile(ctx_, "f", "data");
  // etc -> <outside> (an absolute host path): resolves to <target><outside>.
  ASSERT_EQ(::symlink(outside_.c_str(), T("etc").c_str()), 0);
  ASSERT_TRUE(Run({Copy("f", "/etc/f")}).ok());
  EXPECT_EQ(ReadTestFile(target_ + outside_ + "/f"), "data");
  // up -> ../../.. stays at the target root.
  ASSERT_EQ(::symlink("../../..", T("up").c_str()), 0);
  ASSERT_TRUE(Run({Copy("f", "/up/g")}).ok());
  EXPECT_EQ(ReadTestFile(T("g")), "data");
  // A final-component symlink is replaced, never written through.
  ASSERT_EQ(::symlink((outside_ + "/sentinel").c_str(), T("cfg").c_str()), 0);
  ASSERT_TRUE(Run({Copy("f", "/cfg")}).ok());
  EXPECT_EQ(Lstat(T("cfg")).st_mode & S_IFMT, static_cast<mode_t>(S_IFREG));
  EXPECT_EQ(ReadTestFile(T("cfg")), "data");
  ExpectSentinel();
}

TEST_F(FileOpTest, TargetSymlinkToHostEtcNeverReachesTheHost) {
  WriteTestFile(ctx_, "xbuild-fileop-test", "data");
  ASSERT_EQ(::symlink("/etc", T("etc").c_str()), 0);
  // etc -> /etc resolves to itself inside the target: a loop, so the copy fails, and
  // nothing lands in the host's /etc.
  EXPECT_FALSE(Run({Copy("xbuild-fileop-test", "/etc/")}).ok());
  EXPECT_TRUE(Missing("/etc/xbuild-fileop-test"));
  ExpectSentinel();
}

TEST_F(FileOpTest, DirectoryMergesThroughATargetSymlink) {
  // Merged /usr: the target's bin -> usr/bin receives the source's bin/.
  ASSERT_TRUE(core::MkdirAll(T("usr/bin")).ok());
  ASSERT_EQ(::symlink("usr/bin", T("bin").c_str()), 0);
  WriteTestFile(stage_, "bin/tool", "t", 0755);
  ASSERT_TRUE(Run({Copy("/", "/")}, /*from_context=*/false).ok());
  EXPECT_EQ(ReadLink(T("bin")), "usr/bin");
  EXPECT_EQ(ReadTestFile(T("usr/bin/tool")), "t");
  // A symlink to the outside as a directory: resolves inside, nothing written outside.
  ASSERT_EQ(::symlink(outside_.c_str(), T("lib").c_str()), 0);
  WriteTestFile(stage_, "lib/x", "x");
  ASSERT_TRUE(core::MkdirAll(target_ + outside_).ok());
  ASSERT_TRUE(Run({Copy("/", "/")}, false).ok());
  EXPECT_EQ(ReadTestFile(target_ + outside_ + "/x"), "x");
  ExpectSentinel();
}

TEST_F(FileOpTest, FileDoesNotReplaceADirectory) {
  WriteTestFile(ctx_, "f", "x");
  ASSERT_TRUE(core::MkdirAll(T("dir/f")).ok());
  auto s = Run({Copy("f", "/dir/")});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("/dir/f"), std::string::npos);
}

// ---- wildcards and excludes ----

TEST_F(FileOpTest, WildcardsMatchPerComponent) {
  WriteTestFile(ctx_, "a.txt", "a");
  WriteTestFile(ctx_, "b.txt", "b");
  WriteTestFile(ctx_, "c.md", "c");
  WriteTestFile(ctx_, "sub/d.txt", "d");
  ASSERT_TRUE(Run({Copy("*.txt", "/w/")}).ok());
  EXPECT_EQ(ReadTestFile(T("w/a.txt")), "a");
  EXPECT_EQ(ReadTestFile(T("w/b.txt")), "b");
  EXPECT_TRUE(Missing(T("w/c.md")));
  EXPECT_TRUE(Missing(T("w/d.txt")));  // `*` does not cross '/'

  ASSERT_TRUE(Run({Copy("[ab].t?t", "/x/"), Copy("s*/*.txt", "/y/")}).ok());
  EXPECT_EQ(ReadTestFile(T("x/a.txt")), "a");
  EXPECT_EQ(ReadTestFile(T("y/d.txt")), "d");

  // A directory matched by a wildcard copies its contents.
  ASSERT_TRUE(Run({Copy("su?", "/z/")}).ok());
  EXPECT_EQ(ReadTestFile(T("z/d.txt")), "d");
}

TEST_F(FileOpTest, WildcardErrors) {
  auto none = Run({Copy("*.go", "/app/")});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), core::Code::kNotFound);
  EXPECT_NE(none.error().message().find("no source files were specified"), std::string::npos);
  EXPECT_NE(none.error().message().find("*.go"), std::string::npos);

  // A wildcard allowed to match nothing is skipped beside a source that matches (`COPY foo
  // nomatch* /`), but an op none of whose copies copied anything still fails.
  CopyAction empty = Copy("*.go", "/app/");
  empty.allow_empty_wildcard = true;
  auto only_empty = Run({empty});
  ASSERT_FALSE(only_empty.ok());
  EXPECT_NE(only_empty.error().message().find("no source files were specified"), std::string::npos);
  WriteTestFile(ctx_, "foo", "foo");
  CopyAction foo = Copy("foo", "/");
  foo.allow_empty_wildcard = true;
  ASSERT_TRUE(Run({foo, empty}).ok());
  EXPECT_EQ(ReadTestFile(T("foo")), "foo");
  EXPECT_FALSE(std::filesystem::exists(T("app")));

  // A match that --exclude leaves out still counts as a match: nothing copied, no error.
  CopyAction excluded = Copy("fo?", "/ex/");
  excluded.allow_empty_wildcard = true;
  excluded.exclude_patterns = {"foo"};
  ASSERT_TRUE(Run({excluded}).ok());
  EXPECT_FALSE(std::filesystem::exists(T("ex/foo")));

  // Several matches and no trailing slash: dest becomes a directory holding each (BuildKit).
  WriteTestFile(ctx_, "a.txt", "a");
  WriteTestFile(ctx_, "b.txt", "b");
  ASSERT_TRUE(Run({Copy("*.txt", "/file")}).ok());
  EXPECT_EQ(ReadTestFile(T("file/a.txt")), "a");
  EXPECT_EQ(ReadTestFile(T("file/b.txt")), "b");
  EXPECT_TRUE(Run({Copy("a*.txt", "/single")}).ok());  // one match: dest is its name
  EXPECT_EQ(ReadTestFile(T("single")), "a");

  EXPECT_EQ(Run({Copy("[a", "/x/")}).error().code(), core::Code::kInvalidArgument);

  // With wildcards off, the name is literal.
  WriteTestFile(ctx_, "lit*", "star");
  CopyAction lit = Copy("lit*", "/lit");
  lit.allow_wildcard = false;
  ASSERT_TRUE(Run({lit}).ok());
  EXPECT_EQ(ReadTestFile(T("lit")), "star");
}

TEST_F(FileOpTest, ExcludePatterns) {
  WriteTestFile(ctx_, "src/a.c", "a");
  WriteTestFile(ctx_, "src/README.md", "r");
  WriteTestFile(ctx_, "src/keep.md", "k");
  WriteTestFile(ctx_, "src/tmp/x.o", "x");
  WriteTestFile(ctx_, "src/deep/b.tmp", "t");
  CopyAction a = Copy("src", "/app/");
  a.exclude_patterns = {"*.md", "!keep.md", "tmp", "deep/*.tmp"};
  ASSERT_TRUE(Run({a}).ok());
  EXPECT_EQ(ReadTestFile(T("app/a.c")), "a");
  EXPECT_TRUE(Missing(T("app/README.md")));
  EXPECT_EQ(ReadTestFile(T("app/keep.md")), "k");
  EXPECT_TRUE(Missing(T("app/tmp")));
  EXPECT_TRUE(Missing(T("app/deep/b.tmp")));

  // Docker's example: COPY --exclude=*.txt hom* /mydir/
  WriteTestFile(ctx_, "home.txt", "1");
  WriteTestFile(ctx_, "homer.sh", "2");
  CopyAction w = Copy("hom*", "/mydir/");
  w.exclude_patterns = {"*.txt"};
  ASSERT_TRUE(Run({w}).ok());
  EXPECT_TRUE(Missing(T("mydir/home.txt")));
  EXPECT_EQ(ReadTestFile(T("mydir/homer.sh")), "2");
}

// ---- chmod / chown ----

TEST_F(FileOpTest, ChmodOctalAppliesToEveryEntry) {
  WriteTestFile(ctx_, "d/f", "x", 0600);
  ASSERT_EQ(::symlink("f", (ctx_ + "/d/l").c_str()), 0);
  CopyAction a = Copy("d", "/d/");
  a.chmod = "755";
  ASSERT_TRUE(Run({a}).ok());
  EXPECT_EQ(Lstat(T("d/f")).st_mode & 07777, 0755u);
  EXPECT_EQ(ReadLink(T("d/l")), "f");
}

TEST_F(FileOpTest, ChmodSymbolic) {
  WriteTestFile(ctx_, "d/plain", "x", 0664);
  WriteTestFile(ctx_, "d/exe", "x", 0744);
  ASSERT_TRUE(core::MkdirAll(ctx_ + "/d/sub").ok());
  ::chmod((ctx_ + "/d/sub").c_str(), 0700);
  CopyAction a = Copy("d", "/d/");
  a.chmod = "a=rX,u+w";
  ASSERT_TRUE(Run({a}).ok());
  EXPECT_EQ(Lstat(T("d/plain")).st_mode & 07777, 0644u);
  EXPECT_EQ(Lstat(T("d/exe")).st_mode & 07777, 0755u);
  EXPECT_EQ(Lstat(T("d/sub")).st_mode & 07777, 0755u);

  CopyAction b = Copy("d/plain", "/p");
  b.chmod = "u+x,g-w";
  ASSERT_TRUE(Run({b}).ok());
  EXPECT_EQ(Lstat(T("p")).st_mode & 07777, 0744u);

  CopyAction bad = Copy("d/plain", "/q");
  bad.chmod = "u+y";
  EXPECT_EQ(Run({bad}).error().code(), core::Code::kInvalidArgument);
}

TEST(FileOpChmodSpec, ParsesLikeChmod) {
  auto apply = [](const char* spec, mode_t mode, bool dir = false) {
    auto s = ChmodSpec::Parse(spec);
    EXPECT_TRUE(s.ok()) << spec;
    return s.ok() ? s->Apply(mode, dir) : mode_t{07777};
  };
  EXPECT_EQ(apply("0644", 0777), 0644u);
  EXPECT_EQ(apply("4755", 0), 04755u);
  EXPECT_EQ(apply("+x", 0644), 0755u);
  EXPECT_EQ(apply("go=", 0755), 0700u);
  EXPECT_EQ(apply("u=rwx,g=rx,o=", 0), 0750u);
  EXPECT_EQ(apply("a-w", 0666), 0444u);
  EXPECT_EQ(apply("o+t", 0777, true), 01777u);
  EXPECT_EQ(apply("u+s,g+s", 0755), 06755u);
  EXPECT_EQ(apply("u+t", 0755), 0755u);  // only o sets the sticky bit
  EXPECT_EQ(apply("a+X", 0644), 0644u);
  EXPECT_EQ(apply("a+X", 0644, true), 0755u);
  EXPECT_EQ(apply("u-w+x", 0644), 0544u);
  for (const char* bad : {"", "8", "07777x", "u", "u+y", "q+x", "u+x,", "12345"}) {
    EXPECT_FALSE(ChmodSpec::Parse(bad).ok()) << bad;
  }
}

TEST_F(FileOpTest, ChownEveryEntryAndCreatedDirs) {
  WriteTestFile(ctx_, "d/f", "x");
  ASSERT_EQ(::symlink("f", (ctx_ + "/d/l").c_str()), 0);
  CopyAction a = Copy("d", "/new/parent/");
  a.chown = ChownOpt{"app", ""};
  ASSERT_TRUE(Run({a}).ok());
  if (!IsRoot()) GTEST_SKIP() << "owners are only set as root";
  for (const char* p : {"new", "new/parent", "new/parent/f", "new/parent/l"}) {
    EXPECT_EQ(Lstat(T(p)).st_uid, 1234u) << p;
    EXPECT_EQ(Lstat(T(p)).st_gid, 5678u) << p;
  }
}

TEST_F(FileOpTest, ChownResolverErrorsAreReported) {
  WriteTestFile(ctx_, "f", "x");
  CopyAction a = Copy("f", "/f");
  a.chown = ChownOpt{"nobody-here", ""};
  auto s = Run({a});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("--chown=nobody-here"), std::string::npos)
      << s.error().message();
  EXPECT_NE(s.error().message().find("unknown user"), std::string::npos);
}

TEST_F(FileOpTest, OwnersWithoutChown) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to give files away";
  WriteTestFile(ctx_, "f", "x");
  WriteTestFile(stage_, "f", "x");
  ASSERT_EQ(::chown((ctx_ + "/f").c_str(), 4321, 4321), 0);
  ASSERT_EQ(::chown((stage_ + "/f").c_str(), 4321, 4322), 0);
  ASSERT_TRUE(Run({Copy("f", "/from-context")}).ok());
  EXPECT_EQ(Lstat(T("from-context")).st_uid, 0u);  // the context: 0:0
  ASSERT_TRUE(Run({Copy("f", "/from-stage")}, /*from_context=*/false).ok());
  EXPECT_EQ(Lstat(T("from-stage")).st_uid, 4321u);  // a stage or image: kept
  EXPECT_EQ(Lstat(T("from-stage")).st_gid, 4322u);
}

// ---- ADD of archives ----

class FileOpAddTest : public FileOpTest {
 protected:
  // A tar of a small tree (dir/file.txt, dir/link -> file.txt) at <ctx>/<name>, made by the
  // tar CLI with `compress` ("" for none, else "--gzip", "--zstd"...).
  void MakeTar(const std::string& name, const std::string& compress) {
    WriteTestFile(tmp_.path(), "tree/dir/file.txt", "in the archive", 0640);
    ASSERT_EQ(::symlink("file.txt", (tmp_.Sub("tree/dir/link")).c_str()), 0);
    std::vector<std::string> argv{"tar", "-C", tmp_.Sub("tree"), "-cf", ctx_ + "/" + name};
    if (!compress.empty()) argv.push_back(compress);
    argv.push_back(".");
    auto r = core::RunChecked(argv);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    ASSERT_TRUE(core::RemoveAll(tmp_.Sub("tree")).ok());
  }
  CopyAction Add(std::string src, std::string dest) {
    CopyAction a = Copy(std::move(src), std::move(dest));
    a.attempt_unpack = true;
    return a;
  }
};

TEST_F(FileOpAddTest, ExtractsCompressedTarsByContent) {
  struct Case {
    const char* name;
    const char* compress;
    const char* tool;
  };
  // The names say nothing: "renamed.txt" is a tar.gz too.
  for (Case c : {Case{"a.tar.gz", "--gzip", "gzip"}, Case{"b.tar", "", "tar"},
                 Case{"c.tbz", "--bzip2", "bzip2"}, Case{"d.txz", "--xz", "xz"},
                 Case{"e.tzst", "--zstd", "zstd"}, Case{"renamed.txt", "--gzip", "gzip"}}) {
    SCOPED_TRACE(c.name);
    if (core::LookPath(c.tool).empty()) continue;
    MakeTar(c.name, c.compress);
    std::string dest = std::string("x/") + c.name;
    ASSERT_TRUE(Run({Add(c.name, "/" + dest)}).ok());
    EXPECT_EQ(ReadTestFile(T(dest + "/dir/file.txt")), "in the archive");
    EXPECT_EQ(Lstat(T(dest + "/dir/file.txt")).st_mode & 07777, 0640u);
    EXPECT_EQ(ReadLink(T(dest + "/dir/link")), "file.txt");
  }
}

TEST_F(FileOpAddTest, NonArchivesAreCopiedAsFiles) {
  WriteTestFile(ctx_, "notes.tar.gz", "just text");
  WriteTestFile(ctx_, "plain.txt", "hello");
  ASSERT_TRUE(core::RunChecked({"gzip", "-k", ctx_ + "/plain.txt"}).ok());  // gzip, not a tar
  WriteTestFile(ctx_, "empty", "");
  ASSERT_TRUE(
      Run({Add("notes.tar.gz", "/a/"), Add("plain.txt.gz", "/a/"), Add("empty", "/a/")}).ok());
  EXPECT_EQ(ReadTestFile(T("a/notes.tar.gz")), "just text");
  EXPECT_EQ(Lstat(T("a/plain.txt.gz")).st_mode & S_IFMT, static_cast<mode_t>(S_IFREG));
  EXPECT_EQ(ReadTestFile(T("a/empty")), "");
  // COPY never unpacks.
  MakeTar("t.tgz", "--gzip");
  ASSERT_TRUE(Run({Copy("t.tgz", "/c/")}).ok());
  EXPECT_EQ(Lstat(T("c/t.tgz")).st_mode & S_IFMT, static_cast<mode_t>(S_IFREG));
}

TEST_F(FileOpAddTest, EntriesClimbingOutAreRefused) {
  // GNU tar keeps "../" names with -P.
  WriteTestFile(tmp_.path(), "work/evil", "evil");
  ASSERT_TRUE(core::RunChecked({"tar", "-C", tmp_.Sub("work"), "-cPf", ctx_ + "/evil.tar",
                                "../outside/sentinel"})
                  .ok());
  auto s = Run({Add("evil.tar", "/x/")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), core::Code::kPermissionDenied);
  EXPECT_NE(s.error().message().find("outside the destination"), std::string::npos)
      << s.error().message();
  ExpectSentinel();
}

TEST_F(FileOpAddTest, ArchiveSymlinksCannotRedirectLaterEntries) {
  // An archive that plants `dir -> <outside>` and then writes `dir/pwned`.
  std::string work = tmp_.Sub("work");
  ASSERT_TRUE(core::MkdirAll(work).ok());
  ASSERT_EQ(::symlink(outside_.c_str(), (work + "/dir").c_str()), 0);
  ASSERT_TRUE(core::RunChecked({"tar", "-C", work, "-cf", ctx_ + "/a.tar", "dir"}).ok());
  ASSERT_TRUE(core::RemoveAll(work).ok());
  WriteTestFile(work, "dir/pwned", "pwned");
  ASSERT_TRUE(core::RunChecked({"tar", "-C", work, "-rf", ctx_ + "/a.tar", "dir/pwned"}).ok());
  ASSERT_TRUE(Run({Add("a.tar", "/x/")}).ok());
  EXPECT_EQ(ReadTestFile(target_ + outside_ + "/pwned"), "pwned");  // inside the target
  ExpectSentinel();
}

TEST_F(FileOpAddTest, ChownAppliesToExtractedEntries) {
  MakeTar("t.tgz", "--gzip");
  CopyAction a = Add("t.tgz", "/x/");
  a.chown = ChownOpt{"1000", "g"};
  ASSERT_TRUE(Run({a}).ok());
  if (!IsRoot()) GTEST_SKIP() << "owners are only set as root";
  EXPECT_EQ(Lstat(T("x/dir/file.txt")).st_uid, 1000u);
  EXPECT_EQ(Lstat(T("x/dir/file.txt")).st_gid, 2000u);
  EXPECT_EQ(Lstat(T("x")).st_uid, 1000u);
}

// ---- mkdir, mkfile, rm, symlink ----

TEST_F(FileOpTest, MkdirWithParentsModeAndOwner) {
  MkdirAction m;
  m.path = "/work/dir";
  m.mode = 0750;
  m.chown = ChownOpt{"app", ""};
  ASSERT_TRUE(Run({m}).ok());
  EXPECT_EQ(Lstat(T("work/dir")).st_mode & 07777, 0750u);
  EXPECT_EQ(Lstat(T("work")).st_mode & 07777, 0750u);
  if (IsRoot()) {
    EXPECT_EQ(Lstat(T("work/dir")).st_uid, 1234u);
  }
  // Existing: left alone.
  ::chmod(T("work/dir").c_str(), 0700);
  ASSERT_TRUE(Run({m}).ok());
  EXPECT_EQ(Lstat(T("work/dir")).st_mode & 07777, 0700u);

  MkdirAction strict;
  strict.path = "/missing/dir";
  strict.make_parents = false;
  EXPECT_EQ(Run({strict}).error().code(), core::Code::kNotFound);
  WriteTestFile(target_, "file", "");
  MkdirAction onfile;
  onfile.path = "/file/sub";
  EXPECT_FALSE(Run({onfile}).ok());
}

TEST_F(FileOpTest, MkfileLikeAHeredoc) {
  MkfileAction f;
  f.path = "/app/new/script.sh";
  f.data = "#!/bin/sh\necho hi\n";
  f.mode = 0755;
  ASSERT_TRUE(Run({f}).ok());
  EXPECT_EQ(ReadTestFile(T("app/new/script.sh")), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(Lstat(T("app/new/script.sh")).st_mode & 07777, 0755u);

  // Over a symlink to the outside: the link is replaced, the sentinel untouched.
  ASSERT_EQ(::symlink((outside_ + "/sentinel").c_str(), T("app/link").c_str()), 0);
  MkfileAction g;
  g.path = "/app/link";
  g.data = "mine";
  ASSERT_TRUE(Run({g}).ok());
  EXPECT_EQ(ReadTestFile(T("app/link")), "mine");
  EXPECT_EQ(Lstat(T("app/link")).st_mode & S_IFMT, static_cast<mode_t>(S_IFREG));
  ExpectSentinel();
}

TEST_F(FileOpTest, RmFilesDirectoriesAndWildcards) {
  WriteTestFile(target_, "a/b/c", "c");
  WriteTestFile(target_, "x1.log", "");
  WriteTestFile(target_, "x2.log", "");
  WriteTestFile(target_, "keep", "");
  ASSERT_EQ(::symlink(outside_.c_str(), T("out").c_str()), 0);
  RmAction dir;
  dir.path = "/a";
  RmAction logs;
  logs.path = "/x*.log";
  logs.allow_wildcard = true;
  RmAction link;
  link.path = "/out";
  ASSERT_TRUE(Run({dir, logs, link}).ok());
  EXPECT_TRUE(Missing(T("a")));
  EXPECT_TRUE(Missing(T("x1.log")));
  EXPECT_TRUE(Missing(T("x2.log")));
  EXPECT_TRUE(Missing(T("out")));
  EXPECT_FALSE(Missing(T("keep")));
  ExpectSentinel();  // the link went, not what it pointed to

  RmAction strict;
  strict.path = "/nope";
  strict.allow_not_found = false;
  EXPECT_EQ(Run({strict}).error().code(), core::Code::kNotFound);
  strict.allow_not_found = true;
  EXPECT_TRUE(Run({strict}).ok());
  RmAction root;
  root.path = "/";
  EXPECT_FALSE(Run({root}).ok());
}

TEST_F(FileOpTest, SymlinkAction) {
  SymlinkAction s;
  s.oldpath = "/usr/bin/python3";
  s.newpath = "/usr/bin/python";
  ASSERT_TRUE(core::MkdirAll(T("usr/bin")).ok());
  ASSERT_TRUE(Run({s}).ok());
  EXPECT_EQ(ReadLink(T("usr/bin/python")), "/usr/bin/python3");
  EXPECT_EQ(Run({s}).error().code(), core::Code::kAlreadyExists);
}

TEST_F(FileOpTest, ActionsRunInOrderAndErrorsNameTheAction) {
  WriteTestFile(ctx_, "f", "x");
  MkdirAction m;
  m.path = "/app";
  RmAction r;
  r.path = "/app/f";
  r.allow_not_found = false;
  ASSERT_TRUE(Run({m, Copy("f", "/app/"), r}).ok());
  EXPECT_TRUE(Missing(T("app/f")));
  auto s = Run({Copy("missing", "/app/")});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.error().message().starts_with("copy \"missing\" to \"/app/\": "))
      << s.error().message();
}

// ---- Go filepath.Match ----

TEST(FileOpGlob, MatchesLikeGo) {
  struct Case {
    const char* pattern;
    const char* name;
    bool match;
  };
  for (Case c : {Case{"abc", "abc", true},
                 Case{"*", "abc", true},
                 Case{"*", ".hidden", true},
                 Case{"*c", "abc", true},
                 Case{"a*", "a", true},
                 Case{"a*", "ab", true},
                 Case{"a*b*c*d*e*", "axbxcxdxe", true},
                 Case{"a*b?c*x", "abxbbxdbxebxczzx", true},
                 Case{"a*b?c*x", "abxbbxdbxebxczzy", false},
                 Case{"ab[c]", "abc", true},
                 Case{"ab[b-d]", "abc", true},
                 Case{"ab[e-g]", "abc", false},
                 Case{"ab[^c]", "abc", false},
                 Case{"ab[^b-d]", "abe", true},
                 Case{"a\\*b", "a*b", true},
                 Case{"a\\*b", "ab", false},
                 Case{"a?b", "a☺b", true},
                 Case{"a[^a]b", "a☺b", true},
                 Case{"[a-ζ]*", "α", true},
                 Case{"*x", "xxx", true},
                 Case{"[\\]a]", "]", true},
                 Case{"[\\-]", "-", true},
                 Case{"a?", "a", false}}) {
    auto r = GlobMatch(c.pattern, c.name);
    ASSERT_TRUE(r.ok()) << c.pattern;
    EXPECT_EQ(*r, c.match) << c.pattern << " ~ " << c.name;
  }
  for (const char* bad : {"[", "[^", "[]a]", "[-]", "[x-]", "[z-a]", "a\\", "[a"}) {
    EXPECT_FALSE(GlobMatch(bad, "a").ok()) << bad;
  }
  EXPECT_TRUE(HasWildcard("a*"));
  EXPECT_TRUE(HasWildcard("[ab]"));
  EXPECT_FALSE(HasWildcard("a\\*"));
  EXPECT_FALSE(HasWildcard("plain"));
}

}  // namespace
}  // namespace xbuild::solver::ops
