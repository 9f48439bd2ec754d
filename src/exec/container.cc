#include "exec/container.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <thread>

#include "core/digest.h"
#include "core/dir.h"
#include "core/fs.h"
#include "core/json.h"
#include "exec/container_log.h"
#include "exec/container_net.h"
#include "exec/pty.h"
#include "exec/runtimes.h"
#include "exec/sandbox.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Json;
using core::Result;
using core::Status;

namespace {

constexpr const char* kRecordFile = "config.json";
constexpr const char* kMonitorFile = "monitor.json";
constexpr size_t kMaxRecordSize = 1 << 20;
constexpr auto kPollInterval = std::chrono::milliseconds(50);

// Docker's rule for container names.
Status ValidateName(const std::string& name) {
  bool ok = name.size() >= 2 && name.size() <= 128 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (ok) return core::Ok();
  return Error(Code::kInvalidArgument,
               "Invalid container name (" + name + "), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
}

bool IsHexId(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f'); });
}

std::vector<std::string> ContainerIds(const std::string& dir) {
  std::vector<std::string> ids;
  for (std::string& name : core::DirNames(dir)) {
    // Only kept containers: sandbox runs' bundles share the directory; their config.json is an
    // OCI spec, not a record, and they have an owner.json (sandbox.h), which records never do.
    std::string sub = core::JoinPath(dir, name);
    if (IsHexId(name) && name.size() == 64 && core::Exists(core::JoinPath(sub, kRecordFile)) &&
        !core::Exists(core::JoinPath(sub, "owner.json"))) {
      ids.push_back(std::move(name));
    }
  }
  return ids;
}

Json Strings(const std::vector<std::string>& v) { return Json(v); }

}  // namespace

std::string NowRfc3339Nano() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09ldZ", static_cast<long>(ts.tv_nsec));
  return buf;
}

Json RecordToJson(const ContainerRecord& r) {
  Json j{{"id", r.id},
              {"name", r.name},
              {"image", r.image},
              {"image_id", r.image_id},
              {"snapshot", r.snapshot},
              {"created", r.created},
              {"entrypoint", Strings(r.entrypoint)},
              {"cmd", Strings(r.cmd)},
              {"args", Strings(r.process.args)},
              {"env", Strings(r.process.env)},
              {"cwd", r.process.cwd},
              {"user", r.process.user},
              {"network", r.network == Network::kNone ? "none" : r.network == Network::kBridge ? "bridge" : "host"},
              {"hostname", r.hostname},
              {"read_only", r.read_only},
              {"auto_remove", r.auto_remove},
              {"stop_signal", r.stop_signal},
              {"stop_timeout", r.stop_timeout},
              {"status", r.status},
              {"pid", r.pid},
              {"exit_code", r.exit_code},
              {"error", r.error},
              {"started_at", r.started_at},
              {"finished_at", r.finished_at},
              // -i/-t, --device/--gpus, --runtime
              {"tty", r.process.terminal},
              {"open_stdin", r.open_stdin},
              {"devices", Strings(r.devices)},
              {"runtime", r.runtime},
              // Volumes, limits and privileges (volume.h, host_options.h).
              {"mounts", MountSpecsToJson(r.mounts)},
              {"host", HostOptionsToJson(r.host)},
              {"oom_killed", r.oom_killed}};
  j["net"] = ContainerNetToJson(r.net);  // networks (exec/network.h)
  return j;
}

// A --rm container is removed when it ends, and a crash ends it too: what its files would keep
// across a power loss is of no use, so they are written without fsync (each costs 0.2-1 ms of
// every `run --rm`). A half-written record after a power loss is skipped by List.
core::Sync EphemeralSync(const ContainerRecord& r, core::Sync sync) {
  return r.auto_remove ? core::Sync::kNone : sync;
}

