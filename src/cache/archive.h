// `save` and `load`: images to and from tar archives in the two formats other tools read.
//
// docker format (what `docker save` wrote before Docker 25, read by `docker load` and skopeo's
// docker-archive transport):
//   manifest.json              [{"Config":"blobs/sha256/<cfg>","RepoTags":["app:1"],"Layers":["blobs/sha256/<diff_id>",..]}]
//   repositories               {"app":{"1":"<top diff_id hex>"}}
//   blobs/sha256/<cfg>         the config bytes
//   blobs/sha256/<diff_id>     each layer, uncompressed (so its digest is its diff_id)
// oci format (an OCI image layout in a tar, as `skopeo copy oci-archive:` writes):
//   oci-layout                 {"imageLayoutVersion":"1.0.0"}
//   index.json                 manifests with io.containerd.image.name and org.opencontainers.image.ref.name
//   blobs/sha256/<hex>         manifests, configs, layers as stored, or in a distribution form
//                              (Docker manifests are converted to OCI)
// Archives are written deterministically: fixed entry order, mtime 0, mode 0644/0755, uid/gid 0.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cache/distribution.h"
#include "cache/image_store.h"
#include "core/log.h"

namespace xbuild::cache {

enum class ArchiveFormat { kDocker, kOci };

struct SaveOptions {
  // oci format: write each image in this distribution form (compressed layers) instead of as
  // stored. The docker format always holds uncompressed layers.
  std::optional<DistributionOptions> distribution;
};

// Writes an archive of the named images (references or IDs) to out_fd.
core::Status SaveImages(ImageStore& store, const std::vector<std::string>& names,
                        ArchiveFormat format, int out_fd, const SaveOptions& opts = {});

struct LoadedImage {
  core::Digest manifest;
  core::Digest config;
  std::vector<std::string> tags;  // full references
};

// Reads a docker- or OCI-format archive (plain or compressed tar) from in_fd into the store.
// Every blob is digest-checked; a docker archive's layers are checked against the config's
// diff_ids. Nothing is extracted to the filesystem.
core::Result<std::vector<LoadedImage>> LoadImages(ImageStore& store, int in_fd);

}  // namespace xbuild::cache
