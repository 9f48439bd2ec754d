// RUN --mount end to end (as root, real runc): cache mounts kept across builds, shared by
// concurrent builds and serialised with sharing=locked; binds from a stage (rw writes
// discarded) and from the context (read-only); tmpfs; secrets as files and env, never in a
// layer, the config, the history or the cache key; an ssh agent socket. Escapes: a cache
// source= that an earlier step made a symlink to a host dir (CVE-2024-23651's shape), and a
// mount target under a symlink to a host dir (CVE-2024-23652's shape).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <regex>

#include "core/json.h"
#include "integration/build_fixture.h"

namespace xbuild {
namespace {

using testing::ToolOut;
using testing::WriteTestFile;

class CliBuildMountTest : public testing::BuildTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildTest::SetUp());
    host_ = tmp_.Sub("host");
    WriteTestFile(host_, "keep", "host file\n");
  }

  // Lines of the steps' output in a plain log ("#N 0.123 text" -> "text").
  static std::vector<std::string> Output(const std::string& log) {
    std::vector<std::string> out;
    std::regex line(R"(^#\d+ \d+\.\d+ (.*)$)");
    std::smatch m;
    size_t start = 0;
    for (size_t nl; (nl = log.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string l = log.substr(start, nl - start);
      if (std::regex_match(l, m, line)) out.push_back(m[1]);
    }
    return out;
  }

  static bool Has(const std::vector<std::string>& lines, const std::string& s) {
    return std::find(lines.begin(), lines.end(), s) != lines.end();
  }

  std::string host_;
};