Result<ContainerRecord> RecordFromJson(const Json& j) {
  ContainerRecord r;
  XB_ASSIGN(r.id, core::GetString(j, "id"));
  XB_ASSIGN(r.name, core::GetString(j, "name"));
  XB_ASSIGN(r.snapshot, core::GetString(j, "snapshot"));
  XB_ASSIGN(r.status, core::GetString(j, "status"));
  r.image = core::GetOptString(j, "image").value_or("");
  r.image_id = core::GetOptString(j, "image_id").value_or("");
  r.created = core::GetOptString(j, "created").value_or("");
  r.entrypoint = core::GetStringList(j, "entrypoint");
  r.cmd = core::GetStringList(j, "cmd");
  r.process.args = core::GetStringList(j, "args");
  r.process.env = core::GetStringList(j, "env");
  r.process.cwd = core::GetOptString(j, "cwd").value_or("/");
  r.process.user = core::GetOptString(j, "user").value_or("");
  r.network = core::GetOptString(j, "network") == "none" ? Network::kNone : Network::kHost;
  r.hostname = core::GetOptString(j, "hostname").value_or("");
  r.read_only = j.value("read_only", false);
  r.auto_remove = j.value("auto_remove", false);
  r.stop_signal = core::GetOptString(j, "stop_signal").value_or("SIGTERM");
  r.stop_timeout = j.value("stop_timeout", 10);
  r.pid = j.value("pid", 0);
  r.exit_code = j.value("exit_code", 0);
  r.error = core::GetOptString(j, "error").value_or("");
  r.started_at = core::GetOptString(j, "started_at").value_or("");
  r.finished_at = core::GetOptString(j, "finished_at").value_or("");
  // Networks (exec/network.h): records without "net" are host or none.
  r.net = j.contains("net") ? ContainerNetFromJson(j["net"]) : ContainerNet();
  if (!j.contains("net")) r.net.mode = r.network == Network::kNone ? "none" : "host";
  if (IsNetworkMode(r.net.mode)) r.network = Network::kBridge;
  // -i/-t, --device/--gpus, --runtime
  r.process.terminal = j.value("tty", false);
  r.open_stdin = j.value("open_stdin", false);
  r.devices = core::GetStringList(j, "devices");
  r.runtime = core::GetOptString(j, "runtime").value_or("");
  // Volumes, limits and privileges (volume.h, host_options.h).
  XB_ASSIGN(r.mounts, MountSpecsFromJson(j.value("mounts", Json::array())));
  r.host = HostOptionsFromJson(j.value("host", Json::object()));
  r.oom_killed = j.value("oom_killed", false);
  return r;
}

Containers::Containers(std::string root, Snapshotter& snaps, std::string runtime)
    : root_(std::move(root)), snaps_(snaps), runc_(std::move(runtime), RuncStateDir(root_)) {}

std::string Containers::Dir(const std::string& id) const { return core::JoinPath(ContainersDir(root_), id); }
std::string Containers::LogPath(const std::string& id) const { return core::JoinPath(Dir(id), id + "-json.log"); }
std::string Containers::NamePath(const std::string& name) const {
  return core::JoinPath(core::JoinPath(root_, "container-names"), name);
}

