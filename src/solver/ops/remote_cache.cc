#include "solver/ops/remote_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <tuple>

#include "cache/distribution.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "image/media_types.h"
#include "solver/ops/export.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Digest;
using core::Error;

namespace {

constexpr size_t kMaxCacheConfig = 32 << 20;
constexpr std::string_view kRefName = "org.opencontainers.image.ref.name";

Result<Digest> DigestField(const core::Json& j, const char* k) {
  if (!j.contains(k) || !j[k].is_string()) return Error(Code::kInvalidArgument, std::string("missing ") + k);
  return Digest::Parse(j[k].get<std::string>());
}

// Writes bytes to dir/blobs/sha256/<hex> unless there.
core::Status PutLayoutBlob(const std::string& dir, const Digest& d, const std::function<core::Status(const std::string&)>& write) {
  std::string path = core::JoinPath(dir, "blobs/sha256/" + d.Hex());
  if (core::Exists(path)) return core::Ok();
  XB_TRY(core::MkdirAll(core::Dirname(path), 0755));
  std::string tmp = path + ".tmp";
  XB_TRY(write(tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return core::SysError("rename " + tmp);
  return core::Ok();
}

core::Status CopyBlobTo(cache::ImageStore& store, const Digest& d, const std::string& path) {
  XB_ASSIGN(core::UniqueFd in, store.content().OpenBlob(d));
  XB_ASSIGN(core::UniqueFd out, core::Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return core::SysError("read blob " + d.String());
    if (n == 0) break;
    XB_TRY(core::WriteAll(out.get(), std::string_view(buf, static_cast<size_t>(n))));
  }
  return core::Ok();
}

}  // namespace

namespace {

core::Json RecordsJson(const std::vector<CacheRecordInfo>& records) {
  core::Json rs = core::Json::array();
  for (const auto& r : records) {
    core::Json j = {{"key", r.key}, {"layer", r.layer}};
    if (!r.parent.empty()) j["parent"] = r.parent;
    if (!r.base.empty()) j["base"] = r.base;
    rs.push_back(j);
  }
  return rs;
}

// Records whose layers index `layer_count` layers.
core::Result<std::vector<CacheRecordInfo>> ParseRecords(const core::Json& rs, size_t layer_count) {
  std::vector<CacheRecordInfo> out;
  for (const auto& r : rs) {
    if (!r.is_object() || !r.contains("key") || !r["key"].is_string()) {
      return Error(Code::kInvalidArgument, "a record has no key");
    }
    CacheRecordInfo ri;
    ri.key = r["key"].get<std::string>();
    ri.layer = r.value("layer", -1);
    ri.parent = r.value("parent", "");
    ri.base = r.value("base", "");
    if (ri.layer < 0 || static_cast<size_t>(ri.layer) >= layer_count) {
      return Error(Code::kInvalidArgument, "record " + ri.key + " names no layer");
    }
    out.push_back(ri);
  }
  return out;
}

}  // namespace

std::string CacheConfig::Serialize() const {
  core::Json ls = core::Json::array();
  for (const auto& l : layers) {
    ls.push_back({{"digest", l.digest.String()}, {"diff_id", l.diff_id.String()}, {"mediaType", l.media_type}, {"size", l.size}});
  }
  return core::CanonicalJson(core::Json{{"layers", ls}, {"records", RecordsJson(records)}});
}

core::Result<CacheConfig> CacheConfig::Parse(std::string_view text) {
  XB_ASSIGN(core::Json j, core::ParseJson(text, "cache config"));
  if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array() || !j.contains("records") ||
      !j["records"].is_array()) {
    return Error(Code::kInvalidArgument, "cache config: layers and records must be arrays");
  }
  CacheConfig c;
  for (const auto& l : j["layers"]) {
    if (!l.is_object()) return Error(Code::kInvalidArgument, "cache config: a layer is not an object");
    CacheLayerInfo li;
    XB_ASSIGN_CTX(li.digest, DigestField(l, "digest"), "cache config layer");
    XB_ASSIGN_CTX(li.diff_id, DigestField(l, "diff_id"), "cache config layer");
    li.media_type = l.value("mediaType", "");
    li.size = l.value("size", int64_t{-1});
    if (li.size < 0 || !cache::LayerCompression(li.media_type)) {
      return Error(Code::kInvalidArgument, "cache config: layer " + li.digest.String() + " has no size or no layer media type");
    }
    c.layers.push_back(li);
  }
  XB_ASSIGN_CTX(c.records, ParseRecords(j["records"], c.layers.size()), "cache config");
  return c;
}

core::Result<core::Json> InlineCache(const CacheConfig& records, const std::vector<image::Descriptor>& layers) {
  std::vector<CacheRecordInfo> out;
  for (const auto& r : records.records) {
    const Digest& blob = records.layers[static_cast<size_t>(r.layer)].digest;
    auto at = std::find_if(layers.begin(), layers.end(), [&](const image::Descriptor& d) { return d.digest == blob; });
    if (at == layers.end()) {
      return Error(Code::kInternal, "inline cache: the layer " + blob.String() + " of step " + r.key + " is not in the image");
    }
    CacheRecordInfo inl = r;
    inl.layer = static_cast<int>(at - layers.begin());
    out.push_back(inl);
  }
  std::sort(out.begin(), out.end(), [](const CacheRecordInfo& a, const CacheRecordInfo& b) {
    return std::tie(a.layer, a.key) < std::tie(b.layer, b.key);
  });
  return core::Json{{"records", RecordsJson(out)}};
}

core::Result<CacheConfig> ParseInlineCache(const image::ImageConfig& config, const image::Manifest& manifest) {
  auto it = config.extra.find(std::string(kInlineCacheKey));
  if (it == config.extra.end()) return Error(Code::kNotFound, "the image has no inline cache");
  if (!it->is_object() || !it->contains("records") || !(*it)["records"].is_array()) {
    return Error(Code::kInvalidArgument, "inline cache: records must be an array");
  }
  if (config.diff_ids.size() != manifest.layers.size()) {
    return Error(Code::kInvalidArgument, "inline cache: the image has " + std::to_string(manifest.layers.size()) +
                                             " layers but " + std::to_string(config.diff_ids.size()) + " diff_ids");
  }
  CacheConfig c;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    const image::Descriptor& d = manifest.layers[i];
    if (!cache::LayerCompression(d.media_type)) {
      return Error(Code::kInvalidArgument, "inline cache: layer " + d.digest.String() + " has media type " + d.media_type);
    }
    c.layers.push_back(CacheLayerInfo{d.digest, config.diff_ids[i], d.media_type, d.size});
  }
  XB_ASSIGN_CTX(c.records, ParseRecords((*it)["records"], c.layers.size()), "inline cache");
  return c;
}

