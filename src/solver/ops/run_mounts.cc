#include "solver/ops/run_mounts.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/digest.h"
#include "core/fs.h"
#include "core/path.h"
#include "solver/ops/file_op.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;

namespace {

constexpr int kMaxPrivateInstances = 64;

std::string What(const Mount& m) { return std::string("RUN --mount=type=") + MountTypeName(m.type) + ",target=" + m.dest; }

// flock that retries on EINTR; false when non-blocking and busy.
Result<bool> Lock(int fd, int op) {
  while (::flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    if ((op & LOCK_NB) && errno == EWOULDBLOCK) return false;
    return core::SysError("lock cache mount");
  }
  return true;
}

// Opens `rel` beneath the directory `root` as an O_PATH fd (symlinks resolved inside root).
Result<core::UniqueFd> OpenBeneath(const std::string& root, const std::string& rel, bool create_dir) {
  XB_ASSIGN(core::UniqueFd rootfd, core::Open(root, O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string clean = core::CleanPath("/" + rel);
  if (create_dir && clean != "/") {
    XB_ASSIGN(core::UniqueFd made, core::MkdirAllInRoot(rootfd.get(), clean));
  }
  core::OpenInRootOptions o;
  o.flags = O_PATH;
  return core::OpenInRoot(rootfd.get(), clean, o);
}

}  // namespace

std::string CacheMountsDir(const std::string& root) { return core::JoinPath(root, "cache-mounts"); }

Result<std::unique_ptr<RunMounts>> RunMounts::Prepare(cache::ImageStore& store, exec::Snapshotter& snaps,
                                                      const ExecOp& op, const std::vector<Ref>& inputs,
                                                      const RunMountSources& sources) {
  std::unique_ptr<RunMounts> rm(new RunMounts(snaps, core::JoinPath(store.root(), "mounts")));
  for (size_t i = 1; i < op.mounts.size(); ++i) {
    XB_TRY(rm->Add(store, op.mounts[i], inputs, sources));
  }
  return rm;
}

RunMounts::~RunMounts() {
  fds_.clear();
  if (!staging_.empty()) {
    // Lazily: the tmpfs and every bind staged on it go at once.
    (void)::umount2(staging_.c_str(), MNT_DETACH);
    ::rmdir(staging_.c_str());
    ::unlink((staging_ + ".pid").c_str());
  }
  for (const auto& id : views_) {
    (void)snaps_.Unmount(id);
    (void)snaps_.Remove(id);
  }
}

Status RunMounts::EnsureStaging() {
  if (!staging_.empty()) return core::Ok();
  XB_TRY(core::MkdirAll(mounts_dir_, 0700));
  XB_ASSIGN(std::string hex, core::RandomHex(8));
  std::string dir = core::JoinPath(mounts_dir_, "run-" + hex);
  // The owner file first: whatever happens next, a later CleanupStale finds it.
  XB_TRY(core::WriteFileAtomic(dir + ".pid", std::to_string(::getpid())));
  if (::mkdir(dir.c_str(), 0700) != 0) return core::SysError("mkdir " + dir);
  staging_ = dir;
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=16m") != 0) {
    return core::SysError("mount staging tmpfs on " + dir);
  }
  return core::Ok();
}

Result<std::string> RunMounts::Stage(core::UniqueFd fd) {
  XB_TRY(EnsureStaging());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return core::SysError("stat mount source");
  std::string target = core::JoinPath(staging_, "m" + std::to_string(staged_++));
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target.c_str(), 0700) != 0) return core::SysError("mkdir " + target);
  } else {
    XB_ASSIGN(core::UniqueFd f, core::Open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  }
  std::string source = "/proc/self/fd/" + std::to_string(fd.get());
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return core::SysError("bind the mount source onto " + target);
  }
  return target;
}