Status Containers::Create(ContainerRecord& r, const std::string& base_snapshot) {
  XB_ASSIGN(r.id, core::RandomHex(32));
  if (r.name.empty()) r.name = "xb_" + r.id.substr(0, 12);
  XB_TRY(ValidateName(r.name));
  XB_TRY(core::MkdirAll(core::Dirname(NamePath(r.name)), 0700));
  int fd = ::open(NamePath(r.name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    auto other = core::ReadFile(NamePath(r.name), 128);
    return Error(Code::kAlreadyExists, "Conflict. The container name \"/" + r.name + "\" is already in use by container \"" +
                                           (other.ok() ? *other : std::string("?")) +
                                           "\". You have to remove (or rename) that container to be able to reuse that name.");
  }
  if (fd < 0) return core::SysError("claim container name " + r.name);
  core::UniqueFd name_fd(fd);
  std::string dir = Dir(r.id);
  bool done = false;
  core::ScopeGuard undo([&] {
    if (done) return;
    if (!r.snapshot.empty()) (void)snaps_.Remove(r.snapshot);
    (void)core::RemoveAll(dir);
    ::unlink(NamePath(r.name).c_str());
  });
  XB_TRY(core::WriteAll(name_fd.get(), r.id));
  XB_TRY(core::MkdirAll(ContainersDir(root_), 0700));
  if (::mkdir(dir.c_str(), 0700) != 0) return core::SysError("mkdir " + dir);
  XB_ASSIGN(r.snapshot, snaps_.Prepare(base_snapshot));
  r.created = NowRfc3339Nano();
  r.status = kStatusCreated;
  XB_TRY(Save(r, core::Sync::kFull));
  // From here the record holds the layer; this process no longer needs to live for it to stay.
  XB_TRY(snaps_.SetHolder(r.snapshot, core::JoinPath(dir, kRecordFile),
                          EphemeralSync(r, core::Sync::kFull)));
  done = true;
  return core::Ok();
}

Result<ContainerRecord> Containers::Load(const std::string& id) const {
  auto text = core::ReadFile(core::JoinPath(Dir(id), kRecordFile), kMaxRecordSize);
  if (!text.ok() && text.error().sys_errno() == ENOENT) return Error(Code::kNotFound, "No such container: " + id);
  if (!text.ok()) return std::move(text).error();
  XB_ASSIGN(Json j, core::ParseJson(*text, "container " + id));
  return RecordFromJson(j);
}

Status Containers::Save(const ContainerRecord& r, core::Sync sync) const {
  return core::WriteFileAtomic(core::JoinPath(Dir(r.id), kRecordFile), RecordToJson(r).dump(2),
                               0600, EphemeralSync(r, sync));
}

Status Containers::Update(const std::string& id, const std::function<void(ContainerRecord&)>& fn) {
  auto lock = core::Open(core::JoinPath(Dir(id), "lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (!lock.ok() && lock.error().sys_errno() == ENOENT) return Error(Code::kNotFound, "No such container: " + id);
  if (!lock.ok()) return std::move(lock).error();
  while (::flock(lock->get(), LOCK_EX) != 0) {
    if (errno != EINTR) return core::SysError("lock container " + id);
  }
  XB_ASSIGN(ContainerRecord r, Load(id));
  Json before = RecordToJson(r);
  fn(r);
  if (RecordToJson(r) == before) return core::Ok();  // e.g. the first start of a new container
  return Save(r, core::Sync::kData);
}

Runc Containers::RuncOf(const ContainerRecord& r) const {
  auto rt = SelectRuntime(config_, r.runtime);
  if (!rt.ok()) return runc_;
  return Runc(rt->path, RuncStateDir(root_), rt->args);
}

bool Containers::MonitorAlive(const std::string& id) const {
  return OwnerFileAlive(core::JoinPath(Dir(id), kMonitorFile));
}

Status Containers::Refresh(ContainerRecord& r) {
  std::string monitor_file = core::JoinPath(Dir(r.id), kMonitorFile);
  // A monitor writes its file before it makes anything and removes it last, so no file and a
  // record that does not say running is a container nobody has started (or one that ended
  // cleanly): nothing to do, and nothing of a monitor starting right now is touched.
  bool has_monitor_file = core::Exists(monitor_file);
  if (!has_monitor_file && r.status != kStatusRunning) return core::Ok();
  if (OwnerFileAlive(monitor_file)) return core::Ok();
  // Nobody runs it: whatever runc still has is a lost process, and the bundle a leftover.
  XB_TRY(RuncOf(r).Delete(r.id));
  XB_TRY(core::RemoveAll(core::JoinPath(Dir(r.id), "bundle")));
  XB_TRY(ReleaseContainerNetwork(root_, *this, r));  // networks: CNI DEL, its namespace
  ::unlink(monitor_file.c_str());
  if (r.status != kStatusRunning) return core::Ok();
  std::string now = NowRfc3339Nano();
  XB_TRY(Update(r.id, [&](ContainerRecord& rec) {
    if (rec.status != kStatusRunning) return;
    rec.status = kStatusExited;
    rec.exit_code = kLostExitCode;
    rec.pid = 0;
    rec.finished_at = now;
    rec.error = "its monitor process died";
  }));
  if (r.auto_remove) {
    XB_TRY(Remove(r));  // what its monitor would have done
    XB_TRY(Volumes(root_).RemoveAnonymous(r.mounts));
    return Error(Code::kNotFound, "No such container: " + r.id);
  }
  XB_ASSIGN(r, Load(r.id));
  return core::Ok();
}

Result<ContainerRecord> Containers::Get(const std::string& id) {
  XB_ASSIGN(ContainerRecord r, Load(id));
  XB_TRY(Refresh(r));
  return r;
}

Result<std::vector<ContainerRecord>> Containers::List() {
  std::vector<ContainerRecord> out;
  for (const std::string& id : ContainerIds(ContainersDir(root_))) {
    auto r = Get(id);
    if (!r.ok() && r.error().code() == Code::kNotFound) continue;  // removed meanwhile
    // A --rm container's record is not synced (EphemeralSync): a power loss can leave it empty.
    if (!r.ok() && r.error().code() == Code::kInvalidArgument) continue;
    if (!r.ok()) return std::move(r).error();
    out.push_back(std::move(r).value());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.created > b.created; });
  return out;
}

Result<std::vector<ContainerRecord>> Containers::ListRaw() const {
  std::vector<ContainerRecord> out;
  for (const std::string& id : ContainerIds(ContainersDir(root_))) {
    auto r = Load(id);
    if (r.ok()) out.push_back(std::move(r).value());
  }
  return out;
}

Result<ContainerRecord> Containers::Find(const std::string& ref_in) {
  std::string ref = ref_in.starts_with('/') ? ref_in.substr(1) : ref_in;  // Docker's "/name"
  if (ValidateName(ref).ok()) {
    auto id = core::ReadFile(NamePath(ref), 128);
    if (id.ok() && core::Exists(core::JoinPath(Dir(*id), kRecordFile))) return Get(*id);
  }
  if (IsHexId(ref)) {
    std::vector<std::string> matches;
    for (const std::string& id : ContainerIds(ContainersDir(root_))) {
      if (id.starts_with(ref)) matches.push_back(id);
    }
    if (matches.size() == 1) return Get(matches[0]);
    if (matches.size() > 1) {
      return Error(Code::kInvalidArgument, "multiple IDs found with provided prefix: " + ref);
    }
  }
  return Error(Code::kNotFound, "No such container: " + ref_in);
}

Status Containers::Signal(const ContainerRecord& r, const std::string& signal) {
  if (r.status != kStatusRunning) {
    return Error(Code::kFailedPrecondition, "container " + r.id + " is not running");
  }
  return RuncOf(r).Kill(r.id, signal);
}

bool Containers::WaitStopped(const std::string& id, int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    auto r = Get(id);
    // Stopped: gone (--rm), or not running and its monitor done (layer unmounted, record final).
    if (!r.ok() || (r->status != kStatusRunning && !MonitorAlive(id))) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

Status Containers::Stop(const ContainerRecord& r, const std::string& signal, int timeout_s) {
  if (r.status == kStatusRunning) {
    // The process may end between our read and the kill: that is a stop too.
    (void)RuncOf(r).Kill(r.id, signal);
    if (WaitStopped(r.id, std::max(timeout_s, 0))) return core::Ok();
    (void)RuncOf(r).Kill(r.id, "KILL");
  }
  constexpr int kKillWaitSeconds = 30;
  if (WaitStopped(r.id, kKillWaitSeconds)) return core::Ok();
  return Error(Code::kUnavailable, "container " + r.id + " did not stop after SIGKILL");
}

Status Containers::Remove(const ContainerRecord& r) {
  XB_TRY(RuncOf(r).Delete(r.id));
  XB_TRY(ReleaseContainerNetwork(root_, *this, r));  // networks: nothing unless it was lost
  if (r.host.resources.memory > 0) RemoveCgroupParent(r.id);  // one a lost monitor left (host_options.h)
  XB_TRY_CTX(snaps_.Remove(r.snapshot), "remove the writable layer of " + r.id);
  XB_TRY(core::RemoveAll(Dir(r.id)));
  auto owner = core::ReadFile(NamePath(r.name), 128);
  if (owner.ok() && *owner == r.id) ::unlink(NamePath(r.name).c_str());
  return core::Ok();
}

Result<int> Containers::Run(const std::string& id, const OutputFn& tee, const std::atomic<bool>* cancel,
                            const std::function<void()>& on_start, core::Logger* log, int stdin_fd) {
  XB_ASSIGN(ContainerRecord r, Load(id));
  std::string monitor_file = core::JoinPath(Dir(id), kMonitorFile);
  XB_TRY(WriteOwnerFile(monitor_file));
  core::ScopeGuard drop_monitor([&] { ::unlink(monitor_file.c_str()); });
  XB_TRY(Update(id, [](ContainerRecord& rec) {
    rec.status = kStatusCreated;  // until the process runs
    rec.error.clear();
    rec.exit_code = 0;
    rec.finished_at.clear();
    rec.oom_killed = false;
  }));
  XB_ASSIGN(JsonFileLog out_log, JsonFileLog::Open(LogPath(id)));
  auto rootfs = snaps_.Mount(r.snapshot, r.auto_remove);
  Result<int> rc = rootfs.ok() ? Result<int>(0) : Result<int>(rootfs.error());
  // --runtime and --device/--gpus (runtimes.h, cdi.h): resolved at each start; a failure is a
  // failed start.
  auto runtime = SelectRuntime(config_, r.runtime);
  auto cdi = ResolveCdiDevices(CdiSpecDirs(config_), r.devices);
  if (rc.ok() && !runtime.ok()) rc = runtime.error();
  if (rc.ok() && !cdi.ok()) rc = cdi.error();
  if (rootfs.ok() && rc.ok()) {
    RunRequest req;
    req.root = root_;
    req.id = id;
    req.bundle = core::JoinPath(Dir(id), "bundle");
    req.process = r.process;
    req.sandbox.rootfs = *rootfs;
    req.sandbox.readonly_rootfs = r.read_only;
    req.sandbox.network = r.network;
    req.sandbox.hostname = r.hostname;
    // Volumes, limits and privileges (volume.h, host_options.h).
    Status options = ApplyContainerOptions(root_, r.mounts, r.host, *rootfs, req.sandbox, req.process);
    req.output = [&](int stream, std::string_view data) {
      out_log.Write(stream, data);
      if (tee) tee(stream, data);
    };
    req.cancel = cancel;
    req.runtime = runtime->path;
    req.runtime_args = runtime->args;
    req.sandbox.cdi = *cdi;
    req.stdin_fd = r.open_stdin ? stdin_fd : -1;
    req.log = log;
    // Networks (container_net.h): its namespace, CNI, published ports; undone after the run.
    ContainerNetworking networking(root_, *this, log);
    Status attached = networking.Attach(r, req.sandbox);
    req.on_start = [&](int pid) {
      std::string now = NowRfc3339Nano();
      Status s = Update(id, [&](ContainerRecord& rec) {
        rec.status = kStatusRunning;
        rec.pid = pid;
        rec.started_at = now;
      });
      if (!s.ok() && log) log->Warn(s.error().ToString());
      networking.Started();
      if (on_start) on_start();
    };
    if (!options.ok()) {
      rc = options.error();
    } else {
      rc = attached.ok() ? exec::Run(req) : Result<int>(attached.error());
    }
    networking.Detach();
    out_log.Flush();
  }
  bool memory_limited = r.host.resources.memory > 0;
  bool oom_killed = memory_limited && ReadOomKilled(id);
  if (memory_limited) RemoveCgroupParent(id);
  int code = rc.ok() ? *rc : rc.error().code() == Code::kCancelled ? kLostExitCode : StartFailureCode(rc.error());
  if (rootfs.ok()) {
    Status s = snaps_.Unmount(r.snapshot);
    if (!s.ok() && log) log->Warn(s.error().ToString());
  }
  if (r.auto_remove) {
    // --rm: once it is gone there is no record to write the exit into, nor anyone to read it.
    Status s = Remove(r);
    if (s.ok()) s = Volumes(root_).RemoveAnonymous(r.mounts);
    if (s.ok()) return rc;
    if (log) log->Warn("remove container " + id + ": " + s.error().ToString());
  }
  std::string now = NowRfc3339Nano();
  Status recorded = Update(id, [&](ContainerRecord& rec) {
    rec.status = kStatusExited;
    rec.pid = 0;
    rec.exit_code = code;
    rec.finished_at = now;
    if (rec.started_at.empty()) rec.started_at = now;
    rec.error = rc.ok() ? "" : rc.error().message();
    rec.oom_killed = oom_killed;
  });
  if (!recorded.ok() && log && !(r.auto_remove && recorded.error().code() == Code::kNotFound)) {
    log->Warn(recorded.error().ToString());
  }
  return rc;
}

Result<int> Containers::Exec(const ContainerRecord& r, const ProcessSpec& process, bool detached,
                             const OutputFn& output, int stdin_fd) {
  if (r.status != kStatusRunning) {
    return Error(Code::kFailedPrecondition, "container " + r.id + " is not running");
  }
  // The rootfs as the monitor mounted it (Snapshotter::Mount's target).
  std::string rootfs = core::JoinPath(core::JoinPath(root_, "mounts"), r.snapshot);
  XB_ASSIGN(core::UniqueFd rootfs_fd, core::Open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  XB_ASSIGN(ExecUser user, ResolveUser(rootfs_fd.get(), process.user.empty() ? r.process.user : process.user));
  Runc::ExecProcess p;
  p.args = process.args;
  std::vector<std::string> env = r.process.env;
  for (const std::string& e : process.env) {
    std::string key = e.substr(0, e.find('=') + 1);
    std::erase_if(env, [&](const std::string& old) { return old.starts_with(key); });
    env.push_back(e);
  }
  p.env = ProcessEnv(env, user);
  p.cwd = process.cwd.empty() ? r.process.cwd : process.cwd;
  p.user = std::to_string(user.uid) + ":" + std::to_string(user.gid);
  p.additional_gids = user.additional_gids;
  p.detached = detached;
  p.stdin_fd = stdin_fd;  // -i
  p.tty = process.terminal;  // -t
  p.bundle_config = core::JoinPath(core::JoinPath(Dir(r.id), "bundle"), "config.json");
  XB_ASSIGN(std::string tag, core::RandomHex(8));
  std::string log = core::JoinPath(Dir(r.id), "exec-" + tag + ".log");
  core::ScopeGuard drop_log([&] { ::unlink(log.c_str()); });
  return RuncOf(r).Exec(r.id, p, log, output);
}

Result<core::UniqueFd> OpenRunningRoot(const ContainerRecord& r) {
  if (r.status != kStatusRunning || r.pid <= 0) {
    return Error(Code::kFailedPrecondition, "container " + r.id + " is not running");
  }
  std::string proc = "/proc/" + std::to_string(r.pid);
  Error gone(Code::kFailedPrecondition, "container " + r.id + " is not running: its process " + std::to_string(r.pid) +
                                            " is gone, or is another process now");
  auto dir = core::Open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!dir.ok()) return gone;
  core::UniqueFd cg(::openat(dir->get(), "cgroup", O_RDONLY | O_CLOEXEC));
  if (cg.get() < 0) return gone;
  auto cgroups = core::ReadFd(cg.get(), 1 << 16);
  // The cgroup its config names (spec.h): /xbuild/<id>, or a leaf below it.
  if (!cgroups.ok() || cgroups->find("/xbuild/" + r.id) == std::string::npos) return gone;
  int root = ::openat(dir->get(), "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return core::SysError("open " + proc + "/root of container " + r.id);
  return core::UniqueFd(root);
}

int StartFailureCode(const Error& e) {
  const std::string& m = e.message();
  if (m.find("executable file not found") != std::string::npos || m.find("no such file") != std::string::npos) {
    return 127;
  }
  if (m.find("permission denied") != std::string::npos || m.find("is a directory") != std::string::npos) return 126;
  return 125;
}

}  // namespace xbuild::exec
