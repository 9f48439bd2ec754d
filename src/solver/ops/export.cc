#include "solver/ops/export.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "cache/distribution.h"
#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "image/media_types.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Digest;
using core::Error;
using image::Descriptor;

namespace {

// Where a step snapshot's layer is remembered. One memo per clamp: a layer made without
// SOURCE_DATE_EPOCH is not one made with it.
std::string LayerMemo(exec::Snapshotter& snaps, const std::string& id, std::optional<int64_t> sde) {
  return core::JoinPath(core::Dirname(snaps.FsDir(id)),
                        sde ? "layer-none-sde" + std::to_string(*sde) + ".json" : "layer-none.json");
}

}  // namespace

core::Status RememberStepLayer(exec::Snapshotter& snaps, const std::string& id, const Layer& layer,
                               std::optional<int64_t> source_date_epoch) {
  core::Json j = {{"digest", layer.desc.digest.String()}, {"diff_id", layer.diff_id.String()}, {"size", layer.desc.size}};
  if (!layer.desc.media_type.empty()) j["mediaType"] = layer.desc.media_type;
  return core::WriteFileAtomic(LayerMemo(snaps, id, source_date_epoch), j.dump());
}

// The layer of a step snapshot: remembered beside it, made when missing.
core::Result<Layer> StepLayer(cache::ImageStore& store, exec::Snapshotter& snaps, const std::string& id,
                              const ExportOptions& opts, const cache::Lease& lease) {
  std::string fs = snaps.FsDir(id);
  std::string memo = LayerMemo(snaps, id, opts.source_date_epoch);
  std::string media_type = cache::LayerMediaType(image::Compression::kNone, opts.oci_mediatypes);
  if (auto text = core::ReadFile(memo, 4096); text.ok()) {
    auto j = core::Json::parse(*text, nullptr, false);
    auto d = Digest::Parse(j.is_object() ? j.value("digest", "") : "");
    auto diff = Digest::Parse(j.is_object() ? j.value("diff_id", "") : "");
    if (d.ok() && diff.ok() && store.content().Has(*d)) {
      XB_TRY(store.db().AddLeaseResource(lease.id, "content", d->String()));
      Layer l;
      // A layer imported from a cache is remembered compressed, as it came (mediaType).
      l.desc.media_type = j.value("mediaType", media_type);
      l.desc.digest = *d;
      l.desc.size = j.value("size", int64_t{0});
      l.diff_id = *diff;
      return l;
    }
  }
  XB_ASSIGN(std::string tmp, store.TempDir("layer-"));
  core::ScopeGuard cleanup([&] { (void)core::RemoveAll(tmp); });
  std::string path = core::JoinPath(tmp, "layer");
  XB_ASSIGN(core::UniqueFd fd, core::Open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  image::LayerOptions lo;
  lo.compression = image::Compression::kNone;
  lo.source_date_epoch = opts.source_date_epoch;
  XB_ASSIGN_CTX(image::LayerResult lr, image::CreateLayer(fs, image::DirKind::kOverlayUpper, fd.get(), lo),
                "make the layer of snapshot " + id);
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return core::SysError("seek " + path);
  XB_TRY(store.db().AddLeaseResource(lease.id, "content", lr.digest.String()));
  XB_TRY(store.content().WriteBlobFromFd(fd.get(), lr.digest, lr.size).Context("store layer"));
  Layer l;
  l.desc.media_type = media_type;
  l.desc.digest = lr.digest;
  l.desc.size = lr.size;
  l.diff_id = lr.diff_id;
  Layer remembered = l;
  remembered.desc.media_type.clear();  // uncompressed: whatever media types the export uses
  (void)RememberStepLayer(snaps, id, remembered, opts.source_date_epoch);
  return l;
}

namespace {

// The image whose layers make the base snapshot (key "image:<chain id>").
core::Result<cache::ResolvedImage> BaseImage(cache::ImageStore& store, const std::string& key) {
  XB_ASSIGN(auto images, store.List());
  for (auto& img : images) {
    if ("image:" + exec::ChainId(img.config.diff_ids).String() == key) return img;
  }
  return Error(Code::kNotFound, "export: the base image of snapshot " + key + " is no longer in the store");
}

}  // namespace

core::Result<cache::ImageRecord> ExportImage(cache::ImageStore& store, exec::Snapshotter& snaps, const Ref& result,
                                             image::ImageConfig config, const ExportOptions& opts) {
  // The chain, top first; the bottom may be an unpacked base image.
  std::vector<cache::SnapshotRecord> chain;
  for (std::string id = result.id; !id.empty();) {
    XB_ASSIGN(auto rec, store.db().GetSnapshot(id));
    if (!rec) return Error(Code::kNotFound, "export: snapshot " + id + " not found");
    chain.push_back(*rec);
    id = rec->parent;
    if (chain.size() > 1000) return Error(Code::kFailedPrecondition, "export: snapshot chain too long");
  }
  std::vector<Descriptor> layers;
  std::vector<Digest> diff_ids;
  if (!chain.empty() && chain.back().key.starts_with("image:")) {
    XB_ASSIGN(cache::ResolvedImage base, BaseImage(store, chain.back().key));
    layers = base.manifest.layers;
    diff_ids = base.config.diff_ids;
    chain.pop_back();
  }
  size_t non_empty = 0;
  for (const auto& h : config.history) non_empty += h.empty_layer ? 0 : 1;
  if (!config.history.empty() && non_empty != layers.size() + chain.size()) {
    return Error(Code::kInternal, "export: " + std::to_string(non_empty) + " history entries with layers for " +
                                      std::to_string(layers.size() + chain.size()) + " layers");
  }
  return store.WithLease<cache::ImageRecord>([&](const cache::Lease& lease) -> core::Result<cache::ImageRecord> {
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      XB_ASSIGN(Layer l, StepLayer(store, snaps, it->id, opts, lease));
      layers.push_back(l.desc);
      diff_ids.push_back(l.diff_id);
    }
    // Created: when the newest step ran (so a fully cached rebuild exports the same image ID,
    // as BuildKit's does), or SOURCE_DATE_EPOCH.
    int64_t created = 0;
    for (const auto& step : chain) created = std::max(created, step.created_unix);
    if (opts.source_date_epoch) created = *opts.source_date_epoch;
    if (created > 0) {
      config.created = image::FormatTime(created);
    } else if (config.created.empty()) {
      config.created = image::FormatTime(static_cast<int64_t>(std::time(nullptr)));
    }
    for (auto& h : config.history) {
      if (h.created.empty()) h.created = config.created;
    }
    config.diff_ids = diff_ids;
    if (opts.amend_config) {
      XB_TRY(opts.amend_config(layers, lease, config));
    }
    std::string cfg_bytes = config.Serialize();
    XB_ASSIGN(Digest cfg_digest, store.content().WriteBlob(cfg_bytes));
    XB_TRY(store.db().AddLeaseResource(lease.id, "content", cfg_digest.String()));
    image::Manifest m;
    m.media_type = std::string(opts.oci_mediatypes ? image::media::kOciManifest : image::media::kDockerManifest);
    m.config.media_type = std::string(opts.oci_mediatypes ? image::media::kOciConfig : image::media::kDockerConfig);
    m.config.digest = cfg_digest;
    m.config.size = static_cast<int64_t>(cfg_bytes.size());
    for (auto& l : layers) {
      if (auto c = cache::LayerCompression(l.media_type)) l.media_type = cache::LayerMediaType(*c, opts.oci_mediatypes);
    }
    m.layers = layers;
    m.annotations = opts.annotations;
    if (opts.lease.empty()) return store.CommitImage(m);
    cache::ImageRecord rec;
    XB_TRY(store.db().Transaction([&]() -> core::Status {
      XB_ASSIGN(rec, store.CommitImage(m));
      return store.db().AddLeaseResource(opts.lease, "image", rec.digest.String());
    }));
    return rec;
  });
}

}  // namespace xbuild::solver::ops
