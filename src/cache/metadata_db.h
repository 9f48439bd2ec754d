// MetadataDb: the state root's SQLite database (<state root>/metadata.db), opened in WAL mode so
// several xbuild processes can share it. Every write runs inside BEGIN IMMEDIATE, so writers
// queue on SQLite's lock (busy_timeout 10 s, then retried) instead of failing mid-transaction.
//
// Schema versioning: `PRAGMA user_version` = the number of migrations applied. Open() applies the
// pending ones from an ordered list, all in one IMMEDIATE transaction (so two processes opening a
// fresh DB at once migrate it exactly once). A DB whose user_version is above what this build
// knows is refused (kFailedPrecondition): it was written by a newer xbuild. Later modules add
// their tables by appending migrations in metadata_db.cc; never edit an applied one.
//
// Schema (migration 1). Digests are TEXT "sha256:<64 lowercase hex>"; read back through
// core::Digest::Parse, so a corrupt row is a kDataLoss error. Times are unix seconds.
//
//   images(digest TEXT PK,            -- manifest or index digest: the image's identity
//          media_type TEXT NOT NULL, size INTEGER NOT NULL,
//          config TEXT NOT NULL,      -- config digest ("IMAGE ID")
//          created_unix INTEGER NOT NULL)
//   tags(name TEXT PK,                -- full normalised ref, "docker.io/library/busybox:latest"
//        image TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
//        updated_unix INTEGER NOT NULL)                       INDEX tags_by_image(image)
//   blob_refs(parent TEXT, child TEXT, PK(parent, child))     INDEX blob_refs_by_child(child)
//        -- parent: a manifest or index; child: its config, layers, sub-manifests. Not keyed to
//        -- images, since sub-manifests of an index are parents too. GC: a blob is live while
//        -- RefCount(child) > 0, it is an image, or it is leased.
//   leases(id TEXT PK, created_unix INTEGER NOT NULL,
//          expires_unix INTEGER NOT NULL)                     -- 0 = never expires
//   lease_resources(lease TEXT REFERENCES leases(id) ON DELETE CASCADE,
//                   kind TEXT, key TEXT, PK(lease, kind, key)) INDEX lease_resources_by_key(kind, key)
//
// Migration 2:
//   blob_sources(digest TEXT, registry TEXT, repository TEXT, PK(digest, registry, repository))
//        -- the registries and repositories a blob was pulled from or pushed to (for mounts).
//
// Migration 3:
//   snapshots(id TEXT PK, parent TEXT, kind TEXT, key TEXT, created_unix)
//        INDEX snapshots_by_key(key), snapshots_by_parent(parent)
//   cache_records(key TEXT PK, result TEXT, created_unix, last_used_unix)
//        -- last_used_unix: the last cache hit (TouchCacheRecord), or when it was stored
//
// Connection PRAGMAs: busy_timeout=10000, journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON.
//
// Threads: one MetadataDb may be shared by threads; a recursive mutex serialises its calls (a
// Transaction holds it for its whole body). Processes: open one MetadataDb per process, and never
// carry an open one across fork().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/digest.h"
#include "core/result.h"

struct sqlite3;

namespace xbuild::cache {

struct ImageRecord {
  core::Digest digest;       // manifest (or index) digest: the image's identity in the store
  std::string media_type;    // manifest media type
  int64_t size = 0;          // manifest size
  core::Digest config;       // config digest ("IMAGE ID")
  int64_t created_unix = 0;  // when it entered the store
};

// A compressed form of a blob: `digest` is `source` compressed with `compression` ("gzip",
// "zstd"); size is the variant's.
struct BlobVariant {
  core::Digest source;
  std::string compression;
  core::Digest digest;
  int64_t size = 0;
};

// An overlay snapshot (src/exec/snapshot.h): kind "active" (writable) or "committed"; key names
// what a committed snapshot holds ("image:<chain id>"), "" for build steps.
struct SnapshotRecord {
  std::string id;
  std::string parent;  // "" = none
  std::string kind;
  std::string key;
  int64_t created_unix = 0;
};

struct CacheRecord {
  std::string key;
  std::string result;
  int64_t created_unix = 0;
  int64_t last_used_unix = 0;
};

struct Lease {
  std::string id;
  int64_t created_unix = 0;
  int64_t expires_unix = 0;  // 0 = no expiry
};

class MetadataDb {
 public:
  // Creates the file (and its parent dir, 0700) when missing, sets the PRAGMAs and migrates.
  static core::Result<std::unique_ptr<MetadataDb>> Open(const std::string& path);
  // Number of migrations this build knows; SchemaVersion() equals it after a successful Open().
  static int LatestSchemaVersion();

  ~MetadataDb() = default;
  MetadataDb(const MetadataDb&) = delete;
  MetadataDb& operator=(const MetadataDb&) = delete;

  int SchemaVersion() const { return schema_version_; }
  const std::string& path() const { return path_; }

  // By default the last connection to close checkpoints the WAL into the database and syncs
  // both, so what a command wrote is on disk when it exits. A process whose writes need not
  // outlive a power loss (`run --rm`: what it adds it also takes away) turns that off: its
  // frames stay in the WAL for the next checkpoint. That spares it the checkpoint's two syncs,
  // and the next writer the sync of a restarted WAL's header and of its directory.
  void SkipCheckpointAtClose();

