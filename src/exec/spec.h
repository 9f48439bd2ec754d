// The OCI runtime spec (a bundle's config.json) for one process in a sandbox, with Docker's
// defaults:
//   - capabilities: Docker's default set in bounding, effective and permitted; none
//     inheritable or ambient (so, as in Docker, a non-root process ends up with an empty
//     effective set after exec and keeps only the bounding set);
//   - seccomp: the profile of seccomp.h (default /usr/share/containers/seccomp.json);
//   - masked and read-only /proc and /sys paths, no-new-privileges;
//   - mounts /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue, /sys (ro),
//     /sys/fs/cgroup (ro), then the caller's bind mounts (parents before children);
//   - devices null, zero, full, random, urandom, tty, and the device cgroup rules Docker
//     allows (deny all, then those, ptmx, pts, console, and mknod of any);
//   - namespaces pid, ipc, uts, mount, plus network for Network::kNone (runc brings up lo)
//     or the one at netns_path for Network::kBridge
//     and cgroup on a cgroup v2 host (Docker's "private" default there; "host" on v1);
//   - cgroupsPath "/xbuild/<id>" (runc's cgroupfs driver; `runc delete` removes it);
//   - env: PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin when the process
//     has no PATH, HOME from the user when it has no HOME.
// Security::kInsecure (RUN --security=insecure) gives every capability xbuild has, no seccomp,
// no masked or read-only paths, rw /sys and cgroups, all devices allowed (host devices are not
// added), and no no-new-privileges.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "exec/cdi.h"
#include "exec/host_options.h"
#include "exec/seccomp.h"
#include "exec/user.h"

namespace xbuild::exec {

// kBridge: the network namespace at SandboxOptions::netns_path, made and set up by xbuild
// (exec/network.h), joined by runc.
enum class Network { kHost, kNone, kBridge };
enum class Security { kSandbox, kInsecure };

struct BindMount {
  std::string source;       // absolute host path (a /proc/<pid>/fd/<n> path pins what it names)
  std::string destination;  // absolute path in the container
  bool readonly = false;
  bool tmpfs = false;        // a fresh tmpfs at destination instead of a bind (source unused)
  int64_t tmpfs_size = 0;    // bytes; 0: the kernel's default
};

struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;  // "K=V"
  std::string cwd = "/";
  std::string user;  // Docker's USER: "", "name", "uid", "name:group", "uid:gid"
  // -t: the process gets a pty (OCI process.terminal; see pty.h).
  bool terminal = false;
};

struct SandboxOptions {
  std::string rootfs;  // absolute path of the prepared root filesystem
  bool readonly_rootfs = false;
  Network network = Network::kHost;
  std::string hostname;                  // empty: the first 12 characters of the container id
  std::vector<std::string> extra_hosts;  // "name:ip" (or "name=ip") lines for /etc/hosts
  std::vector<BindMount> mounts;
  Security security = Security::kSandbox;
  std::string seccomp_profile = std::string(kDefaultSeccompProfile);
  // Networks (exec/network.h): the namespace to join for Network::kBridge.
  std::string netns_path;
  // CDI devices (cdi.h): applied to config.json after Docker's defaults.
  CdiEdits cdi;
  std::vector<Rlimit> rlimits;  // build --ulimit
  int64_t shm_size = 0;         // build --shm-size: /dev/shm in bytes; 0: Docker's 64 MiB
  // `run`'s limits and privileges (host_options.h), applied over the spec BuildSpec makes.
  HostOptions host;
};

inline constexpr std::string_view kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Docker's default capability set ("CAP_CHOWN", ...).
const std::vector<std::string>& DefaultCapabilities();
// Every capability in this process's bounding set (for kInsecure; a runtime cannot grant a
// capability its caller lacks, so this is "all" on a normal host and less inside a container).
const std::vector<std::string>& AllCapabilities();

// The hostname a sandbox gets: opts.hostname, or the id's first 12 characters.
std::string SandboxHostname(const SandboxOptions& opts, std::string_view id);

// The process environment: `env` plus the default PATH and the user's HOME where unset.
std::vector<std::string> ProcessEnv(const std::vector<std::string>& env, const ExecUser& user);

// config.json for container `id`. Reads the seccomp profile in Security::kSandbox mode.
core::Result<core::Json> BuildSpec(const ProcessSpec& process, const ExecUser& user,
                                   const SandboxOptions& opts, std::string_view id);

}  // namespace xbuild::exec
