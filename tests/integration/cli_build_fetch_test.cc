// ADD of HTTP URLs and git repositories, and git build contexts, end to end (as root, real runc
// and overlayfs), all on loopback: files come from a TestHttpServer, git repositories are made
// here with the git CLI and served over smart HTTP by `git http-backend` behind the same kind
// of server (libgit2 fetches them as it would from any git host), or named as file:// contexts.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

#include "core/digest.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "integration/build_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::HttpRequest;
using testing::RunTool;
using testing::StepCached;
using testing::StepRan;
using testing::TestHttpServer;
using testing::ToolOut;
using testing::WriteTestFile;

constexpr const char* kLastModified = "Wed, 21 Oct 2015 07:28:00 GMT";
constexpr int64_t kLastModifiedEpoch = 1445412480;
constexpr int64_t kCommit1Time = 1600000000;  // the test repository's commit dates
constexpr int64_t kCommit2Time = 1700000000;

// Runs `git http-backend` (CGI) for one request under `project_root` and turns its output into
// an HTTP response.
std::string GitBackend(const std::string& project_root, const HttpRequest& req,
                       const std::string& prefix) {
  std::string path = req.target.substr(prefix.size());
  std::string query;
  if (size_t q = path.find('?'); q != std::string::npos) {
    query = path.substr(q + 1);
    path.resize(q);
  }
  core::RunOptions o;
  o.stdin_data = req.body;
  auto header = [&](const std::string& k) {
    auto it = req.headers.find(k);
    return it == req.headers.end() ? std::string() : it->second;
  };
  o.extra_env = {{"GIT_PROJECT_ROOT", project_root},
                 {"GIT_HTTP_EXPORT_ALL", "1"},
                 {"PATH_INFO", path},
                 {"QUERY_STRING", query},
                 {"REQUEST_METHOD", req.method},
                 {"CONTENT_TYPE", header("content-type")},
                 {"CONTENT_LENGTH", std::to_string(req.body.size())},
                 {"REMOTE_ADDR", "127.0.0.1"}};
  auto r = core::RunProcess({"git", "http-backend"}, o);
  if (!r.ok() || !r->success()) {
    return TestHttpServer::Response(500, "Internal Server Error", r.ok() ? r->err : "no git");
  }
  size_t end = r->out.find("\r\n\r\n");
  size_t sep = 4;
  if (end == std::string::npos) {
    end = r->out.find("\n\n");
    sep = 2;
  }
  if (end == std::string::npos) return TestHttpServer::Response(502, "Bad Gateway", r->out);
  int status = 200;
  std::string reason = "OK";
  std::vector<std::string> headers;
  for (std::string line : core::Split(r->out.substr(0, end), '\n')) {
    if (line.ends_with('\r')) line.pop_back();
    std::string lower = core::ToLower(line);
    if (lower.starts_with("status:")) {
      status = std::stoi(line.substr(8));
      reason = line.substr(12);
    } else if (!lower.starts_with("content-length:") && !line.empty()) {
      headers.push_back(line);
    }
  }
  return TestHttpServer::Response(status, reason, r->out.substr(end + sep), headers);
}

