// Interop with tools nobody here wrote, through a real docker-registry 2.8 on a loopback port:
// what xbuild pushes is read by skopeo and pulled and run by a real dockerd; what `docker push`
// and `buildah push` wrote is pulled by xbuild with the pusher's manifest digest, and `xbuild
// save` of it is a docker-archive skopeo (and docker) read. Needs: docker-registry, skopeo,
// buildah, docker.io (dockerd, its managed containerd, runc), busybox-static; run as root
// (scripts/setup-deps.sh installs them). Talks only to 127.0.0.1 and a unix socket under the
// test's temp dir.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "integration/registry_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::RunTool;
using testing::TempDir;
using testing::ToolOut;

constexpr const char* kDockerd = "/usr/sbin/dockerd";
constexpr const char* kDocker = "/usr/bin/docker";  // not whatever `docker` PATH finds first
constexpr const char* kCmd = R"(["/bin/sh","-c","cat /etc/hello"])";
constexpr const char* kHello = "hello from xbuild\n";  // testing::MakeBusyboxRootfs's etc/hello

// /proc/self/mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string UnescapeMountPath(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Detaches every mount at or below `dir`, deepest first (dockerd's overlay mounts, netns bind
// mounts, the private bind of its data root), so that the temp dir can be removed.
void UnmountUnder(const std::string& dir) {
  std::ifstream f("/proc/self/mountinfo");
  std::vector<std::string> points;
  for (std::string line; std::getline(f, line);) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, point;
    ss >> id >> parent >> dev >> root >> point;
    point = UnescapeMountPath(point);
    if (point == dir || point.starts_with(dir + "/")) points.push_back(point);
  }
  std::sort(points.begin(), points.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (auto& p : points) ::umount2(p.c_str(), MNT_DETACH);
}

bool RunsCommand(pid_t pid, std::string_view name) {
  std::string cmdline = testing::ReadTestFile("/proc/" + std::to_string(pid) + "/cmdline");
  return cmdline.find(name) != std::string::npos;
}

// A private dockerd (Debian's docker.io 20.10) on a unix socket under `dir`: its own data root,
// exec root, config file and managed containerd; no bridge, no iptables, so containers run with
// --network=none. It gets SIGTERM if the test process dies (PR_SET_PDEATHSIG). Stop() ends it
// (SIGTERM, then SIGKILL after 30 s), ends its containerd if that outlived it, and detaches
// every mount left under `dir`. The storage driver is dockerd's own choice: overlay2 where the
// temp dir's filesystem supports it (ext4 and tmpfs do), vfs otherwise.
class DockerDaemon {
 public:
  DockerDaemon() = default;
  ~DockerDaemon() { Stop(); }
  DockerDaemon(const DockerDaemon&) = delete;
  DockerDaemon& operator=(const DockerDaemon&) = delete;

