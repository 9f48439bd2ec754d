// What `run` asks of the host beyond the filesystem: resource limits (--memory, --cpus,
// --pids-limit...), privileges (--cap-add/--cap-drop, --privileged, --security-opt), host
// devices (--device) and --init. Kept in the container record and applied to the OCI spec
// that spec.h builds (ApplyHostOptions), so every start of a container gets the same.
//
// OOM detection: a container with a memory limit runs in cgroup /xbuild/<id>/ctr instead of
// /xbuild/<id>. `runc run` removes its cgroup as soon as the process ends; on cgroup v2 the
// kernel also counts an OOM kill in every ancestor (memory.events' oom_kill), so the parent
// /xbuild/<id>, which runc leaves alone, still says whether the limit killed something. cgroup
// v1 counts it only in the leaf (memory.oom_control), so there the kernel log's OOM line naming
// the cgroup (/dev/kmsg, "oom_memcg=/xbuild/<id>/ctr") tells. RemoveCgroupParent removes the
// parent afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace xbuild::exec {

struct Resources {
  int64_t memory = 0;       // bytes; 0: no limit
  int64_t memory_swap = 0;  // memory + swap, bytes; 0: twice memory (Docker's); -1: unlimited
  int64_t nano_cpus = 0;    // --cpus * 1e9
  int64_t cpu_shares = 0;
  int64_t pids_limit = 0;  // 0: none; -1: unlimited
};

struct DeviceMapping {
  std::string host;       // /dev/... on the host
  std::string container;  // path in the container
  std::string permissions = "rwm";
};

// A process resource limit (`--ulimit nofile=1024:2048`): OCI process.rlimits.
struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0, hard = 0;
};

struct HostOptions {
  Resources resources;
  std::vector<std::string> cap_add, cap_drop;  // "CAP_X" or "ALL"
  bool privileged = false;
  std::vector<DeviceMapping> devices;
  bool init = false;
  bool seccomp_unconfined = false;
  bool no_new_privileges = false;  // --security-opt no-new-privileges (xbuild sets it anyway)
};

core::Json HostOptionsToJson(const HostOptions& h);
HostOptions HostOptionsFromJson(const core::Json& j);

// Patches an OCI spec made by BuildSpec: capabilities, seccomp, masked paths, /sys, devices,
// resources, and the cgroup path of a memory-limited container (see above).
core::Status ApplyHostOptions(const HostOptions& h, core::Json& spec);

// The capability set after --cap-add/--cap-drop over Docker's default, or every one when
// privileged. Unknown names are an error naming them.
core::Result<std::vector<std::string>> EffectiveCapabilities(const HostOptions& h);
// "chown", "CAP_CHOWN", "all" -> "CAP_CHOWN" / "ALL"; the error names an unknown one.
core::Result<std::string> NormalizeCapability(const std::string& name);
// Docker's --cpus ("1.5") as nano CPUs; --device "/dev/x[:/dev/y][:rwm]".
core::Result<int64_t> ParseCpus(const std::string& value);
core::Result<DeviceMapping> ParseDevice(const std::string& spec);
// Docker's --ulimit NAME=SOFT[:HARD] ("nofile=1024:2048"; HARD defaults to SOFT).
core::Result<Rlimit> ParseUlimit(const std::string& spec);
// Memory limits as Docker checks them (memory >= 6MB, swap >= memory, swap needs memory).
core::Status ValidateResources(const Resources& r);

// True when the kernel OOM-killed a process of memory-limited container `id` (read from the
// cgroup parent that outlives runc's cgroup); false when it has no such cgroup.
bool ReadOomKilled(const std::string& id);
// Removes the cgroup parent /xbuild/<id> from every hierarchy (missing is fine).
void RemoveCgroupParent(const std::string& id);

// Where the init binary for --init is (Debian's tini-static as docker-init); "" when none.
std::string InitBinaryPath();
inline constexpr const char* kInitPath = "/sbin/docker-init";

}  // namespace xbuild::exec
