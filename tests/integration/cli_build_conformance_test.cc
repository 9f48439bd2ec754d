// Issue 16: where xbuild differed from BuildKit's own Dockerfile tests and Docker's build flags,
// each built as a user would (the binary, real runc) and checked in the exported filesystem
// (`-o type=local`) or the image's config (its blob in the content store). Expected values are
// BuildKit's (frontend/dockerfile/*_test.go) where it has a test.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "image/manifest.h"
#include "integration/build_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

namespace fs = std::filesystem;
using testing::ReadTestFile;
using testing::RunTool;
using testing::ToolOut;
using testing::WriteTestFile;

class CliBuildConformanceTest : public testing::BuildTest {
 protected:
  // Builds ctx_ with `args` into a fresh directory (-o type=local) and returns its path.
  std::string BuildTo(const std::vector<std::string>& args, ToolOut* out = nullptr) {
    std::string dest = tmp_.Sub("out" + std::to_string(++outputs_));
    std::vector<std::string> argv = {"build", "--progress=plain", "-o", "type=local,dest=" + dest};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(ctx_);
    ToolOut b = Xb(argv);
    EXPECT_EQ(b.code, 0) << b.err;
    if (out) *out = b;
    return dest;
  }

  // The config of image `name` (its ID is its config's digest) as stored.
  core::Json Config(const std::string& name) {
    ToolOut o = Xb({"inspect", "-f", "{{.Id}}", name});
    EXPECT_EQ(o.code, 0) << o.err;
    std::string id = core::Trim(o.out);
    if (id.starts_with("sha256:")) id = id.substr(7);
    auto text = core::ReadFile(root_ + "/content/blobs/sha256/" + id);
    EXPECT_TRUE(text.ok()) << id;
    return core::Json::parse(text.ok() ? *text : "{}", nullptr, false);
  }

  std::vector<std::string> History(const std::string& name) {
    std::vector<std::string> out;
    core::Json config = Config(name);
    for (const auto& h : config["history"]) out.push_back(h.value("created_by", ""));
    return out;
  }

  int outputs_ = 0;
};