  // Fails the calling test (use ASSERT_NO_FATAL_FAILURE) when it does not answer in 60 s.
  void Start(const std::string& dir) {
    ASSERT_TRUE(core::Exists(kDockerd)) << kDockerd << " is missing: run scripts/setup-deps.sh";
    ASSERT_TRUE(core::Exists(kDocker)) << kDocker << " is missing: run scripts/setup-deps.sh";
    for (const char* tool : {"containerd", "containerd-shim-runc-v2", "runc"}) {
      ASSERT_FALSE(core::LookPath(tool).empty())
          << tool << " is missing: run scripts/setup-deps.sh";
    }
    dir_ = dir;
    sock_ = dir + "/docker.sock";
    ASSERT_TRUE(core::MkdirAll(dir + "/data").ok());
    ASSERT_TRUE(core::MkdirAll(dir + "/exec").ok());
    ASSERT_TRUE(core::MkdirAll(dir + "/client").ok());
    testing::WriteTestFile(dir, "daemon.json", "{}\n");
    // clang-format off
    std::vector<std::string> argv = {kDockerd, "-H", "unix://" + sock_,
                                     "--config-file", dir + "/daemon.json",
                                     "--data-root", dir + "/data",
                                     "--exec-root", dir + "/exec",
                                     "--pidfile", dir + "/docker.pid",
                                     "--bridge=none", "--iptables=false", "--ip6tables=false"};
    // clang-format on
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::string log_path = dir + "/dockerd.log";
    pid_t parent = ::getpid();
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(kDockerd, cargv.data());
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL() << "dockerd exited while starting:\n" << log();
      }
      if (Docker({"version"}).code == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    FAIL() << "dockerd did not answer on " << sock_ << " within 60 s:\n" << log();
  }

  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st;
      bool reaped = false;
      for (int i = 0; i < 300 && !reaped; ++i) {
        reaped = ::waitpid(pid_, &st, WNOHANG) == pid_;
        if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (!reaped) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
      }
      pid_ = -1;
      // The managed containerd normally stops with dockerd; after a SIGKILL it would not.
      std::string pidfile = dir_ + "/exec/containerd/containerd.pid";
      if (core::Exists(pidfile)) {
        pid_t c = static_cast<pid_t>(std::atoi(testing::ReadTestFile(pidfile).c_str()));
        if (c > 0 && RunsCommand(c, "containerd")) ::kill(c, SIGKILL);
      }
    }
    if (!dir_.empty()) UnmountUnder(dir_);
  }

  // /usr/bin/docker -H unix://<dir>/docker.sock ARGS, with its own client config dir.
  ToolOut Docker(std::vector<std::string> args) const {
    std::vector<std::string> argv = {kDocker, "-H", "unix://" + sock_};
    argv.insert(argv.end(), args.begin(), args.end());
    core::RunOptions o;
    o.extra_env = {{"DOCKER_CONFIG", dir_ + "/client"}};
    return RunTool(argv, o);
  }

  std::string log() const { return testing::ReadTestFile(dir_ + "/dockerd.log"); }

 private:
  std::string dir_, sock_;
  pid_t pid_ = -1;
};

class RegistryInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"docker-registry", "skopeo", "buildah"}) {
      ASSERT_FALSE(core::LookPath(tool).empty())
          << tool << " is missing: run scripts/setup-deps.sh";
    }
    rootfs_ = tmp_.Sub("rootfs");
    ASSERT_NO_FATAL_FAILURE(testing::MakeBusyboxRootfs(rootfs_));
    root_ = tmp_.Sub("state");
    docker_config_ = tmp_.Sub("docker-config");
    // An empty auth file of their own, so no credentials of the machine's are used (buildah
    // wants it to exist).
    testing::WriteTestFile(tmp_.path(), "auth.json", "{\"auths\": {}}\n");
    ASSERT_NO_FATAL_FAILURE(registry_.Start(tmp_.Sub("registry")));
    host_ = registry_.host();
  }

  void TearDown() override {
    docker_.Stop();
    registry_.Stop();
  }

  ToolOut Xb(std::vector<std::string> args, const std::string& root = "") {
    std::vector<std::string> argv = {XBUILD_BINARY, "--root", root.empty() ? root_ : root};
    argv.insert(argv.end(), args.begin(), args.end());
    core::RunOptions o;
    o.extra_env = {{"DOCKER_CONFIG", docker_config_}, {"XBUILD_CONFIG", ""}};
    return RunTool(argv, o);
  }

  // skopeo/buildah keep their temp files under the test's dir and read only its auth file.
  ToolOut Tool(std::vector<std::string> argv) {
    core::RunOptions o;
    o.extra_env = {{"TMPDIR", tmp_.path()}, {"REGISTRY_AUTH_FILE", tmp_.Sub("auth.json")}};
    return RunTool(argv, o);
  }

  core::Json ToolJson(std::vector<std::string> argv) {
    ToolOut o = Tool(argv);
    EXPECT_EQ(o.code, 0) << argv[0] << " " << argv[1] << ": " << o.err;
    return core::Json::parse(o.out, nullptr, false);
  }

  core::Json XbInspect(const std::string& name, const std::string& root = "") {
    ToolOut o = Xb({"inspect", name}, root);
    EXPECT_EQ(o.code, 0) << o.err;
    auto j = core::Json::parse(o.out, nullptr, false);
    return j.is_array() && j.size() == 1 ? j[0] : core::Json();
  }

  // "TAG: digest: sha256:... size: N" (docker push and xbuild push) -> "sha256:...".
  static std::string PushedDigest(const std::string& out, const std::string& tag) {
    std::string d = testing::LineAfter(out, tag + ": digest: ");
    return d.substr(0, d.find(' '));
  }

  // The manifest's media type, as the registry serves it.
  std::string ManifestType(const std::string& ref) {
    core::Json m =
        ToolJson({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref});
    return m.is_object() ? m.value("mediaType", "") : "";
  }

  // The pulled image, saved by xbuild as a docker-archive, is what skopeo reads: the same
  // config (Cmd) and the layers' diff_ids.
  void ExpectSaveReadBySkopeo(const std::string& ref, const core::Json& diff_ids,
                              const std::string& archive) {
    ToolOut s = Xb({"save", "-o", archive, ref});
    ASSERT_EQ(s.code, 0) << s.err;
    ToolOut si = Tool({"skopeo", "inspect", "docker-archive:" + archive});
    ASSERT_EQ(si.code, 0) << si.err;
    core::Json cfg = ToolJson({"skopeo", "inspect", "--config", "docker-archive:" + archive});
    ASSERT_TRUE(cfg.is_object());
    EXPECT_EQ(cfg["config"]["Cmd"], core::Json::parse(kCmd));
    EXPECT_EQ(cfg["rootfs"]["diff_ids"], diff_ids);
  }

  TempDir tmp_;
  std::string rootfs_, root_, docker_config_, host_;
  testing::RegistryProcess registry_;
  DockerDaemon docker_;
};

