// `xbuild build` end to end (as root, real runc and overlayfs): a Dockerfile built on a local
// busybox base, its config read back, the image checked by skopeo, a warm rebuild all cached,
// and a failing step reported with its Dockerfile line.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "integration/build_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::RunTool;
using testing::ToolOut;
using testing::WriteTestFile;

// The steps a plain progress log shows as run ("#N DONE"), by name: the rest were CACHED.
std::vector<std::string> RanSteps(const std::string& log) {
  std::map<std::string, std::string> names;  // "#N" -> name
  std::vector<std::string> ran;
  size_t start = 0;
  for (size_t nl; (nl = log.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = log.substr(start, nl - start);
    size_t sp = line.find(' ');
    if (!line.starts_with("#") || sp == std::string::npos) continue;
    std::string n = line.substr(0, sp), rest = line.substr(sp + 1);
    if (!names.count(n)) {
      names[n] = rest;
    } else if (rest.starts_with("DONE ")) {
      ran.push_back(names[n]);
    }
  }
  return ran;
}

class CliBuildTest : public testing::BuildTest {
 protected:
  core::Json Inspect(const std::string& name) {
    ToolOut o = Xb({"inspect", name});
    EXPECT_EQ(o.code, 0) << o.err;
    auto j = core::Json::parse(o.out, nullptr, false);
    return j.is_array() && j.size() == 1 ? j[0] : core::Json();
  }

};

TEST_F(CliBuildTest, BuildsRunsStepsAndCachesThem) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "ARG WHO=world\n"
                "ENV GREETING=\"hello $WHO\"\n"
                "RUN echo \"$GREETING\" > /greeting && cat /etc/hello\n"
                "RUN cat /greeting > /copy\n"
                "LABEL org.example.kind=test\n"
                "EXPOSE 8080\n"
                "USER 1000:1000\n"
                "STOPSIGNAL SIGTERM\n"
                "CMD [\"/bin/sh\", \"-c\", \"cat /copy\"]\n");
  // No subcommand: what CI types.
  ToolOut b = Xb({"-t", "app:1", "--build-arg", "WHO=xbuild", "--iidfile", tmp_.Sub("iid"), ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("RUN echo \"$GREETING\" > /greeting"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" hello from xbuild\n"), std::string::npos) << "step output streams: " << b.err;
  EXPECT_NE(b.err.find("naming to docker.io/library/app:1 done"), std::string::npos) << b.err;

  core::Json j = Inspect("app:1");
  EXPECT_EQ(j["Id"], testing::ReadTestFile(tmp_.Sub("iid")));
  EXPECT_EQ(j["Config"]["Cmd"], core::Json::array({"/bin/sh", "-c", "cat /copy"}));
  EXPECT_EQ(j["Config"]["User"], "1000:1000");
  EXPECT_EQ(j["Config"]["Labels"]["org.example.kind"], "test");
  EXPECT_TRUE(j["Config"]["ExposedPorts"].contains("8080/tcp")) << j["Config"].dump();
  bool env_ok = false;
  for (const auto& e : j["Config"]["Env"]) env_ok |= e == "GREETING=hello xbuild";
  EXPECT_TRUE(env_ok) << j["Config"]["Env"].dump();
  EXPECT_EQ(j["RootFS"]["Layers"].size(), 3u) << "the base layer and one per RUN";
  EXPECT_EQ(j["RootFS"]["Layers"][0], Inspect("base:1")["RootFS"]["Layers"][0]);

  // It runs, as the user and with the command the Dockerfile set.
  ToolOut run = Xb({"run", "--rm", "app:1"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "hello xbuild\n");
  ToolOut id = Xb({"run", "--rm", "-e", "X=1", "-w", "/tmp", "app:1", "sh", "-c", "id -u; echo $X; pwd; exit 5"});
  EXPECT_EQ(id.code, 5) << id.err;
  EXPECT_EQ(id.out, "1000\n1\n/tmp\n");
  EXPECT_EQ(Xb({"run", "--rm", "app:1", "no-such-command"}).code, 127);

  // An outside tool reads it.
  std::string archive = tmp_.Sub("app.tar");
  ASSERT_EQ(Xb({"save", "-o", archive, "app:1"}).code, 0);
  ToolOut si = RunTool({"skopeo", "inspect", "docker-archive:" + archive});
  ASSERT_EQ(si.code, 0) << si.err;
  EXPECT_EQ(core::Json::parse(si.out)["Layers"].size(), 3u);

  // Warm: every step cached, same image.
  ToolOut w = Xb({"build", "-t", "app:2", "--build-arg", "WHO=xbuild", ctx_});
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_EQ(RanSteps(w.err), (std::vector<std::string>{"[internal] load metadata for docker.io/library/base:1", "exporting to image"}))
      << "nothing but the base's metadata and the export ran: " << w.err;
  EXPECT_NE(w.err.find("CACHED"), std::string::npos) << w.err;
  EXPECT_EQ(Inspect("app:2")["RootFS"], j["RootFS"]);

  // -q prints the image ID only.
  ToolOut q = Xb({"build", "-q", "--build-arg", "WHO=xbuild", ctx_});
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(q.out, j["Id"].get<std::string>() + "\n");
  EXPECT_EQ(q.err, "");
}

TEST_F(CliBuildTest, AFailingStepNamesItsLineAndChangesNothing) {
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo before\nRUN echo oops >&2 && exit 7\nRUN echo never\n");
  ToolOut images_before = Xb({"images", "-q"});
  ToolOut b = Xb({"build", "-t", "bad:1", ctx_});
  EXPECT_EQ(b.code, 1);
  EXPECT_NE(b.err.find("did not complete successfully: exit code: 7"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("Dockerfile:3"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("oops"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find("never\n"), std::string::npos) << b.err;
  EXPECT_EQ(Xb({"images", "-q"}).out, images_before.out);
  ToolOut bad = Xb({"inspect", "bad:1"});
  EXPECT_NE(bad.code, 0);
  // A later build of a good Dockerfile works on the same root.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo before\n");
  ToolOut ok = Xb({"build", "-t", "good:1", ctx_});
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST_F(CliBuildTest, RefusesAPlatformThisMachineCannotRun) {
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN true\n");
  ToolOut b = Xb({"build", "--platform", "linux/s390x", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("linux/s390x cannot run on this linux/amd64 machine"), std::string::npos) << b.err;
}

TEST_F(CliBuildTest, CopiesTheContextAndRebuildsOnlyWhatChanged) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\nWORKDIR /app\nCOPY . .\nRUN ls -a /app > /listing\nCMD [\"/bin/busybox\", \"cat\", \"/app/a.txt\"]\n");
  WriteTestFile(ctx_, ".dockerignore", "secret.txt\n");
  WriteTestFile(ctx_, "a.txt", "one\n");
  WriteTestFile(ctx_, "secret.txt", "do not ship\n");
  ASSERT_EQ(::symlink("/etc/passwd", (ctx_ + "/link").c_str()), 0);
  ToolOut b = Xb({"build", "-t", "ctx:1", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  ToolOut listing = Xb({"run", "--rm", "ctx:1", "/bin/busybox", "cat", "/listing"});
  ASSERT_EQ(listing.code, 0) << listing.err;
  EXPECT_NE(listing.out.find("a.txt"), std::string::npos) << listing.out;
  EXPECT_EQ(listing.out.find("secret.txt"), std::string::npos) << ".dockerignore: " << listing.out;
  // The symlink is copied as a symlink: the host's /etc/passwd was never read into the image.
  ToolOut link = Xb({"run", "--rm", "ctx:1", "/bin/busybox", "readlink", "/app/link"});
  EXPECT_EQ(link.out, "/etc/passwd\n") << link.err;
  EXPECT_EQ(Xb({"run", "--rm", "ctx:1", "/bin/busybox", "cat", "/app/a.txt"}).out, "one\n");

  // An ignored file changes: nothing runs again.
  WriteTestFile(ctx_, "secret.txt", "still secret\n");
  ToolOut same = Xb({"build", "-t", "ctx:1", ctx_});
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_EQ(RanSteps(same.err), (std::vector<std::string>{"[internal] load metadata for docker.io/library/base:1", "exporting to image"}))
      << same.err;
  // A copied file changes: COPY and the RUN after it run again, with the new content.
  WriteTestFile(ctx_, "a.txt", "two\n");
  ToolOut changed = Xb({"build", "-t", "ctx:1", ctx_});
  ASSERT_EQ(changed.code, 0) << changed.err;
  EXPECT_NE(changed.err.find("RUN ls -a /app > /listing\n#"), std::string::npos) << changed.err;
  EXPECT_EQ(Xb({"run", "--rm", "ctx:1"}).out, "two\n");
}

TEST_F(CliBuildTest, TwoConcurrentBuildsRunEachStepOnce) {
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo step-ran && sleep 1\nRUN echo second-ran\n");
  auto a = std::async(std::launch::async, [&] { return Xb({"build", "-t", "c:1", ctx_}); });
  auto b = std::async(std::launch::async, [&] { return Xb({"build", "-t", "c:2", ctx_}); });
  ToolOut oa = a.get(), ob = b.get();
  ASSERT_EQ(oa.code, 0) << oa.err;
  ASSERT_EQ(ob.code, 0) << ob.err;
  auto count = [](const std::string& s, const std::string& what) {
    size_t n = 0;
    // Output lines are "#N <seconds> text": the match follows a digit (not "echo" in a title).
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) n += p > 0 && std::isdigit(static_cast<unsigned char>(s[p - 1]));
    return n;
  };
  // Each RUN's output appears in exactly one of the two builds: the other waited and reused it.
  EXPECT_EQ(count(oa.err, " step-ran\n") + count(ob.err, " step-ran\n"), 1u) << oa.err << ob.err;
  EXPECT_EQ(count(oa.err, " second-ran\n") + count(ob.err, " second-ran\n"), 1u) << oa.err << ob.err;
  EXPECT_EQ(Inspect("c:1")["Id"], Inspect("c:2")["Id"]);
}

TEST_F(CliBuildTest, AKilledBuildLeavesNothingStaleAndTheRebuildWorks) {
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo started && sleep 60\n");
  core::RunOptions o;
  o.extra_env = {{"XBUILD_CONFIG", ""}};
  pid_t pid = SpawnXbuild({"build", ctx_});
  ASSERT_GE(pid, 0);
  // Wait until the step runs: its container's bundle exists.
  bool running = WaitForRunningStep();
  ASSERT_TRUE(running) << "the RUN step never started";
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  // The next command cleans up: no mount under the root, no container, no active snapshot.
  ASSERT_EQ(Xb({"images", "-q"}).code, 0);
  auto mi = core::ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(mi.ok());
  EXPECT_EQ(mi->find(root_ + "/"), std::string::npos) << "stale mount:\n" << *mi;
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/containers", ec)) << "stale container bundle";
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo again\n");
  ToolOut b = Xb({"build", "-t", "after:1", ctx_});
  EXPECT_EQ(b.code, 0) << b.err;
}

}  // namespace
}  // namespace xbuild
