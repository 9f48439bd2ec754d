// The local image store: images (a manifest in the content store plus a row in the metadata
// DB), their tags, and the blob references that keep layers and configs alive.
//
// Invariants:
//  - An image row exists only when its manifest, config and every layer are committed blobs.
//  - Every blob an image needs is recorded in blob_refs (parent = manifest digest), so a blob
//    with no referrer and no lease is garbage.
//  - Each state change is one DB transaction; blobs are written before rows point at them and
//    deleted only after no row does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/content_store.h"
#include "cache/metadata_db.h"
#include "core/context.h"
#include "image/config.h"
#include "image/manifest.h"
#include "image/reference.h"

namespace xbuild::cache {

struct ResolvedImage {
  ImageRecord record;
  image::Manifest manifest;
  std::string manifest_bytes;
  image::ImageConfig config;
  std::vector<std::string> tags;  // full normalised references
};

class ImageStore {
 public:
  // Opens (creating when needed) <root>/content and <root>/metadata.db.
  static core::Result<std::unique_ptr<ImageStore>> Open(const core::Context& ctx);

  ContentStore& content() { return *content_; }
  MetadataDb& db() { return *db_; }
  const std::string& root() const { return root_; }
  // A scratch directory under the root (same filesystem as the store, so renames work).
  core::Result<std::string> TempDir(std::string_view prefix);

  // Records an image whose manifest bytes are already a blob; checks that the config and every
  // layer are present, and that the config's diff_ids match the layer count.
  core::Result<ImageRecord> AddImage(const core::Digest& manifest_digest);
  // Writes manifest bytes for config+layers already in the store and records the image.
  core::Result<ImageRecord> CommitImage(const image::Manifest& manifest);

  core::Status Tag(const image::Reference& ref, const core::Digest& image);

  // Finds an image by reference ("busybox", "app:1"), by manifest digest, or by image ID
  // (config digest, full or a prefix of at least 4 hex characters, with or without "sha256:").
  core::Result<ResolvedImage> Resolve(std::string_view name_or_id);
  core::Result<ResolvedImage> Load(const ImageRecord& rec);
  core::Result<std::vector<ResolvedImage>> List();

  struct RemoveResult {
    std::vector<std::string> untagged;
    std::vector<ImageRecord> deleted;
  };
  // Docker's rmi: a reference untags (and deletes the image when it was its last tag); an ID
  // deletes the image, which needs `force` when several references name it or a lease holds it.
  core::Result<RemoveResult> Remove(std::string_view name_or_id, bool force);

  // A lease owned by this process (a "process" resource naming its pid): kept while the process
  // lives, dropped by ReleaseDeadLeases once it is gone (a SIGKILLed pull or build), whatever
  // its ttl. Builds hold one for all they use (base images, snapshots, their image until tagged).
  core::Result<Lease> CreateProcessLease(std::chrono::seconds ttl);
  // Expires leases past their ttl and deletes those whose owning process is gone.
  core::Status ReleaseDeadLeases();

  // Deletes blobs that no image references and no lease holds; returns bytes freed. Runs only
  // while no writer is in flight on this root (see LockGc); otherwise it is deferred to the
  // next collection and returns 0.
  core::Result<int64_t> CollectGarbage();

  // <root>/gc.lock: writers (WithLease) hold it shared for as long as they write, so a blob
  // they have committed but not yet recorded can never be collected under them; GC takes it
  // exclusively without waiting. Returns an invalid fd when `exclusive` and a writer holds it.
  core::Result<core::UniqueFd> LockGc(bool exclusive);

  // Runs fn under a fresh lease that protects what it writes. Afterwards, on success or
  // failure, the lease is dropped and whatever nothing references is collected, so a failed
  // import or load leaves no stray blobs behind.
  template <typename T, typename F>
  core::Result<T> WithLease(F&& fn) {
    XB_ASSIGN(Lease lease, CreateProcessLease(std::chrono::hours(24)));
    core::Result<T> r = [&]() -> core::Result<T> {
      XB_ASSIGN(core::UniqueFd writing, LockGc(false));
      return fn(lease);
    }();
    core::Status drop = db_->DeleteLease(lease.id);
    core::Result<int64_t> gc = CollectGarbage();
    if (!r.ok()) return r;
    if (!drop.ok()) return std::move(drop).error();
    if (!gc.ok()) return std::move(gc).error().Context("collect unused blobs");
    return r;
  }

 private:
  ImageStore() = default;
  std::string root_;
  std::unique_ptr<ContentStore> content_;
  std::unique_ptr<MetadataDb> db_;
};

}  // namespace xbuild::cache
