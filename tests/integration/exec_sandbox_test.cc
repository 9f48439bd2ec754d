// The sandbox executor end to end, as root, with the real runc and a busybox rootfs.
// Needs: runc, busybox-static, /usr/share/containers/seccomp.json
// (golang-github-containers-common); scripts/setup-deps.sh installs them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "exec/sandbox.h"
#include "unit/test_util.h"

namespace xbuild::exec {
namespace {

using testing::TempDir;
using testing::WriteTestFile;

constexpr const char* kApplets[] = {"cat",   "echo", "env",   "grep", "id",   "ls",      "pwd",
                                    "sleep", "test", "touch", "wc",   "stat", "hostname"};

// Waits until `flag` or `done` turns true, at most a minute: a bound against hanging, not a
// timing check.
void WaitFor(const std::atomic<bool>& flag, const std::atomic<bool>& done) {
  for (int i = 0; i < 6000 && !flag && !done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Run() in a thread, for runs that wait to be cancelled. The script is to echo "started".
class BackgroundRun {
 public:
  explicit BackgroundRun(RunRequest req) {
    req.cancel = &cancel_;
    req.output = [this](int, std::string_view chunk) {
      if (chunk.find("started") != std::string_view::npos) started_ = true;
    };
    thread_ = std::thread([this, req = std::move(req)] {
      result_.emplace(exec::Run(req));
      done_ = true;
    });
    WaitFor(started_, done_);
  }
  ~BackgroundRun() { Cancel(); }
  bool started() const { return started_; }
  const core::Result<int>& Cancel() {
    cancel_ = true;
    return Wait();
  }
  const core::Result<int>& Wait() {
    if (thread_.joinable()) thread_.join();
    return *result_;
  }

 private:
  std::atomic<bool> cancel_{false}, started_{false}, done_{false};
  std::optional<core::Result<int>> result_;
  std::thread thread_;
};

struct Outcome {
  int code = -1;
  std::string error;  // set when Run failed
  core::Code error_code = core::Code::kOk;
  std::string out, err;
};

class ExecSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "the sandbox tests run as root (integration label)";
    ASSERT_FALSE(core::LookPath("runc").empty()) << "runc is missing: run scripts/setup-deps.sh";
    ASSERT_TRUE(core::Exists(std::string(kDefaultSeccompProfile)))
        << kDefaultSeccompProfile << " is missing: run scripts/setup-deps.sh "
        << "(golang-github-containers-common)";
    root_ = tmp_.Sub("state");
    rootfs_ = tmp_.Sub("rootfs");
    ASSERT_NO_FATAL_FAILURE(testing::MakeBusyboxRootfs(rootfs_));
    for (const char* applet : kApplets) {
      ASSERT_EQ(::symlink("busybox", (rootfs_ + "/bin/" + applet).c_str()), 0) << applet;
    }
    WriteTestFile(rootfs_, "etc/passwd",
                  "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n");
    WriteTestFile(rootfs_, "etc/group", "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
  }

  RunRequest Request(std::string script) {
    RunRequest req;
    req.root = root_;
    req.process.args = {"/bin/sh", "-c", std::move(script)};
    req.sandbox.rootfs = rootfs_;
    return req;
  }

  Outcome RunIt(RunRequest req) {
    Outcome o;
    req.output = [&](int stream, std::string_view chunk) {
      (stream == 1 ? o.out : o.err).append(chunk);
    };
    auto r = exec::Run(req);
    if (r.ok()) {
      o.code = *r;
    } else {
      o.error = r.error().ToString();
      o.error_code = r.error().code();
    }
    return o;
  }

  // A run that must succeed with exit code 0.
  Outcome RunOk(RunRequest req) {
    Outcome o = RunIt(std::move(req));
    EXPECT_EQ(o.error, "") << "the run failed";
    EXPECT_EQ(o.code, 0) << "stderr: " << o.err;
    return o;
  }

  // `sleep 100` as container `id`, started in the background.
  std::unique_ptr<BackgroundRun> StartSleeper(const std::string& id) {
    RunRequest req = Request("echo started; exec sleep 100");
    req.id = id;
    return std::make_unique<BackgroundRun>(std::move(req));
  }

  Outcome Sh(std::string script) { return RunIt(Request(std::move(script))); }

  // Nothing of a finished run may be left: no bundle, no runc state.
  void ExpectNothingLeft() {
    for (const std::string& dir : {ContainersDir(root_), RuncStateDir(root_)}) {
      auto r = core::RunProcess({"ls", "-A", dir});
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->out, "") << "left behind in " << dir;
    }
  }

  TempDir tmp_;
  std::string root_, rootfs_;
};

TEST_F(ExecSandboxTest, StreamsOutputAndReturnsTheExitCode) {
  Outcome o = Sh("echo hello; echo oops >&2; exit 3");
  ASSERT_EQ(o.error, "");
  EXPECT_EQ(o.code, 3) << "the process's exit code must come back as it is";
  EXPECT_EQ(o.out, "hello\n");
  EXPECT_EQ(o.err, "oops\n");
  ExpectNothingLeft();
  EXPECT_FALSE(core::Exists(rootfs_ + "/etc/hosts"))
      << "mount points xbuild created must not stay in the rootfs (they would end up in a layer)";
}

TEST_F(ExecSandboxTest, EnvCwdAndUser) {
  RunRequest req = Request("id; pwd; echo home=$HOME; echo path=$PATH; echo foo=$FOO");
  req.process.env = {"FOO=bar"};
  req.process.cwd = "/work/dir";
  req.process.user = "app";
  Outcome o = RunOk(req);
  EXPECT_NE(o.out.find("uid=1000(app) gid=1000(app)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("2000(extra)"), std::string::npos)
      << "groups listing the user are supplementary groups: " << o.out;
  EXPECT_NE(o.out.find("\n/work/dir\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("home=/home/app\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("foo=bar\n"), std::string::npos) << o.out;
  struct stat st;
  ASSERT_EQ(::stat((rootfs_ + "/work/dir").c_str(), &st), 0) << "WORKDIR must be created";
  EXPECT_EQ(st.st_uid, 1000u) << "a created WORKDIR belongs to the user";

  req.process.user = "nobody-here";
  Outcome bad = RunIt(req);
  EXPECT_NE(bad.error.find("unable to find user nobody-here: no matching entries in passwd file"),
            std::string::npos)
      << bad.error;
  ExpectNothingLeft();
}

TEST_F(ExecSandboxTest, EtcFilesAreGenerated) {
  RunRequest req = Request(
      "cat /etc/hosts; echo name=$(cat /etc/hostname); hostname; "
      "test -s /etc/resolv.conf && echo resolv-ok");
  req.sandbox.hostname = "sandboxhost";
  req.sandbox.extra_hosts = {"db:10.1.2.3"};
  Outcome o = RunOk(req);
  EXPECT_NE(o.out.find("127.0.0.1\tlocalhost sandboxhost\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("10.1.2.3\tdb\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("name=sandboxhost\nsandboxhost\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("resolv-ok"), std::string::npos) << o.out;
  EXPECT_FALSE(core::Exists(rootfs_ + "/etc/hostname"));
  EXPECT_FALSE(core::Exists(rootfs_ + "/etc/resolv.conf"));
  ExpectNothingLeft();
}

TEST_F(ExecSandboxTest, DockerSecurityDefaults) {
  Outcome o =
      RunOk(Request("grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
                    "test -s /proc/kcore && echo kcore-visible || echo kcore-masked; "
                    "(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo procsys-writable "
                    "|| echo procsys-ro"));
  EXPECT_NE(o.out.find("CapEff:\t00000000a80425fb\n"), std::string::npos)
      << "root in the sandbox must have exactly Docker's default capabilities: " << o.out;
  EXPECT_NE(o.out.find("CapBnd:\t00000000a80425fb\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("NoNewPrivs:\t1\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("Seccomp:\t2\n"), std::string::npos) << "seccomp filter mode: " << o.out;
  EXPECT_NE(o.out.find("kcore-masked"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("procsys-ro"), std::string::npos) << o.out;
}

TEST_F(ExecSandboxTest, InsecureHasAllCapabilitiesAndNoSeccomp) {
  RunRequest req = Request("grep -E '^(CapEff|Seccomp):' /proc/self/status");
  req.sandbox.security = Security::kInsecure;
  Outcome o = RunOk(req);
  std::string status = testing::ReadTestFile("/proc/self/status");
  size_t bnd = status.find("CapBnd:\t");
  ASSERT_NE(bnd, std::string::npos);
  EXPECT_NE(o.out.find("CapEff:\t" + status.substr(bnd + 8, 16) + "\n"), std::string::npos)
      << "insecure gives every capability xbuild has (its bounding set): " << o.out;
  EXPECT_NE(o.out.find("Seccomp:\t0\n"), std::string::npos) << o.out;
}

TEST_F(ExecSandboxTest, NetworkNoneSeesOnlyLoopback) {
  RunRequest req = Request("ls /sys/class/net");
  req.sandbox.network = Network::kNone;
  Outcome o = RunOk(req);
  EXPECT_EQ(o.out, "lo\n") << "network none must have only the loopback interface";
}

TEST_F(ExecSandboxTest, ReadonlyRootfsAndBindMounts) {
  WriteTestFile(tmp_.path(), "data/file", "from the host\n");
  RunRequest req = Request(
      "cat /data/file; touch /data/new 2>/dev/null && echo data-rw || echo data-ro; "
      "touch /rootfile 2>/dev/null && echo root-rw || echo root-ro; "
      "touch /scratch/new && echo scratch-rw");
  req.sandbox.readonly_rootfs = true;
  req.sandbox.mounts = {{tmp_.Sub("data"), "/data", true},
                        {tmp_.Sub("scratch"), "/scratch", false}};
  ASSERT_TRUE(core::MkdirAll(tmp_.Sub("scratch")).ok());
  Outcome o = RunOk(req);
  EXPECT_EQ(o.out, "from the host\ndata-ro\nroot-ro\nscratch-rw\n");
  EXPECT_TRUE(core::Exists(tmp_.Sub("scratch/new")));
  EXPECT_FALSE(core::Exists(rootfs_ + "/data")) << "the created mount point is removed";
}

TEST_F(ExecSandboxTest, RuntimeFailureIsAnErrorAndCleansUp) {
  RunRequest req = Request("");
  req.process.args = {"/no/such/binary"};
  Outcome o = RunIt(req);
  EXPECT_NE(o.error, "") << "a command that cannot start is an error, not an exit code";
  EXPECT_NE(o.error.find("/no/such/binary"), std::string::npos) << o.error;
  ExpectNothingLeft();
}

TEST_F(ExecSandboxTest, CancelKillsTheRunAndLeavesNothing) {
  auto run = StartSleeper("cancel-me");
  EXPECT_TRUE(run->started()) << "the container never started";
  const core::Result<int>& result = run->Cancel();
  ASSERT_FALSE(result.ok()) << "a cancelled run must not report an exit code";
  EXPECT_EQ(result.error().code(), core::Code::kCancelled) << result.error().ToString();
  ExpectNothingLeft();
  EXPECT_FALSE(core::Exists("/sys/fs/cgroup/pids/xbuild/cancel-me"))
      << "the cgroup must be removed";
}

TEST_F(ExecSandboxTest, SignalDeathIs128PlusTheSignal) {
  auto run = StartSleeper("killed");
  ASSERT_TRUE(run->started());
  auto killed = Runc("runc", RuncStateDir(root_)).Kill("killed", "KILL");
  ASSERT_TRUE(killed.ok()) << killed.error().ToString();
  const core::Result<int>& result = run->Wait();
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(*result, 128 + SIGKILL)
      << "a process killed by signal N exits with 128+N, as in Docker";
  ExpectNothingLeft();
}

// A bundle as a SIGKILLed xbuild would leave it: its container still running under runc.
void PlantRunningContainer(const std::string& root, const std::string& rootfs,
                           const std::string& id, const std::string& owner) {
  std::string bundle = ContainersDir(root) + "/" + id;
  ASSERT_TRUE(core::MkdirAll(bundle).ok());
  ProcessSpec p;
  p.args = {"/bin/sleep", "100"};
  SandboxOptions o;
  o.rootfs = rootfs;
  auto spec = BuildSpec(p, ExecUser{}, o, id);
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  WriteTestFile(bundle, "config.json", spec->dump());
  if (!owner.empty()) WriteTestFile(bundle, "owner.json", owner);
  std::string cmd = "exec runc --root " + RuncStateDir(root) + " run -d --bundle " + bundle + " " +
                    id + " </dev/null >/dev/null 2>&1";
  auto r = core::RunProcess({"sh", "-c", cmd});
  ASSERT_TRUE(r.ok() && r->exit_code == 0) << "could not start the planted container " << id;
}

TEST_F(ExecSandboxTest, CleanupStaleRemovesWhatKilledProcessesLeft) {
  // Owners that are gone: a pid that cannot exist, and this pid with another start time.
  std::string gone = R"({"pid": 999999999, "start": 1})";
  std::string alive = core::Json({{"pid", ::getpid()}, {"start", 0}}).dump();
  ASSERT_NO_FATAL_FAILURE(PlantRunningContainer(root_, rootfs_, "stale-bundle", gone));
  ASSERT_NO_FATAL_FAILURE(PlantRunningContainer(root_, rootfs_, "state-only", gone));
  ASSERT_TRUE(core::RemoveAll(ContainersDir(root_) + "/state-only").ok());
  WriteTestFile(ContainersDir(root_), "not-ours/config.json", "{}");
  WriteTestFile(ContainersDir(root_), "reused-pid/owner.json", alive);

  auto s = CleanupStale(root_);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_FALSE(core::Exists(ContainersDir(root_) + "/stale-bundle"));
  EXPECT_FALSE(core::Exists(RuncStateDir(root_) + "/stale-bundle"))
      << "the stale container must be deleted from runc";
  EXPECT_FALSE(core::Exists(RuncStateDir(root_) + "/state-only"))
      << "runc state without a bundle is left over from a killed run";
  EXPECT_FALSE(core::Exists("/sys/fs/cgroup/pids/xbuild/stale-bundle"));
  EXPECT_TRUE(core::Exists(ContainersDir(root_) + "/not-ours"))
      << "a directory without owner.json is not the executor's to remove";
  EXPECT_FALSE(core::Exists(ContainersDir(root_) + "/reused-pid"))
      << "a live pid with another start time is a reused pid, not the owner";
}

TEST_F(ExecSandboxTest, CleanupStaleKeepsLiveRuns) {
  auto run = StartSleeper("live");
  ASSERT_TRUE(run->started());
  auto s = CleanupStale(root_);
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_TRUE(core::Exists(ContainersDir(root_) + "/live")) << "a live run must be left alone";
  EXPECT_TRUE(core::Exists(RuncStateDir(root_) + "/live"));
  run->Cancel();
  ExpectNothingLeft();
}

}  // namespace
}  // namespace xbuild::exec