core::Result<CacheLocation> ParseCacheLocation(const std::string& spec, bool for_export) {
  CacheLocation loc;
  std::string what = std::string(for_export ? "--cache-to " : "--cache-from ") + spec;
  if (spec.find('=') == std::string::npos) {  // a bare reference
    loc.type = "registry";
    loc.ref = spec;
    return loc;
  }
  for (const auto& field : core::Split(spec, ',')) {
    size_t eq = field.find('=');
    std::string k = field.substr(0, eq), v = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (k == "type") loc.type = v;
    else if (k == "ref") loc.ref = v;
    else if (k == "dest" && for_export) loc.dir = v;
    else if (k == "src" && !for_export) loc.dir = v;
    else if (k == "mode" && for_export) {
      if (v != "min" && v != "max") return Error(Code::kInvalidArgument, what + ": mode must be min or max");
      loc.max = v == "max";
    } else if (k == "compression" && for_export) {
      if (v == "gzip") loc.compression = image::Compression::kGzip;
      else if (v == "zstd") loc.compression = image::Compression::kZstd;
      else return Error(Code::kInvalidArgument, what + ": compression must be gzip or zstd");
    } else if (k == "ignore-error" && for_export) {
      loc.ignore_error = v == "true";
    } else if (k == "oci-mediatypes" || k == "image-manifest" || k == "compression-level" || k == "force-compression") {
      continue;  // BuildKit's knobs with one fixed answer here (OCI manifests)
    } else {
      return Error(Code::kInvalidArgument, what + ": unknown attribute \"" + k + "\"");
    }
  }
  if (loc.type == "inline") {
    if (!for_export) {
      return Error(Code::kInvalidArgument, what + ": an image's inline cache is read with type=registry,ref=IMAGE (or the bare IMAGE)");
    }
    if (loc.max) {
      return Error(Code::kInvalidArgument, what + ": inline cache holds the image's own layers only (mode=min); use type=registry,mode=max");
    }
    return loc;
  }
  if (loc.type != "registry" && loc.type != "local") {
    return Error(Code::kInvalidArgument, what + ": type must be " + (for_export ? "registry, local or inline" : "registry or local"));
  }
  if (loc.type == "registry" && loc.ref.empty()) return Error(Code::kInvalidArgument, what + ": ref= is required");
  if (loc.type == "local" && loc.dir.empty()) {
    return Error(Code::kInvalidArgument, what + (for_export ? ": dest= is required" : ": src= is required"));
  }
  return loc;
}