TEST_F(RegistryInteropTest, XbuildPushIsReadBySkopeoAndRunByDocker) {
  std::string ref = host_ + "/app:1";
  ToolOut im = Xb({"import", "--change", std::string("CMD ") + kCmd, rootfs_, ref});
  ASSERT_EQ(im.code, 0) << im.err;
  ToolOut p = Xb({"push", ref});
  ASSERT_EQ(p.code, 0) << p.err;
  std::string digest = PushedDigest(p.out, "1");
  ASSERT_TRUE(digest.starts_with("sha256:")) << p.out;

  // skopeo: the registry serves exactly the manifest xbuild reported, with xbuild's config.
  EXPECT_EQ(testing::SkopeoDigest(ref), digest);
  ToolOut raw = Tool({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref});
  ASSERT_EQ(raw.code, 0) << raw.err;
  EXPECT_EQ(core::Digest::Of(raw.out).String(), digest);
  core::Json cfg =
      ToolJson({"skopeo", "inspect", "--config", "--tls-verify=false", "docker://" + ref});
  ASSERT_TRUE(cfg.is_object());
  EXPECT_EQ(cfg["config"]["Cmd"], core::Json::parse(kCmd));
  core::Json xi = XbInspect(ref);
  EXPECT_EQ(cfg["rootfs"]["diff_ids"], xi["RootFS"]["Layers"]);

  // skopeo copy (which checks every blob's digest) into an OCI layout, manifest kept as is.
  std::string layout = tmp_.Sub("layout");
  ToolOut c = Tool({"skopeo", "copy", "--preserve-digests", "--src-tls-verify=false",
                    "docker://" + ref, "oci:" + layout + ":app"});
  ASSERT_EQ(c.code, 0) << c.err;
  core::Json index =
      core::Json::parse(testing::ReadTestFile(layout + "/index.json"), nullptr, false);
  ASSERT_TRUE(index.is_object()) << testing::ReadTestFile(layout + "/index.json");
  ASSERT_EQ(index["manifests"].size(), 1u) << index.dump();
  EXPECT_EQ(index["manifests"][0]["digest"], digest);

  // A real dockerd pulls it and runs it.
  ASSERT_NO_FATAL_FAILURE(docker_.Start(tmp_.Sub("docker")));
  ToolOut pl = docker_.Docker({"pull", ref});
  ASSERT_EQ(pl.code, 0) << pl.out << pl.err << "\n" << docker_.log();
  EXPECT_EQ(testing::LineAfter(pl.out, "Digest: "), digest) << pl.out;
  ToolOut rd = docker_.Docker({"image", "inspect", "-f", "{{json .RepoDigests}}", ref});
  ASSERT_EQ(rd.code, 0) << rd.err;
  EXPECT_EQ(core::Json::parse(rd.out, nullptr, false),
            core::Json::array({host_ + "/app@" + digest}))
      << rd.out;
  ToolOut run = docker_.Docker({"run", "--rm", "--network=none", ref});
  EXPECT_EQ(run.code, 0) << run.err << "\n" << docker_.log();
  EXPECT_EQ(run.out, kHello);
}

