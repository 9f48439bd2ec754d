#include "exec/spec.h"

#include <linux/magic.h>
#include <sys/prctl.h>
#include <sys/statfs.h>

#include <algorithm>

#include "core/path.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Json;
using core::Result;

namespace {

constexpr std::string_view kOciVersion = "1.0.2";

const std::vector<std::string> kMaskedPaths = {
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};

const std::vector<std::string> kReadonlyPaths = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

Json MountJson(std::string_view dest, std::string_view type, std::string_view source,
               std::vector<std::string> options) {
  return {{"destination", dest}, {"type", type}, {"source", source}, {"options", options}};
}

// Docker's default mounts, minus those a caller's mount replaces.
Json DefaultMounts(bool insecure, const std::vector<BindMount>& user, int64_t shm_size) {
  std::string shm = shm_size > 0 ? "size=" + std::to_string(shm_size) : "size=65536k";
  std::vector<std::string> sys = {"nosuid", "noexec", "nodev"};
  if (!insecure) sys.push_back("ro");
  Json all = Json::array({
      MountJson("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      MountJson("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      MountJson("/dev/pts", "devpts", "devpts",
                {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      MountJson("/sys", "sysfs", "sysfs", sys),
      MountJson("/sys/fs/cgroup", "cgroup", "cgroup", sys),
      MountJson("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      MountJson("/dev/shm", "tmpfs", "shm",
                {"nosuid", "noexec", "nodev", "mode=1777", shm}),
  });
  Json out = Json::array();
  for (Json& m : all) {
    bool replaced = std::any_of(user.begin(), user.end(), [&](const BindMount& b) {
      return core::CleanPath(b.destination) == m["destination"];
    });
    if (!replaced) out.push_back(std::move(m));
  }
  return out;
}

size_t Depth(const std::string& path) {
  return static_cast<size_t>(std::count(path.begin(), path.end(), '/'));
}

// The caller's bind mounts, parents before children (as Docker sorts them).
Result<Json> BindMounts(std::vector<BindMount> mounts) {
  for (BindMount& m : mounts) {
    if ((!m.tmpfs && !m.source.starts_with('/')) || !m.destination.starts_with('/')) {
      return Error(Code::kInvalidArgument, "bind mount " + m.source + ":" + m.destination +
                                               ": source and destination must be absolute");
    }
    m.destination = core::CleanPath(m.destination);
  }
  std::stable_sort(mounts.begin(), mounts.end(), [](const BindMount& a, const BindMount& b) {
    return Depth(a.destination) < Depth(b.destination);
  });
  Json out = Json::array();
  for (const BindMount& m : mounts) {
    if (m.tmpfs) {
      std::vector<std::string> options = {"nosuid", "nodev"};
      if (m.tmpfs_size > 0) options.push_back("size=" + std::to_string(m.tmpfs_size));
      if (m.readonly) options.push_back("ro");
      out.push_back(MountJson(m.destination, "tmpfs", "tmpfs", std::move(options)));
      continue;
    }
    std::vector<std::string> options = {"rbind", "rprivate"};
    if (m.readonly) options.push_back("ro");
    out.push_back(MountJson(m.destination, "bind", m.source, std::move(options)));
  }
  return out;
}

Json Device(std::string_view path, int64_t major, int64_t minor) {
  return {{"path", path},     {"type", "c"}, {"major", major}, {"minor", minor},
          {"fileMode", 0666}, {"uid", 0},    {"gid", 0}};
}

Json DeviceRule(bool allow, std::string_view type, int64_t major, int64_t minor,
                std::string_view access) {
  Json r = {{"allow", allow}, {"access", access}};
  if (!type.empty()) r["type"] = type;
  if (major >= 0) r["major"] = major;
  if (minor >= 0) r["minor"] = minor;
  return r;
}

Json Devices() {
  return Json::array({Device("/dev/null", 1, 3), Device("/dev/zero", 1, 5),
                      Device("/dev/full", 1, 7), Device("/dev/random", 1, 8),
                      Device("/dev/urandom", 1, 9), Device("/dev/tty", 5, 0)});
}

// -1 is a wildcard ("*") major or minor.
Json DeviceRules(bool insecure) {
  if (insecure) return Json::array({DeviceRule(true, "", -1, -1, "rwm")});
  return Json::array({
      DeviceRule(false, "", -1, -1, "rwm"),
      DeviceRule(true, "c", -1, -1, "m"),
      DeviceRule(true, "b", -1, -1, "m"),
      DeviceRule(true, "c", 1, 3, "rwm"),
      DeviceRule(true, "c", 1, 5, "rwm"),
      DeviceRule(true, "c", 1, 7, "rwm"),
      DeviceRule(true, "c", 1, 8, "rwm"),
      DeviceRule(true, "c", 1, 9, "rwm"),
      DeviceRule(true, "c", 5, 0, "rwm"),
      DeviceRule(true, "c", 5, 1, "rwm"),
      DeviceRule(true, "c", 5, 2, "rwm"),
      DeviceRule(true, "c", 136, -1, "rwm"),
  });
}

bool UnifiedCgroupHost() {
  struct statfs st;
  return ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

Json Namespaces(Network network, const std::string& netns_path) {
  Json ns = Json::array();
  for (const char* type : {"pid", "ipc", "uts", "mount"}) ns.push_back({{"type", type}});
  if (network == Network::kNone) ns.push_back({{"type", "network"}});
  if (network == Network::kBridge) ns.push_back({{"type", "network"}, {"path", netns_path}});
  if (UnifiedCgroupHost()) ns.push_back({{"type", "cgroup"}});
  return ns;
}

Json UserJson(const ExecUser& user) {
  Json u = {{"uid", user.uid}, {"gid", user.gid}};
  if (!user.additional_gids.empty()) u["additionalGids"] = user.additional_gids;
  return u;
}

Json ProcessJson(const ProcessSpec& process, const ExecUser& user, bool insecure) {
  const std::vector<std::string>& caps = insecure ? AllCapabilities() : DefaultCapabilities();
  std::string cwd = core::CleanPath("/" + process.cwd);
  return {
      {"terminal", process.terminal},
      {"user", UserJson(user)},
      {"args", process.args},
      {"env", ProcessEnv(process.env, user)},
      {"cwd", cwd},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"noNewPrivileges", !insecure},
  };
}

Result<Json> LinuxJson(const SandboxOptions& opts, std::string_view id) {
  bool insecure = opts.security == Security::kInsecure;
  Json linux = {
      {"namespaces", Namespaces(opts.network, opts.netns_path)},
      {"devices", Devices()},
      {"resources", {{"devices", DeviceRules(insecure)}}},
      {"cgroupsPath", "/xbuild/" + std::string(id)},
  };
  if (opts.network != Network::kHost) {
    // Docker sets these in a container's own network namespace: unprivileged ports and ping.
    linux["sysctl"] = {{"net.ipv4.ip_unprivileged_port_start", "0"},
                       {"net.ipv4.ping_group_range", "0 2147483647"}};
  }
  if (insecure) return linux;
  linux["maskedPaths"] = kMaskedPaths;
  linux["readonlyPaths"] = kReadonlyPaths;
  XB_ASSIGN(linux["seccomp"],
            LoadSeccompProfile(opts.seccomp_profile, HostSeccompTarget(DefaultCapabilities())));
  return linux;
}

}  // namespace

const std::vector<std::string>& DefaultCapabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE",
  };
  return caps;
}

const std::vector<std::string>& AllCapabilities() {
  // capabilities(7) in number order, 0 to 40 (CAP_CHECKPOINT_RESTORE, Linux 5.9).
  static const std::vector<std::string> known = {
      "CAP_CHOWN",
      "CAP_DAC_OVERRIDE",
      "CAP_DAC_READ_SEARCH",
      "CAP_FOWNER",
      "CAP_FSETID",
      "CAP_KILL",
      "CAP_SETGID",
      "CAP_SETUID",
      "CAP_SETPCAP",
      "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE",
      "CAP_NET_BROADCAST",
      "CAP_NET_ADMIN",
      "CAP_NET_RAW",
      "CAP_IPC_LOCK",
      "CAP_IPC_OWNER",
      "CAP_SYS_MODULE",
      "CAP_SYS_RAWIO",
      "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE",
      "CAP_SYS_PACCT",
      "CAP_SYS_ADMIN",
      "CAP_SYS_BOOT",
      "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE",
      "CAP_SYS_TIME",
      "CAP_SYS_TTY_CONFIG",
      "CAP_MKNOD",
      "CAP_LEASE",
      "CAP_AUDIT_WRITE",
      "CAP_AUDIT_CONTROL",
      "CAP_SETFCAP",
      "CAP_MAC_OVERRIDE",
      "CAP_MAC_ADMIN",
      "CAP_SYSLOG",
      "CAP_WAKE_ALARM",
      "CAP_BLOCK_SUSPEND",
      "CAP_AUDIT_READ",
      "CAP_PERFMON",
      "CAP_BPF",
      "CAP_CHECKPOINT_RESTORE",
  };
  static const std::vector<std::string> bounding = [] {
    std::vector<std::string> caps;
    for (size_t i = 0; i < known.size(); ++i) {
      if (::prctl(PR_CAPBSET_READ, static_cast<unsigned long>(i), 0, 0, 0) == 1) {
        caps.push_back(known[i]);
      }
    }
    return caps;
  }();
  return bounding;
}

std::string SandboxHostname(const SandboxOptions& opts, std::string_view id) {
  return opts.hostname.empty() ? std::string(id.substr(0, 12)) : opts.hostname;
}

std::vector<std::string> ProcessEnv(const std::vector<std::string>& env, const ExecUser& user) {
  auto has = [&](std::string_view prefix) {
    return std::any_of(env.begin(), env.end(),
                       [&](const std::string& e) { return e.starts_with(prefix); });
  };
  std::vector<std::string> out;
  if (!has("PATH=")) out.emplace_back(kDefaultPath);
  out.insert(out.end(), env.begin(), env.end());
  if (!has("HOME=")) out.push_back("HOME=" + user.home);
  return out;
}

Result<Json> BuildSpec(const ProcessSpec& process, const ExecUser& user, const SandboxOptions& opts,
                       std::string_view id) {
  if (process.args.empty()) return Error(Code::kInvalidArgument, "no command to run");
  if (!opts.rootfs.starts_with('/')) {
    return Error(Code::kInvalidArgument, "rootfs " + opts.rootfs + " is not an absolute path");
  }
  bool insecure = opts.security == Security::kInsecure;
  XB_ASSIGN(Json binds, BindMounts(opts.mounts));
  Json mounts = DefaultMounts(insecure, opts.mounts, opts.shm_size);
  for (Json& m : binds) mounts.push_back(std::move(m));
  XB_ASSIGN(Json linux, LinuxJson(opts, id));
  Json proc = ProcessJson(process, user, insecure);
  for (const Rlimit& r : opts.rlimits) {
    proc["rlimits"].push_back({{"type", r.type}, {"soft", r.soft}, {"hard", r.hard}});
  }
  return Json{
      {"ociVersion", kOciVersion},
      {"process", std::move(proc)},
      {"root", {{"path", opts.rootfs}, {"readonly", opts.readonly_rootfs}}},
      {"hostname", SandboxHostname(opts, id)},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux)},
  };
}

}  // namespace xbuild::exec
