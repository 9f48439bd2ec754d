#include "cache/distribution.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "core/fs.h"
#include "image/compression.h"
#include "image/media_types.h"

namespace xbuild::cache {

using core::Code;
using core::Digest;
using core::Error;

std::optional<image::Compression> LayerCompression(std::string_view mt) {
  namespace m = image::media;
  if (mt == m::kOciLayer || mt == m::kDockerLayer) return image::Compression::kNone;
  if (mt == m::kOciLayerGzip || mt == m::kDockerLayerGzip) return image::Compression::kGzip;
  if (mt == m::kOciLayerZstd || mt == m::kDockerLayerZstd) return image::Compression::kZstd;
  return std::nullopt;
}

std::string LayerMediaType(image::Compression c, bool oci) {
  namespace m = image::media;
  switch (c) {
    case image::Compression::kNone: return std::string(oci ? m::kOciLayer : m::kDockerLayer);
    case image::Compression::kGzip: return std::string(oci ? m::kOciLayerGzip : m::kDockerLayerGzip);
    case image::Compression::kZstd: return std::string(m::kOciLayerZstd);
  }
  return std::string(m::kOciLayer);
}

namespace {

// The stored variant of `source`, or a new one compressed now.
core::Result<BlobVariant> Variant(ImageStore& store, const Lease& lease, const Digest& source,
                                  const DistributionOptions& opts, int threads, bool* made);

}  // namespace

core::Result<BlobVariant> EnsureVariant(ImageStore& store, const Lease& lease, const core::Digest& source,
                                        image::Compression compression, int threads) {
  DistributionOptions o;
  o.compression = compression;
  bool made = false;
  int cores = threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return Variant(store, lease, source, o, cores, &made);
}

namespace {

core::Result<BlobVariant> Variant(ImageStore& store, const Lease& lease, const Digest& source,
                                  const DistributionOptions& opts, int threads, bool* made) {
  std::string name(image::CompressionName(opts.compression));
  XB_ASSIGN(auto known, store.db().GetBlobVariant(source, name));
  if (known && store.content().Has(known->digest)) {
    XB_TRY(store.db().AddLeaseResource(lease.id, "content", known->digest.String()));
    *made = false;
    return *known;
  }
  XB_ASSIGN(core::UniqueFd in, store.content().OpenBlob(source));
  XB_ASSIGN(std::string tmp, store.TempDir("compress-"));
  core::ScopeGuard cleanup([&] { (void)core::RemoveAll(tmp); });
  std::string path = core::JoinPath(tmp, "blob");
  XB_ASSIGN(core::UniqueFd out, core::Open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  image::CompressOptions co;
  co.compression = opts.compression;
  co.threads = threads;
  XB_ASSIGN_CTX(image::LayerResult r, image::Compress(in.get(), out.get(), co), "compress layer " + source.String());
  if (r.diff_id != source) {
    return Error(Code::kDataLoss, "layer " + source.String() + " reads back as " + r.diff_id.String());
  }
  if (::lseek(out.get(), 0, SEEK_SET) != 0) return core::SysError("seek " + path);
  XB_TRY(store.db().AddLeaseResource(lease.id, "content", r.digest.String()));
  XB_TRY(store.content().WriteBlobFromFd(out.get(), r.digest, r.size).Context("store compressed layer"));
  BlobVariant v;
  v.source = source;
  v.compression = name;
  v.digest = r.digest;
  v.size = r.size;
  XB_TRY(store.db().PutBlobVariant(v));
  *made = true;
  return v;
}

}  // namespace

core::Result<ResolvedImage> ForDistribution(ImageStore& store, const ResolvedImage& img,
                                            const DistributionOptions& opts, DistributionStats* stats) {
  bool oci = opts.compression == image::Compression::kZstd ||
             opts.oci_mediatypes.value_or(img.manifest.media_type != image::media::kDockerManifest);
  // Which layers need a variant: uncompressed ones, when compressing.
  std::vector<size_t> todo;
  for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
    auto c = LayerCompression(img.manifest.layers[i].media_type);
    if (c == image::Compression::kNone && opts.compression != image::Compression::kNone) todo.push_back(i);
  }
  if (todo.empty() && oci == (img.manifest.media_type == image::media::kOciManifest)) {
    if (stats) *stats = DistributionStats{};
    return img;  // already in that form: its exact bytes
  }
  ResolvedImage out = img;
  out.manifest.media_type = std::string(oci ? image::media::kOciManifest : image::media::kDockerManifest);
  out.manifest.config.media_type = std::string(oci ? image::media::kOciConfig : image::media::kDockerConfig);
  for (auto& l : out.manifest.layers) {
    if (auto c = LayerCompression(l.media_type)) l.media_type = LayerMediaType(*c, oci);
  }
  int cores = opts.threads > 0 ? opts.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  DistributionStats st;
  XB_TRY(store.WithLease<bool>([&](const Lease& lease) -> core::Result<bool> {
    // Layers in parallel, one core each; a lone layer gets all of them.
    size_t lanes = std::min(todo.size(), static_cast<size_t>(cores));
    int per_layer = todo.size() == 1 ? cores : 1;
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::optional<Error> failed;
    auto work = [&] {
      for (size_t k; (k = next++) < todo.size();) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (failed) return;
        }
        image::Descriptor& d = out.manifest.layers[todo[k]];
        bool made = false;
        auto v = Variant(store, lease, d.digest, opts, per_layer, &made);
        std::lock_guard<std::mutex> l(mu);
        if (!v.ok()) {
          if (!failed) failed = std::move(v).error();
          return;
        }
        d.digest = v->digest;
        d.size = v->size;
        d.media_type = LayerMediaType(opts.compression, oci);
        (made ? st.compressed : st.reused)++;
      }
    };
    std::vector<std::thread> workers;
    for (size_t i = 1; i < lanes; ++i) workers.emplace_back(work);
    work();
    for (auto& w : workers) w.join();
    if (failed) return *failed;
    return true;
  }));
  out.manifest_bytes = out.manifest.Serialize();
  out.record.digest = Digest::Of(out.manifest_bytes);
  out.record.size = static_cast<int64_t>(out.manifest_bytes.size());
  out.record.media_type = out.manifest.media_type;
  if (stats) *stats = st;
  return out;
}

}  // namespace xbuild::cache