TEST_F(RegistryInteropTest, XbuildPullsWhatDockerPushed) {
  ASSERT_NO_FATAL_FAILURE(docker_.Start(tmp_.Sub("docker")));
  std::string ref = host_ + "/fromdocker:1";
  std::string tarball = tmp_.Sub("rootfs.tar");
  ToolOut t = RunTool({"tar", "-C", rootfs_, "-cf", tarball, "."});
  ASSERT_EQ(t.code, 0) << t.err;
  ToolOut im = docker_.Docker({"import", "--change", std::string("CMD ") + kCmd, tarball, ref});
  ASSERT_EQ(im.code, 0) << im.err;
  ToolOut p = docker_.Docker({"push", ref});
  ASSERT_EQ(p.code, 0) << p.out << p.err << "\n" << docker_.log();
  std::string digest = PushedDigest(p.out, "1");
  ASSERT_TRUE(digest.starts_with("sha256:")) << p.out;
  EXPECT_EQ(testing::SkopeoDigest(ref), digest);
  EXPECT_EQ(ManifestType(ref), "application/vnd.docker.distribution.manifest.v2+json");
  ToolOut layers = docker_.Docker({"image", "inspect", "-f", "{{json .RootFS.Layers}}", ref});
  ASSERT_EQ(layers.code, 0) << layers.err;
  core::Json diff_ids = core::Json::parse(layers.out, nullptr, false);
  ASSERT_TRUE(diff_ids.is_array()) << layers.out;

  ToolOut pl = Xb({"pull", ref});
  ASSERT_EQ(pl.code, 0) << pl.err;
  EXPECT_EQ(testing::LineAfter(pl.out, "Digest: "), digest) << pl.out;
  core::Json xi = XbInspect(ref);
  EXPECT_EQ(xi["Config"]["Cmd"], core::Json::parse(kCmd));
  EXPECT_EQ(xi["RootFS"]["Layers"], diff_ids);
  EXPECT_EQ(xi["RepoDigests"], core::Json::array({host_ + "/fromdocker@" + digest})) << xi.dump();

  std::string archive = tmp_.Sub("saved.tar");
  ASSERT_NO_FATAL_FAILURE(ExpectSaveReadBySkopeo(ref, diff_ids, archive));
  // And the archive goes back into docker and runs.
  ASSERT_EQ(docker_.Docker({"rmi", ref}).code, 0);
  ToolOut ld = docker_.Docker({"load", "-i", archive});
  ASSERT_EQ(ld.code, 0) << ld.err;
  ToolOut run = docker_.Docker({"run", "--rm", "--network=none", ref});
  EXPECT_EQ(run.code, 0) << run.err << "\n" << docker_.log();
  EXPECT_EQ(run.out, kHello);
}

TEST_F(RegistryInteropTest, XbuildPullsWhatBuildahPushed) {
  auto Buildah = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"buildah", "--storage-driver", "vfs"};
    argv.insert(argv.end(), {"--root", tmp_.Sub("buildah/root")});
    argv.insert(argv.end(), {"--runroot", tmp_.Sub("buildah/run")});
    argv.insert(argv.end(), args.begin(), args.end());
    return Tool(argv);
  };
  ToolOut from = Buildah({"from", "--name", "interop", "scratch"});
  ASSERT_EQ(from.code, 0) << from.err;
  ToolOut cp = Buildah({"copy", "interop", rootfs_ + "/", "/"});
  ASSERT_EQ(cp.code, 0) << cp.err;
  ToolOut cf = Buildah({"config", "--cmd", kCmd, "interop"});
  ASSERT_EQ(cf.code, 0) << cf.err;
  ToolOut cm = Buildah({"commit", "--rm", "interop", "bh:1"});
  ASSERT_EQ(cm.code, 0) << cm.err;

  std::string ref = host_ + "/frombuildah:1";
  std::string digest_file = tmp_.Sub("buildah.digest");
  ToolOut p = Buildah(
      {"push", "--tls-verify=false", "--digestfile", digest_file, "bh:1", "docker://" + ref});
  ASSERT_EQ(p.code, 0) << p.err;
  std::string digest = testing::ReadTestFile(digest_file);
  ASSERT_TRUE(digest.starts_with("sha256:")) << digest;
  EXPECT_EQ(testing::SkopeoDigest(ref), digest);
  EXPECT_EQ(ManifestType(ref), "application/vnd.oci.image.manifest.v1+json");
  core::Json cfg =
      ToolJson({"skopeo", "inspect", "--config", "--tls-verify=false", "docker://" + ref});
  ASSERT_TRUE(cfg.is_object());
  core::Json diff_ids = cfg["rootfs"]["diff_ids"];

  ToolOut pl = Xb({"pull", ref});
  ASSERT_EQ(pl.code, 0) << pl.err;
  EXPECT_EQ(testing::LineAfter(pl.out, "Digest: "), digest) << pl.out;
  core::Json xi = XbInspect(ref);
  EXPECT_EQ(xi["Config"]["Cmd"], core::Json::parse(kCmd));
  EXPECT_EQ(xi["RootFS"]["Layers"], diff_ids);

  ASSERT_NO_FATAL_FAILURE(ExpectSaveReadBySkopeo(ref, diff_ids, tmp_.Sub("saved.tar")));
}

}  // namespace
}  // namespace xbuild

