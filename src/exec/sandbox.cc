#include "exec/sandbox.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <optional>

#include "core/dir.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "exec/etc_files.h"
#include "exec/mount_stubs.h"
#include "exec/pty.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

namespace {

constexpr const char* kOwnerFile = "owner.json";
constexpr size_t kMaxIdSize = 64;

Status ValidateId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= kMaxIdSize && id.front() != '.';
  for (char c : id) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' ||
                c == '-');
  }
  if (ok) return core::Ok();
  return Error(
      Code::kInvalidArgument,
      "invalid container id \"" + id + "\": want 1 to 64 of [A-Za-z0-9_.+-], not starting with .");
}

// 32 random bytes in hex, like Docker's container ids.
Result<std::string> NewId() {
  unsigned char bytes[32];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    return core::SysError("getrandom");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

// Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot.
std::optional<uint64_t> ProcessStartTime(pid_t pid) {
  auto stat = core::ReadFile("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat.ok()) return std::nullopt;
  size_t paren = stat->rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos || paren + 2 > stat->size()) return std::nullopt;
  std::vector<std::string> fields = core::Split(std::string_view(*stat).substr(paren + 2), ' ');
  constexpr size_t kStartTime = 22 - 3;  // fields after ")" start at field 3 (state)
  if (fields.size() <= kStartTime) return std::nullopt;
  return std::strtoull(fields[kStartTime].c_str(), nullptr, 10);
}

Status WriteSmallFile(const std::string& path, std::string_view data) {
  XB_ASSIGN(core::UniqueFd fd, core::Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
  return core::WriteAll(fd.get(), data).Context("write " + path);
}

// containers/<id>/ with owner.json naming this process.
Result<std::string> CreateBundle(const std::string& root, const std::string& id) {
  std::string dir = core::JoinPath(ContainersDir(root), id);
  XB_TRY(core::MkdirAll(ContainersDir(root), 0700));
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Error(Code::kAlreadyExists, "container id " + id + " is in use");
    return core::SysError("mkdir " + dir);
  }
  Status written = WriteOwner(dir);
  if (!written.ok()) {
    (void)core::RemoveAll(dir);  // without an owner, CleanupStale would never take it
    return std::move(written).error();
  }
  return dir;
}

// Writes hosts, resolv.conf and hostname into the bundle and returns their bind mounts.
Result<std::vector<BindMount>> EtcFiles(const SandboxOptions& opts, const std::string& id,
                                        const std::string& bundle, MountStubs& stubs) {
  std::string hostname = SandboxHostname(opts, id);
  XB_ASSIGN(std::string hosts, MakeHostsFile(hostname, opts.extra_hosts));
  const std::pair<const char*, std::string> files[] = {
      {"hosts", hosts},
      {"resolv.conf", HostResolvConf(opts.network)},
      {"hostname", hostname + "\n"}};
  std::vector<BindMount> mounts;
  for (const auto& [name, content] : files) {
    std::string source = core::JoinPath(bundle, name);
    std::string dest = std::string("/etc/") + name;
    XB_TRY(WriteSmallFile(source, content));
    XB_TRY_CTX(stubs.AddFile(dest), "mount point " + dest);
    BindMount m;
    m.source = source;
    m.destination = dest;
    mounts.push_back(m);
  }
  return mounts;
}

Status AddMountPoint(const BindMount& m, MountStubs& stubs) {
  if (m.tmpfs) return stubs.AddDir(m.destination).Context("mount point " + m.destination);
  struct stat st;
  if (::stat(m.source.c_str(), &st) != 0) return core::SysError("bind mount source " + m.source);
  return (S_ISDIR(st.st_mode) ? stubs.AddDir(m.destination) : stubs.AddFile(m.destination))
      .Context("mount point " + m.destination);
}

// Makes the rootfs ready (cwd, mount points) and returns the options with every mount.
Result<SandboxOptions> Prepare(const RunRequest& req, const std::string& id, int rootfs_fd,
                               const ExecUser& user, const std::string& bundle, MountStubs& stubs) {
  XB_TRY_CTX(MakeWorkdir(rootfs_fd, req.process.cwd, user.uid, user.gid),
             "working directory " + req.process.cwd);
  SandboxOptions opts = req.sandbox;
  // The runtime's own mount points on the rootfs: made here so that, when the image has none,
  // they are taken out again after the run and a RUN step's layer does not gain an empty
  // /proc, /dev or /sys (as BuildKit's mount-stub cleaner does).
  for (const char* dir : {"/proc", "/dev", "/sys"}) {
    XB_TRY_CTX(stubs.AddDir(dir), std::string("mount point ") + dir);
  }
  XB_ASSIGN(opts.mounts, EtcFiles(opts, id, bundle, stubs));
  for (const BindMount& m : req.sandbox.mounts) {
    XB_TRY(AddMountPoint(m, stubs));
    opts.mounts.push_back(m);
  }
  // CDI mounts (cdi.h) get their mount points here too, so none is left in a layer.
  for (const CdiMount& m : req.sandbox.cdi.mounts) {
    BindMount point;
    point.source = m.host_path;
    point.destination = m.container_path;
    XB_TRY(AddMountPoint(point, stubs));
  }
  return opts;
}

void Warn(core::Logger* log, const Status& s) {
  if (!s.ok() && log) log->Warn(s.error().ToString());
}

void KeepFirstError(Status& first, Status s) {
  if (first.ok() && !s.ok()) first = std::move(s);
}

}  // namespace

