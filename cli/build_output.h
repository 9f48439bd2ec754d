// Where a build's result goes (`-o`/`--output`, `--push`, `--compression`), as BuildKit's
// exporters name them:
//   type=image[,name=A,B][,push=true]   the local image store (tags), optionally pushed
//   type=registry[,name=A]              = type=image,push=true
//   type=docker,dest=FILE|-[,name=A]    a docker-format archive (`docker load` reads it)
//   type=oci,dest=FILE|-[,name=A]       an OCI image layout in a tar, compressed layers
//   type=tar,dest=FILE|-                the result's filesystem as one tar
//   type=local,dest=DIR                 the result's filesystem written into DIR
//   -o DIR  = type=local,dest=DIR;  -o - = type=tar,dest=-
// Every type takes compression=gzip|zstd|none and oci-mediatypes=true|false where they apply.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cache/distribution.h"
#include "core/json.h"
#include "core/result.h"
#include "exec/snapshot.h"
#include "image/config.h"
#include "registry/client.h"
#include "solver/ops/export.h"
#include "solver/scheduler.h"

namespace xbuild::cli {

struct BuildOutput {
  std::string type;
  std::map<std::string, std::string> attrs;
  std::string Attr(const std::string& k, const std::string& def = "") const {
    auto it = attrs.find(k);
    return it == attrs.end() ? def : it->second;
  }
  std::vector<std::string> Names() const;  // name=a,b (commas split; quoted CSV as BuildKit)
  bool Push() const { return type == "registry" || Attr("push") == "true"; }
  bool NeedsImage() const { return type == "image" || type == "registry" || type == "docker" || type == "oci"; }
};

// One -o value. Errors name the value and what is wrong with it.
core::Result<BuildOutput> ParseOutput(const std::string& spec);

core::Result<image::Compression> ParseCompression(const std::string& name);

struct ExportRequest {
  std::vector<image::Reference> tags;  // -t
  std::vector<BuildOutput> outputs;    // -o; empty: the local image store only
  bool push = false;                   // --push: every -t tag goes to its registry
  image::Compression compression = image::Compression::kGzip;  // --compression
  bool oci_mediatypes = true;
  std::optional<int64_t> source_date_epoch;
  std::string iidfile;
  std::string metadata_file;
  const solver::CancelToken* cancel = nullptr;  // checked between export phases
  // Adds to the image config before it is written (solver/ops/export.h), e.g. the inline cache.
  decltype(solver::ops::ExportOptions::amend_config) amend_config;
  std::map<std::string, std::string> annotations;  // --annotation
};

struct ExportResult {
  std::optional<core::Digest> image_id;  // config digest, when an image was made
  core::Json metadata;                   // what --metadata-file gets
};

// Progress of the export, one line at a time ("exporting layers 0.1s done", "naming to ...").
using ExportStatusFn = std::function<void(const std::string&)>;

// Turns a solved build into its outputs: the image (when any output, a tag, --push or
// --iidfile needs one) with its tags, then pushes, archives and filesystem copies. Files are
// written beside their destination and renamed into place, so a failure leaves no partial
// file.
core::Result<ExportResult> ExportBuild(cache::ImageStore& store, exec::Snapshotter& snaps, registry::Client* registry,
                                       const solver::Ref& result, image::ImageConfig config,
                                       const ExportRequest& req, const ExportStatusFn& status);

}  // namespace xbuild::cli