// 1. Several wildcard matches and no trailing slash make the destination a directory (each tar
// extracted into it); a wildcard matching nothing beside a source that matches is skipped; a
// COPY none of whose sources matches fails (BuildKit: testAddArchiveWildcard, testEmptyWildcard).
TEST_F(CliBuildConformanceTest, WildcardSources) {
  WriteTestFile(ctx_, "dir1/f1", "one");
  WriteTestFile(ctx_, "dir2/f2", "two");
  WriteTestFile(ctx_, "foo", "contents0");
  std::string src = tmp_.Sub("tars");
  WriteTestFile(src, "foo", "content0");
  WriteTestFile(src, "bar", "content1");
  ASSERT_EQ(RunTool({"tar", "-cf", ctx_ + "/t.tar", "-C", src, "foo"}).code, 0);
  ASSERT_EQ(RunTool({"tar", "-cf", ctx_ + "/b.tar", "-C", src, "bar"}).code, 0);
  WriteTestFile(ctx_, "Dockerfile",
                "FROM scratch\n"
                "COPY dir* /5\n"
                "ADD *.tar /dest\n"
                "COPY foo nomatch* /\n");
  std::string out = BuildTo({});
  EXPECT_EQ(ReadTestFile(out + "/5/f1"), "one");
  EXPECT_EQ(ReadTestFile(out + "/5/f2"), "two");
  EXPECT_EQ(ReadTestFile(out + "/dest/foo"), "content0");
  EXPECT_EQ(ReadTestFile(out + "/dest/bar"), "content1");
  EXPECT_EQ(ReadTestFile(out + "/foo"), "contents0");
  EXPECT_FALSE(fs::exists(out + "/nomatch*"));

  WriteTestFile(ctx_, "Dockerfile", "FROM scratch\nCOPY nomatch* none* /\n");
  ToolOut b = Xb({"build", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("no source files were specified"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("Dockerfile:2"), std::string::npos) << b.err;
}

// 2. COPY --link to a destination that expands to nothing lands in the working directory.
TEST_F(CliBuildConformanceTest, LinkedCopyToAnEmptyDestinationUsesTheWorkdir) {
  WriteTestFile(ctx_, "testfile", "linked");
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "WORKDIR /var/www\n"
                "ARG empty\n"
                "COPY --link testfile $empty\n"
                "COPY testfile ${empty}\n"
                "RUN test -f /var/www/testfile\n");
  std::string out = BuildTo({});
  EXPECT_TRUE(fs::is_directory(out + "/var/www"));
  EXPECT_EQ(ReadTestFile(out + "/var/www/testfile"), "linked");
}

// 3. Heredocs (BuildKit: testHeredocVarSubstitution, testCopyHeredocSpecialSymbols,
// testRunShebangHeredoc, testOnBuildHeredoc).
TEST_F(CliBuildConformanceTest, HeredocsExpandAsBuildKit) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "ARG name=world\n"
                "COPY <<EOF /dest/c1\nHello ${name}!\nEOF\n"
                "COPY <<'EOF' /dest/c2\nHello ${name}!\nEOF\n"
                "COPY <<\"EOF\" /dest/c3\nHello ${name}!\nEOF\n"
                "COPY <<EOF /dest/q1\nHello '${name}'!\nEOF\n"
                "COPY <<EOF /dest/q2\nHello \"${name}\"!\nEOF\n"
                "COPY <<'EOF' /dest/qsingle\nHello '${name}'!\nEOF\n"
                "COPY <<EOF /dest/quotefile\n\"quotes in file\"\nEOF\n"
                "COPY <<EOF /dest/slash1\n\\\nEOF\n"
                "COPY <<EOF /dest/slash2\n\\\\\nEOF\n"
                "COPY <<EOF /dest/slash3\n\\$\nEOF\n"
                "COPY <<\"EOF\" /dest/raw1\n\\\nEOF\n"
                "COPY <<\"EOF\" /dest/raw3\n\\$\nEOF\n"
                "RUN ln -s busybox /bin/awk\n"
                "RUN <<EOF\n#!/bin/awk -f\nBEGIN {\n  print \"hello\" >> \"/dest/awk\"\n  print \"world\" >> \"/dest/awk\"\n}\nEOF\n"
                "RUN <<EOF\ngreeting=\"Hello\"\necho \"${greeting} ${name}!\" > /dest/r1\nEOF\n");
  std::string out = BuildTo({});
  EXPECT_EQ(ReadTestFile(out + "/dest/c1"), "Hello world!\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/c2"), "Hello ${name}!\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/c3"), "Hello ${name}!\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/q1"), "Hello 'world'!\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/q2"), "Hello \"world\"!\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/qsingle"), "Hello '${name}'!\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/quotefile"), "\"quotes in file\"\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/slash1"), "\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/slash2"), "\\\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/slash3"), "$\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/raw1"), "\\\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/raw3"), "\\$\n");
  EXPECT_EQ(ReadTestFile(out + "/dest/awk"), "hello\nworld\n") << "a #! heredoc runs with its interpreter";
  EXPECT_EQ(ReadTestFile(out + "/dest/r1"), "Hello world!\n");
  EXPECT_FALSE(fs::exists(out + "/dev/pipes")) << "the script's mount point does not reach the image";
}

TEST_F(CliBuildConformanceTest, OnbuildTriggerWithAHeredoc) {
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nONBUILD RUN <<EOF\necho \"hello world\" >> /dest\nEOF\n");
  ToolOut parent = Xb({"build", "-q", "-t", "onbuild-parent:1", ctx_});
  ASSERT_EQ(parent.code, 0) << parent.err;
  WriteTestFile(ctx_, "Dockerfile", "FROM onbuild-parent:1 AS base\nFROM scratch\nCOPY --from=base /dest /dest\n");
  std::string out = BuildTo({});
  EXPECT_EQ(ReadTestFile(out + "/dest"), "hello world\n");
}