  // BEGIN IMMEDIATE; fn; COMMIT. fn failing rolls back and returns its error. SQLITE_BUSY on
  // BEGIN/COMMIT is retried. A nested call joins the outer transaction through a SAVEPOINT: its
  // failure undoes only its own changes (and is returned to the outer fn to handle).
  core::Status Transaction(const std::function<core::Status()>& fn);

  core::Status PutImage(const ImageRecord& rec);  // upsert
  core::Result<std::optional<ImageRecord>> GetImage(const core::Digest& digest);
  core::Result<std::vector<ImageRecord>> ListImages();  // sorted by digest
  // Also deletes its tags and its blob refs (as parent). kNotFound if absent.
  core::Status DeleteImage(const core::Digest& digest);

  // name: full normalised ref. Replaces an existing tag. kNotFound if the image is not stored.
  core::Status SetTag(const std::string& name, const core::Digest& image);
  core::Result<std::optional<core::Digest>> GetTag(const std::string& name);
  core::Status DeleteTag(const std::string& name);  // kNotFound if absent
  core::Result<std::vector<std::pair<std::string, core::Digest>>> ListTags();  // sorted by name
  core::Result<std::vector<std::string>> TagsFor(const core::Digest& image);  // sorted

  // Blob references: parent (manifest/index) -> children (config, layers, sub-manifests).
  // Adding an existing edge is a no-op.
  core::Status AddBlobRefs(const core::Digest& parent, const std::vector<core::Digest>& children);
  core::Status DeleteBlobRefs(const core::Digest& parent);  // absent is fine
  core::Result<std::vector<core::Digest>> ChildrenOf(const core::Digest& parent);  // sorted
  core::Result<int64_t> RefCount(const core::Digest& child);  // number of parents referencing it

  // Where a blob came from: a registry host ("docker.io", "127.0.0.1:5000") and repository path.
  // Push mounts a blob from such a repository instead of uploading it again.
  core::Status AddBlobSource(const core::Digest& blob, const std::string& registry,
                             const std::string& repository);
  core::Result<std::vector<std::string>> BlobSources(const core::Digest& blob,
                                                     const std::string& registry);  // sorted

  // Compressed variants of a blob (an uncompressed layer -> its gzip or zstd form). Putting one
  // also adds the blob_refs edge source -> variant, so the variant lives as long as its source.
  core::Status PutBlobVariant(const BlobVariant& v);  // replaces
  core::Result<std::optional<BlobVariant>> GetBlobVariant(const core::Digest& source, const std::string& compression);
  // A deleted blob: drops its edges as a parent, its variant rows (as source or variant) and
  // where it came from (blob_sources).
  core::Status ForgetBlob(const core::Digest& blob);

  // Snapshots (rows only; the directories belong to exec::Snapshotter).
  core::Status PutSnapshot(const SnapshotRecord& r);  // insert or replace; created_unix 0 = now
  core::Result<std::optional<SnapshotRecord>> GetSnapshot(const std::string& id);
  core::Result<std::optional<SnapshotRecord>> FindSnapshot(const std::string& key);  // committed only
  core::Result<std::vector<SnapshotRecord>> ListSnapshots();
  core::Status DeleteSnapshot(const std::string& id);  // absent is fine
  core::Result<bool> SnapshotHasChildren(const std::string& id);

  // Build-cache records: solver cache key -> result (JSON chosen by the solver's glue).
  core::Status PutCacheRecord(const std::string& key, const std::string& result);
  core::Result<std::optional<std::string>> GetCacheRecord(const std::string& key);
  core::Status DeleteCacheRecord(const std::string& key);
  core::Status TouchCacheRecord(const std::string& key, int64_t now_unix);  // a cache hit
  core::Result<std::vector<CacheRecord>> ListCacheRecords();                // sorted by key

  // Leases protect resources (kind + key, e.g. "content", "sha256:...") from GC while work is in
  // flight. ttl 0 = no expiry; the id is 32 random hex characters.
  core::Result<Lease> CreateLease(std::chrono::seconds ttl);
  core::Status AddLeaseResource(const std::string& lease, const std::string& kind,
                                const std::string& key);  // kNotFound if the lease is gone
  core::Status DeleteLease(const std::string& lease);      // absent is fine (it may have expired)
  core::Result<int64_t> ExpireLeases(int64_t now_unix);    // deletes expired ones, returns count
  // Keys of `kind` held by any existing lease (expired but not yet deleted ones included, so GC
  // should ExpireLeases first), sorted and deduplicated.
  core::Result<std::vector<std::string>> LeasedKeys(const std::string& kind);
  // (lease id, key) of every resource of `kind`, e.g. the "process" that owns each lease.
  core::Result<std::vector<std::pair<std::string, std::string>>> LeaseResources(const std::string& kind);

  // Raw access for later modules' tables (snapshots, cache records, containers, volumes). Callers
  // must hold no other MetadataDb call in flight on another thread while using it.
  sqlite3* handle() { return db_.get(); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const;  // sqlite3_close_v2
  };
  MetadataDb(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  core::Status Configure();
  core::Status Migrate();
  core::Status Exec(const char* sql);

  std::string path_;
  std::unique_ptr<sqlite3, Closer> db_;
  int schema_version_ = 0;
  int tx_depth_ = 0;
  std::recursive_mutex mu_;
};

}  // namespace xbuild::cache
