// Build cache that travels: `--cache-to` exports the build's step results, `--cache-from` imports
// another root's, so runner B reuses what runner A built without a shared disk.
//
// The exported form is an OCI image manifest whose layers are the steps' layers (gzip or zstd)
// and whose config is a cache config (kCacheConfigMediaType), so any registry that stores OCI
// images stores it (docker-registry 2.8 does), and an OCI layout directory holds it as well:
//
//   {
//     "layers":  [{"digest": "sha256:<blob>", "diff_id": "sha256:<uncompressed>",
//                  "mediaType": "...tar+gzip", "size": N}],          // index = manifest layer index
//     "records": [{"key": "sha256:<solver cache key>", "layer": 0,
//                  "parent": "sha256:<cache key>", "base": "sha256:<chain id>"}]
//   }
//
// A record says: the step with this cache key produced a snapshot that is its layer applied over
// the snapshot of the record `parent`, or over the base image whose layers have the chain id
// `base`, or over nothing when both are empty. Cache keys are content-derived (solver::CacheKey:
// op digests, input keys, image digests, context checksums), so the same Dockerfile and inputs
// give the same keys on any machine. mode=min exports the records of the result's snapshot chain,
// mode=max those of every step the build ran or found.
//
// Inline cache (`--cache-to type=inline`, or `--build-arg BUILDKIT_INLINE_CACHE=1`): the image
// carries its own cache. The mode=min records (the result's steps) go into the image config, under
// the top-level key kInlineCacheKey, and name their layers by position among the image's own:
//
//   "xbuild.cache.v1": {"records": [{"key": "sha256:<cache key>", "layer": 3,
//                                    "parent": "sha256:<cache key>", "base": "sha256:<chain id>"}]}
//
// where `layer` indexes the manifest's layers (and rootfs.diff_ids). Positions, not blob
// digests, because the config is the same in every form of the image (uncompressed in the local
// store, gzip or zstd once pushed); the importer takes the blob, media type and size from the
// manifest it read and the diff_id from the config. Records are ordered by layer, so the same
// build gives the same config bytes. A base image's inline cache is never inherited (it speaks
// of the base's build): the key is dropped from every lowered config before export. Reading it
// back: `--cache-from REF` (or type=registry,ref=REF) where REF is an image, not a cache
// manifest; an image without the key is a warning.
//
// Importing is lazy: a key found in an imported cache is a hit whose Ref ("remote:<key>") is only
// realized (the layer fetched, digest-checked and applied over the realized parent, then kept as
// a local cache record) when something needs its content; the solver falls back to running the
// step when realizing fails (a missing or corrupt blob). A cache config that does not parse is
// ignored with a warning.
#pragma once

#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cache/image_store.h"
#include "core/json.h"
#include "exec/snapshot.h"
#include "image/config.h"
#include "image/layer.h"
#include "image/manifest.h"
#include "registry/client.h"
#include "solver/scheduler.h"

