// The solver's ResultCache over the state root: cache records in metadata.db (cache key ->
// {"outputs": [snapshot ids]}), and a flock per key under <root>/locks/cache/ so that two
// xbuild processes reaching the same step run it once: the second waits, then finds the
// first one's record. A record whose snapshot is gone (pruned) is dropped and reads as a miss.
// A hit records its time (cache_records.last_used_unix, what prune's LRU order and `until`
// filter read) and, with a lease, holds the record's snapshots in the transaction that found
// them, so a concurrent prune cannot take them from the build.
#pragma once

#include <string>

#include "cache/image_store.h"
#include "solver/scheduler.h"

namespace xbuild::solver::ops {

class ImportedCache;

class DbResultCache : public ResultCache {
 public:
  explicit DbResultCache(cache::ImageStore& store);
  Result<std::optional<VertexResult>> Lookup(const std::string& key) override;
  Status Store(const std::string& key, const VertexResult& result) override;
  Result<std::unique_ptr<KeyLock>> Lock(const std::string& key) override;
  // With --cache-from: a key missing here but in an imported cache is a lazy hit
  // ("remote:<key>"), realized through the ImportedCache when needed.
  void set_imported(ImportedCache* imported) { imported_ = imported; }
  void set_lease(std::string lease) { lease_ = std::move(lease); }
  bool IsLazy(const Ref& r) const override;
  Result<Ref> Realize(const std::string& key, const Ref& r) override;

 private:
  cache::ImageStore& store_;
  std::string locks_;
  ImportedCache* imported_ = nullptr;
  std::string lease_;
};

}  // namespace xbuild::solver::ops