namespace xbuild {
namespace {

// An image built by `xbuild build` (RUN, COPY, WORKDIR, USER, ENV, EXPOSE, HEALTHCHECK), exported
// with -o type=docker, loads into a real dockerd, which runs it and reads the same config.
TEST_F(RegistryInteropTest, XbuildBuiltImageLoadsIntoDockerAndRuns) {
  ASSERT_EQ(Xb({"import", rootfs_, "base:1"}).code, 0);
  std::string ctx = tmp_.Sub("ctx");
  testing::WriteTestFile(ctx, "greeting.txt", "copied from the context\n");
  testing::WriteTestFile(ctx, "Dockerfile",
                         "FROM base:1\n"
                         "ENV WHO=docker\n"
                         "WORKDIR /app\n"
                         "COPY greeting.txt ./\n"
                         "RUN echo \"built for $WHO\" > built.txt && chown -R 1000:1000 /app\n"
                         "USER 1000:1000\n"
                         "EXPOSE 8080/tcp\n"
                         "HEALTHCHECK --interval=5s CMD [\"true\"]\n"
                         "CMD [\"/bin/sh\", \"-c\", \"cat built.txt greeting.txt; id -u; pwd\"]\n");
  std::string archive = tmp_.Sub("built.tar");
  ToolOut b = Xb({"build", "-t", "built:1", "-o", "type=docker,dest=" + archive, ctx});
  ASSERT_EQ(b.code, 0) << b.err;

  ASSERT_NO_FATAL_FAILURE(docker_.Start(tmp_.Sub("docker")));
  ToolOut ld = docker_.Docker({"load", "-i", archive});
  ASSERT_EQ(ld.code, 0) << ld.err << "\n" << docker_.log();
  EXPECT_NE(ld.out.find("Loaded image: built:1"), std::string::npos) << ld.out;
  ToolOut run = docker_.Docker({"run", "--rm", "--network=none", "built:1"});
  ASSERT_EQ(run.code, 0) << run.err << "\n" << docker_.log();
  EXPECT_EQ(run.out, "built for docker\ncopied from the context\n1000\n/app\n");

  ToolOut di = docker_.Docker({"image", "inspect", "built:1"});
  ASSERT_EQ(di.code, 0) << di.err;
  core::Json dj = core::Json::parse(di.out, nullptr, false);
  ASSERT_TRUE(dj.is_array() && dj.size() == 1) << di.out;
  core::Json xi = XbInspect("built:1");
  EXPECT_EQ(dj[0]["Id"], xi["Id"]) << "docker computes the same image ID";
  EXPECT_EQ(dj[0]["Config"]["User"], "1000:1000");
  EXPECT_EQ(dj[0]["Config"]["WorkingDir"], "/app");
  EXPECT_TRUE(dj[0]["Config"]["ExposedPorts"].contains("8080/tcp")) << di.out;
  EXPECT_EQ(dj[0]["Config"]["Healthcheck"]["Test"], core::Json::array({"CMD", "true"})) << di.out;
  EXPECT_EQ(dj[0]["RootFS"]["Layers"], xi["RootFS"]["Layers"]);
}

}  // namespace
}  // namespace xbuild