// 4. The args BuildKit defines: proxies (both spellings, outside config and history), the
// sandbox hostname, TARGETSTAGE, the platform args.
TEST_F(CliBuildConformanceTest, PredefinedArgs) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1 AS final\n"
                "ARG TARGETSTAGE\n"
                "RUN mkdir /out && env | grep -i _proxy= | sort > /out/proxy\n"
                "RUN hostname > /out/host && echo \"$HOSTNAME\" >> /out/host && grep -c sandboxname /etc/hosts >> /out/host\n"
                "RUN echo \"$TARGETSTAGE\" > /out/stage\n");
  ToolOut b;
  std::string out = BuildTo({"-t", "args:1", "--build-arg", "HTTP_PROXY=http://proxy.example:3128",
                             "--build-arg", "no_proxy=internal.example", "--build-arg",
                             "BUILDKIT_SANDBOX_HOSTNAME=sandboxname"},
                            &b);
  EXPECT_EQ(ReadTestFile(out + "/out/proxy"),
            "HTTP_PROXY=http://proxy.example:3128\nNO_PROXY=internal.example\n"
            "http_proxy=http://proxy.example:3128\nno_proxy=internal.example\n");
  EXPECT_EQ(ReadTestFile(out + "/out/host"), "sandboxname\nsandboxname\n1\n");
  EXPECT_EQ(ReadTestFile(out + "/out/stage"), "final\n");
  EXPECT_EQ(b.err.find("HTTP_PROXY"), std::string::npos) << "not an unused build arg either: " << b.err;
  std::string config = Config("args:1").dump();
  EXPECT_EQ(config.find("proxy.example"), std::string::npos) << config;
  EXPECT_EQ(config.find("internal.example"), std::string::npos) << config;
}

