#include "cache/image_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <set>

#include "core/fs.h"

namespace xbuild::cache {

using core::Code;
using core::Digest;
using core::Error;
using core::Result;
using core::Status;

Result<std::unique_ptr<ImageStore>> ImageStore::Open(const core::Context& ctx) {
  std::unique_ptr<ImageStore> s(new ImageStore());
  s->root_ = ctx.root;
  XB_TRY_CTX(core::MkdirAll(ctx.root, 0711), "open state root");
  XB_ASSIGN_CTX(s->content_, ContentStore::Open(core::JoinPath(ctx.root, "content")), "open content store");
  XB_ASSIGN_CTX(s->db_, MetadataDb::Open(core::JoinPath(ctx.root, "metadata.db")), "open metadata db");
  // Partial writes whose writer died a day ago will not be resumed: drop them. A live writer's
  // ingest is never touched (it holds its lock).
  XB_TRY_CTX(s->content_->CleanIngests(std::chrono::hours(24)), "clean stale ingests");
  return s;
}

Result<std::string> ImageStore::TempDir(std::string_view prefix) {
  return core::MakeTempDir(core::JoinPath(root_, "tmp"), prefix);
}

Result<ImageRecord> ImageStore::AddImage(const Digest& manifest_digest) {
  XB_ASSIGN(std::string bytes, content_->ReadBlob(manifest_digest, image::kMaxManifestSize));
  XB_ASSIGN(image::Manifest m, image::ParseManifest(bytes, manifest_digest));
  XB_ASSIGN_CTX(std::string cfg_bytes, content_->ReadBlob(m.config.digest, image::kMaxConfigSize),
                "image config " + m.config.digest.String());
  if (static_cast<int64_t>(cfg_bytes.size()) != m.config.size) {
    return Error(Code::kDataLoss, "image config " + m.config.digest.String() + ": size " +
                                      std::to_string(cfg_bytes.size()) + ", manifest says " +
                                      std::to_string(m.config.size));
  }
  XB_ASSIGN(image::ImageConfig cfg, image::ParseImageConfig(cfg_bytes, m.config.digest));
  if (cfg.diff_ids.size() != m.layers.size()) {
    return Error(Code::kInvalidArgument,
                 "image " + manifest_digest.String() + ": " + std::to_string(m.layers.size()) +
                     " layers but " + std::to_string(cfg.diff_ids.size()) + " diff_ids in the config");
  }
  std::vector<Digest> children{m.config.digest};
  for (auto& l : m.layers) {
    auto size = content_->Size(l.digest);
    if (!size.ok()) return Error(Code::kNotFound, "layer " + l.digest.String() + ": blob missing from the content store");
    if (*size != l.size) {
      return Error(Code::kDataLoss, "layer " + l.digest.String() + ": size " + std::to_string(*size) +
                                        ", manifest says " + std::to_string(l.size));
    }
    children.push_back(l.digest);
  }
  ImageRecord rec;
  rec.digest = manifest_digest;
  rec.media_type = m.media_type;
  rec.size = static_cast<int64_t>(bytes.size());
  rec.config = m.config.digest;
  rec.created_unix = static_cast<int64_t>(std::time(nullptr));
  XB_TRY(db_->Transaction([&]() -> Status {
    XB_ASSIGN(auto existing, db_->GetImage(manifest_digest));
    if (existing) rec.created_unix = existing->created_unix;
    XB_TRY(db_->PutImage(rec));
    XB_TRY(db_->DeleteBlobRefs(manifest_digest));
    return db_->AddBlobRefs(manifest_digest, children);
  }));
  return rec;
}

Result<ImageRecord> ImageStore::CommitImage(const image::Manifest& manifest) {
  std::string bytes = manifest.Serialize();
  XB_ASSIGN(Digest d, content_->WriteBlob(bytes));
  return AddImage(d);
}

Status ImageStore::Tag(const image::Reference& ref, const Digest& image) {
  if (ref.tag.empty()) return Error(Code::kInvalidArgument, "tag " + ref.String() + ": a tag is required");
  return db_->SetTag(ref.String(), image);
}

Result<ResolvedImage> ImageStore::Load(const ImageRecord& rec) {
  ResolvedImage r;
  r.record = rec;
  XB_ASSIGN(r.manifest_bytes, content_->ReadBlob(rec.digest, image::kMaxManifestSize));
  XB_ASSIGN(r.manifest, image::ParseManifest(r.manifest_bytes, rec.digest));
  XB_ASSIGN(std::string cfg, content_->ReadBlob(r.manifest.config.digest, image::kMaxConfigSize));
  XB_ASSIGN(r.config, image::ParseImageConfig(cfg, r.manifest.config.digest));
  XB_ASSIGN(r.tags, db_->TagsFor(rec.digest));
  return r;
}

namespace {

bool IsHexPrefix(std::string_view s) {
  if (s.size() < 4 || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

Result<ResolvedImage> ImageStore::Resolve(std::string_view name) {
  std::string_view id = name;
  bool explicit_id = false;
  if (id.starts_with("sha256:")) {
    id.remove_prefix(7);
    explicit_id = true;
  }
  if (IsHexPrefix(id)) {
    XB_ASSIGN(auto images, db_->ListImages());
    const ImageRecord* found = nullptr;
    for (auto& rec : images) {
      if (rec.config.Hex().starts_with(id) || rec.digest.Hex().starts_with(id)) {
        if (found && found->digest != rec.digest) {
          return Error(Code::kInvalidArgument, "image ID prefix \"" + std::string(name) + "\" is ambiguous");
        }
        found = &rec;
      }
    }
    if (found) return Load(*found);
    if (explicit_id || id.size() == 64) {
      return Error(Code::kNotFound, "No such image: " + std::string(name));
    }
  }
  auto ref = image::ParseReference(name);
  if (!ref.ok()) return std::move(ref).error();
  if (ref->digest) {
    XB_ASSIGN(auto rec, db_->GetImage(*ref->digest));
    if (!rec) return Error(Code::kNotFound, "No such image: " + std::string(name));
    return Load(*rec);
  }
  XB_ASSIGN(auto target, db_->GetTag(ref->String()));
  if (!target) return Error(Code::kNotFound, "No such image: " + ref->Familiar());
  XB_ASSIGN(auto rec, db_->GetImage(*target));
  if (!rec) return Error(Code::kDataLoss, "tag " + ref->String() + " points at a missing image " + target->String());
  return Load(*rec);
}

Result<std::vector<ResolvedImage>> ImageStore::List() {
  XB_ASSIGN(auto recs, db_->ListImages());
  std::vector<ResolvedImage> out;
  for (auto& rec : recs) {
    XB_ASSIGN_CTX(ResolvedImage r, Load(rec), "image " + rec.digest.String());
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const ResolvedImage& a, const ResolvedImage& b) {
    return a.record.created_unix > b.record.created_unix;
  });
  return out;
}

Result<ImageStore::RemoveResult> ImageStore::Remove(std::string_view name, bool force) {
  RemoveResult res;
  XB_ASSIGN(ResolvedImage img, Resolve(name));
  // Was it named by one of its tags?
  std::optional<std::string> by_tag;
  if (auto ref = image::ParseReference(name); ref.ok() && !ref->digest) {
    for (auto& t : img.tags)
      if (t == ref->String()) by_tag = t;
  }
  XB_TRY(db_->Transaction([&]() -> Status {
    // Read in the transaction that deletes: a lease taken before it is seen, one taken after
    // finds the image gone (a build's base image, an exported image not yet tagged).
    XB_ASSIGN(auto leased, db_->LeasedKeys("image"));
    bool in_use = std::find(leased.begin(), leased.end(), img.record.digest.String()) != leased.end();
    if (by_tag && img.tags.size() > 1) {
      XB_TRY(db_->DeleteTag(*by_tag));
      res.untagged.push_back(*by_tag);
      return core::Ok();
    }
    if (!by_tag && img.tags.size() > 1 && !force) {
      return Error(Code::kFailedPrecondition,
                   "unable to delete " + img.record.config.Short() +
                       " (must be forced) - image is referenced in multiple repositories");
    }
    if (in_use && !force) {
      return Error(Code::kFailedPrecondition, "unable to remove image " + img.record.config.Short() +
                                                  ": image is in use by a running operation (use -f)");
    }
    for (auto& t : img.tags) {
      XB_TRY(db_->DeleteTag(t));
      res.untagged.push_back(t);
    }
    XB_TRY(db_->DeleteImage(img.record.digest));
    res.deleted.push_back(img.record);
    return core::Ok();
  }));
  if (!res.deleted.empty()) XB_TRY(CollectGarbage().Context("remove unused blobs"));
  return res;
}

Result<core::UniqueFd> ImageStore::LockGc(bool exclusive) {
  XB_ASSIGN(core::UniqueFd fd, core::Open(core::JoinPath(root_, "gc.lock"), O_RDWR | O_CREAT, 0600));
  int op = exclusive ? (LOCK_EX | LOCK_NB) : LOCK_SH;
  while (::flock(fd.get(), op) != 0) {
    if (errno == EINTR) continue;
    if (exclusive && errno == EWOULDBLOCK) return core::UniqueFd();
    return core::SysError("lock " + core::JoinPath(root_, "gc.lock"));
  }
  return fd;
}

Result<Lease> ImageStore::CreateProcessLease(std::chrono::seconds ttl) {
  XB_ASSIGN(Lease lease, db_->CreateLease(ttl));
  XB_TRY(db_->AddLeaseResource(lease.id, "process", std::to_string(::getpid())));
  return lease;
}

Status ImageStore::ReleaseDeadLeases() {
  XB_TRY(db_->ExpireLeases(static_cast<int64_t>(std::time(nullptr))));
  XB_ASSIGN(auto owners, db_->LeaseResources("process"));
  for (const auto& [lease, pid_text] : owners) {
    pid_t pid = static_cast<pid_t>(std::atoi(pid_text.c_str()));
    if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) continue;
    XB_TRY(db_->DeleteLease(lease));
  }
  return core::Ok();
}

Result<int64_t> ImageStore::CollectGarbage() {
  XB_ASSIGN(core::UniqueFd gc_lock, LockGc(true));
  if (!gc_lock.valid()) return int64_t{0};  // a writer is in flight: collect next time
  XB_TRY(ReleaseDeadLeases());
  XB_ASSIGN(auto blobs, content_->List());
  XB_ASSIGN(auto leased, db_->LeasedKeys("content"));
  std::set<std::string> keep(leased.begin(), leased.end());
  XB_ASSIGN(auto images, db_->ListImages());
  for (auto& img : images) keep.insert(img.digest.String());
  int64_t freed = 0;
  // A deleted blob's own edges go with it, which may free what only it referenced (a layer's
  // compressed variants): repeat until a pass deletes nothing.
  std::set<std::string> gone;
  for (bool deleted = true; deleted;) {
    deleted = false;
    for (auto& d : blobs) {
      if (keep.count(d.String()) || gone.count(d.String())) continue;
      XB_ASSIGN(int64_t refs, db_->RefCount(d));
      if (refs > 0) continue;
      auto size = content_->Size(d);
      XB_TRY(content_->Delete(d));
      XB_TRY(db_->ForgetBlob(d));
      gone.insert(d.String());
      if (size.ok()) freed += *size;
      deleted = true;
    }
  }
  return freed;
}

}  // namespace xbuild::cache
