#include "cli/run_options.h"

#include <algorithm>

#include "core/digest.h"
#include "core/fs.h"
#include "core/path.h"
#include "core/strings.h"
#include "exec/cdi.h"

namespace xbuild::cli {

using core::Code;
using core::Error;

namespace {

core::Result<int64_t> ParseInt(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  long long n = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0') {
    return Error(Code::kInvalidArgument, "invalid argument \"" + value + "\" for \"--" + flag + "\" flag");
  }
  return static_cast<int64_t>(n);
}

core::Status AddMount(std::vector<exec::MountSpec>& mounts, exec::MountSpec m) {
  for (const exec::MountSpec& o : mounts) {
    if (o.target == m.target) return Error(Code::kInvalidArgument, "Duplicate mount point: " + m.target);
  }
  mounts.push_back(std::move(m));
  return core::Ok();
}

}  // namespace

void AddRunOptionFlags(Flags& f) {
  f.List("volume", 'v', "Bind mount a volume");
  f.List("mount", 0, "Attach a filesystem mount to the container");
  f.List("tmpfs", 0, "Mount a tmpfs directory");
  f.String("memory", 'm', "", "Memory limit");
  f.String("memory-swap", 0, "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap");
  f.String("cpus", 0, "", "Number of CPUs");
  f.String("cpu-shares", 'c', "", "CPU shares (relative weight)");
  f.String("pids-limit", 0, "", "Tune container pids limit (set -1 for unlimited)");
  f.List("cap-add", 0, "Add Linux capabilities");
  f.List("cap-drop", 0, "Drop Linux capabilities");
  f.Bool("privileged", 0, "Give extended privileges to this container");
  f.Bool("init", 0, "Run an init inside the container that forwards signals and reaps processes");
  f.List("device", 0, "Add a host device to the container (a path, or a CDI name: vendor/class=name)");
  f.List("security-opt", 0, "Security Options (no-new-privileges, seccomp=unconfined)");
}

core::Status ApplyRunOptionFlags(const Flags& f, const std::set<std::string>& image_volumes,
                                 exec::ContainerRecord& rec) {
  for (const std::string& v : f.GetList("volume")) {
    XB_ASSIGN(exec::MountSpec m, exec::ParseVolumeFlag(v));
    XB_TRY(AddMount(rec.mounts, std::move(m)));
  }
  for (const std::string& v : f.GetList("mount")) {
    XB_ASSIGN(exec::MountSpec m, exec::ParseMountFlag(v));
    XB_TRY(AddMount(rec.mounts, std::move(m)));
  }
  for (const std::string& v : f.GetList("tmpfs")) {
    XB_ASSIGN(exec::MountSpec m, exec::ParseTmpfsFlag(v));
    XB_TRY(AddMount(rec.mounts, std::move(m)));
  }
  for (const exec::MountSpec& m : rec.mounts) {
    if (m.type == "bind" && !core::Exists(m.source)) {
      return Error(Code::kInvalidArgument, "invalid mount config for type \"bind\": bind source path does not exist: " + m.source);
    }
  }
  for (const std::string& v : image_volumes) {
    std::string target = core::CleanPath("/" + v);
    bool mounted = std::any_of(rec.mounts.begin(), rec.mounts.end(),
                               [&](const exec::MountSpec& m) { return m.target == target; });
    if (mounted || target == "/") continue;
    exec::MountSpec m;
    m.type = "volume";
    m.target = target;
    m.anonymous = true;
    rec.mounts.push_back(std::move(m));
  }
  // Anonymous volumes get their names now, so the record names what it uses from the start.
  for (exec::MountSpec& m : rec.mounts) {
    if (m.type == "volume" && m.anonymous && m.source.empty()) {
      XB_ASSIGN(m.source, core::RandomHex(32));
    }
  }

  exec::HostOptions& h = rec.host;
  if (f.Changed("memory")) {
    XB_ASSIGN_CTX(h.resources.memory, exec::ParseRamSize(f.GetString("memory")), "--memory");
  }
  if (f.Changed("memory-swap")) {
    if (f.GetString("memory-swap") == "-1") {
      h.resources.memory_swap = -1;
    } else {
      XB_ASSIGN_CTX(h.resources.memory_swap, exec::ParseRamSize(f.GetString("memory-swap")), "--memory-swap");
    }
  }
  XB_TRY(exec::ValidateResources(h.resources));
  if (f.Changed("cpus")) {
    XB_ASSIGN(h.resources.nano_cpus, exec::ParseCpus(f.GetString("cpus")));
  }
  if (f.Changed("cpu-shares")) {
    XB_ASSIGN(h.resources.cpu_shares, ParseInt("cpu-shares", f.GetString("cpu-shares")));
  }
  if (f.Changed("pids-limit")) {
    XB_ASSIGN(h.resources.pids_limit, ParseInt("pids-limit", f.GetString("pids-limit")));
    if (h.resources.pids_limit < 0) h.resources.pids_limit = -1;
  }
  h.cap_add = f.GetList("cap-add");
  h.cap_drop = f.GetList("cap-drop");
  h.privileged = f.GetBool("privileged");
  if (auto caps = exec::EffectiveCapabilities(h); !caps.ok()) return caps.error();
  h.init = f.GetBool("init");
  for (const std::string& d : f.GetList("device")) {
    if (exec::IsCdiName(d)) continue;  // a CDI device: cmd_run.cc resolves it (exec/cdi.h)
    XB_ASSIGN(exec::DeviceMapping m, exec::ParseDevice(d));
    h.devices.push_back(std::move(m));
  }
  for (const std::string& o : f.GetList("security-opt")) {
    if (o == "no-new-privileges" || o == "no-new-privileges=true" || o == "no-new-privileges:true") {
      h.no_new_privileges = true;
    } else if (o == "seccomp=unconfined" || o == "seccomp:unconfined") {
      h.seccomp_unconfined = true;
    } else if (o == "no-new-privileges=false" || o == "no-new-privileges:false") {
      // xbuild's default already sets it; nothing to do
    } else {
      return Error(Code::kInvalidArgument, "invalid --security-opt: \"" + o + "\" (supported: no-new-privileges, seccomp=unconfined)");
    }
  }
  return core::Ok();
}

}  // namespace xbuild::cli
