// core: Digest, Result/Error, safe path resolution, subprocess, JSON, config.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/context.h"
#include "core/digest.h"
#include "core/dir.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/path.h"
#include "core/subprocess.h"
#include "unit/test_util.h"

namespace xbuild::core {
namespace {

using testing::TempDir;
using testing::WriteTestFile;
using testing::ReadTestFile;

TEST(Digest, KnownValues) {
  EXPECT_EQ(Digest::Of("").String(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Digest::Of("abc").Hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, StreamingEqualsOneShot) {
  std::string data(1 << 20, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131);
  Sha256 h;
  for (size_t off = 0; off < data.size(); off += 4093) h.Update(data.data() + off, std::min<size_t>(4093, data.size() - off));
  EXPECT_EQ(h.Finish(), Digest::Of(data));
  // Reusable after Finish.
  h.Update("abc");
  EXPECT_EQ(h.Finish(), Digest::Of("abc"));
}

TEST(Digest, ParseRoundTrip) {
  auto d = Digest::Parse("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->String(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(d->Short(), "ba7816bf8f01");
}

TEST(Digest, ParseRejectsAnythingElse) {
  const char* bad[] = {
      "",
      "sha256:",
      "sha256:../../etc/passwd",
      "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",  // uppercase
      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",   // 63
      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", // 65
      "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2001/ad",
      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a\n",
  };
  for (const char* b : bad) {
    auto d = Digest::Parse(b);
    EXPECT_FALSE(d.ok()) << b;
    if (!d.ok()) {
      EXPECT_EQ(d.error().code(), Code::kInvalidArgument);
    }
  }
}

TEST(Result, ContextGathersOnTheWayUp) {
  auto inner = []() -> Status { return SysError("open /x", ENOENT); };
  auto middle = [&]() -> Status {
    XB_TRY_CTX(inner(), "load config");
    return Ok();
  };
  auto outer = [&]() -> Result<int> {
    XB_TRY_CTX(middle(), "xbuild info");
    return 1;
  };
  auto r = outer();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_EQ(r.error().ToString(), "xbuild info: load config: open /x: No such file or directory");
}

TEST(Result, AssignMovesValue) {
  auto make = []() -> Result<std::string> { return std::string("value"); };
  auto use = [&]() -> Result<size_t> {
    XB_ASSIGN(std::string s, make());
    return s.size();
  };
  EXPECT_EQ(*use(), 5u);
}

TEST(Path, CleanPath) {
  EXPECT_EQ(CleanPath("a/./b/../c//"), "a/c");
  EXPECT_EQ(CleanPath(""), ".");
  EXPECT_EQ(CleanPath("/../x"), "/x");
  EXPECT_EQ(CleanPath("../x"), "../x");
  EXPECT_TRUE(EscapesRoot("a/../../x"));
  EXPECT_FALSE(EscapesRoot("a/../x"));
}

class PathInRoot : public ::testing::TestWithParam<Resolve> {
 protected:
  void SetUp() override {
    root_ = tmp_.Sub("root");
    outside_ = tmp_.Sub("outside");
    WriteTestFile(outside_, "secret", "host secret");
    WriteTestFile(root_, "etc/secret", "root secret");
    WriteTestFile(root_, "dir/file", "file");
    ASSERT_EQ(::symlink("/etc", (root_ + "/abs").c_str()), 0);
    ASSERT_EQ(::symlink("../../../../../../outside", (root_ + "/dir/up").c_str()), 0);
    ASSERT_EQ(::symlink((outside_).c_str(), (root_ + "/hostabs").c_str()), 0);
    ASSERT_EQ(::symlink("loop2", (root_ + "/loop1").c_str()), 0);
    ASSERT_EQ(::symlink("loop1", (root_ + "/loop2").c_str()), 0);
    rootfd_.Reset(::open(root_.c_str(), O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(rootfd_.valid());
  }
  std::string ReadVia(const std::string& p) {
    OpenInRootOptions o;
    o.resolve = GetParam();
    auto fd = OpenInRoot(rootfd_.get(), p, o);
    if (!fd.ok()) return "ERR:" + fd.error().ToString();
    auto s = ReadFd(fd->get());
    return s.ok() ? *s : "ERR";
  }
  TempDir tmp_;
  std::string root_, outside_;
  UniqueFd rootfd_;
};

TEST_P(PathInRoot, AbsoluteSymlinkStaysInRoot) { EXPECT_EQ(ReadVia("abs/secret"), "root secret"); }
TEST_P(PathInRoot, DotDotStopsAtRoot) { EXPECT_EQ(ReadVia("../../../etc/secret"), "root secret"); }
TEST_P(PathInRoot, RelativeSymlinkClimbingOutStaysIn) {
  // dir/up -> ../../../../outside resolves to <root>/outside, which does not exist.
  EXPECT_TRUE(ReadVia("dir/up/secret").starts_with("ERR")) << ReadVia("dir/up/secret");
}
TEST_P(PathInRoot, HostAbsolutePathSymlinkIsRootRelative) {
  EXPECT_TRUE(ReadVia("hostabs/secret").starts_with("ERR"));
}
TEST_P(PathInRoot, SymlinkLoopFails) { EXPECT_TRUE(ReadVia("loop1").starts_with("ERR")); }
TEST_P(PathInRoot, NoFollowLast) {
  OpenInRootOptions o;
  o.resolve = GetParam();
  o.flags = O_PATH;
  o.follow_last = false;
  auto fd = OpenInRoot(rootfd_.get(), "abs", o);
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  struct stat st;
  ASSERT_EQ(::fstatat(fd->get(), "", &st, AT_EMPTY_PATH), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}
TEST_P(PathInRoot, CreateThroughSymlinkLandsInside) {
  OpenInRootOptions o;
  o.resolve = GetParam();
  o.flags = O_WRONLY | O_CREAT | O_TRUNC;
  o.mode = 0644;
  auto fd = OpenInRoot(rootfd_.get(), "hostabs/pwned", o);
  // The symlink target (an absolute host path) is resolved inside the root, where its parent
  // dirs do not exist: it fails, and nothing appears outside.
  EXPECT_FALSE(fd.ok());
  EXPECT_FALSE(Exists(outside_ + "/pwned"));
}
TEST_P(PathInRoot, MkdirAllThroughSymlinkStaysInside) {
  auto fd = MkdirAllInRoot(rootfd_.get(), "hostabs/a/b", 0755, GetParam());
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  EXPECT_FALSE(Exists(outside_ + "/a"));
  EXPECT_TRUE(Exists(root_ + outside_ + "/a/b"));
}

INSTANTIATE_TEST_SUITE_P(Resolvers, PathInRoot, ::testing::Values(Resolve::kAuto, Resolve::kUserspace));

TEST(Path, SecureJoin) {
  TempDir tmp;
  std::string root = tmp.Sub("r");
  ASSERT_TRUE(MkdirAll(root + "/a").ok());
  ASSERT_EQ(::symlink("/etc", (root + "/a/link").c_str()), 0);
  ASSERT_EQ(::symlink("../../../..", (root + "/up").c_str()), 0);
  EXPECT_EQ(*SecureJoin(root, "a/link/passwd"), root + "/etc/passwd");
  EXPECT_EQ(*SecureJoin(root, "up/x"), root + "/x");
  EXPECT_EQ(*SecureJoin(root, "../../x"), root + "/x");
}

TEST(Subprocess, CapturesOutputAndExitCode) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(Subprocess, FeedsStdinLargerThanPipe) {
  RunOptions o;
  o.stdin_data = std::string(1 << 20, 'a');
  auto r = RunProcess({"wc", "-c"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::stoul(r->out), 1u << 20);
}

TEST(Subprocess, MissingExecutable) {
  auto r = RunProcess({"xbuild-no-such-binary"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kNotFound);
}

TEST(Subprocess, CheckedIncludesStderr) {
  auto r = RunChecked({"sh", "-c", "echo boom >&2; exit 1"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("boom"), std::string::npos);
}

TEST(Subprocess, EnvAndCwd) {
  RunOptions o;
  o.cwd = "/";
  o.extra_env["XB_TEST"] = "v";
  auto r = RunProcess({"sh", "-c", "pwd; echo $XB_TEST"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "/\nv\n");
}

TEST(Json, BoundedParse) {
  EXPECT_FALSE(ParseJson("{", "doc").ok());
  auto big = ParseJson(std::string(100, ' ') + "{}", "doc", 10);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code(), Code::kResourceExhausted);
}

TEST(Json, CanonicalIsSortedAndCompact) {
  Json j = Json::parse(R"({"b":1,"a":[1,2],"c":{"z":1,"y":2}})");
  EXPECT_EQ(CanonicalJson(j), R"({"a":[1,2],"b":1,"c":{"y":2,"z":1}})");
}

TEST(Json, TypedGettersNameTheField) {
  Json j = Json::parse(R"({"n":"x"})");
  auto r = GetInt(j, "n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("\"n\""), std::string::npos);
}

TEST(Config, ParsesDaemonJsonShape) {
  auto c = ParseConfig(R"({"data-root":"/x","insecure-registries":["127.0.0.1:5000"],
      "registry-mirrors":["https://m"],"default-runtime":"crun",
      "runtimes":{"nvidia":{"path":"nvidia-container-runtime","runtimeArgs":["--debug"]}}})", "cfg");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->data_root, "/x");
  EXPECT_EQ(c->insecure_registries, std::vector<std::string>{"127.0.0.1:5000"});
  EXPECT_EQ(c->default_runtime, "crun");
  EXPECT_EQ(c->runtimes.at("nvidia").path, "nvidia-container-runtime");
  EXPECT_EQ(c->runtimes.at("nvidia").args, std::vector<std::string>{"--debug"});
}

TEST(Config, MissingFileIsDefaultsUnlessRequired) {
  EXPECT_TRUE(LoadConfig("/nonexistent/xbuild.json", false).ok());
  EXPECT_FALSE(LoadConfig("/nonexistent/xbuild.json", true).ok());
  TempDir t;
  WriteTestFile(t.path(), "bad.json", "{not json");
  auto r = LoadConfig(t.Sub("bad.json"), false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("bad.json"), std::string::npos);
}

TEST(Fs, WriteFileAtomicReplaces) {
  TempDir t;
  std::string p = t.Sub("f");
  ASSERT_TRUE(WriteFileAtomic(p, "one").ok());
  ASSERT_TRUE(WriteFileAtomic(p, "two", 0600).ok());
  EXPECT_EQ(ReadTestFile(p), "two");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Fs, RemoveAllDoesNotFollowSymlinks) {
  TempDir t;
  WriteTestFile(t.path(), "keep/file", "x");
  ASSERT_TRUE(MkdirAll(t.Sub("victim")).ok());
  ASSERT_EQ(::symlink(t.Sub("keep").c_str(), t.Sub("victim/link").c_str()), 0);
  ASSERT_TRUE(RemoveAll(t.Sub("victim")).ok());
  EXPECT_FALSE(Exists(t.Sub("victim")));
  EXPECT_EQ(ReadTestFile(t.Sub("keep/file")), "x");
}

}  // namespace
}  // namespace xbuild::core

#include "core/strings.h"

namespace xbuild::core {
namespace {

TEST(Strings, SplitKeepsEmptyFields) {
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(Split("", ','), std::vector<std::string>{""});
  EXPECT_EQ(Split("x", ';'), std::vector<std::string>{"x"});
}

TEST(Strings, Trim) {
  EXPECT_EQ(Trim(" \t a b \r\n"), "a b");
  EXPECT_EQ(Trim("   "), "");
}

}  // namespace
}  // namespace xbuild::core

TEST(DirNames, SortedWithoutDotsAndEmptyWhenMissing) {
  xbuild::testing::TempDir tmp;
  for (const char* n : {"b", "a", "c"}) ASSERT_TRUE(xbuild::core::WriteFileAtomic(tmp.path() + "/" + n, "", 0600).ok());
  ASSERT_TRUE(xbuild::core::MkdirAll(tmp.path() + "/d").ok());
  EXPECT_EQ(xbuild::core::DirNames(tmp.path()), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_TRUE(xbuild::core::DirNames(tmp.path() + "/missing").empty());
}
