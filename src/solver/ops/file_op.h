// Runs a FileOp (COPY, ADD, WORKDIR, heredocs; mkdir, mkfile, rm, symlink) on directories.
//
// Every action writes into one writable tree, `FileOpEnv::target` (the snapshot the caller
// prepared from the first action's input: the previous result, or empty for scratch), and
// reads sources from the input trees. All paths are resolved with core/path.h: a source path
// (and a symlink named as a source) resolves inside its own root; every write resolves its
// parents inside the target root (a symlink in the target, absolute or with "..", stays in
// it), is made with *at() calls on that parent and never follows its final component. Nothing
// outside the input roots is read and nothing outside the target is written.
//
// COPY/ADD follow Docker's documented rules (BuildKit's behaviour where the two differ):
//  - `src` may hold wildcards (`*`, `?`, `[...]`, `\` escapes; per path component, like Go's
//    filepath.Match); no match is an error naming the pattern unless allow_empty_wildcard.
//    An op made only of copies fails when none of them copied anything, allow_empty_wildcard
//    or not: `COPY foo nomatch* /` copies foo, `COPY nomatch* none* /` is an error.
//  - A directory source copies its contents, not itself; a file keeps its name in a dest
//    ending with "/" (or an existing directory) and otherwise becomes `dest`. A wildcard
//    matching several entries makes dest a directory, named so or not.
//  - Missing parents of dest are created 0755, owned by the --chown owner or else root.
//  - Entries keep their mode, mtime (clamped down to `timestamp` when set) and xattrs (best
//    effort); symlinks inside a copied tree are copied as symlinks; hardlinks stay hardlinked.
//  - Ownership: --chown for every copied entry; otherwise the source's uid/gid, except for
//    inputs marked `reset_owner` (the build context), whose entries become 0:0 as BuildKit's
//    context transfer does. Owners are set only when running as root (uid 0, maybe in a user
//    namespace); an unprivileged process keeps its own.
//  - --chmod (octal or symbolic) applies to every copied entry except symlinks.
//  - exclude_patterns (COPY --exclude; .dockerignore syntax) match an entry's path relative to
//    the directory being copied, and a wildcard match's path relative to the wildcard's
//    directory.
//  - attempt_unpack (ADD): a source that is a tar, plain or gzip/bzip2/xz/zstd (told by its
//    content), is extracted into dest; entries climbing out of dest are refused.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "solver/definition.h"

namespace xbuild::solver::ops {

// --chown owner lookup: names resolved in the target tree (exec resolves them from the
// target's /etc/passwd and /etc/group). Returns {uid, gid}.
using OwnerResolver =
    std::function<core::Result<std::pair<uint32_t, uint32_t>>(const solver::ChownOpt&)>;

struct FileOpInput {
  std::string root;          // readable root directory; "" = scratch (empty)
  bool reset_owner = false;  // the build context: copied entries become 0:0 without --chown
};

struct FileOpEnv {
  std::string target;               // writable root the actions write into
  std::vector<FileOpInput> inputs;  // vertex input index -> its tree
  OwnerResolver resolve_owner;      // may be null when no action has a chown
};

// Applies op's actions in order. Errors name the action ("copy \"src/*.go\" to \"/app/\": ...").
// On error the target is left partly written.
core::Status ApplyFileOp(const solver::FileOp& op, const FileOpEnv& env);

}  // namespace xbuild::solver::ops
