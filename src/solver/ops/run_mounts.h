// The extra mounts of a RUN step (`RUN --mount=...`), made ready for the sandbox and released
// after it:
//   bind    a path of a stage, an image or the context; read-only unless rw (then writes go to
//           a throwaway overlay view and are discarded)
//   cache   a directory kept under <root>/cache-mounts/ across builds, keyed by its id;
//           sharing=shared (any number at once), locked (one at a time: the others wait),
//           private (a busy one makes the next caller use another instance); from= seeds a
//           new cache with a stage's files; uid/gid/mode apply when it is created
//   tmpfs   a fresh tmpfs (size=)
//   secret  the bytes of --secret id=... in a file on the staging tmpfs (never on disk), bound read-only at its
//           target (default /run/secrets/<id>, mode 0400) and/or set as env=NAME
//   ssh     the --ssh socket bound at its target, SSH_AUTH_SOCK pointing at it
//
// Every source path is resolved inside its own root (a stage, the context, the cache dir) to an
// O_PATH fd, and that fd is bind-mounted onto a staging entry under <root>/mounts/run-<id>/ (a
// private tmpfs that also holds the secret files); the runtime binds the staging entry. So a
// symlink placed in a cache by an earlier step (CVE-2024-23651's shape), or swapped in while
// the step runs, cannot point a mount at a host path: what is mounted is what was resolved.
// (Handing runc /proc/<pid>/fd/<n> itself does not work: the runtime's mount namespace cannot
// bind a mount of ours.) The staging dir has an owner file, so a killed build's is unmounted by
// the next command (exec::Snapshotter::CleanupStale). Mount points are created inside the
// rootfs and taken out again by the sandbox (exec::MountStubs).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/image_store.h"
#include "core/fd.h"
#include "exec/snapshot.h"
#include "exec/spec.h"
#include "solver/definition.h"
#include "solver/scheduler.h"

namespace xbuild::solver::ops {

struct RunMountSources {
  std::map<std::string, std::string> secrets;  // --secret: id -> bytes
  std::map<std::string, std::string> ssh;      // --ssh: id -> agent socket path
};

class RunMounts {
 public:
  // op.mounts[1..]: the rootfs (mounts[0]) is the caller's. inputs are the vertex inputs.
  static Result<std::unique_ptr<RunMounts>> Prepare(cache::ImageStore& store, exec::Snapshotter& snaps,
                                                    const ExecOp& op, const std::vector<Ref>& inputs,
                                                    const RunMountSources& sources);
  ~RunMounts();
  RunMounts(const RunMounts&) = delete;
  RunMounts& operator=(const RunMounts&) = delete;

  const std::vector<exec::BindMount>& mounts() const { return mounts_; }
  const std::vector<std::string>& env() const { return env_; }  // "K=V" to add to the process

 private:
  RunMounts(exec::Snapshotter& snaps, std::string mounts_dir) : snaps_(snaps), mounts_dir_(std::move(mounts_dir)) {}
  Status Add(cache::ImageStore& store, const Mount& m, const std::vector<Ref>& inputs, const RunMountSources& sources);
  Status AddBind(const Mount& m, const std::vector<Ref>& inputs);
  Status AddCache(cache::ImageStore& store, const Mount& m, const std::vector<Ref>& inputs);
  Status AddSecret(const Mount& m, const RunMountSources& sources);
  Status AddSsh(const Mount& m, const RunMountSources& sources);
  // A root directory readable for a mount source: the input's snapshot (a stage, an image or the
  // context's selection) through a private view, writable and discarded afterwards.
  Result<std::string> InputRoot(const Mount& m, const std::vector<Ref>& inputs);
  // Binds what fd names onto a new staging entry and returns its path, for the runtime.
  Result<std::string> Stage(core::UniqueFd fd);
  // A new file in the staging tmpfs holding `data` (owner and mode as given).
  Result<std::string> StageFile(const std::string& data, uint32_t uid, uint32_t gid, uint32_t mode);
  Status EnsureStaging();

  exec::Snapshotter& snaps_;
  std::vector<exec::BindMount> mounts_;
  std::vector<std::string> env_;
  std::vector<std::string> views_;     // snapshot views to remove
  std::vector<core::UniqueFd> fds_;    // cache locks
  std::string mounts_dir_;             // <root>/mounts
  std::string staging_;                // <root>/mounts/run-<id>, once made
  int staged_ = 0;
};

// <root>/cache-mounts: where cache mounts live.
std::string CacheMountsDir(const std::string& root);

}  // namespace xbuild::solver::ops
