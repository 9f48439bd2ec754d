// Local volumes (`xbuild volume ...`, `run -v NAME:/path`) and the mounts a container asks for.
//
// Layout under the state root:
//   volumes/<name>/
//     _data/                    the volume's content (what containers mount)
//     volume.json               {"name": N, "driver": "local", "labels": {k: v},
//                                "created": "<RFC3339Nano>", "anonymous": bool}
// A name is [a-zA-Z0-9][a-zA-Z0-9_.-]* (at least two characters, as Docker's); an anonymous
// volume (`run -v /path`, an image's VOLUME) gets 64 hex characters. A volume is created by
// making <name>.tmp-<random> and renaming it into place, so volume.json is there whenever the
// directory is.
//
// A volume is in use while any container record (running or not, containers/*/config.json)
// names it among its mounts; in-use volumes are never removed or pruned. Anonymous volumes go
// with their container on `rm -v` and `run --rm`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "exec/host_options.h"
#include "exec/spec.h"

namespace xbuild::exec {

// A mount as `run -v`/`--mount`/`--tmpfs` asked for it, kept in the container record and
// turned into a BindMount at every start.
struct MountSpec {
  std::string type;    // "bind", "volume" or "tmpfs"
  std::string source;  // bind: absolute host path; volume: the volume's name; tmpfs: ""
  std::string target;  // absolute path in the container
  bool readonly = false;
  int64_t tmpfs_size = 0;  // bytes; 0: the kernel's default
  bool anonymous = false;  // volume: made for this container (removed with it on rm -v / --rm)
};

core::Json MountSpecToJson(const MountSpec& m);
core::Result<MountSpec> MountSpecFromJson(const core::Json& j);
core::Json MountSpecsToJson(const std::vector<MountSpec>& mounts);
core::Result<std::vector<MountSpec>> MountSpecsFromJson(const core::Json& j);

struct VolumeInfo {
  std::string name;
  std::string driver = "local";
  std::map<std::string, std::string> labels;
  std::string created;  // RFC3339Nano
  bool anonymous = false;
  std::string mountpoint;  // <root>/volumes/<name>/_data
};

struct VolumeUsage {
  std::string name;
  uint64_t size = 0;     // bytes of regular files in _data
  int ref_count = 0;     // containers whose record names it
  bool anonymous = false;
};

struct PrunedVolume {
  std::string name;
  uint64_t bytes = 0;
};

class Volumes {
 public:
  explicit Volumes(std::string root);

  // Docker's rule for names; the error names the bad one.
  static core::Status ValidateName(const std::string& name);

  // Creates a volume (name empty: an anonymous one with a random 64-hex name). An existing
  // volume of that name is returned as it is (Docker's create is idempotent).
  core::Result<VolumeInfo> Create(const std::string& name, const std::map<std::string, std::string>& labels,
                                  bool anonymous);
  // kNotFound reads "get NAME: no such volume".
  core::Result<VolumeInfo> Get(const std::string& name) const;
  core::Result<std::vector<VolumeInfo>> List() const;
  // Ids of the containers whose records mount the volume.
  std::vector<std::string> Users(const std::string& name) const;
  // Refused while in use ("volume is in use - [ids]"), whatever `force` says; force only makes
  // a missing volume fine.
  core::Status Remove(const std::string& name, bool force);
  // Unused volumes: anonymous ones only, or every one when `all` (Docker >= 23's prune).
  core::Result<std::vector<PrunedVolume>> Prune(bool all);
  // Every volume with its size and reference count (for `system df`).
  core::Result<std::vector<VolumeUsage>> Usage() const;

  std::string DataDir(const std::string& name) const;

  // The BindMount for a volume mount at start: a volume is created when missing; one that is
  // empty gets what the container's rootfs has at the target first (Docker's copy-up; the
  // rootfs path is resolved inside the rootfs). A bind's source must exist.
  core::Result<BindMount> Resolve(const MountSpec& m, const std::string& rootfs);

  // Removes the anonymous volumes among `mounts` (missing ones are fine; ones another
  // container still uses are kept).
  core::Status RemoveAnonymous(const std::vector<MountSpec>& mounts);

 private:
  std::string dir_;  // <root>/volumes
  std::string containers_dir_;
};

// Docker's `-v` syntax: "/host:/ctr[:ro|rw]" (bind), "name:/ctr[:ro|rw]" (volume), "/ctr"
// (anonymous volume, named later). The error names the bad spec.
core::Result<MountSpec> ParseVolumeFlag(const std::string& spec);
// Docker's `--mount type=bind|volume|tmpfs,source=,target=,readonly,tmpfs-size=`.
core::Result<MountSpec> ParseMountFlag(const std::string& spec);
// `--tmpfs /path[:size=N,...]`.
core::Result<MountSpec> ParseTmpfsFlag(const std::string& spec);
// Docker's RAM sizes: "16m", "1g", "512k", "100b", "1024" (bytes); the error names the value.
core::Result<int64_t> ParseRamSize(const std::string& value);

// What a container's record adds to a run, at every start: its mounts resolved (volumes made
// and copied up, bind sources checked), the host options, --add-host lines, and with --init
// the init binary bound read-only at kInitPath and prepended to the process's args.
core::Status ApplyContainerOptions(const std::string& root, const std::vector<MountSpec>& mounts,
                                   const HostOptions& host, const std::string& rootfs,
                                   SandboxOptions& sandbox, ProcessSpec& process);

// Docker's "Mounts" of `inspect` for one mount.
core::OrderedJson MountInspectJson(const MountSpec& m, const std::string& root);

}  // namespace xbuild::exec