namespace xbuild::solver::ops {

inline constexpr std::string_view kCacheConfigMediaType = "application/vnd.xbuild.cache.config.v1+json";
inline constexpr std::string_view kInlineCacheKey = "xbuild.cache.v1";

struct CacheLayerInfo {
  core::Digest digest;  // the (compressed) blob
  core::Digest diff_id;
  std::string media_type;
  int64_t size = 0;
};

struct CacheRecordInfo {
  std::string key;
  int layer = -1;
  std::string parent;  // a record's key
  std::string base;    // a base image's chain id
};

struct CacheConfig {
  std::vector<CacheLayerInfo> layers;
  std::vector<CacheRecordInfo> records;
  std::string Serialize() const;
  static core::Result<CacheConfig> Parse(std::string_view text);
};

// Where cache goes or comes from (a --cache-to / --cache-from value).
struct CacheLocation {
  std::string type;  // "registry", "local", or (export only) "inline"
  std::string ref;   // registry: the reference (import: a cache manifest or an image)
  std::string dir;   // local: dest (export) or src (import)
  bool max = false;  // export: mode=max
  image::Compression compression = image::Compression::kGzip;
  bool ignore_error = false;
};
// "type=registry,ref=R[,mode=min|max][,compression=gzip|zstd][,ignore-error=true]",
// "type=local,dest=DIR" / "type=local,src=DIR", "type=inline" (export, mode=min only), or a bare
// reference (registry).
core::Result<CacheLocation> ParseCacheLocation(const std::string& spec, bool for_export);

// A step the build solved: its cache key and the snapshot it produced.
struct SolvedStep {
  std::string key;
  std::string snapshot;
};

// The records (and their layers, in the store, held by `lease`) for the steps, as mode says.
// root: the result's snapshot (mode=min keeps the steps on its chain).
core::Result<CacheConfig> CollectCache(cache::ImageStore& store, exec::Snapshotter& snaps,
                                       const std::vector<SolvedStep>& steps, const std::string& root, bool max,
                                       const cache::Lease& lease);

// Writes the records to a cache location (layers compressed as loc says; what it makes is held
// by `lease`). Run both under one lease: a step's layer may be referenced by no image.
core::Status WriteCache(cache::ImageStore& store, registry::Client* registry, const CacheConfig& records,
                        const CacheLocation& loc, const cache::Lease& lease);

// The inline form of mode=min records (see the top of this file) for an image whose layers are
// `layers`, in manifest order: each record's layer becomes the position of its blob there.
core::Result<core::Json> InlineCache(const CacheConfig& records, const std::vector<image::Descriptor>& layers);
// An image's inline cache as a cache config over the image's own layers; kNotFound when the
// config has none.
core::Result<CacheConfig> ParseInlineCache(const image::ImageConfig& config, const image::Manifest& manifest);

// The records of the caches given, ready to realize.
class ImportedCache {
 public:
  ImportedCache(cache::ImageStore& store, exec::Snapshotter& snaps, registry::Client* registry)
      : store_(store), snaps_(snaps), registry_(registry) {}
  ~ImportedCache();
  ImportedCache(const ImportedCache&) = delete;
  ImportedCache& operator=(const ImportedCache&) = delete;
  // Reads one cache location's records (a cache manifest, or an image's inline cache); an
  // unreadable one is a warning (returned), not an error.
  std::optional<std::string> Add(const CacheLocation& loc);
  bool Has(const std::string& key) const;
  size_t size() const { return records_.size(); }
  // Makes the snapshot of the record `key` (and of its parents, as needed), and stores it in
  // `local` as an ordinary cache record.
  core::Result<std::string> Realize(const std::string& key, ResultCache& local);

 private:
  struct Source {
    CacheLocation loc;
    CacheConfig config;
  };
  struct Entry {
    const Source* source;
    CacheRecordInfo record;
  };
  core::Status Fetch(const Source& src, const CacheLayerInfo& layer);
  // Starts fetching, in the background (4 at a time, the bottom first), the layers of `key`
  // and of the parents that are to be realized with it, so that a chain's layers download side
  // by side and the first one is applied while the others still come. Called under mu_.
  core::Status Prefetch(const std::string& key, ResultCache& local);
  // The layer, fetched: waits for its prefetch, or fetches it now.
  core::Status Fetched(const Source& src, const CacheLayerInfo& layer);

  cache::ImageStore& store_;
  exec::Snapshotter& snaps_;
  registry::Client* registry_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::map<std::string, Entry> records_;
  std::recursive_mutex mu_;                       // one realize at a time (parents recurse)
  std::map<std::string, std::string> realized_;  // guarded by mu_: key -> snapshot
  std::optional<cache::Lease> lease_;            // holds fetched blobs until an image does
  std::map<core::Digest, std::shared_future<core::Status>> fetches_;  // guarded by mu_
  std::vector<std::thread> fetchers_;                                // joined by the destructor
};

}  // namespace xbuild::solver::ops
