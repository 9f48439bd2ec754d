// One CopyAction (COPY, ADD): the rules are listed in file_op.h.
#pragma once

#include <optional>

#include "core/result.h"
#include "solver/definition.h"
#include "solver/ops/tree.h"

namespace xbuild::solver::ops {

struct CopyRoots {
  int src = -1;              // the source tree's directory fd; -1 = scratch (empty)
  bool reset_owner = false;  // the build context: entries become 0:0 unless --chown
  int dst = -1;              // the target's directory fd
};

// Copies the extended attributes of the file open at `from` (not O_PATH) to `to`, best effort
// (as BuildKit, which logs and goes on): a filesystem or a privilege level that refuses one
// must not fail the build. overlayfs's own are never copied.
void CopyXattrs(int from, int to);

// `owner` is the resolved --chown, if any. The number of entries the source matched (wildcard
// matches, --exclude'd ones included, or 1 for a plain path); 0 only for a wildcard matching
// nothing under allow_empty_wildcard.
core::Result<size_t> RunCopy(const solver::CopyAction& a, const CopyRoots& roots,
                     std::optional<Owner> owner);

}  // namespace xbuild::solver::ops
