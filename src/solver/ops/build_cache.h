// The build cache as `builder prune`, `system df` and the automatic GC see it: what it is, what
// it weighs, what may go.
//
// Entries (BuildKit's record types):
//  - "regular": a committed snapshot — a step's result (its overlay upper dir) or an unpacked
//    base image (key "image:<chain id>"); "source.local" for a snapshot of context files (no
//    parent, no key). Its cache records (cache key -> outputs, result_cache.h) go with it.
//  - "exec.cachemount": a RUN --mount=type=cache directory (<root>/cache-mounts/<key>-<n>/data).
//
// For each entry:
//  - size: bytes of regular files in its directory (core::DiskUsage);
//  - last used: the newest cache hit (or store) of a record naming it or any snapshot above it
//    (a hit on a step uses every snapshot below it), else its creation; for a cache mount, the
//    time its lock file was last taken;
//  - in use: held by a lease (a build or pull in flight: exec/snapshot.h), or below a snapshot
//    still being written (a running step, a container's layer), or a cache mount someone locks;
//    an in-use snapshot keeps every snapshot below it in use;
//  - shared: its content is part of an image in the store (a step whose remembered layer, or its
//    gzip/zstd variant, is one of an image's layers; an image snapshot whose chain id is a prefix
//    of an image's), and so is everything below it.
// "Dangling" = not shared. Prune never takes what is in use; without `all` only dangling
// entries; least recently used first (leaves before their parents); a snapshot goes only when
// no other snapshot has it as parent and no lease holds it, checked in the transaction that
// deletes its row (builds hold what they find in one transaction too, so the two never cross).
// Afterwards records whose snapshots are gone are dropped and unreferenced blobs collected.
//
// The automatic GC reads Docker's daemon.json section from the config file:
//   {"builder": {"gc": {"enabled": true, "defaultKeepStorage": "10GB",
//                       "policy": [{"keepStorage": "512MB", "filter": ["unused-for=168h"]},
//                                  {"keepStorage": "10GB", "all": true}]}}}
// Each rule prunes, in order, what matches its filter (unused-for= or until=, a Go duration)
// and `all`, until the build cache is at most its keepStorage (a rule without keepStorage uses
// defaultKeepStorage; none at all: everything that matches). "enabled" defaults to true; with
// no "policy", defaultKeepStorage gives [{keepStorage}, {keepStorage, all}].
#pragma once

#include <string>
#include <vector>

#include "cache/image_store.h"
#include "core/json.h"
#include "exec/snapshot.h"

namespace xbuild::solver::ops {

struct CacheEntry {
  std::string id;    // snapshot id, or the cache mount's directory name
  std::string type;  // "regular", "source.local", "exec.cachemount"
  std::string description;
  std::string parent;  // the snapshot below it ("" = none)
  int64_t size = 0;
  int64_t created_unix = 0;
  int64_t last_used_unix = 0;
  int64_t usage_count = 0;  // cache records naming it
  bool in_use = false;
  bool shared = false;
  int depth = 0;  // snapshots below it
};

// Every entry, sorted by id.
core::Result<std::vector<CacheEntry>> ListBuildCache(cache::ImageStore& store, exec::Snapshotter& snaps);

struct PruneOptions {
  bool all = false;                 // shared entries too, not only dangling ones
  int64_t keep_storage = 0;         // stop once the build cache is at most this (bytes); 0: no limit
  int64_t unused_before_unix = 0;   // only entries last used before this; 0: any
};

struct PruneResult {
  std::vector<CacheEntry> deleted;
  int64_t reclaimed = 0;  // the entries' sizes plus the blobs freed after them
};

core::Result<PruneResult> PruneBuildCache(cache::ImageStore& store, exec::Snapshotter& snaps,
                                          const PruneOptions& opts);

struct GcRule {
  bool all = false;
  int64_t keep_storage = 0;
  int64_t unused_for_seconds = 0;  // 0: any age
};

struct GcConfig {
  bool enabled = false;
  std::vector<GcRule> rules;
};

// builder.gc of the config document (core::Config::raw); absent = disabled. kInvalidArgument
// names the bad field and value.
core::Result<GcConfig> ParseGcConfig(const core::Json& raw);

// Runs the rules in order; their results together.
core::Result<PruneResult> RunGc(cache::ImageStore& store, exec::Snapshotter& snaps, const GcConfig& gc);

}  // namespace xbuild::solver::ops
