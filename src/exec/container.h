// Kept containers (`xbuild run`, `ps`, `start`, `stop`, `rm`...): a record, a writable layer
// and, while it runs, a monitor process. No daemon: every xbuild process reads the records, and
// the monitor of a running container is the only one that changes its run state.
//
// Layout under the state root:
//   containers/<id>/            (id: 64 hex characters, as Docker's)
//     config.json               the record (ContainerRecord below, as JSON), replaced by rename
//                               while `lock` is held, so readers never see half of it
//     lock                      flock'ed around every read-modify-write of config.json
//     monitor.json              {"pid": N, "start": T} (sandbox.h's owner format) of the process
//                               that runs the container now: a detached monitor, or the CLI of a
//                               foreground run; absent when nothing runs it
//     <id>-json.log             its output in Docker's json-file format, one JSON object a line:
//                               {"log":"line\n","stream":"stdout","time":"<RFC3339Nano>"}
//     bundle/                   the OCI bundle while it runs (sandbox.h); runc's state in runc/<id>
//   container-names/<name>      holds the id; a name is claimed by creating it with O_EXCL
//   snapshots/<snapshot>/       the writable layer, held by config.json (Snapshotter::SetHolder),
//                               so that stale-snapshot cleanup keeps it until `rm`
//
// The container dir has no owner.json, so exec::CleanupStale never takes it for a sandbox run's
// bundle, and its runc state has a container dir, so it is not taken for left-over state either.
// A monitor that died (SIGKILL, OOM, reboot) cannot record the end: Refresh() notices a
// "running" record whose monitor is gone, deletes what runc still has (killing the process)
// and records the container exited with 137, as the daemon does for a container it lost.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/log.h"
#include "core/result.h"
#include "exec/network.h"
#include "exec/runc.h"
#include "exec/snapshot.h"
#include "exec/spec.h"
#include "exec/host_options.h"
#include "exec/volume.h"

namespace xbuild::exec {

inline constexpr const char* kStatusCreated = "created";
inline constexpr const char* kStatusRunning = "running";
inline constexpr const char* kStatusExited = "exited";
// The exit code recorded for a container whose monitor died while it ran.
inline constexpr int kLostExitCode = 137;

struct ContainerRecord {
  std::string id;
  std::string name;
  std::string image;     // as the user named it
  std::string image_id;  // the image's config digest ("sha256:...")
  std::string snapshot;  // the writable layer
  std::string created;   // RFC3339Nano
  // What runs: args = entrypoint + cmd (Docker keeps them apart for inspect).
  std::vector<std::string> entrypoint, cmd;
  ProcessSpec process;
  Network network = Network::kHost;
  std::string hostname;
  bool read_only = false;
  bool auto_remove = false;  // --rm
  std::string stop_signal = "SIGTERM";
  int stop_timeout = 10;  // seconds
  // Networks (exec/network.h, container_net.h): the network mode, published ports, --add-host,
  // and the address while it runs on a network. `network` is kBridge on an xbuild network.
  ContainerNet net;
  // Volumes, limits and privileges (volume.h, host_options.h), applied at every start.
  std::vector<MountSpec> mounts;
  HostOptions host;

  // Run state.
  std::string status = kStatusCreated;  // created | running | exited
  int pid = 0;
  int exit_code = 0;
  std::string error;  // why it failed to start, or was lost
  std::string started_at, finished_at;  // RFC3339Nano; empty: never

  // -i, --device (CDI names, cdi.h; --gpus become nvidia.com/gpu names), --runtime (runtimes.h;
  // "" = the default). -t is process.terminal.
  bool open_stdin = false;
  std::vector<std::string> devices;
  std::string runtime;
  bool oom_killed = false;  // the last run ended by the kernel's OOM killer (memory limit)
};

core::Json RecordToJson(const ContainerRecord& r);
core::Result<ContainerRecord> RecordFromJson(const core::Json& j);

// The current time as RFC3339 with nanoseconds, UTC ("2024-05-01T10:00:00.123456789Z").
std::string NowRfc3339Nano();

class Containers {
 public:
  Containers(std::string root, Snapshotter& snaps, std::string runtime = "runc");