class CliBuildFetchTest : public testing::BuildTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildTest::SetUp());
    srv_ = tmp_.Sub("srv");
    ASSERT_TRUE(core::MkdirAll(srv_).ok());
    server_.Start("127.0.0.1", [this](const HttpRequest& req) { return Serve(req); });
  }

  std::string Serve(const HttpRequest& req) {
    if (req.target.starts_with("/git/")) return GitBackend(srv_, req, "/git");
    std::lock_guard<std::mutex> l(mu_);
    if (req.target != "/files/hello.txt")
      return TestHttpServer::Response(404, "Not Found", "no such file\n");
    auto inm = req.headers.find("if-none-match");
    if (inm != req.headers.end() && inm->second == etag_) {
      return TestHttpServer::Response(304, "Not Modified", "", {"ETag: " + etag_});
    }
    return TestHttpServer::Response(
        200, "OK", body_, {"ETag: " + etag_, std::string("Last-Modified: ") + kLastModified});
  }

  void SetFile(const std::string& body, const std::string& etag) {
    std::lock_guard<std::mutex> l(mu_);
    body_ = body;
    etag_ = etag;
  }

  std::string Url(const std::string& path) { return "http://" + server_.host() + path; }

  // git in `dir` with fixed identities and commit dates, so commit times are known.
  ToolOut Git(const std::string& dir, std::vector<std::string> args, int64_t when = kCommit1Time) {
    std::vector<std::string> argv = {"git", "-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"};
    argv.insert(argv.end(), args.begin(), args.end());
    core::RunOptions o;
    std::string date = "@" + std::to_string(when) + " +0000";
    o.extra_env = {{"GIT_AUTHOR_DATE", date}, {"GIT_COMMITTER_DATE", date}};
    ToolOut out = RunTool(argv, o);
    EXPECT_EQ(out.code, 0) << out.err;
    return out;
  }

  // srv/repo.git (a work tree, served as http://HOST/git/repo.git): commit 1 tagged v1 (and an
  // annotated tag v1a), commit 2 on main. sub/ holds a Dockerfile for the git-context tests;
  // `escape` is a symlink to /etc.
  void MakeRepo() {
    repo_ = srv_ + "/repo.git";
    ASSERT_TRUE(core::MkdirAll(repo_).ok());
    Git(repo_, {"init", "-q", "-b", "main"});
    WriteTestFile(repo_, "README", "readme v1\n");
    WriteTestFile(repo_, "sub/a.txt", "a v1\n");
    WriteTestFile(repo_, "sub/run.sh", "#!/bin/sh\necho run\n", 0755);
    WriteTestFile(repo_, "sub/Dockerfile",
                  "FROM base:1\nCOPY a.txt /a.txt\nCMD [\"sh\", \"-c\", \"cat /a.txt\"]\n");
    std::filesystem::create_symlink("/etc", repo_ + "/escape");
    Git(repo_, {"add", "-A"});
    Git(repo_, {"commit", "-q", "-m", "one"});
    commit1_ = core::Trim(Git(repo_, {"rev-parse", "HEAD"}).out);
    Git(repo_, {"tag", "v1"});
    Git(repo_, {"tag", "-a", "-m", "annotated", "v1a"});
    WriteTestFile(repo_, "sub/a.txt", "a v2\n");
    Git(repo_, {"commit", "-q", "-am", "two"}, kCommit2Time);
    commit2_ = core::Trim(Git(repo_, {"rev-parse", "HEAD"}).out);
  }

  std::string RepoUrl(const std::string& fragment) {
    return Url("/git/repo.git") + (fragment.empty() ? "" : "#" + fragment);
  }

  // Runs `sh -c script` in the image and returns its stdout.
  std::string InImage(const std::string& image, const std::string& script) {
    ToolOut o = Xb({"run", "--rm", image, "sh", "-c", script});
    EXPECT_EQ(o.code, 0) << o.err;
    return o.out;
  }

  size_t Contexts() {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(root_ + "/contexts", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++n;
    }
    return n;
  }

  TestHttpServer server_;
  std::string srv_, repo_, commit1_, commit2_;
  std::mutex mu_;
  std::string body_ = "hello v1\n";  // guarded by mu_
  std::string etag_ = "\"v1\"";      // guarded by mu_
};

