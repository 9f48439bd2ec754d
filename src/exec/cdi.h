// Container Device Interface (CDI, github.com/cncf-tags/container-device-interface): vendor
// specs that say what a device name like "nvidia.com/gpu=0" adds to a container, and their
// injection into the OCI spec (spec.h).
//
// Spec files: *.json, *.yaml and *.yml in the spec directories (default /etc/cdi, then
// /var/run/cdi; a later directory's device of the same name wins), each one document:
//   cdiVersion: "0.6.0"
//   kind: vendor.example/class                   (vendor "/" class)
//   devices: [{name: dev0, containerEdits: EDITS}]
//   containerEdits: EDITS                        (applied once when any of the kind's devices is)
// EDITS = {env: ["K=V"], deviceNodes: [{path, hostPath, type, major, minor, fileMode,
//          permissions, uid, gid}], mounts: [{hostPath, containerPath, options, type}],
//          hooks: [{hookName, path, args, env, timeout}]}
// A device is named fully qualified, "vendor/class=name"; "=all" names every device of the kind.
//
// With no spec of kind nvidia.com/gpu, NVIDIA GPUs are discovered on the host (DiscoverNvidia)
// into an in-memory spec, as nvidia-ctk would generate it: /dev/nvidiaN devices (named by index
// and by GPU UUID where /proc/driver/nvidia tells it), the control devices, and the driver's
// binaries and libraries bound read-only at their host paths.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/json.h"
#include "core/result.h"

namespace xbuild::exec {

struct CdiDeviceNode {
  std::string path;       // in the container
  std::string host_path;  // empty: path
  std::string type;       // "c", "b", "p"; empty: read from the host node
  int64_t major = -1, minor = -1;  // -1: read from the host node
  std::optional<uint32_t> file_mode, uid, gid;
  std::string permissions;  // cgroup access, "rwm" when empty
};

struct CdiMount {
  std::string host_path, container_path, type;
  std::vector<std::string> options;
};

struct CdiHook {
  std::string hook_name;  // prestart, createRuntime, createContainer, startContainer, poststart, poststop
  std::string path;
  std::vector<std::string> args, env;
  std::optional<int64_t> timeout;
};

struct CdiEdits {
  std::vector<std::string> env;
  std::vector<CdiDeviceNode> device_nodes;
  std::vector<CdiMount> mounts;
  std::vector<CdiHook> hooks;

  bool empty() const { return env.empty() && device_nodes.empty() && mounts.empty() && hooks.empty(); }
  void Append(const CdiEdits& o);
};

struct CdiSpec {
  std::string kind;    // "vendor/class"
  std::string source;  // the file it came from ("" for a discovered one)
  std::map<std::string, CdiEdits> devices;
  CdiEdits edits;  // spec-wide containerEdits
};

inline constexpr const char* kNvidiaGpuKind = "nvidia.com/gpu";

// /etc/cdi and /var/run/cdi.
std::vector<std::string> DefaultCdiSpecDirs();
// The config file's "cdi-spec-dirs" (as Docker's daemon.json), else the defaults.
std::vector<std::string> CdiSpecDirs(const core::Config& config);
// Loads the specs of `dirs` and resolves `names` (nothing is read for none).
core::Result<CdiEdits> ResolveCdiDevices(const std::vector<std::string>& dirs, const std::vector<std::string>& names);
// RUN --device values as BuildKit takes them: "NAME[,required=true|false]"; an unresolvable
// device that is not required is left out.
core::Result<CdiEdits> ResolveRunDevices(const std::vector<std::string>& dirs, const std::vector<std::string>& values);

// Parses one spec document (JSON; YAML when `yaml`); `what` names it in errors.
core::Result<CdiSpec> ParseCdiSpec(std::string_view text, bool yaml, const std::string& what);
// A YAML document (block and flow collections, scalars) as JSON; numbers, true/false and null
// plain scalars become those JSON types.
core::Result<core::Json> YamlToJson(std::string_view text, const std::string& what);

// The NVIDIA devices and driver files of this host under `host_root` ("/" normally), as a
// spec of kind nvidia.com/gpu; kNotFound ("could not select device driver ...") without any.
core::Result<CdiSpec> DiscoverNvidia(const std::string& host_root = "/");

class CdiRegistry {
 public:
  // Reads every spec file of `dirs` (missing directories are skipped; a bad file is an error
  // naming it).
  static core::Result<CdiRegistry> Load(const std::vector<std::string>& dirs);
  void Add(CdiSpec spec);

  // The edits for fully qualified names, in order, with each kind's spec-wide edits once.
  // Unknown names are an error naming them (and the known devices of their kind).
  core::Result<CdiEdits> Resolve(const std::vector<std::string>& names);

 private:
  std::map<std::string, CdiSpec> specs_;  // kind -> merged spec
};

// Whether `name` is a fully qualified CDI name ("vendor/class=name").
bool IsCdiName(std::string_view name);

// Docker's --gpus value ("all", a count, "device=0,2", "\"device=0,2\"", "device=GPU-uuid",
// with optional ",capabilities=..." / "driver=nvidia") as nvidia.com/gpu CDI names.
core::Result<std::vector<std::string>> GpusToCdiNames(const std::string& value);

// Applies the edits to an OCI config.json: env (replacing the same keys), linux.devices and
// their device-cgroup allow rules (major/minor/type read from the host node when missing),
// mounts, and hooks.
core::Status ApplyCdiEdits(const CdiEdits& edits, core::Json& spec);

}  // namespace xbuild::exec