  // Claims the name (empty: one made from the id), prepares a writable layer over
  // `base_snapshot` and writes the record (status "created"). Fills r.id, name, snapshot, created.
  core::Status Create(ContainerRecord& r, const std::string& base_snapshot);
  // The record, refreshed (see Refresh).
  core::Result<ContainerRecord> Get(const std::string& id);
  // Every container, refreshed, newest first.
  core::Result<std::vector<ContainerRecord>> List();
  // Every record as stored, not refreshed (for work done inside Refresh).
  core::Result<std::vector<ContainerRecord>> ListRaw() const;
  // A container by full id, name or unique id prefix; kNotFound reads "No such container: REF".
  core::Result<ContainerRecord> Find(const std::string& ref);
  // Read-modify-write of a record under its lock. kNotFound when it was removed.
  core::Status Update(const std::string& id, const std::function<void(ContainerRecord&)>& fn);

  bool MonitorAlive(const std::string& id) const;
  // Records a running container whose monitor is gone as exited (137), after deleting its
  // runc state (which kills what still runs) and bundle; one with --rm is removed instead
  // (kNotFound).
  core::Status Refresh(ContainerRecord& r);

  // Sends `signal` (a name, "SIGTERM"/"TERM", or a number) to the container's process.
  core::Status Signal(const ContainerRecord& r, const std::string& signal);
  // Docker's stop: the stop signal, then SIGKILL when it has not exited after timeout_s.
  core::Status Stop(const ContainerRecord& r, const std::string& signal, int timeout_s);
  // Polls (bounded by timeout_s) until the container no longer runs (or was removed).
  bool WaitStopped(const std::string& id, int timeout_s);
  // Deletes runc state, the writable layer, the directory and the name. The caller makes sure
  // it does not run (Stop, or a dead monitor).
  core::Status Remove(const ContainerRecord& r);

  // Runs the container to its end in this process (a monitor, or a foreground run): mounts
  // its writable layer, records running/exited (pid, times, exit code), copies the output to
  // its log and to `tee` (may be empty), and removes the container after when it has --rm.
  // `on_start` is called once the process runs. Returns its exit code; a failure to start is
  // an error (recorded as exited, code StartFailureCode).
  // `stdin_fd` >= 0: attached stdin (-i; pty.h for -t).
  core::Result<int> Run(const std::string& id, const OutputFn& tee, const std::atomic<bool>* cancel,
                        const std::function<void()>& on_start, core::Logger* log, int stdin_fd = -1);

  // `exec`: one more process in the running container. The user is resolved in its rootfs,
  // env is the container's plus `process.env`, cwd defaults to the container's. Returns the
  // exit code (0 at once when detached); a failure to start is an error (see StartFailureCode).
  core::Result<int> Exec(const ContainerRecord& r, const ProcessSpec& process, bool detached,
                         const OutputFn& output, int stdin_fd = -1);

  // The config's runtimes and CDI spec directories (runtimes.h, cdi.h).
  void Configure(const core::Config& config) { config_ = config; }
  const core::Config& config() const { return config_; }

  std::string Dir(const std::string& id) const;
  std::string LogPath(const std::string& id) const;
  const Runc& runc() const { return runc_; }

 private:
  core::Result<ContainerRecord> Load(const std::string& id) const;
  // A new record is synced with its directory entry; an update replaces one that exists.
  core::Status Save(const ContainerRecord& r, core::Sync sync) const;
  std::string NamePath(const std::string& name) const;
  // The runtime the record names (the default when that name is no longer configured).
  Runc RuncOf(const ContainerRecord& r) const;

  std::string root_;
  Snapshotter& snaps_;
  Runc runc_;
  core::Config config_;
};

// A running container's root directory as its processes see it: /proc/<pid>/root of its
// process, with every mount made in its namespace (tmpfs, volumes, binds, /etc/hosts...).
// The process is checked to be in the container's cgroup through the same /proc/<pid>
// directory fd, so a pid reused by another process (the container having ended) is refused,
// never taken for its root. Paths under it must still be resolved inside it (core/path.h).
core::Result<core::UniqueFd> OpenRunningRoot(const ContainerRecord& r);

// Docker's exit code for a process that could not be started: 127 when the command was not
// found, 126 when it could not be run, else 125 (a failure of the engine itself).
int StartFailureCode(const core::Error& e);

}  // namespace xbuild::exec
