// Image references, normalised as Docker does: "busybox" -> "docker.io/library/busybox:latest".
// Lives in image/ because the local image store names images by reference too; the registry
// client builds on it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/result.h"

namespace xbuild::image {

struct Reference {
  std::string domain;  // "docker.io", "localhost:5000", "ghcr.io"
  std::string path;    // "library/busybox"
  std::string tag;     // empty when only a digest was given
  std::optional<core::Digest> digest;

  std::string Repository() const { return domain + "/" + path; }  // "docker.io/library/busybox"
  // Full normalised form: "docker.io/library/busybox:latest" or "...@sha256:..".
  std::string String() const;
  // Docker's short display form: "busybox:latest", "localhost:5000/app:1".
  std::string Familiar() const;
  std::string FamiliarRepository() const;
};

// Parses and normalises. A missing tag becomes "latest" unless a digest is given.
core::Result<Reference> ParseReference(std::string_view text);
// Like ParseReference but keeps no implicit tag ("busybox" stays tagless); used by filters.
core::Result<Reference> ParseReferenceNoDefault(std::string_view text);

}  // namespace xbuild::image
