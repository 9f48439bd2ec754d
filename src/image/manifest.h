// OCI / Docker schema2 manifests, indexes and descriptors.
//
// Serialisation is deterministic: fields are written in the order the specs list them, maps
// sorted, no whitespace; the same value always gives the same bytes. Parsing validates: the
// size limit, the digest of the bytes (when the caller knows it), every descriptor digest, and
// that a manifest is not an index in disguise (or the reverse).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/json.h"
#include "core/result.h"
#include "image/media_types.h"

namespace xbuild::image {

struct Platform {
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;

  std::string String() const;  // "linux/amd64" or "linux/arm64/v8"
  bool operator==(const Platform&) const = default;
};

Result<Platform> ParsePlatform(std::string_view text);  // "linux/amd64[/variant]"
Platform HostPlatform();

struct Descriptor {
  std::string media_type;
  core::Digest digest;
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
  std::string artifact_type;

  core::OrderedJson ToJson() const;
};

Result<Descriptor> ParseDescriptor(const core::Json& j);

struct Manifest {
  int schema_version = 2;
  std::string media_type;  // kOciManifest or kDockerManifest
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  std::string Serialize() const;  // canonical bytes
};

struct Index {
  int schema_version = 2;
  std::string media_type;  // kOciIndex or kDockerManifestList
  std::string artifact_type;
  std::vector<Descriptor> manifests;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  std::string Serialize() const;
};

// When `expected` is given, the sha256 of `bytes` must equal it (kDataLoss otherwise).
Result<Manifest> ParseManifest(std::string_view bytes,
                               std::optional<core::Digest> expected = std::nullopt);
Result<Index> ParseIndex(std::string_view bytes, std::optional<core::Digest> expected = std::nullopt);

// Tells a manifest from an index by its mediaType field (or, lacking one, by its shape).
// Returns the media type; kInvalidArgument for documents that are neither or both.
Result<std::string> SniffMediaType(std::string_view bytes);

// Picks the manifest for `want` from an index (exact os/arch, then variant if set).
Result<Descriptor> SelectPlatform(const Index& index, const Platform& want);

}  // namespace xbuild::image
