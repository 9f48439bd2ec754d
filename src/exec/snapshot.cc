#include "exec/snapshot.h"

#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/fd.h"
#include "core/fs.h"
#include "image/layer.h"

namespace xbuild::exec {

using core::Code;
using core::Error;

namespace {

constexpr const char* kActive = "active";
constexpr const char* kCommitted = "committed";
constexpr std::string_view kHolderPrefix = "holder ";

bool Alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// Whether an active snapshot's owner (a pid, or "holder <path>") is still there.
bool OwnerLives(const core::Result<std::string>& owner) {
  if (!owner.ok()) return false;
  if (owner->starts_with(kHolderPrefix)) return core::Exists(owner->substr(kHolderPrefix.size()));
  return Alive(static_cast<pid_t>(std::atoi(owner->c_str())));
}

std::string PidFile(const std::string& mount_point) { return mount_point + ".pid"; }

bool IsMountPoint(const std::string& path) {
  auto text = core::ReadFile("/proc/self/mountinfo", 64 << 20);
  if (!text.ok()) return false;
  return text->find(" " + path + " ") != std::string::npos;
}

}  // namespace

core::Digest ChainId(const std::vector<core::Digest>& diff_ids) {
  if (diff_ids.empty()) return core::Digest::Of("");
  core::Digest chain = diff_ids[0];
  for (size_t i = 1; i < diff_ids.size(); ++i) chain = core::Digest::Of(chain.String() + " " + diff_ids[i].String());
  return chain;
}

Snapshotter::Snapshotter(cache::ImageStore& store)
    : dir_(core::JoinPath(store.root(), "snapshots")), mounts_(core::JoinPath(store.root(), "mounts")), store_(store) {}

Status Snapshotter::Hold(const std::string& id) {
  if (lease_.empty()) return core::Ok();
  return store_.db().AddLeaseResource(lease_, "snapshot", id);
}

std::string Snapshotter::FsDir(const std::string& id) const { return core::JoinPath(dir_, id + "/fs"); }

Result<std::string> Snapshotter::Prepare(const std::string& parent) {
  XB_ASSIGN(std::string id, core::RandomHex(8));
  XB_TRY(core::MkdirAll(core::JoinPath(dir_, id + "/fs"), 0755));
  XB_TRY(core::MkdirAll(core::JoinPath(dir_, id + "/work"), 0700));
  // The owner, so that CleanupStale can tell an abandoned active snapshot from a live one. Not
  // synced: after a power loss every pid is dead, and an owner file that reads empty is too.
  XB_TRY(core::WriteFileAtomic(core::JoinPath(dir_, id + "/owner"), std::to_string(::getpid()),
                               0644, core::Sync::kNone));
  // The parent is checked in the transaction that makes it a parent: a prune (which deletes
  // only snapshots without children, in a transaction) cannot take it in between.
  Status made = store_.db().Transaction([&]() -> Status {
    if (!parent.empty()) {
      XB_ASSIGN(auto p, store_.db().GetSnapshot(parent));
      if (!p || p->kind != kCommitted) return Error(Code::kFailedPrecondition, "snapshot " + parent + " is not committed");
    }
    XB_TRY(store_.db().PutSnapshot(cache::SnapshotRecord{id, parent, kActive, "", 0}));
    return Hold(id);  // held from the start, so it stays held once committed
  });
  if (!made.ok()) {
    (void)core::RemoveAll(core::JoinPath(dir_, id));
    return std::move(made).error();
  }
  return id;
}

Status Snapshotter::SetHolder(const std::string& id, const std::string& path, core::Sync sync) {
  return core::WriteFileAtomic(core::JoinPath(dir_, id + "/owner"),
                               std::string(kHolderPrefix) + path, 0644, sync);
}

Status Snapshotter::Commit(const std::string& id) {
  XB_ASSIGN(auto rec, store_.db().GetSnapshot(id));
  if (!rec) return Error(Code::kNotFound, "snapshot " + id + " not found");
  rec->kind = kCommitted;
  XB_TRY(store_.db().PutSnapshot(*rec));
  (void)core::RemoveAll(core::JoinPath(dir_, id + "/work"));
  ::unlink(core::JoinPath(dir_, id + "/owner").c_str());
  return core::Ok();
}

Status Snapshotter::Remove(const std::string& id) {
  (void)Unmount(id);
  XB_TRY(store_.db().DeleteSnapshot(id));
  return core::RemoveAll(core::JoinPath(dir_, id));
}

Result<std::vector<std::string>> Snapshotter::Lowers(const std::string& id) {
  std::vector<std::string> out;
  XB_ASSIGN(auto rec, store_.db().GetSnapshot(id));
  if (!rec) return Error(Code::kNotFound, "snapshot " + id + " not found");
  std::string parent = rec->parent;
  for (int depth = 0; !parent.empty(); ++depth) {
    if (depth > 500) return Error(Code::kFailedPrecondition, "snapshot " + id + ": parent chain too long");
    out.push_back(FsDir(parent));
    XB_ASSIGN(auto p, store_.db().GetSnapshot(parent));
    if (!p) return Error(Code::kDataLoss, "snapshot " + id + ": parent " + parent + " is missing");
    parent = p->parent;
  }
  return out;
}

Result<std::string> Snapshotter::Mount(const std::string& id, bool ephemeral) {
  XB_ASSIGN(auto rec, store_.db().GetSnapshot(id));
  if (!rec) return Error(Code::kNotFound, "snapshot " + id + " not found");
  XB_ASSIGN(std::vector<std::string> lowers, Lowers(id));
  std::string target = core::JoinPath(mounts_, id);
  XB_TRY(core::MkdirAll(target, 0755));
  // Not synced: a mount does not outlive the boot either.
  XB_TRY(core::WriteFileAtomic(PidFile(target), std::to_string(::getpid()), 0644,
                               core::Sync::kNone));
  bool committed = rec->kind == kCommitted;
  int rc;
  if (lowers.empty()) {
    rc = ::mount(FsDir(id).c_str(), target.c_str(), nullptr, MS_BIND, nullptr);
    if (rc == 0 && committed) rc = ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
  } else {
    std::string opts = "lowerdir=";
    if (committed) lowers.insert(lowers.begin(), FsDir(id));  // read-only: the whole chain as lowers
    for (size_t i = 0; i < lowers.size(); ++i) opts += (i ? ":" : "") + lowers[i];
    if (lowers.size() == 1 && committed) {
      rc = ::mount(lowers[0].c_str(), target.c_str(), nullptr, MS_BIND, nullptr);
      if (rc == 0) rc = ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
    } else {
      if (!committed) opts += ",upperdir=" + FsDir(id) + ",workdir=" + core::JoinPath(dir_, id + "/work");
      if (!committed && ephemeral) opts += ",volatile";
      if (opts.size() > 4000) {
        return Error(Code::kResourceExhausted, "snapshot " + id + ": too many layers for one overlay mount");
      }
      rc = ::mount("overlay", target.c_str(), "overlay", committed ? MS_RDONLY : 0, opts.c_str());
    }
  }
  if (rc != 0) {
    Error e = core::SysError("mount snapshot " + id + " at " + target);
    ::unlink(PidFile(target).c_str());
    ::rmdir(target.c_str());
    return e;
  }
  return target;
}

Status Snapshotter::Unmount(const std::string& id) {
  std::string target = core::JoinPath(mounts_, id);
  if (::umount2(target.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return core::SysError("unmount " + target);
  }
  ::unlink(PidFile(target).c_str());
  ::rmdir(target.c_str());
  return core::Ok();
}

Result<std::string> Snapshotter::FromImage(const cache::ResolvedImage& img) {
  const auto& diffs = img.config.diff_ids;
  if (diffs.size() != img.manifest.layers.size()) {
    return Error(Code::kDataLoss, "image " + img.record.digest.String() + ": " + std::to_string(diffs.size()) +
                                      " diff_ids for " + std::to_string(img.manifest.layers.size()) + " layers");
  }
  std::string key = "image:" + ChainId(diffs).String();
  // Found and held in one transaction (a prune deletes in one too).
  auto find_and_hold = [&]() -> Result<std::optional<cache::SnapshotRecord>> {
    std::optional<cache::SnapshotRecord> found;
    XB_TRY(store_.db().Transaction([&]() -> Status {
      XB_ASSIGN(found, store_.db().FindSnapshot(key));
      return found ? Hold(found->id) : core::Ok();
    }));
    return found;
  };
  XB_ASSIGN(auto found, find_and_hold());
  if (found) return found->id;
  // One unpacker per image across processes; the others wait and reuse its snapshot.
  XB_TRY(core::MkdirAll(core::JoinPath(dir_, "locks"), 0700));
  XB_ASSIGN(core::UniqueFd lock, core::Open(core::JoinPath(dir_, "locks/" + ChainId(diffs).Hex()),
                                            O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return core::SysError("lock snapshot " + key);
  }
  XB_ASSIGN(found, find_and_hold());
  if (found) return found->id;
  XB_ASSIGN(std::string id, core::RandomHex(8));
  std::string fs = FsDir(id);
  XB_TRY(core::MkdirAll(fs, 0755));
  auto unpack = [&]() -> Status {
    for (size_t i = 0; i < diffs.size(); ++i) {
      const auto& layer = img.manifest.layers[i];
      XB_ASSIGN(core::UniqueFd fd, store_.content().OpenBlob(layer.digest));
      XB_ASSIGN_CTX(image::ApplyStats st, image::ApplyLayer(fd.get(), fs, image::ApplyOptions{}),
                    "unpack layer " + layer.digest.String());
      if (st.diff_id != diffs[i]) {
        return Error(Code::kDataLoss, "unpack layer " + layer.digest.String() + ": content is " + st.diff_id.String() +
                                          ", the image config says " + diffs[i].String());
      }
    }
    return store_.db().Transaction([&]() -> Status {
      XB_TRY(store_.db().PutSnapshot(cache::SnapshotRecord{id, "", kCommitted, key, 0}));
      return Hold(id);
    });
  };
  Status s = unpack();
  if (!s.ok()) {
    (void)core::RemoveAll(core::JoinPath(dir_, id));
    return std::move(s).error();
  }
  return id;
}

Status Snapshotter::CleanupStale() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(mounts_, ec)) {
    std::string p = e.path().string();
    if (!p.ends_with(".pid")) continue;
    auto owner = core::ReadFile(p, 64);
    pid_t pid = owner.ok() ? static_cast<pid_t>(std::atoi(owner->c_str())) : 0;
    if (Alive(pid)) continue;
    std::string target = p.substr(0, p.size() - 4);
    if (IsMountPoint(target) && ::umount2(target.c_str(), MNT_DETACH) != 0) return core::SysError("unmount " + target);
    ::unlink(p.c_str());
    ::rmdir(target.c_str());
  }
  XB_ASSIGN(auto all, store_.db().ListSnapshots());
  for (const auto& s : all) {
    if (s.kind != kActive) continue;
    if (!OwnerLives(core::ReadFile(core::JoinPath(dir_, s.id + "/owner"), 4096))) {
      XB_TRY(Remove(s.id));
    }
  }
  return core::Ok();
}

}  // namespace xbuild::exec