std::string ContainersDir(const std::string& root) { return core::JoinPath(root, "containers"); }
std::string RuncStateDir(const std::string& root) { return core::JoinPath(root, "runc"); }

Result<int> Run(const RunRequest& req) {
  std::string id = req.id;
  if (id.empty()) {
    XB_ASSIGN(id, NewId());
  }
  XB_TRY(ValidateId(id));
  XB_ASSIGN(core::UniqueFd rootfs, core::Open(req.sandbox.rootfs, O_RDONLY | O_DIRECTORY));
  XB_ASSIGN(ExecUser user, ResolveUser(rootfs.get(), req.process.user));
  std::string bundle = req.bundle;
  if (bundle.empty()) {
    XB_ASSIGN(bundle, CreateBundle(req.root, id));
  } else {
    XB_TRY(core::RemoveAll(bundle));  // what a killed monitor left
    if (::mkdir(bundle.c_str(), 0700) != 0) return core::SysError("mkdir " + bundle);
  }
  Runc runc(req.runtime, RuncStateDir(req.root), req.runtime_args);
  MountStubs stubs(rootfs.get());
  core::ScopeGuard cleanup([&] {
    Warn(req.log, runc.Delete(id));
    stubs.Remove();
    Warn(req.log, core::RemoveAll(bundle));
  });
  XB_ASSIGN(SandboxOptions opts, Prepare(req, id, rootfs.get(), user, bundle, stubs));
  XB_ASSIGN(core::Json spec, BuildSpec(req.process, user, opts, id));
  XB_TRY(ApplyCdiEdits(opts.cdi, spec));
  if (req.process.terminal) {  // -t (pty.h)
    TerminalSize size = CurrentTerminalSize(req.stdin_fd);
    spec["process"]["consoleSize"] = {{"height", size.rows}, {"width", size.cols}};
  }
  XB_TRY(ApplyHostOptions(opts.host, spec));  // run's limits and privileges (host_options.h)
  XB_TRY(WriteSmallFile(core::JoinPath(bundle, "config.json"), spec.dump(2)));
  if (req.process.terminal) return runc.RunTerminal(bundle, id, req.stdin_fd, req.output, req.cancel, req.on_start);
  return runc.Run(bundle, id, req.output, req.cancel, req.on_start, req.stdin_fd);
}

Status WriteOwner(const std::string& dir) { return WriteOwnerFile(core::JoinPath(dir, kOwnerFile)); }

bool OwnerAlive(const std::string& dir) { return OwnerFileAlive(core::JoinPath(dir, kOwnerFile)); }

Status WriteOwnerFile(const std::string& path) {
  core::Json owner = {{"pid", ::getpid()}, {"start", ProcessStartTime(::getpid()).value_or(0)}};
  return WriteSmallFile(path, owner.dump());
}

bool OwnerFileAlive(const std::string& path) {
  auto text = core::ReadFile(path, 4096);
  if (!text.ok()) return false;
  core::Json owner = core::Json::parse(*text, nullptr, false);
  auto pid = core::GetInt(owner, "pid");
  auto start = core::GetInt(owner, "start");
  if (!pid.ok() || !start.ok() || *pid <= 0) return false;
  auto now = ProcessStartTime(static_cast<pid_t>(*pid));
  return now && static_cast<int64_t>(*now) == *start;
}

Status CleanupStale(const std::string& root, const std::string& runtime) {
  Runc runc(runtime, RuncStateDir(root));
  Status first;
  for (const std::string& id : core::DirNames(ContainersDir(root))) {
    std::string bundle = core::JoinPath(ContainersDir(root), id);
    if (!core::Exists(core::JoinPath(bundle, kOwnerFile)) || OwnerAlive(bundle)) continue;
    KeepFirstError(first, runc.Delete(id));
    KeepFirstError(first, core::RemoveAll(bundle));
  }
  // The bundle goes only after runc's state, so state without a bundle is always left over.
  for (const std::string& id : core::DirNames(RuncStateDir(root))) {
    if (!core::Exists(core::JoinPath(ContainersDir(root), id)))
      KeepFirstError(first, runc.Delete(id));
  }
  return first;
}

}  // namespace xbuild::exec
