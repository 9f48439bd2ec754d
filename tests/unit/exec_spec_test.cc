// The sandbox's pure parts, without root: user resolution (confined to the rootfs), the OCI
// spec with Docker's defaults, seccomp profile conversion, the generated /etc files and the
// mount points made in a rootfs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/fs.h"
#include "core/json.h"
#include "exec/etc_files.h"
#include "exec/mount_stubs.h"
#include "exec/seccomp.h"
#include "exec/spec.h"
#include "exec/user.h"
#include "unit/test_util.h"

namespace xbuild::exec {
namespace {

using core::Json;
using testing::TempDir;
using testing::WriteTestFile;

constexpr std::string_view kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "broken:x:notanumber:1::/:/bin/sh\n"
    "app:x:1000:1000:App:/home/app:/bin/sh\n"
    "app:x:1001:1001:second entry, never used:/nope:/bin/sh\n";
constexpr std::string_view kGroup =
    "root:x:0:\n"
    "wheel:x:10:root\n"
    "app:x:1000:\n"
    "staff:x:50:app, daemon\n"
    "extra:x:2000:app\n";

class ExecUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rootfs_ = tmp_.Sub("rootfs");
    WriteTestFile(rootfs_, "etc/passwd", kPasswd);
    WriteTestFile(rootfs_, "etc/group", kGroup);
    Reopen();
  }
  void Reopen() {
    auto fd = core::Open(rootfs_, O_RDONLY | O_DIRECTORY);
    ASSERT_TRUE(fd.ok()) << fd.error().ToString();
    fd_ = std::move(*fd);
  }
  ExecUser Resolve(std::string_view spec) {
    auto r = ResolveUser(fd_.get(), spec);
    EXPECT_TRUE(r.ok()) << "USER " << spec << ": " << r.error().ToString();
    return r.ok() ? *r : ExecUser{};
  }
  std::string ResolveError(std::string_view spec) {
    auto r = ResolveUser(fd_.get(), spec);
    EXPECT_FALSE(r.ok()) << "USER " << spec << " should not resolve";
    return r.ok() ? "" : r.error().message();
  }

  TempDir tmp_;
  std::string rootfs_;
  core::UniqueFd fd_;
};

TEST_F(ExecUserTest, EmptyIsRootWithPasswdEntry) {
  ExecUser u = Resolve("");
  EXPECT_EQ(u.uid, 0u);
  EXPECT_EQ(u.gid, 0u);
  EXPECT_EQ(u.home, "/root");
  EXPECT_EQ(u.additional_gids, std::vector<uint32_t>({0, 10})) << "root's own group, then wheel (it lists root)";
}

TEST_F(ExecUserTest, NameAndUidFindTheSameEntry) {
  for (const char* spec : {"app", "1000"}) {
    ExecUser u = Resolve(spec);
    EXPECT_EQ(u.uid, 1000u) << spec;
    EXPECT_EQ(u.gid, 1000u) << spec;
    EXPECT_EQ(u.home, "/home/app") << "first passwd match wins: " << spec;
    EXPECT_EQ(u.additional_gids, std::vector<uint32_t>({1000, 50, 2000})) << spec;
  }
}

TEST_F(ExecUserTest, ExplicitGroupByNameOrNumberHasNoSupplementaryGroups) {
  ExecUser named = Resolve("app:staff");
  EXPECT_EQ(named.gid, 50u);
  EXPECT_EQ(named.additional_gids, std::vector<uint32_t>({50})) << "the primary group only";
  ExecUser numeric = Resolve("app:4343");
  EXPECT_EQ(numeric.uid, 1000u);
  EXPECT_EQ(numeric.gid, 4343u);
  ExecUser both = Resolve("1000:10");
  EXPECT_EQ(both.gid, 10u);
}

TEST_F(ExecUserTest, UnknownNumericIdsAreUsedAsTheyAre) {
  ExecUser u = Resolve("4242:4343");
  EXPECT_EQ(u.uid, 4242u);
  EXPECT_EQ(u.gid, 4343u);
  EXPECT_EQ(u.home, "/");
  EXPECT_EQ(u.additional_gids, std::vector<uint32_t>({4343}));
}

