// ADD of a local archive: a tar stream, plain or gzip/bzip2/xz/zstd compressed, told apart by
// its content (never its name), extracted into a directory of the target.
//
// As BuildKit does: no whiteout semantics; an entry name is cleaned and one that climbs above
// the destination ("../x", "a/../../x") is refused; missing parents are created 0755; an
// existing entry is replaced unless both are directories; hardlink targets resolve inside the
// destination. Every write is confined to the target root like the other file actions (a
// symlink the archive planted resolves inside the root, never outside it). Owners come from
// the archive (or --chown), when running as root; mtimes are clamped to `timestamp`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/result.h"
#include "solver/ops/tree.h"

namespace xbuild::solver::ops {

struct UnpackOptions {
  std::optional<Owner> owner;        // --chown: every entry and created parent
  std::optional<int64_t> timestamp;  // clamp mtimes down to this (seconds)
};

// When the file open for reading at fd (from offset 0) is a tar archive with at least one
// entry, extracts it into `dest` (a path in the root at root_fd, created if missing) and
// returns true. Returns false, having written nothing, when it is not (the caller copies it as
// a plain file); fd's offset is then unspecified.
core::Result<bool> UnpackArchive(int fd, int root_fd, const std::string& dest,
                                 const UnpackOptions& opts);

}  // namespace xbuild::solver::ops
