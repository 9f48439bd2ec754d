// Wildcards in COPY/ADD sources and `rm`: Go's filepath.Match, one path component at a time.
//
// `*` any run of characters, `?` one character (a UTF-8 sequence), `[...]` a class (`[^...]`
// negated, ranges `a-z`, `\` escapes; `-` and `]` must be escaped), `\x` the literal x.
// Unlike .dockerignore there is no `**`: a pattern component matches one name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::solver::ops {

// True when the component holds an unescaped `*`, `?` or `[` (so it must be matched, not
// looked up).
bool HasWildcard(std::string_view component);

// Matches one name (no '/') against one pattern component. A malformed pattern (an unclosed
// or empty class, a reversed range, a trailing `\`) is kInvalidArgument, whatever the name.
core::Result<bool> GlobMatch(std::string_view pattern, std::string_view name);

struct WildcardMatch {
  std::string path;     // from the root, no leading '/': "src/a.go"
  std::string rel;      // from the directory above the first wildcard: "a.go"
  bool is_dir = false;  // the entry itself (a symlink is not a directory here)
};

// The entries of the tree at root_fd that `pattern` (a cleaned path; leading '/' ignored)
// names, in walk order (each directory's names sorted), like BuildKit's ResolveWildcards: the
// part before the first wildcard component is resolved inside the root (symlinks followed);
// below it each component is matched against the names of one level, only real directories
// are descended, and a match is not descended into. A missing base matches nothing.
core::Result<std::vector<WildcardMatch>> ResolveWildcards(int root_fd, std::string_view pattern);

}  // namespace xbuild::solver::ops
