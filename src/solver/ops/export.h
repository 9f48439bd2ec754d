// The image exporter: a build's result snapshot + the image config from lowering -> an image
// in the local store.
//
// Layers: the base image's own layers, reused as they are (the bottom of the snapshot chain is
// the unpacked base, "image:<chain id>"), then one layer per step snapshot above it, made from
// the step's overlay upper dir (image::CreateLayer, kOverlayUpper: whiteouts become .wh.
// entries), uncompressed: compression waits until the image leaves the machine (push, OCI
// output; cache/distribution.h), so a build that only tags locally never compresses. A step's
// layer is made once and remembered in <snapshot>/layer-none.json, so a warm build, or a
// second tag of the same result, writes no layer at all. Steps and history agree one to
// one: every history entry that is not an empty_layer is a snapshot of the chain.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cache/image_store.h"
#include "exec/snapshot.h"
#include "image/config.h"
#include "image/layer.h"
#include "solver/scheduler.h"

namespace xbuild::solver::ops {

struct ExportOptions {
  bool oci_mediatypes = true;  // false: Docker's media types
  std::optional<int64_t> source_date_epoch;
  // A lease to hold the new image ("image" resource, added in the transaction that records it),
  // so that a prune cannot take it before the build tags it. "" = none.
  std::string lease;
  // Called with the image's layers (manifest order) before its config is written, under the
  // export's lease; what it adds to the config is in the image (the inline cache goes in here).
  std::function<core::Status(const std::vector<image::Descriptor>& layers, const cache::Lease& lease,
                             image::ImageConfig& config)>
      amend_config;
  std::map<std::string, std::string> annotations;  // the manifest's (build --annotation)
};

struct Layer {
  image::Descriptor desc;  // the uncompressed blob in the content store
  core::Digest diff_id;
};

// The layer of a committed step snapshot (its upper dir as a tar), made once and remembered in
// the snapshot's directory; its blob is held by `lease`.
core::Result<Layer> StepLayer(cache::ImageStore& store, exec::Snapshotter& snaps, const std::string& id,
                              const ExportOptions& opts, const cache::Lease& lease);

// Records an uncompressed layer blob as the layer of snapshot `id` (a snapshot made by applying
// that layer), so that exporting it later gives back exactly that blob.
core::Status RememberStepLayer(exec::Snapshotter& snaps, const std::string& id, const Layer& layer,
                               std::optional<int64_t> source_date_epoch);

core::Result<cache::ImageRecord> ExportImage(cache::ImageStore& store, exec::Snapshotter& snaps, const Ref& result,
                                             image::ImageConfig config, const ExportOptions& opts);

}  // namespace xbuild::solver::ops