Result<std::string> RunMounts::StageFile(const std::string& data, uint32_t uid, uint32_t gid, uint32_t mode) {
  XB_TRY(EnsureStaging());
  std::string path = core::JoinPath(staging_, "s" + std::to_string(staged_++));
  XB_ASSIGN(core::UniqueFd f, core::Open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  XB_TRY(core::WriteAll(f.get(), data));
  if (::fchmod(f.get(), mode) != 0) return core::SysError("chmod " + path);
  if (::fchown(f.get(), uid, gid) != 0) return core::SysError("chown " + path);
  return path;
}

Status RunMounts::Add(cache::ImageStore& store, const Mount& m, const std::vector<Ref>& inputs,
                      const RunMountSources& sources) {
  switch (m.type) {
    case MountType::kBind: return AddBind(m, inputs).Context(What(m));
    case MountType::kCache: return AddCache(store, m, inputs).Context(What(m));
    case MountType::kSecret: return AddSecret(m, sources);
    case MountType::kSsh: return AddSsh(m, sources);
    case MountType::kTmpfs: {
      exec::BindMount b;
      b.destination = m.dest;
      b.tmpfs = true;
      b.tmpfs_size = m.tmpfs_size;
      mounts_.push_back(b);
      return core::Ok();
    }
  }
  return Error(Code::kInvalidArgument, What(m) + ": unknown mount type");
}

Result<std::string> RunMounts::InputRoot(const Mount& m, const std::vector<Ref>& inputs) {
  if (m.input < 0 || static_cast<size_t>(m.input) >= inputs.size()) {
    return Error(Code::kInvalidArgument, "the mount has no source");
  }
  // A private view (writable, discarded afterwards) of the input's snapshot ("" = scratch).
  XB_ASSIGN(std::string view, snaps_.Prepare(inputs[static_cast<size_t>(m.input)].id));
  views_.push_back(view);
  return snaps_.Mount(view);
}

Status RunMounts::AddBind(const Mount& m, const std::vector<Ref>& inputs) {
  XB_ASSIGN(std::string root, InputRoot(m, inputs));
  auto fd = OpenBeneath(root, m.selector, false);
  if (!fd.ok()) {
    return Error(Code::kNotFound, "source " + (m.selector.empty() ? std::string("/") : m.selector) + ": " + fd.error().message());
  }
  exec::BindMount b;
  XB_ASSIGN(b.source, Stage(std::move(*fd)));
  b.destination = m.dest;
  b.readonly = m.readonly;
  mounts_.push_back(b);
  return core::Ok();
}

Status RunMounts::AddCache(cache::ImageStore& store, const Mount& m, const std::vector<Ref>& inputs) {
  std::string base = CacheMountsDir(store.root());
  XB_TRY(core::MkdirAll(base, 0700));
  std::string key = core::Digest::Of(m.cache_id).Hex().substr(0, 32);
  // Pick an instance and lock it: shared and locked use instance 0 (shared or exclusive);
  // private takes the first instance nobody holds.
  std::string dir;
  core::UniqueFd lock;
  for (int n = 0; n < kMaxPrivateInstances; ++n) {
    dir = core::JoinPath(base, key + "-" + std::to_string(n));
    XB_TRY(core::MkdirAll(dir, 0700));
    XB_ASSIGN(lock, core::Open(core::JoinPath(dir, "lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    int op = m.sharing == CacheSharing::kShared ? LOCK_SH : LOCK_EX;
    if (m.sharing == CacheSharing::kPrivate) op |= LOCK_NB;
    XB_ASSIGN(bool got, Lock(lock.get(), op));
    if (got) break;
    lock.Reset();
    if (n + 1 == kMaxPrivateInstances) return Error(Code::kResourceExhausted, "every private instance is in use");
  }
  ::futimens(lock.get(), nullptr);  // last used (build_cache.h): what prune's LRU order reads
  fds_.push_back(std::move(lock));
  std::string data = core::JoinPath(dir, "data");
  if (!core::Exists(data)) {
    // Made aside and renamed into place, so a concurrent user sees all of it or none.
    XB_ASSIGN(std::string tmp, store.TempDir("cache-mount-"));
    core::ScopeGuard cleanup([&] { (void)core::RemoveAll(tmp); });
    std::string fresh = core::JoinPath(tmp, "data");
    XB_TRY(core::MkdirAll(fresh, 0755));
    if (m.input >= 0) {  // from=: seeded with the source's files
      XB_ASSIGN(std::string root, InputRoot(m, inputs));
      FileOp copy;
      CopyAction all;
      all.src_input = 0;
      all.src = m.selector.empty() ? "/" : m.selector;
      all.dest = "/";
      copy.actions.push_back({-1, all});
      FileOpEnv env;
      env.target = fresh;
      env.inputs.push_back(FileOpInput{root, false});
      XB_TRY(ApplyFileOp(copy, env).Context("seed the cache from its from= source"));
    }
    if (::chmod(fresh.c_str(), m.mode ? m.mode : 0755) != 0) return core::SysError("chmod " + fresh);
    if (::lchown(fresh.c_str(), m.uid, m.gid) != 0) return core::SysError("chown " + fresh);
    if (::rename(fresh.c_str(), data.c_str()) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
      return core::SysError("rename " + fresh + " to " + data);
    }
  }
  // Without from=, source= names a path inside the cache (resolved inside it, made if missing).
  std::string sub = m.input >= 0 ? "/" : m.selector;
  XB_ASSIGN(core::UniqueFd fd, OpenBeneath(data, sub, true));
  exec::BindMount b;
  XB_ASSIGN(b.source, Stage(std::move(fd)));
  b.destination = m.dest;
  b.readonly = m.readonly;
  mounts_.push_back(b);
  return core::Ok();
}

Status RunMounts::AddSecret(const Mount& m, const RunMountSources& sources) {
  auto it = sources.secrets.find(m.secret_id);
  if (it == sources.secrets.end()) {
    if (m.optional) return core::Ok();
    return Error(Code::kNotFound, "RUN --mount=type=secret,id=" + m.secret_id + ": secret not provided (pass --secret id=" +
                                      m.secret_id + ",src=FILE or ,env=VAR)");
  }
  if (!m.env.empty()) env_.push_back(m.env + "=" + it->second);
  if (m.dest.empty()) return core::Ok();
  // In the staging tmpfs: the secret never touches a disk.
  exec::BindMount b;
  XB_ASSIGN(b.source, StageFile(it->second, m.uid, m.gid, m.mode ? m.mode : 0400));
  b.destination = m.dest;
  b.readonly = true;
  mounts_.push_back(b);
  return core::Ok();
}

Status RunMounts::AddSsh(const Mount& m, const RunMountSources& sources) {
  auto it = sources.ssh.find(m.secret_id);
  if (it == sources.ssh.end()) {
    if (m.optional) return core::Ok();
    return Error(Code::kNotFound, "RUN --mount=type=ssh,id=" + m.secret_id + ": no agent socket (pass --ssh " +
                                      m.secret_id + "=$SSH_AUTH_SOCK)");
  }
  struct stat st;
  if (::stat(it->second.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return Error(Code::kInvalidArgument, "--ssh " + m.secret_id + "=" + it->second + ": not a socket");
  }
  exec::BindMount b;
  b.source = it->second;
  b.destination = m.dest;
  mounts_.push_back(b);
  env_.push_back("SSH_AUTH_SOCK=" + m.dest);
  return core::Ok();
}

}  // namespace xbuild::solver::ops