TEST_F(CliBuildFetchTest, AddUrlDownloadsAFileKeyedByItsContent) {
  std::string add = "ADD " + Url("/files/hello.txt") + " /data/";
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n" + add + "\nADD " + Url("/files/hello.txt") + " /renamed\n");
  ToolOut a = Xb({"build", "--progress=plain", "-t", "url:1", ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  // BuildKit's http source: mode 0600, owner root, mtime from Last-Modified.
  EXPECT_EQ(InImage("url:1", "stat -c '%a %u %Y' /data/hello.txt /renamed && cat /data/hello.txt"),
            "600 0 " + std::to_string(kLastModifiedEpoch) + "\n600 0 " +
                std::to_string(kLastModifiedEpoch) + "\nhello v1\n");

  // Same content: asked again (with the remembered ETag), the step is cached.
  ToolOut b = Xb({"build", "--progress=plain", "-t", "url:2", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_TRUE(StepCached(b.err, add)) << b.err;
  bool conditional = false;
  for (const auto& r : server_.requests()) {
    auto it = r.headers.find("if-none-match");
    conditional |= it != r.headers.end() && it->second == "\"v1\"";
  }
  EXPECT_TRUE(conditional) << "the second build asks with If-None-Match";

  // Changed content: the ADD runs again and the image has the new file.
  SetFile("hello v2\n", "\"v2\"");
  ToolOut c = Xb({"build", "--progress=plain", "-t", "url:3", ctx_});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_TRUE(StepRan(c.err, add)) << c.err;
  EXPECT_EQ(InImage("url:3", "cat /data/hello.txt"), "hello v2\n");
  EXPECT_EQ(Contexts(), 0u) << "downloads are removed when the build ends";
}

TEST_F(CliBuildFetchTest, AddUrlChecksumAndHttpErrors) {
  std::string good = core::Digest::Of("hello v1\n").String();
  std::string bad = core::Digest::Of("something else").String();
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\nADD --checksum=" + good + " " + Url("/files/hello.txt") + " /ok\n");
  ToolOut ok = Xb({"build", "-t", "sum:1", ctx_});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(InImage("sum:1", "cat /ok"), "hello v1\n");

  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\nADD --checksum=" + bad + " " + Url("/files/hello.txt") + " /ok\n");
  ToolOut mismatch = Xb({"build", "-t", "sum:2", ctx_});
  EXPECT_NE(mismatch.code, 0);
  EXPECT_NE(mismatch.err.find(Url("/files/hello.txt") + ": checksum mismatch: expected " + bad +
                              ", got " + good),
            std::string::npos)
      << mismatch.err;

  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\nADD --checksum=md5:abc " + Url("/files/hello.txt") + " /ok\n");
  ToolOut malformed = Xb({"build", ctx_});
  EXPECT_NE(malformed.code, 0);
  EXPECT_NE(malformed.err.find("Dockerfile:2"), std::string::npos) << malformed.err;

  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nADD " + Url("/files/missing.txt") + " /m\n");
  ToolOut missing = Xb({"build", ctx_});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("GET " + Url("/files/missing.txt") + ": HTTP 404"), std::string::npos)
      << missing.err;

  // COPY never fetches; --checksum needs a URL.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nCOPY " + Url("/files/hello.txt") + " /c\n");
  ToolOut copy = Xb({"build", ctx_});
  EXPECT_NE(copy.code, 0);
  EXPECT_NE(copy.err.find("source can't be a URL for COPY"), std::string::npos) << copy.err;
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nADD --checksum=" + good + " Dockerfile /c\n");
  ToolOut local = Xb({"build", ctx_});
  EXPECT_NE(local.code, 0);
  EXPECT_NE(local.err.find("checksum can't be specified for non-HTTP(S) sources"),
            std::string::npos)
      << local.err;
}

TEST_F(CliBuildFetchTest, AddGitAtATagAndABranchSubdir) {
  ASSERT_NO_FATAL_FAILURE(MakeRepo());
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "ADD " +
                    RepoUrl("v1") +
                    " /tag/\n"
                    "ADD " +
                    RepoUrl("main:sub") +
                    " /sub\n"
                    "ADD --keep-git-dir " +
                    RepoUrl("v1a") + " /kept/\n");
  ToolOut a = Xb({"build", "--progress=plain", "-t", "git:1", ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  // The tag's tree, without .git; every mtime is the commit's.
  EXPECT_EQ(InImage("git:1", "cat /tag/README /tag/sub/a.txt; ls -a /tag | tr '\\n' ' '"),
            "readme v1\na v1\n. .. README escape sub ");
  EXPECT_EQ(
      InImage("git:1", "stat -c '%Y %u' /tag/README /tag/sub/a.txt; stat -c %a /tag/sub/run.sh"),
      std::to_string(kCommit1Time) + " 0\n" + std::to_string(kCommit1Time) + " 0\n755\n");
  // The branch's subdir as /sub.
  EXPECT_EQ(InImage("git:1", "cat /sub/a.txt; ls -a /sub | tr '\\n' ' '; stat -c %Y /sub/a.txt"),
            "a v2\n. .. Dockerfile a.txt run.sh " + std::to_string(kCommit2Time) + "\n");
  // --keep-git-dir: a repository at the (annotated) tag's commit.
  EXPECT_EQ(InImage("git:1", "cat /kept/.git/HEAD"), commit1_ + "\n");

  // Unchanged: cached. A new commit on main reruns only the branch's ADD.
  ToolOut b = Xb({"build", "--progress=plain", "-t", "git:2", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_TRUE(StepCached(b.err, "ADD " + RepoUrl("main:sub") + " /sub")) << b.err;
  WriteTestFile(repo_, "sub/a.txt", "a v3\n");
  Git(repo_, {"commit", "-q", "-am", "three"}, kCommit2Time + 1);
  ToolOut c = Xb({"build", "--progress=plain", "-t", "git:3", ctx_});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_TRUE(StepCached(c.err, "ADD " + RepoUrl("v1") + " /tag/")) << c.err;
  EXPECT_TRUE(StepRan(c.err, "ADD " + RepoUrl("main:sub") + " /sub")) << c.err;
  EXPECT_EQ(InImage("git:3", "cat /sub/a.txt"), "a v3\n");
  EXPECT_EQ(Contexts(), 0u) << "clones are removed when the build ends";
}

TEST_F(CliBuildFetchTest, AddGitChecksumIsACommitPrefix) {
  ASSERT_NO_FATAL_FAILURE(MakeRepo());
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\nADD --checksum=" + commit1_.substr(0, 12) + " " + RepoUrl("v1a") +
                    " /a/\nADD --checksum=" + commit2_ + " " + RepoUrl("main") + " /b/\n");
  ToolOut ok = Xb({"build", "-t", "gsum:1", ctx_});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(InImage("gsum:1", "cat /a/sub/a.txt /b/sub/a.txt"), "a v1\na v2\n");

  WriteTestFile(
      ctx_, "Dockerfile",
      "FROM base:1\nADD --checksum=" + commit2_.substr(0, 10) + " " + RepoUrl("v1") + " /a/\n");
  ToolOut bad = Xb({"build", ctx_});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("checksum mismatch: expected commit " + commit2_.substr(0, 10) + ", got " +
                         commit1_),
            std::string::npos)
      << bad.err;
}

TEST_F(CliBuildFetchTest, GitSubdirsCannotLeaveTheRepository) {
  ASSERT_NO_FATAL_FAILURE(MakeRepo());
  size_t before = server_.requests().size();
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nADD " + RepoUrl("v1:../../etc") + " /x/\n");
  ToolOut up = Xb({"build", ctx_});
  EXPECT_NE(up.code, 0);
  EXPECT_NE(up.err.find("climbs out of the repository"), std::string::npos) << up.err;
  EXPECT_EQ(server_.requests().size(), before) << "refused before anything is fetched";

  // `escape` is a symlink to /etc in the repository: resolved inside the checkout, where there
  // is no etc/, so the host's /etc is never read.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nADD " + RepoUrl("v1:escape") + " /x/\n");
  ToolOut link = Xb({"build", "-t", "esc:1", ctx_});
  EXPECT_NE(link.code, 0);
  EXPECT_NE(link.err.find("no directory \"escape\""), std::string::npos) << link.err;
  EXPECT_NE(Xb({"inspect", "esc:1"}).code, 0) << "no image was made";

  // A file:// repository is this machine's, outside the context: ADD refuses it.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nADD file://" + repo_ + "#v1 /x/\n");
  ToolOut local = Xb({"build", ctx_});
  EXPECT_NE(local.code, 0);
  EXPECT_NE(local.err.find("ADD does not read file:// repositories"), std::string::npos)
      << local.err;
  EXPECT_EQ(Contexts(), 0u);
}

TEST_F(CliBuildFetchTest, AGitRepositoryIsAContext) {
  ASSERT_NO_FATAL_FAILURE(MakeRepo());
  ToolOut a = Xb({"build", "-t", "gctx:1", "file://" + repo_ + "#v1:sub"});
  ASSERT_EQ(a.code, 0) << a.err;
  ToolOut run = Xb({"run", "--rm", "gctx:1"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "a v1\n");

  // A local path ending in .git, at a branch; and over HTTP.
  ToolOut b = Xb({"build", "-t", "gctx:2", repo_ + "#main:sub"});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(Xb({"run", "--rm", "gctx:2"}).out, "a v2\n");
  ToolOut c = Xb({"build", "-t", "gctx:3", RepoUrl("v1:sub")});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(Xb({"run", "--rm", "gctx:3"}).out, "a v1\n");

  ToolOut up = Xb({"build", "file://" + repo_ + "#v1:../.."});
  EXPECT_NE(up.code, 0);
  EXPECT_NE(up.err.find("climbs out of the repository"), std::string::npos) << up.err;
  ToolOut nodf = Xb({"build", "file://" + repo_ + "#v1"});
  EXPECT_NE(nodf.code, 0);
  EXPECT_NE(nodf.err.find("has no Dockerfile"), std::string::npos) << nodf.err;
  EXPECT_EQ(Contexts(), 0u) << "checkouts are removed when the build ends";
}

TEST_F(CliBuildFetchTest, ExampleBuildsOffline) {
  ASSERT_NO_FATAL_FAILURE(MakeRepo());
  std::string dir = std::string(XBUILD_SOURCE_DIR) + "/examples/Dockerfiles/add-url-git";
  ToolOut b =
      Xb({"build", "-t", "example:1", "--build-arg", "BASE=base:1", "--build-arg",
          "FILE_URL=" + Url("/files/hello.txt"), "--build-arg", "REPO=" + RepoUrl("v1:sub"), dir});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(
      InImage("example:1", "stat -c %a /fetched/hello.txt; cat /fetched/hello.txt /src/a.txt"),
      "644\nhello v1\na v1\n");
}

}  // namespace
}  // namespace xbuild