core::Result<CacheConfig> CollectCache(cache::ImageStore& store, exec::Snapshotter& snaps,
                                       const std::vector<SolvedStep>& steps, const std::string& root, bool max,
                                       const cache::Lease& lease) {
  std::map<std::string, std::string> key_of;  // snapshot -> key
  for (const auto& s : steps) key_of.emplace(s.snapshot, s.key);
  std::set<std::string> chain;  // mode=min: the result's snapshot chain
  for (std::string id = root; !id.empty();) {
    XB_ASSIGN(auto rec, store.db().GetSnapshot(id));
    if (!rec) break;
    chain.insert(id);
    id = rec->parent;
  }
  CacheConfig c;
  std::map<Digest, int> layer_index;
  std::set<std::string> done;
  for (const auto& s : steps) {
    if (s.snapshot.empty() || done.count(s.key) || (!max && !chain.count(s.snapshot))) continue;
    XB_ASSIGN(auto rec, store.db().GetSnapshot(s.snapshot));
    if (!rec || rec->kind != "committed" || !rec->key.empty()) continue;  // image unpacks are not steps
    CacheRecordInfo r;
    r.key = s.key;
    if (!rec->parent.empty()) {
      XB_ASSIGN(auto parent, store.db().GetSnapshot(rec->parent));
      if (parent && parent->key.starts_with("image:")) {
        r.base = parent->key.substr(6);
      } else if (auto it = key_of.find(rec->parent); it != key_of.end()) {
        r.parent = it->second;
      } else {
        continue;  // a parent this build did not produce: the record could not be rebuilt
      }
    }
    ExportOptions eo;
    XB_ASSIGN(Layer l, StepLayer(store, snaps, s.snapshot, eo, lease));
    auto [it, added] = layer_index.emplace(l.desc.digest, static_cast<int>(c.layers.size()));
    if (added) {
      c.layers.push_back(CacheLayerInfo{l.desc.digest, l.diff_id, l.desc.media_type, l.desc.size});
    }
    r.layer = it->second;
    c.records.push_back(r);
    done.insert(s.key);
  }
  return c;
}