TEST_F(CliBuildMountTest, CacheMountPersistsAcrossAndBetweenConcurrentBuilds) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "ARG MARK\n"
                "RUN --mount=type=cache,id=pkgs,target=/cache echo $MARK >> /cache/log && sort /cache/log | tr '\\n' ' '\n");
  ToolOut a = Xb({"build", "--progress=plain", "--build-arg", "MARK=first", ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_TRUE(Has(Output(a.err), "first ")) << a.err;
  ToolOut b = Xb({"build", "--progress=plain", "--build-arg", "MARK=second", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_TRUE(Has(Output(b.err), "first second ")) << "the cache outlives the build: " << b.err;

  // Two builds at once on one cache (sharing=shared): both run and both writes stay.
  auto c = std::async(std::launch::async, [&] { return Xb({"build", "--progress=plain", "--build-arg", "MARK=x", ctx_}); });
  auto d = std::async(std::launch::async, [&] { return Xb({"build", "--progress=plain", "--build-arg", "MARK=y", ctx_}); });
  ToolOut oc = c.get(), od = d.get();
  ASSERT_EQ(oc.code, 0) << oc.err;
  ASSERT_EQ(od.code, 0) << od.err;
  ToolOut e = Xb({"build", "--progress=plain", "--build-arg", "MARK=z", ctx_});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(Has(Output(e.err), "first second x y z ")) << e.err;
  // The cache's files are in no layer.
  ToolOut ls = Xb({"run", "--rm", "base:1", "sh", "-c", "echo /*"});
  ASSERT_EQ(ls.code, 0) << ls.err;
  EXPECT_EQ(ls.out.find("cache"), std::string::npos) << ls.out;
}

TEST_F(CliBuildMountTest, LockedCacheRunsOneWriterAtATime) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "ARG MARK\n"
                "RUN --mount=type=cache,id=serial,target=/c,sharing=locked "
                "echo start-$MARK >> /c/log && sleep 1 && echo end-$MARK >> /c/log\n"
                "RUN --mount=type=cache,id=serial,target=/c,sharing=locked cat /c/log\n");
  auto a = std::async(std::launch::async, [&] { return Xb({"build", "--progress=plain", "--build-arg", "MARK=a", ctx_}); });
  auto b = std::async(std::launch::async, [&] { return Xb({"build", "--progress=plain", "--build-arg", "MARK=b", ctx_}); });
  ToolOut oa = a.get(), ob = b.get();
  ASSERT_EQ(oa.code, 0) << oa.err;
  ASSERT_EQ(ob.code, 0) << ob.err;
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --mount=type=cache,id=serial,target=/c,sharing=locked cat /c/log\n");
  ToolOut r = Xb({"build", "--progress=plain", "--no-cache", ctx_});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> log = Output(r.err);
  ASSERT_EQ(log.size(), 4u) << r.err;
  // Each writer's start is followed by its own end: the two never overlapped.
  EXPECT_EQ(log[0].substr(6), log[1].substr(4)) << r.err;
  EXPECT_EQ(log[2].substr(6), log[3].substr(4)) << r.err;
}

TEST_F(CliBuildMountTest, BindsFromAStageAndTheContextAndTmpfs) {
  WriteTestFile(ctx_, "ctx.txt", "from the context\n");
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1 AS tools\n"
                "RUN mkdir /data && echo from the stage > /data/x\n"
                "FROM base:1\n"
                "RUN --mount=type=bind,from=tools,source=/data,target=/m cat /m/x\n"
                "RUN --mount=type=bind,from=tools,source=/data,target=/m,rw echo scribbled > /m/x && cat /m/x\n"
                "RUN --mount=type=bind,from=tools,source=/data,target=/m cat /m/x\n"
                "RUN --mount=type=bind,target=/src cat /src/ctx.txt && ! touch /src/new 2>/dev/null && echo ro\n"
                "RUN --mount=type=tmpfs,target=/scratch,size=2097152 grep ' /scratch ' /proc/mounts | grep -q size=2048k "
                "&& echo big > /scratch/file && echo tmpfs ok\n"
                "RUN ls /scratch /m /src 2>&1 | wc -l\n");
  ToolOut b = Xb({"build", "--progress=plain", "-t", "mounts:1", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  std::vector<std::string> out = Output(b.err);
  std::vector<std::string> want = {"from the stage", "scribbled", "from the stage", "from the context", "ro", "tmpfs ok"};
  for (const auto& w : want) EXPECT_TRUE(Has(out, w)) << w << "\n" << b.err;
  // No mount point or tmpfs file is left in the image.
  ToolOut ls = Xb({"run", "--rm", "mounts:1", "sh", "-c", "for f in /*; do echo $f; done"});
  ASSERT_EQ(ls.code, 0) << ls.err;
  EXPECT_NE(ls.out.find("/bin\n"), std::string::npos) << ls.out;
  for (const char* gone : {"/scratch\n", "/m\n", "/src\n"}) EXPECT_EQ(ls.out.find(gone), std::string::npos) << ls.out;
  EXPECT_FALSE(std::filesystem::exists(ctx_ + "/new"));

  // A missing source is named.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --mount=type=bind,source=nope,target=/n true\n");
  b = Xb({"build", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("source nope"), std::string::npos) << b.err;
}

TEST_F(CliBuildMountTest, SecretsReachTheStepAndNothingElse) {
  const std::string value = "s3cr3t-" + std::to_string(::getpid()) + "-value";
  WriteTestFile(tmp_.path(), "token", value);
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN --mount=type=secret,id=token grep -q '^s3cr3t-' /run/secrets/token && wc -c < /run/secrets/token && "
                "stat -c '%a %u' /run/secrets/token && echo file ok > /result\n"
                "RUN --mount=type=secret,id=token,env=TOKEN,target=/s/tok test \"$TOKEN\" = \"$(cat /s/tok)\" && echo env ok\n"
                "RUN --mount=type=secret,id=absent ls /run/secrets 2>&1 | wc -l\n");
  std::string archive = tmp_.Sub("img.tar");
  ToolOut b = Xb({"build", "--progress=plain", "--secret", "id=token,src=" + tmp_.Sub("token"), "-t", "sec:1", "-o",
                  "type=docker,dest=" + archive, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  std::vector<std::string> out = Output(b.err);
  EXPECT_TRUE(Has(out, "400 0")) << b.err;
  EXPECT_TRUE(Has(out, std::to_string(value.size()))) << "the step read the whole secret: " << b.err;
  EXPECT_TRUE(Has(out, "env ok")) << b.err;
  EXPECT_EQ(b.err.find(value), std::string::npos) << "the log shows no secret";
  // Not in any layer, the config or the history: the whole docker archive (uncompressed
  // layers) does not hold the bytes, nor does inspect.
  std::string tar = testing::ReadTestFile(archive);
  ASSERT_FALSE(tar.empty());
  EXPECT_EQ(tar.find(value), std::string::npos);
  ToolOut run = Xb({"run", "--rm", "sec:1", "sh", "-c", "echo /run/* /s/*"});
  EXPECT_EQ(run.out, "/run/* /s/*\n") << "no mount point is left in a layer";
  ToolOut ins = Xb({"inspect", "sec:1"});
  EXPECT_EQ(ins.out.find(value), std::string::npos);
  ToolOut hist = Xb({"history", "--no-trunc", "sec:1"});
  EXPECT_EQ(hist.out.find(value), std::string::npos);

  // Another value does not change the cache key (as BuildKit): every step is CACHED.
  WriteTestFile(tmp_.path(), "token2", "other");
  b = Xb({"build", "--progress=plain", "--secret", "id=token,src=" + tmp_.Sub("token2"), ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_TRUE(Output(b.err).empty()) << "nothing ran: " << b.err;

  // required=true without the secret fails and says how to pass it.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --mount=type=secret,id=must,required=true true\n");
  b = Xb({"build", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("--secret id=must"), std::string::npos) << b.err;
  // A secret from the environment.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --mount=type=secret,id=must,required=true,env=M test \"$M\" = from-env\n");
  std::vector<std::string> argv = {XBUILD_BINARY, "--root", root_, "build", "--secret", "id=must,env=XB_TEST_SECRET", ctx_};
  core::RunOptions o;
  o.extra_env = {{"XBUILD_CONFIG", ""}, {"XB_TEST_SECRET", "from-env"}};
  ToolOut e = testing::RunTool(argv, o);
  EXPECT_EQ(e.code, 0) << e.err;
}

TEST_F(CliBuildMountTest, SshAgentSocketIsForwarded) {
  std::string sock = tmp_.Sub("agent.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, sock.c_str(), sock.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo agent at $SSH_AUTH_SOCK\n");
  ToolOut b = Xb({"build", "--progress=plain", "--ssh", "default=" + sock, ctx_});
  ::close(fd);
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_TRUE(Has(Output(b.err), "agent at /run/buildkit/ssh_agent.0")) << b.err;
}

TEST_F(CliBuildMountTest, SymlinksCannotPointAMountOutside) {
  // A cache whose entry an earlier step made a symlink to a host dir, then named as source=.
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN --mount=type=cache,id=evil,target=/c ln -sfn " + host_ + " /c/link && ln -sfn /etc /c/etc-link\n"
                "RUN --mount=type=cache,id=evil,source=link,target=/x ls /x; echo pwned > /x/pwned; true\n"
                "RUN --mount=type=cache,id=evil,source=etc-link,target=/y ls /y | grep -c passwd; echo pwned > /y/xbuild-pwned; true\n"
                // A mount target under a symlink to a host dir: the mount point is made inside the rootfs.
                "RUN ln -s " + host_ + " /hostlink\n"
                "RUN --mount=type=tmpfs,target=/hostlink/sub echo in > /hostlink/sub/f && cat /hostlink/sub/f\n"
                "RUN --mount=type=bind,target=/hostlink/ctx ls /hostlink/ctx\n");
  ToolOut b = Xb({"build", "--progress=plain", "--no-cache", ctx_});
  EXPECT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find("root:x:0:0"), std::string::npos) << b.err;
  EXPECT_FALSE(std::filesystem::exists(host_ + "/pwned"));
  EXPECT_FALSE(std::filesystem::exists("/etc/xbuild-pwned"));
  EXPECT_FALSE(std::filesystem::exists(host_ + "/sub"));
  EXPECT_FALSE(std::filesystem::exists(host_ + "/ctx"));
  std::error_code ec;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(host_, ec), {}), 1) << "only `keep` in " << host_;
  EXPECT_EQ(testing::ReadTestFile(host_ + "/keep"), "host file\n");
  // Nothing stays mounted under the state root.
  std::string mounts = testing::ReadTestFile("/proc/self/mounts");
  EXPECT_EQ(mounts.find(root_ + "/mounts/run-"), std::string::npos) << mounts;
}

}  // namespace
}  // namespace xbuild

namespace xbuild {
namespace {

// RUN --network=none gets a network namespace with only loopback; host (allowed with --allow
// network.host) sees the host's interfaces; the default is a namespace of the step's own with
// a way out (tap0, netns_pool.h). An unknown mode is refused with its line.
TEST_F(CliBuildMountTest, RunNetworkModes) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN --network=none echo none: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')\n"
                "RUN --network=host echo host: $(tail -n +3 /proc/net/dev | wc -l)\n"
                "RUN echo default: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')\n");
  ToolOut b = Xb({"build", "--progress=plain", "--allow", "network.host", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  std::vector<std::string> out = Output(b.err);
  EXPECT_TRUE(Has(out, "none: lo")) << b.err;
  std::string host_ifaces = testing::ReadTestFile("/proc/net/dev");
  size_t n = static_cast<size_t>(std::count(host_ifaces.begin(), host_ifaces.end(), '\n')) - 2;
  EXPECT_TRUE(Has(out, "host: " + std::to_string(n))) << b.err;
  EXPECT_TRUE(Has(out, "default: lo tap0")) << b.err;

  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --network=bridge true\n");
  b = Xb({"build", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("Dockerfile:2"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("--network=bridge"), std::string::npos) << b.err;
}

}  // namespace
}  // namespace xbuild
