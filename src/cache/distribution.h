// The form in which a local image leaves the machine: to a registry (push), an OCI archive, or a
// build output.
//
// A build stores its step layers uncompressed (their digest is their diff_id), so a build that
// only tags locally spends no time compressing. When an image is pushed or exported, each
// uncompressed layer is replaced by a compressed variant: made once (in parallel, with every
// core), recorded in blob_variants with a blob_refs edge from the uncompressed blob, and reused
// by every later push or export with the same compression. A layer that is already compressed
// (a pulled base layer) is sent as it is. The config is unchanged, so the image ID is the same
// in every form; the manifest (and so the digest a registry reports) is the distribution form's.
#pragma once

#include <optional>

#include "cache/image_store.h"
#include "image/layer.h"

namespace xbuild::cache {

struct DistributionOptions {
  image::Compression compression = image::Compression::kGzip;
  // Media types of the manifest, config and layers: OCI or Docker's; unset keeps the image's.
  // zstd layers have no Docker media type, so zstd always gives OCI ones.
  std::optional<bool> oci_mediatypes;
  int threads = 0;  // cores to compress with; 0 = all of them
};

struct DistributionStats {
  int compressed = 0;  // layers compressed now
  int reused = 0;      // layers whose compressed variant was already stored
};

// The image as it should be sent. Its manifest bytes are not written to the content store (the
// caller sends or archives them); every blob it names is in the store. Works under a lease of
// its own, so a concurrent prune cannot take a variant between its commit and its row.
core::Result<ResolvedImage> ForDistribution(ImageStore& store, const ResolvedImage& img,
                                            const DistributionOptions& opts, DistributionStats* stats = nullptr);

// The `compression` variant of the uncompressed blob `source` (stored, or made now), held by
// `lease`; made with `threads` cores.
core::Result<BlobVariant> EnsureVariant(ImageStore& store, const Lease& lease, const core::Digest& source,
                                        image::Compression compression, int threads = 0);

// The compression a layer media type says (tar, tar+gzip / tar.gzip, tar+zstd / tar.zstd);
// nullopt for other types (foreign layers, non-layer blobs).
std::optional<image::Compression> LayerCompression(std::string_view media_type);
std::string LayerMediaType(image::Compression c, bool oci);

}  // namespace xbuild::cache