core::Status WriteCache(cache::ImageStore& store, registry::Client* registry, const CacheConfig& records,
                        const CacheLocation& loc, const cache::Lease& lease) {
  // Layers as they leave the machine: uncompressed ones get their compressed variant.
  // Layers already compressed (imported ones) go as they are, under their OCI media type.
  CacheConfig out = records;
  for (auto& l : out.layers) {
    image::Compression c = cache::LayerCompression(l.media_type).value_or(image::Compression::kNone);
    if (c == image::Compression::kNone) {
      XB_ASSIGN(cache::BlobVariant v, cache::EnsureVariant(store, lease, l.digest, loc.compression));
      l.digest = v.digest;
      l.size = v.size;
      c = loc.compression;
    }
    l.media_type = cache::LayerMediaType(c, true);
  }
  std::string cfg = out.Serialize();
  image::Manifest m;
  m.media_type = std::string(image::media::kOciManifest);
  m.config.media_type = std::string(kCacheConfigMediaType);
  m.config.digest = Digest::Of(cfg);
  m.config.size = static_cast<int64_t>(cfg.size());
  for (const auto& l : out.layers) {
    image::Descriptor d;
    d.media_type = l.media_type;
    d.digest = l.digest;
    d.size = l.size;
    m.layers.push_back(d);
  }
  std::string manifest = m.Serialize();
  Digest md = Digest::Of(manifest);
  if (loc.type == "local") {
    XB_TRY(core::MkdirAll(loc.dir, 0755));
    for (const auto& l : out.layers) {
      XB_TRY(PutLayoutBlob(loc.dir, l.digest, [&](const std::string& p) { return CopyBlobTo(store, l.digest, p); }));
    }
    for (const auto& [d, bytes] : {std::pair{m.config.digest, cfg}, std::pair{md, manifest}}) {
      XB_TRY(PutLayoutBlob(loc.dir, d, [&](const std::string& p) { return core::WriteFileAtomic(p, bytes); }));
    }
    core::Json index = {{"schemaVersion", 2},
                        {"mediaType", image::media::kOciIndex},
                        {"manifests", core::Json::array({{{"mediaType", image::media::kOciManifest},
                                                          {"digest", md.String()},
                                                          {"size", manifest.size()},
                                                          {"annotations", {{std::string(kRefName), "latest"}}}}})}};
    XB_TRY(core::WriteFileAtomic(core::JoinPath(loc.dir, "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})"));
    XB_TRY(core::WriteFileAtomic(core::JoinPath(loc.dir, "index.json"), index.dump()));
    return core::Ok();
  }
  if (!registry) return Error(Code::kFailedPrecondition, "cache export: no registry client");
  XB_ASSIGN(image::Reference ref, image::ParseReference(loc.ref));
  XB_ASSIGN(Digest written, store.content().WriteBlob(cfg));
  XB_TRY(store.db().AddLeaseResource(lease.id, "content", written.String()));
  cache::ResolvedImage img;
  img.manifest = m;
  img.manifest_bytes = manifest;
  img.record.digest = md;
  img.record.media_type = m.media_type;
  img.record.size = static_cast<int64_t>(manifest.size());
  XB_TRY(registry->PushImage(store, img, ref, nullptr));
  return core::Ok();
}

std::optional<std::string> ImportedCache::Add(const CacheLocation& loc) {
  std::string where = loc.type == "local" ? loc.dir : loc.ref;
  auto load = [&]() -> Result<std::unique_ptr<Source>> {
    std::string manifest_bytes;
    auto src = std::make_unique<Source>();
    src->loc = loc;
    if (loc.type == "local") {
      XB_ASSIGN(std::string index_text, core::ReadFile(core::JoinPath(loc.dir, "index.json"), 4 << 20));
      XB_ASSIGN(core::Json index, core::ParseJson(index_text, "index.json"));
      if (!index.contains("manifests") || !index["manifests"].is_array() || index["manifests"].empty()) {
        return Error(Code::kInvalidArgument, "index.json lists no manifest");
      }
      XB_ASSIGN(Digest md, DigestField(index["manifests"][0], "digest"));
      XB_ASSIGN(manifest_bytes, core::ReadFile(core::JoinPath(loc.dir, "blobs/sha256/" + md.Hex()), image::kMaxManifestSize));
      if (Digest::Of(manifest_bytes) != md) return Error(Code::kDataLoss, "manifest " + md.String() + " does not verify");
    } else {
      if (!registry_) return Error(Code::kFailedPrecondition, "no registry client");
      XB_ASSIGN(image::Reference ref, image::ParseReference(loc.ref));
      XB_ASSIGN(registry::FetchedManifest fm, registry_->GetManifest(ref));
      if (image::IsIndexType(fm.media_type)) {  // an image for several platforms: this one's
        XB_ASSIGN(image::Index index, image::ParseIndex(fm.bytes, fm.digest));
        XB_ASSIGN(image::Descriptor d, image::SelectPlatform(index, image::HostPlatform()));
        image::Reference by_digest = ref;
        by_digest.digest = d.digest;
        XB_ASSIGN(fm, registry_->GetManifest(by_digest));
      }
      manifest_bytes = fm.bytes;
    }
    XB_ASSIGN(image::Manifest m, image::ParseManifest(manifest_bytes));
    bool is_image = m.config.media_type == image::media::kOciConfig || m.config.media_type == image::media::kDockerConfig;
    if (m.config.media_type != kCacheConfigMediaType && !(is_image && loc.type == "registry")) {
      return Error(Code::kInvalidArgument, "not a build cache (config media type " + m.config.media_type + ")");
    }
    std::string cfg;
    if (loc.type == "local") {
      XB_ASSIGN(cfg, core::ReadFile(core::JoinPath(loc.dir, "blobs/sha256/" + m.config.digest.Hex()), kMaxCacheConfig));
      if (Digest::Of(cfg) != m.config.digest) return Error(Code::kDataLoss, "cache config does not verify");
    } else {
      XB_ASSIGN(image::Reference ref, image::ParseReference(loc.ref));
      XB_TRY(registry_->FetchBlob(store_.content(), ref, m.config));
      XB_ASSIGN(cfg, store_.content().ReadBlob(m.config.digest, kMaxCacheConfig));
    }
    if (is_image) {  // an image: its inline cache
      XB_ASSIGN(image::ImageConfig ic, image::ParseImageConfig(cfg, m.config.digest));
      auto inl = ParseInlineCache(ic, m);
      if (!inl.ok() && inl.error().code() == Code::kNotFound) {
        return Error(Code::kNotFound, "the image has no inline cache (build it with --cache-to type=inline)");
      }
      XB_ASSIGN(src->config, std::move(inl));
      return src;
    }
    XB_ASSIGN(src->config, CacheConfig::Parse(cfg));
    return src;
  };
  auto src = load();
  if (!src.ok()) return "cache from " + where + " not used: " + src.error().ToString();
  const Source* s = src->get();
  for (const auto& r : s->config.records) records_.emplace(r.key, Entry{s, r});
  sources_.push_back(std::move(*src));
  return std::nullopt;
}

bool ImportedCache::Has(const std::string& key) const { return records_.count(key) > 0; }

core::Status ImportedCache::Fetch(const Source& src, const CacheLayerInfo& layer) {
  if (store_.content().Has(layer.digest)) return core::Ok();
  if (src.loc.type == "local") {
    std::string path = core::JoinPath(src.loc.dir, "blobs/sha256/" + layer.digest.Hex());
    XB_ASSIGN(core::UniqueFd fd, core::Open(path, O_RDONLY | O_CLOEXEC));
    // Digest-checked on the way in: a blob that does not verify is not stored.
    XB_TRY(store_.content().WriteBlobFromFd(fd.get(), layer.digest, layer.size));
    return core::Ok();
  }
  XB_ASSIGN(image::Reference ref, image::ParseReference(src.loc.ref));
  image::Descriptor d;
  d.media_type = layer.media_type;
  d.digest = layer.digest;
  d.size = layer.size;
  return registry_->FetchBlob(store_.content(), ref, d);
}

core::Status ImportedCache::Prefetch(const std::string& key, ResultCache& local) {
  // The records this realize makes, top first: up to a parent realized already (or the base).
  std::vector<const Entry*> chain;
  for (std::string k = key; !k.empty();) {
    auto it = records_.find(k);
    if (it == records_.end() || realized_.count(k)) break;
    if (k != key) {
      auto hit = local.Lookup(k);
      if (hit.ok() && *hit && !(*hit)->outputs.empty() && !local.IsLazy((*hit)->outputs[0])) break;
    }
    chain.push_back(&it->second);
    k = it->second.record.parent;
  }
  if (!lease_) {
    XB_ASSIGN(cache::Lease lease, store_.db().CreateLease(std::chrono::hours(1)));
    lease_ = lease;
  }
  struct Job {
    const Source* src;
    CacheLayerInfo layer;
    std::promise<core::Status> done;
  };
  auto jobs = std::make_shared<std::vector<Job>>();
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Entry* e = *it;
    const CacheLayerInfo& layer = e->source->config.layers[static_cast<size_t>(e->record.layer)];
    if (fetches_.count(layer.digest) || store_.content().Has(layer.digest)) continue;
    XB_TRY(store_.db().AddLeaseResource(lease_->id, "content", layer.digest.String()));
    jobs->push_back(Job{e->source, layer, {}});
    fetches_[layer.digest] = jobs->back().done.get_future().share();
  }
  auto next = std::make_shared<std::atomic<size_t>>(0);
  size_t workers = std::min<size_t>(4, jobs->size());
  for (size_t w = 0; w < workers; ++w) {
    fetchers_.emplace_back([this, jobs, next] {
      for (size_t i = next->fetch_add(1); i < jobs->size(); i = next->fetch_add(1)) {
        Job& j = (*jobs)[i];
        j.done.set_value(Fetch(*j.src, j.layer));
      }
    });
  }
  return core::Ok();
}