TEST_F(ExecUserTest, UnknownNamesGiveDockersErrors) {
  EXPECT_EQ(ResolveError("nobody-here"),
            "unable to find user nobody-here: no matching entries in passwd file");
  EXPECT_EQ(ResolveError("app:nogroup-here"),
            "unable to find group nogroup-here: no matching entries in group file");
  EXPECT_EQ(ResolveError("-1"), "uids and gids must be in range 0-2147483647");
  EXPECT_EQ(ResolveError("0:2147483648"), "uids and gids must be in range 0-2147483647");
}

TEST_F(ExecUserTest, NumericIdsWorkWithoutPasswd) {
  ASSERT_TRUE(core::RemoveAll(rootfs_ + "/etc").ok());
  ExecUser u = Resolve("123:456");
  EXPECT_EQ(u.uid, 123u);
  EXPECT_EQ(u.gid, 456u);
  ExecUser root = Resolve("");
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.home, "/");
  ResolveError("app");
}

TEST_F(ExecUserTest, SymlinkedPasswdCannotReadOutsideTheRootfs) {
  // A host-side passwd that the symlinks point at; it must never be read.
  WriteTestFile(tmp_.path(), "outside/passwd", "escapee:x:7777:7777::/escaped:/bin/sh\n");
  for (std::string target : {std::string("../../outside/passwd"), tmp_.Sub("outside/passwd")}) {
    ASSERT_TRUE(core::RemoveAll(rootfs_ + "/etc/passwd").ok());
    ASSERT_EQ(::symlink(target.c_str(), (rootfs_ + "/etc/passwd").c_str()), 0);
    EXPECT_EQ(ResolveError("escapee"),
              "unable to find user escapee: no matching entries in passwd file")
        << "/etc/passwd -> " << target << " was read outside the rootfs";
  }
  // A symlinked /etc directory is resolved inside the rootfs too.
  ASSERT_TRUE(core::RemoveAll(rootfs_ + "/etc").ok());
  ASSERT_EQ(::symlink(tmp_.Sub("outside").c_str(), (rootfs_ + "/etc").c_str()), 0);
  EXPECT_EQ(ResolveError("escapee"),
            "unable to find user escapee: no matching entries in passwd file");
}

// --- seccomp -------------------------------------------------------------------------------

SeccompTarget Amd64(std::vector<std::string> caps = DefaultCapabilities()) {
  return {"amd64", std::move(caps), 5, 10};
}

std::vector<Json> RulesFor(const Json& seccomp, std::string_view name) {
  std::vector<Json> out;
  for (const Json& rule : seccomp["syscalls"]) {
    for (const Json& n : rule["names"]) {
      if (n == name) out.push_back(rule);
    }
  }
  return out;
}