TEST_F(CliBuildConformanceTest, AnotherPlatformWithoutRunSteps) {
  WriteTestFile(ctx_, "f", "file");
  WriteTestFile(ctx_, "Dockerfile",
                "FROM scratch\n"
                "ARG TARGETPLATFORM\nARG TARGETARCH\nARG BUILDARCH\n"
                "COPY f /f-$TARGETARCH-from-$BUILDARCH\n"
                "LABEL platform=$TARGETPLATFORM\n");
  ToolOut b = Xb({"build", "--platform", "linux/arm64", "-t", "arm:1", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  core::Json c = Config("arm:1");
  EXPECT_EQ(c.value("architecture", ""), "arm64");
  EXPECT_EQ(c.value("os", ""), "linux");
  EXPECT_EQ(c["config"]["Labels"].value("platform", ""), "linux/arm64");
  std::string out = BuildTo({"--platform", "linux/arm64"});
  EXPECT_TRUE(fs::exists(out + "/f-arm64-from-" + image::HostPlatform().architecture))
      << "TARGETARCH follows --platform, BUILDARCH stays the machine's";

  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN true\n");
  b = Xb({"build", "--platform", "linux/arm64", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("a RUN step for linux/arm64 cannot run on this"), std::string::npos) << b.err;
}

// 5. --mount details (BuildKit: testMountFromError, testMountTmpfsSize).
TEST_F(CliBuildConformanceTest, MountFromVariableAndTmpfsSize) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\nENV ttt=test\nRUN --mount=from=$ttt,type=cache,target=/tmp ls\n");
  ToolOut b = Xb({"build", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("'from' doesn't support variable expansion, define alias stage instead"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("Dockerfile:3"), std::string::npos) << b.err;

  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN --mount=type=tmpfs,target=/dev/shm,size=128m mount | grep /dev/shm > /tmpfssize\n");
  std::string out = BuildTo({});
  EXPECT_NE(ReadTestFile(out + "/tmpfssize").find("size=131072k"), std::string::npos) << ReadTestFile(out + "/tmpfssize");
}

// 6. Supplementary groups as containerd resolves them.
TEST_F(CliBuildConformanceTest, RunUsersAndGroups) {
  WriteTestFile(ctx_, "group", "root:x:0:\nwheel:x:10:root\n");
  WriteTestFile(ctx_, "passwd", "root:x:0:0:root:/root:/bin/sh\n");
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "COPY group passwd /etc/\n"
                "RUN mkdir -m 777 /out && id > /out/root\n"
                "USER 1234\nRUN id > /out/1234\n"
                "USER 1234:1234\nRUN id > /out/1234-1234\n");
  std::string out = BuildTo({});
  EXPECT_EQ(ReadTestFile(out + "/out/root"), "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n");
  EXPECT_EQ(ReadTestFile(out + "/out/1234"), "uid=1234 gid=0(root) groups=0(root)\n");
  EXPECT_EQ(ReadTestFile(out + "/out/1234-1234"), "uid=1234 gid=1234 groups=1234\n");
}

// 7. The image config and history (BuildKit: testExportedHistoryFlattenArgs, emptyImage).
TEST_F(CliBuildConformanceTest, ConfigAndHistoryAsBuildKitWritesThem) {
  WriteTestFile(ctx_, "Dockerfile", "FROM scratch\nLABEL a=b\n");
  ASSERT_EQ(Xb({"build", "-t", "scratch:1", ctx_}).code, 0);
  EXPECT_EQ(Config("scratch:1")["config"].value("WorkingDir", ""), "/");

  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "ARG foo=bar\nARG bar=123\nARG foo=bar2\n"
                "RUN [\"/bin/busybox\", \"true\"]\n"
                "RUN true\n");
  ToolOut b = Xb({"build", "-t", "hist:1", "--build-arg", "bar=456", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  std::vector<std::string> h = History("hist:1");
  ASSERT_GE(h.size(), 5u);
  EXPECT_EQ(h[h.size() - 5], "ARG foo=bar");
  EXPECT_EQ(h[h.size() - 4], "ARG bar=123") << "the declared default, not the --build-arg";
  EXPECT_EQ(h[h.size() - 2], "RUN |2 foo=bar2 bar=456 /bin/busybox true # buildkit");
  EXPECT_EQ(h[h.size() - 1], "RUN |2 foo=bar2 bar=456 /bin/sh -c true # buildkit");
}

// 8. A lowercase dockerfile is used when there is no Dockerfile.
TEST_F(CliBuildConformanceTest, LowercaseDockerfile) {
  WriteTestFile(ctx_, "dockerfile", "FROM scratch\nCOPY <<EOF /lower\nfound\nEOF\n");
  std::string out = BuildTo({});
  EXPECT_EQ(ReadTestFile(out + "/lower"), "found\n");
}

// 9. docker build / buildx build flags.
TEST_F(CliBuildConformanceTest, DockerBuildFlags) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN mkdir /out && grep myhost /etc/hosts > /out/hosts && ulimit -n > /out/nofile && "
                "df -k /dev/shm | tail -n 1 | tr -s ' ' | cut -d' ' -f2 > /out/shm && "
                "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ' > /out/net\n");
  // The flags docker accepts and ignores with BuildKit come along; `buildx build` is `build`.
  ToolOut b = Xb({"buildx", "build", "--progress=plain", "-o", "type=local,dest=" + tmp_.Sub("flags"),
                  "--network", "none", "--add-host", "myhost:10.1.2.3", "--ulimit", "nofile=1000:2000",
                  "--shm-size", "32m", "--rm", "--force-rm", "--compress", "--isolation", "default", "-m", "1g",
                  "--memory-swap", "2g", "--cpu-shares", "512", "--cpuset-cpus", "0", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  std::string out = tmp_.Sub("flags");
  EXPECT_EQ(ReadTestFile(out + "/out/hosts"), "10.1.2.3\tmyhost\n");
  EXPECT_EQ(ReadTestFile(out + "/out/nofile"), "1000\n");
  EXPECT_EQ(ReadTestFile(out + "/out/shm"), "32768\n");
  EXPECT_EQ(ReadTestFile(out + "/out/net"), "lo ");

  ToolOut bad = Xb({"build", "--network", "bridge", ctx_});
  EXPECT_EQ(bad.code, 125) << bad.err;
  bad = Xb({"build", "--ulimit", "nofiles=1", ctx_});
  EXPECT_EQ(bad.code, 125) << bad.err;
  EXPECT_NE(bad.err.find("nofiles=1"), std::string::npos) << bad.err;
}

TEST_F(CliBuildConformanceTest, NamedBuildContextsAndAnnotations) {
  std::string extra = tmp_.Sub("extra");
  WriteTestFile(extra, "data", "from the named context");
  std::string repo = tmp_.Sub("repo");
  WriteTestFile(repo, "g.txt", "from git\n");
  for (std::vector<std::string> git : {std::vector<std::string>{"git", "init", "-q", repo},
                                       {"git", "-C", repo, "add", "g.txt"},
                                       {"git", "-C", repo, "-c", "user.email=t@example.com", "-c", "user.name=t",
                                        "commit", "-qm", "one"}}) {
    ASSERT_EQ(RunTool(git).code, 0) << git[1];
  }
  WriteTestFile(ctx_, "Dockerfile",
                "FROM alpine AS tools\n"  // replaced by docker-image://base:1
                "FROM scratch\n"
                "COPY --from=extra data /data\n"
                "COPY --from=tools /etc/hello /hello\n"
                "COPY --from=repo g.txt /g.txt\n");
  std::string meta = tmp_.Sub("meta.json");
  ToolOut b;
  std::string out = BuildTo({"--build-context", "extra=" + extra, "--build-context", "alpine=docker-image://base:1",
                             "--build-context", "repo=file://" + repo,
                             "-t", "named:1", "--annotation", "org.example.note=annotated", "--metadata-file", meta},
                            &b);
  EXPECT_EQ(ReadTestFile(out + "/data"), "from the named context");
  EXPECT_EQ(ReadTestFile(out + "/hello"), "hello from xbuild\n");
  EXPECT_EQ(ReadTestFile(out + "/g.txt"), "from git\n");
  auto m = core::Json::parse(ReadTestFile(meta), nullptr, false);
  std::string digest = m.value("containerimage.digest", "");
  ASSERT_TRUE(digest.starts_with("sha256:")) << ReadTestFile(meta);
  auto manifest = core::Json::parse(ReadTestFile(root_ + "/content/blobs/sha256/" + digest.substr(7)), nullptr, false);
  EXPECT_EQ(manifest["annotations"].value("org.example.note", ""), "annotated") << manifest.dump();

  ToolOut bad = Xb({"build", "--build-context", "extra=" + tmp_.Sub("missing"), ctx_});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("not a directory"), std::string::npos) << bad.err;
}

// 10. RUN networking as under Docker: a namespace of its own with a way out (tap0 and a default
// route), the host's loopback out of reach; the host's network only when asked for (and, for
// RUN --network=host, allowed).
TEST_F(CliBuildConformanceTest, RunStepsGetANetworkOfTheirOwn) {
  // A TCP listener on the host's loopback: a default step must not reach it.
  core::UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = testing::FreePort();
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  std::string probe = "if nc -w 2 127.0.0.1 " + std::to_string(port) +
                      " -e /bin/busybox true; then echo reached; else echo unreachable; fi";
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN mkdir /out && tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ' > /out/ifaces && "
                "ip route | grep -c '^default' > /out/route && (" + probe + ") > /out/loopback\n");
  std::string out = BuildTo({});
  EXPECT_EQ(ReadTestFile(out + "/out/ifaces"), "lo tap0 ");
  EXPECT_EQ(ReadTestFile(out + "/out/route"), "1\n");
  EXPECT_EQ(ReadTestFile(out + "/out/loopback"), "unreachable\n");
  out = BuildTo({"--network", "host", "--no-cache"});
  EXPECT_EQ(ReadTestFile(out + "/out/loopback"), "reached\n");
  EXPECT_FALSE(fs::exists(root_ + "/build-netns") && !fs::is_empty(root_ + "/build-netns"))
      << "a build's namespaces go with it";

  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --network=host true\n");
  ToolOut b = Xb({"build", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("--allow network.host"), std::string::npos) << b.err;
  b = Xb({"build", "--allow", "network.host", ctx_});
  EXPECT_EQ(b.code, 0) << b.err;
}

// 11. No library chatter on stderr (TBB's worker-limit warning came with several sources on a
// small machine); a failed step's error is printed once by -q.
TEST_F(CliBuildConformanceTest, NoLibraryChatter) {
  std::string df = "FROM base:1\n";
  for (int i = 0; i < 6; ++i) {
    WriteTestFile(ctx_, "f" + std::to_string(i), std::to_string(i));
    df += "COPY f" + std::to_string(i) + " /\n";
  }
  WriteTestFile(ctx_, "Dockerfile", df + "RUN exit 3\n");
  for (const char* q : {"-q", "--progress=plain"}) {
    ToolOut b = Xb({"build", q, ctx_});
    EXPECT_NE(b.code, 0);
    EXPECT_EQ(b.err.find("TBB"), std::string::npos) << b.err;
    if (std::string(q) == "-q") {
      std::string msg = "did not complete successfully: exit code: 3";
      size_t first = b.err.find(msg);
      ASSERT_NE(first, std::string::npos) << b.err;
      EXPECT_EQ(b.err.find(msg, first + 1), std::string::npos) << "printed once: " << b.err;
    }
  }
}

}  // namespace
}  // namespace xbuild
