// Overlayfs snapshots: <root>/snapshots/<id>/{fs,work}, rows in metadata.db (snapshots).
//
// A committed snapshot is read-only content: an image's layers applied in order into one
// directory (key "image:<chain id>", made once, on first use), or a finished step's overlay
// upper dir (its changes over the parent, with overlay whiteouts). An active snapshot is a fresh
// upper dir over a chain of committed ones; Mount() puts overlay(lower = the chain, top first;
// upper = its fs) at a target, or binds its fs when it has no parent. A step's layer is its
// upper dir turned into a tar (image::CreateLayer with DirKind::kOverlayUpper) when something
// needs it.
//
// Mount points live under <root>/mounts/<id> with an owner file (<id>.pid): CleanupStale()
// unmounts and removes those whose owner process is gone (a SIGKILLed build), and removes
// active snapshots no live process owns. An active snapshot can instead be held by a file
// (SetHolder: a kept container's writable layer is held by its container's config.json): its
// owner file then reads "holder <path>", and it stays while that file exists.
//
// Garbage collection (solver/ops/build_cache.h) removes committed snapshots that nothing holds
// and no other snapshot has as its parent. A build holds what it uses with a lease (set_lease):
// every snapshot Prepare makes and every image snapshot FromImage returns is added to it as a
// "snapshot" resource, in the same transaction that finds it, so a prune either sees the lease
// or the build finds the snapshot gone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cache/image_store.h"
#include "core/fs.h"
#include "core/result.h"

namespace xbuild::exec {

using core::Result;
using core::Status;

// OCI chain id of a layer stack: chain(0) = diff(0), chain(n) = sha256(chain(n-1) + " " + diff(n)).
core::Digest ChainId(const std::vector<core::Digest>& diff_ids);

class Snapshotter {
 public:
  explicit Snapshotter(cache::ImageStore& store);

  // The lease that holds the snapshots this Snapshotter makes or finds ("" = none).
  void set_lease(std::string lease) { lease_ = std::move(lease); }
  const std::string& lease() const { return lease_; }
  // Adds snapshot `id` to the lease (no-op without one).
  Status Hold(const std::string& id);

  // The committed snapshot of an image's filesystem; unpacks it (once, also across processes)
  // when missing. Each layer's diff_id is checked against the config (kDataLoss on mismatch).
  Result<std::string> FromImage(const cache::ResolvedImage& img);
  // A new active snapshot over `parent` ("" = the empty filesystem).
  Result<std::string> Prepare(const std::string& parent);
  Status Commit(const std::string& id);
  // Hands an active snapshot from this process to `path` (see above); `sync` as for the holder's
  // own file (core::Sync::kNone when that file is not kept across a power loss either).
  Status SetHolder(const std::string& id, const std::string& path,
                   core::Sync sync = core::Sync::kFull);
  // Removes a snapshot's directory and row (children are the caller's business).
  Status Remove(const std::string& id);

  // Mounts an active snapshot (read-write) or a committed one (read-only overlay of its chain) at
  // <root>/mounts/<id>, owned by this process; returns the mount point.
  // ephemeral: the snapshot is removed after this mount (a --rm container), so the overlay is
  // mounted "volatile": the kernel skips every sync of the upper dir, the one at unmount too.
  Result<std::string> Mount(const std::string& id, bool ephemeral = false);
  Status Unmount(const std::string& id);

  // Lower dirs of the snapshot's parents, nearest first.
  Result<std::vector<std::string>> Lowers(const std::string& id);
  std::string FsDir(const std::string& id) const;
  // Unmounts and removes what dead processes left: mounts and active snapshots.
  Status CleanupStale();

 private:
  std::string dir_;     // <root>/snapshots
  std::string mounts_;  // <root>/mounts
  cache::ImageStore& store_;
  std::string lease_;
};

}  // namespace xbuild::exec