// A kernel without the x32 ABI gets no x32 filter (each architecture costs runc ~7 ms of every
// start to compile); with it, the profile's architectures as they are.
TEST(ExecSeccompTest, X32IsLeftOutWhereTheKernelHasNoX32) {
  Json by_map = Json::parse(R"({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
      {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})");
  Json by_list = Json::parse(R"({"defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_X86"], "syscalls": []})");
  SeccompTarget no_x32 = Amd64();
  no_x32.x32 = false;
  for (const Json* profile : {&by_map, &by_list}) {
    auto with = ConvertSeccompProfile(*profile, Amd64());
    auto without = ConvertSeccompProfile(*profile, no_x32);
    ASSERT_TRUE(with.ok() && without.ok());
    EXPECT_EQ((*with)["architectures"].size(), 3u);
    EXPECT_EQ((*without)["architectures"], Json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  }
}

TEST(ExecSeccompTest, ConvertsFiltersByCapsArchAndKernel) {
  Json profile = Json::parse(R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "archMap": [
      {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
      {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}
    ],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "includes": {}, "excludes": {}},
      {"name": "single", "names": ["listed"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 131080, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
      {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
      {"names": ["s390_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
      {"names": ["not_on_amd64"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
      {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
      {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
       "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
      {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
       "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.8"}},
      {"names": ["future_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.1"}},
      {"names": ["old_workaround"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "4.0"}}
    ]})");
  auto r = ConvertSeccompProfile(profile, Amd64());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  const Json& s = *r;
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(s["defaultErrnoRet"], 38);
  EXPECT_EQ(s["architectures"], Json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_EQ(RulesFor(s, "read").size(), 1u);
  EXPECT_EQ(RulesFor(s, "single").size(), 1u) << "a rule's \"name\" is a rule of its own";
  EXPECT_EQ(RulesFor(s, "listed").size(), 1u);
  ASSERT_EQ(RulesFor(s, "personality").size(), 1u);
  EXPECT_EQ(RulesFor(s, "personality")[0]["args"],
            Json::parse(R"([{"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"}])"));
  EXPECT_EQ(RulesFor(s, "arch_prctl").size(), 1u);
  EXPECT_TRUE(RulesFor(s, "s390_only").empty());
  EXPECT_TRUE(RulesFor(s, "not_on_amd64").empty());
  ASSERT_EQ(RulesFor(s, "chroot").size(), 1u);
  EXPECT_EQ(RulesFor(s, "chroot")[0]["action"], "SCMP_ACT_ALLOW") << "CAP_SYS_CHROOT is a default";
  ASSERT_EQ(RulesFor(s, "bpf").size(), 1u);
  EXPECT_EQ(RulesFor(s, "bpf")[0]["action"], "SCMP_ACT_ERRNO") << "CAP_SYS_ADMIN is not a default";
  EXPECT_EQ(RulesFor(s, "bpf")[0]["errnoRet"], 1);
  EXPECT_EQ(RulesFor(s, "new_call").size(), 1u);
  EXPECT_TRUE(RulesFor(s, "future_call").empty());
  EXPECT_TRUE(RulesFor(s, "old_workaround").empty());

  auto admin = ConvertSeccompProfile(profile, Amd64({"CAP_SYS_ADMIN"}));
  ASSERT_TRUE(admin.ok());
  ASSERT_EQ(RulesFor(*admin, "bpf").size(), 1u);
  EXPECT_EQ(RulesFor(*admin, "bpf")[0]["action"], "SCMP_ACT_ALLOW");
  auto arm = ConvertSeccompProfile(profile, {"arm64", {}, 5, 10});
  ASSERT_TRUE(arm.ok());
  EXPECT_EQ((*arm)["architectures"], Json({"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}));
  EXPECT_EQ(RulesFor(*arm, "not_on_amd64").size(), 1u);
}

TEST(ExecSeccompTest, RejectsBrokenProfiles) {
  EXPECT_FALSE(ConvertSeccompProfile(Json::parse(R"({"syscalls": []})"), Amd64()).ok())
      << "defaultAction is required";
  EXPECT_FALSE(ConvertSeccompProfile(
                   Json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["X"],
                                   "archMap": [{"architecture": "X"}]})"),
                   Amd64())
                   .ok());
  auto bad_arg = ConvertSeccompProfile(Json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW",
                      "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"value": 1}]}]})"),
                                       Amd64());
  ASSERT_FALSE(bad_arg.ok());
  EXPECT_NE(bad_arg.error().message().find("syscalls[0]"), std::string::npos)
      << bad_arg.error().message();
  auto missing = LoadSeccompProfile("/nonexistent/seccomp.json", Amd64());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("golang-github-containers-common"), std::string::npos)
      << "a missing profile should say which package provides it: " << missing.error().message();
}

TEST(ExecSeccompTest, DebiansContainersCommonProfile) {
  const std::string path(kDefaultSeccompProfile);
  if (!core::Exists(path)) GTEST_SKIP() << path << " is missing (golang-github-containers-common)";
  auto r = LoadSeccompProfile(path, Amd64());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  const Json& s = *r;
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(s["defaultErrnoRet"], 38) << "unknown syscalls fail with ENOSYS, as in Docker";
  EXPECT_EQ(s["architectures"], Json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_GT(RulesFor(s, "read").size(), 0u);
  EXPECT_EQ(RulesFor(s, "arch_prctl").size(), 1u);
  EXPECT_TRUE(RulesFor(s, "s390_pci_mmio_read").empty());
  ASSERT_EQ(RulesFor(s, "chroot").size(), 1u);
  EXPECT_EQ(RulesFor(s, "chroot")[0]["action"], "SCMP_ACT_ALLOW");
  // containers-common's profile leaves mount, unshare, ptrace... to the capabilities; what
  // needs a capability Docker does not grant is refused.
  for (const char* denied :
       {"bpf", "kexec_load", "open_by_handle_at", "clock_settime", "init_module", "userfaultfd"}) {
    for (const Json& rule : RulesFor(s, denied)) {
      EXPECT_NE(rule["action"], "SCMP_ACT_ALLOW") << denied << " must not be allowed by default";
    }
  }
  // With CAP_AUDIT_WRITE (a default), socket() is allowed without argument filters.
  std::vector<Json> socket = RulesFor(s, "socket");
  ASSERT_EQ(socket.size(), 1u);
  EXPECT_FALSE(socket[0].contains("args"));
  for (const Json& rule : s["syscalls"]) {
    EXPECT_FALSE(rule.contains("includes") || rule.contains("excludes") || rule.contains("comment"))
        << "not an OCI field: " << rule.dump();
  }
}

// --- the spec ------------------------------------------------------------------------------

class ExecSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteTestFile(tmp_.path(), "seccomp.json",
                  R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                       {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})");
    opts_.rootfs = tmp_.Sub("rootfs");
    opts_.seccomp_profile = tmp_.Sub("seccomp.json");
    process_.args = {"/bin/sh", "-c", "true"};
    user_.home = "/root";
  }
  Json Build() {
    auto r = BuildSpec(process_, user_, opts_, "0123456789abcdef0123");
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : Json();
  }
  static std::vector<std::string> Destinations(const Json& spec) {
    std::vector<std::string> out;
    for (const Json& m : spec["mounts"]) out.push_back(m["destination"]);
    return out;
  }
  static Json MountAt(const Json& spec, std::string_view dest) {
    for (const Json& m : spec["mounts"]) {
      if (m["destination"] == dest) return m;
    }
    return Json();
  }

  TempDir tmp_;
  ProcessSpec process_;
  ExecUser user_;
  SandboxOptions opts_;
};

TEST_F(ExecSpecTest, DockerDefaults) {
  Json s = Build();
  const Json& p = s["process"];
  EXPECT_EQ(p["terminal"], false);
  EXPECT_EQ(p["noNewPrivileges"], true);
  EXPECT_EQ(p["cwd"], "/");
  EXPECT_EQ(p["args"], Json({"/bin/sh", "-c", "true"}));
  Json caps = DefaultCapabilities();
  EXPECT_EQ(caps.size(), 14u);
  for (const char* set : {"bounding", "effective", "permitted"})
    EXPECT_EQ(p["capabilities"][set], caps) << set;
  EXPECT_FALSE(p["capabilities"].contains("inheritable"));
  EXPECT_FALSE(p["capabilities"].contains("ambient"));
  EXPECT_EQ(s["root"], Json({{"path", opts_.rootfs}, {"readonly", false}}));
  EXPECT_EQ(s["hostname"], "0123456789ab");
  const Json& linux = s["linux"];
  EXPECT_EQ(linux["cgroupsPath"], "/xbuild/0123456789abcdef0123");
  EXPECT_EQ(linux["maskedPaths"].size(), 11u);
  EXPECT_NE(std::find(linux["maskedPaths"].begin(), linux["maskedPaths"].end(), "/proc/kcore"),
            linux["maskedPaths"].end());
  EXPECT_EQ(linux["readonlyPaths"],
            Json({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
  EXPECT_EQ(linux["seccomp"]["syscalls"][0]["names"], Json({"read"}));
  EXPECT_EQ(linux["devices"].size(), 6u);
  EXPECT_EQ(linux["resources"]["devices"][0], Json({{"allow", false}, {"access", "rwm"}}));
  std::vector<std::string> ns;
  for (const Json& n : linux["namespaces"]) ns.push_back(n["type"]);
  EXPECT_EQ(std::count(ns.begin(), ns.end(), "network"), 0) << "host network has no netns";
  for (const char* want : {"pid", "ipc", "uts", "mount"}) {
    EXPECT_EQ(std::count(ns.begin(), ns.end(), want), 1) << want;
  }
  EXPECT_EQ(Destinations(s),
            std::vector<std::string>({"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                                      "/dev/mqueue", "/dev/shm"}));
  Json sys_opts = MountAt(s, "/sys")["options"];
  EXPECT_NE(std::find(sys_opts.begin(), sys_opts.end(), "ro"), sys_opts.end());
}

TEST_F(ExecSpecTest, EnvGetsPathAndHomeOnlyWhenUnset) {
  process_.env = {"FOO=bar"};
  EXPECT_EQ(Build()["process"]["env"], Json({std::string(kDefaultPath), "FOO=bar", "HOME=/root"}));
  process_.env = {"PATH=/opt/bin", "HOME=/h"};
  EXPECT_EQ(Build()["process"]["env"], Json({"PATH=/opt/bin", "HOME=/h"}));
}

TEST_F(ExecSpecTest, UserCwdAndOptions) {
  user_ = {1000, 1000, {50, 2000}, "/home/app"};
  process_.cwd = "work/../dir/";
  opts_.readonly_rootfs = true;
  opts_.hostname = "builder";
  opts_.network = Network::kNone;
  Json s = Build();
  EXPECT_EQ(s["process"]["user"],
            Json::parse(R"({"uid":1000,"gid":1000,"additionalGids":[50,2000]})"));
  EXPECT_EQ(s["process"]["cwd"], "/dir");
  EXPECT_EQ(s["root"]["readonly"], true);
  EXPECT_EQ(s["hostname"], "builder");
  bool netns = false;
  for (const Json& n : s["linux"]["namespaces"]) netns = netns || n["type"] == "network";
  EXPECT_TRUE(netns) << "network none needs its own network namespace";
  EXPECT_EQ(s["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
}

TEST_F(ExecSpecTest, BindMountsSortedParentsFirstAndReplaceDefaults) {
  opts_.mounts = {{"/host/a/b", "/data/sub", true},
                  {"/host/a", "/data/", false},
                  {"/host/shm", "/dev/shm", false}};
  Json s = Build();
  std::vector<std::string> dests = Destinations(s);
  EXPECT_EQ(std::count(dests.begin(), dests.end(), "/dev/shm"), 1)
      << "a bind mount replaces the default";
  EXPECT_EQ(MountAt(s, "/dev/shm")["type"], "bind");
  auto data = std::find(dests.begin(), dests.end(), "/data");
  auto sub = std::find(dests.begin(), dests.end(), "/data/sub");
  ASSERT_NE(data, dests.end());
  ASSERT_NE(sub, dests.end());
  EXPECT_LT(data, sub) << "parents are mounted before children";
  EXPECT_EQ(MountAt(s, "/data/sub")["options"], Json({"rbind", "rprivate", "ro"}));
  EXPECT_EQ(MountAt(s, "/data")["options"], Json({"rbind", "rprivate"}));

  opts_.mounts = {{"relative", "/x", false}};
  EXPECT_FALSE(BuildSpec(process_, user_, opts_, "id").ok());
}

TEST_F(ExecSpecTest, InsecureDropsTheSandbox) {
  opts_.security = Security::kInsecure;
  opts_.seccomp_profile = "/nonexistent/profile.json";  // not read at all
  Json s = Build();
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], Json(AllCapabilities()));
  EXPECT_EQ(s["process"]["noNewPrivileges"], false);
  EXPECT_FALSE(s["linux"].contains("seccomp"));
  EXPECT_FALSE(s["linux"].contains("maskedPaths"));
  EXPECT_FALSE(s["linux"].contains("readonlyPaths"));
  Json sys_opts = MountAt(s, "/sys")["options"];
  EXPECT_EQ(std::find(sys_opts.begin(), sys_opts.end(), "ro"), sys_opts.end());
}

TEST_F(ExecSpecTest, MissingSeccompProfileFailsClosed) {
  opts_.seccomp_profile = "/nonexistent/profile.json";
  EXPECT_FALSE(BuildSpec(process_, user_, opts_, "id").ok());
}

// --- /etc files ----------------------------------------------------------------------------

TEST(ExecEtcFilesTest, HostsHasLocalhostHostnameAndExtras) {
  auto hosts = MakeHostsFile("box", {"db:10.0.0.2", "v6=::1"});
  ASSERT_TRUE(hosts.ok());
  EXPECT_TRUE(
      hosts->starts_with("127.0.0.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n"))
      << *hosts;
  EXPECT_NE(hosts->find("10.0.0.2\tdb\n"), std::string::npos) << *hosts;
  EXPECT_NE(hosts->find("::1\tv6\n"), std::string::npos) << *hosts;
  EXPECT_FALSE(MakeHostsFile("box", {"no-address"}).ok());
}

TEST(ExecEtcFilesTest, ResolvConf) {
  const std::string resolved_stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
  const std::string upstream = "nameserver 192.168.1.1\nsearch lan\n";
  EXPECT_EQ(MakeResolvConf(Network::kHost, resolved_stub, upstream), resolved_stub)
      << "host network shares the host's resolver";
  EXPECT_EQ(MakeResolvConf(Network::kNone, resolved_stub, upstream), upstream);
  EXPECT_EQ(MakeResolvConf(Network::kNone, resolved_stub, std::nullopt),
            "options edns0 trust-ad\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  EXPECT_EQ(MakeResolvConf(Network::kNone, std::nullopt, std::nullopt),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  EXPECT_EQ(MakeResolvConf(Network::kHost, std::nullopt, std::nullopt),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
  EXPECT_EQ(MakeResolvConf(Network::kNone, "nameserver 1.1.1.1\nnameserver ::1\n", std::nullopt),
            "nameserver 1.1.1.1\n");
}

// --- mount points and WORKDIR --------------------------------------------------------------

TEST(ExecMountStubsTest, CreatesInsideTheRootAndRemovesOnlyEmptyStubs) {
  TempDir tmp;
  std::string rootfs = tmp.Sub("rootfs");
  WriteTestFile(rootfs, "etc/hostname", "kept\n");
  ASSERT_EQ(::symlink("/elsewhere", (rootfs + "/link").c_str()), 0);
  auto fd = core::Open(rootfs, O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(fd.ok());

  auto created = MkdirsInRoot(fd->get(), "/etc/a/b");
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  EXPECT_EQ(*created, std::vector<std::string>({"/etc/a", "/etc/a/b"}));

  MountStubs stubs(fd->get());
  ASSERT_TRUE(stubs.AddFile("/etc/hostname").ok());
  ASSERT_TRUE(stubs.AddFile("/etc/hosts").ok());
  ASSERT_TRUE(stubs.AddDir("/mnt/cache").ok());
  ASSERT_TRUE(stubs.AddDir("/link/inside").ok()) << "a symlink is followed inside the root";
  EXPECT_TRUE(core::Exists(rootfs + "/etc/hosts"));
  EXPECT_TRUE(core::Exists(rootfs + "/mnt/cache"));
  EXPECT_TRUE(core::Exists(rootfs + "/elsewhere/inside")) << "/link -> /elsewhere in the rootfs";
  WriteTestFile(rootfs, "mnt/written-by-the-run", "x");
  stubs.Remove();
  EXPECT_FALSE(core::Exists(rootfs + "/etc/hosts"));
  EXPECT_FALSE(core::Exists(rootfs + "/mnt/cache"));
  EXPECT_TRUE(core::Exists(rootfs + "/mnt")) << "not empty any more: kept";
  EXPECT_EQ(testing::ReadTestFile(rootfs + "/etc/hostname"), "kept\n")
      << "not created by the stubs";
}

TEST(ExecMountStubsTest, WorkdirIsOwnedByTheUser) {
  TempDir tmp;
  std::string rootfs = tmp.Sub("rootfs");
  ASSERT_TRUE(core::MkdirAll(rootfs + "/work").ok());
  auto fd = core::Open(rootfs, O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(fd.ok());
  uid_t uid = ::geteuid() == 0 ? 1234 : ::geteuid();
  gid_t gid = ::geteuid() == 0 ? 5678 : ::getegid();
  ASSERT_TRUE(MakeWorkdir(fd->get(), "/work/app/src", uid, gid).ok());
  struct stat st;
  ASSERT_EQ(::stat((rootfs + "/work/app/src").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, uid);
  EXPECT_EQ(st.st_gid, gid);
  ASSERT_EQ(::stat((rootfs + "/work").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid()) << "an existing directory keeps its owner";
}

}  // namespace
}  // namespace xbuild::exec
