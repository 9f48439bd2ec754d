// The sandbox executor: runs one process in a prepared root filesystem as an OCI bundle
// handed to runc, with Docker's defaults (spec.h). RUN steps of `xbuild build` and the
// container commands use this one code path.
//
// Layout under the state root:
//   containers/<id>/            the bundle, removed when the run ends
//     config.json               the OCI spec
//     hosts resolv.conf hostname  bind-mounted over /etc/<name> in the sandbox
//     owner.json                {"pid": N, "start": T}: the xbuild process that owns the run
//                               (T: its start time in clock ticks since boot, from
//                               /proc/<pid>/stat, so a reused pid is not taken for it)
//     runc.log                  runc's log (JSON lines), where runtime errors are read from
//   runc/                       runc's state (`runc --root`)
//
// A run always ends with `runc delete --force` and the bundle removed, on success, error and
// cancellation alike. A process killed outright (SIGKILL) cannot clean up: CleanupStale
// removes what such processes left.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "core/log.h"
#include "core/result.h"
#include "exec/runc.h"
#include "exec/spec.h"

namespace xbuild::exec {

struct RunRequest {
  std::string root;  // xbuild's state root
  std::string id;    // container id ([A-Za-z0-9_.+-], at most 64); empty: a random one
  ProcessSpec process;
  SandboxOptions sandbox;
  OutputFn output;                            // may be empty: output is dropped
  const std::atomic<bool>* cancel = nullptr;  // when it turns true, the run is killed
  std::string runtime = "runc";               // binary path or name in PATH
  core::Logger* log = nullptr;                // cleanup failures are warned about here
  // Where the bundle goes. Empty: containers/<id>/ with owner.json, as above. Set (a kept
  // container's, see container.h): that directory, made afresh and without owner.json, since
  // its container's monitor owns it; it is removed at the end all the same.
  std::string bundle;
  // Called with the process's host pid once it runs (runc's --pid-file).
  std::function<void(int pid)> on_start;
  // -i: the process's stdin (copied to its pty with process.terminal); -1: /dev/null.
  int stdin_fd = -1;
  std::vector<std::string> runtime_args;  // before runc's own arguments (config "runtimeArgs")
};

// Runs the process to its end and returns its exit code (128+N when signal N ended it).
// Before the run: the user is resolved in the rootfs, a missing cwd is created (owned by
// that user), and /etc/hosts, /etc/resolv.conf and /etc/hostname are generated in the bundle
// (empty mount points are created in the rootfs where missing, and removed afterwards).
// Cancellation gives kCancelled; a runtime failure an error with runc's message.
core::Result<int> Run(const RunRequest& req);

// Ownership of a directory that lives only as long as one xbuild process (a bundle, an
// extracted build context): <dir>/owner.json as described above. OwnerAlive is false when the
// file is missing or unreadable, or its process is gone (or the pid now names another process).
core::Status WriteOwner(const std::string& dir);
bool OwnerAlive(const std::string& dir);
// The same for an owner file under another name (a kept container's monitor.json).
core::Status WriteOwnerFile(const std::string& path);
bool OwnerFileAlive(const std::string& path);

// Removes what killed xbuild processes left under `root`: bundles whose owner process is
// gone (their container is killed and deleted first), and runc state with no bundle.
// Bundles without owner.json are not this module's and are left alone (so a process killed
// in the few syscalls between creating its bundle directory and writing owner.json leaves an
// empty directory behind).
core::Status CleanupStale(const std::string& root, const std::string& runtime = "runc");

std::string ContainersDir(const std::string& root);  // root/containers
std::string RuncStateDir(const std::string& root);   // root/runc

}  // namespace xbuild::exec