core::Status ImportedCache::Fetched(const Source& src, const CacheLayerInfo& layer) {
  if (auto f = fetches_.find(layer.digest); f != fetches_.end()) return f->second.get();
  return Fetch(src, layer);
}

core::Result<std::string> ImportedCache::Realize(const std::string& key, ResultCache& local) {
  std::lock_guard<std::recursive_mutex> l(mu_);
  if (auto it = realized_.find(key); it != realized_.end()) return it->second;
  auto it = records_.find(key);
  if (it == records_.end()) return Error(Code::kNotFound, "no imported cache record " + key);
  const Entry& e = it->second;
  XB_TRY(Prefetch(key, local));
  std::string parent;
  if (!e.record.parent.empty()) {
    auto hit = local.Lookup(e.record.parent);
    if (hit.ok() && *hit && !(*hit)->outputs.empty() && !local.IsLazy((*hit)->outputs[0])) {
      parent = (*hit)->outputs[0].id;
    } else {
      XB_ASSIGN(parent, Realize(e.record.parent, local));
    }
  } else if (!e.record.base.empty()) {
    XB_ASSIGN(auto images, store_.List());
    std::optional<cache::ResolvedImage> base;
    for (auto& img : images) {
      if (exec::ChainId(img.config.diff_ids).String() == e.record.base) base = img;
    }
    if (!base) return Error(Code::kNotFound, "the base image (chain " + e.record.base + ") is not in the store");
    XB_ASSIGN(parent, snaps_.FromImage(*base));
  }
  const CacheLayerInfo& layer = e.source->config.layers[static_cast<size_t>(e.record.layer)];
  XB_TRY(store_.db().AddLeaseResource(lease_->id, "content", layer.digest.String()));
  XB_TRY(Fetched(*e.source, layer).Context("cache layer " + layer.digest.String()));
  XB_ASSIGN(std::string id, snaps_.Prepare(parent));
  core::Status s = [&]() -> core::Status {
    XB_ASSIGN(std::string mount, snaps_.Mount(id));
    XB_ASSIGN(core::UniqueFd fd, store_.content().OpenBlob(layer.digest));
    auto applied = image::ApplyLayer(fd.get(), mount, image::ApplyOptions{});
    XB_TRY(snaps_.Unmount(id));
    if (!applied.ok()) return std::move(applied).error();
    if (applied->diff_id != layer.diff_id) {
      return Error(Code::kDataLoss, "layer " + layer.digest.String() + " unpacks to " + applied->diff_id.String() +
                                        ", not its diff_id " + layer.diff_id.String());
    }
    return snaps_.Commit(id);
  }();
  if (!s.ok()) {
    (void)snaps_.Remove(id);
    return std::move(s).error();
  }
  // Exported again, the step gives back exactly this blob (so runner B's image is runner A's).
  Layer kept;
  kept.desc.media_type = layer.media_type;
  kept.desc.digest = layer.digest;
  kept.desc.size = layer.size;
  kept.diff_id = layer.diff_id;
  (void)RememberStepLayer(snaps_, id, kept, std::nullopt);
  XB_TRY(local.Store(key, VertexResult{{Ref{id}}}));
  realized_[key] = id;
  return id;
}

ImportedCache::~ImportedCache() {
  for (auto& t : fetchers_) t.join();
  if (lease_) (void)store_.db().DeleteLease(lease_->id);
}

}  // namespace xbuild::solver::ops
