// Writing inside a root directory without leaving it: the building blocks the file actions
// share. Paths are taken relative to the root fd whether or not they start with "/"; symlinks
// met on the way resolve inside the root (core/path.h). Final components are handled by the
// caller with *at() calls that never follow them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/fd.h"
#include "core/result.h"

namespace xbuild::solver::ops {

struct Owner {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// True when this process may give files away (uid 0, maybe inside a user namespace). Without
// that, owners are left as the process makes them, as an unprivileged `cp -a` does.
bool CanChown();

// "/proc/self/fd/N": reopens or acts on what an O_PATH fd names without resolving a path again.
std::string ProcFd(int fd);

// The directory `path` as an O_PATH fd, creating each missing directory with `mode` (umask
// ignored) and, when given and CanChown(), `owner`. A symlink on the way resolves inside the
// root; a dangling one has its in-root target created (0755, unowned), as MkdirAll through a
// symlink does. A non-directory on the way is ENOTDIR naming the path so far.
core::Result<core::UniqueFd> MakeDirs(int root, std::string_view path, mode_t mode,
                                      std::optional<Owner> owner);

// Creates dirfd/name as a new directory with `mode` and (when CanChown()) `owner`, and opens it
// (O_RDONLY). EEXIST when something is already there. `path` names it in errors.
core::Result<core::UniqueFd> MakeDir(int dirfd, const std::string& name, std::string_view path,
                                     mode_t mode, std::optional<Owner> owner);

// The names in a directory (not "." or ".."), sorted bytewise as Go's filepath.Walk visits
// them, so copies and wildcard matches happen in a stable order.
core::Result<std::vector<std::string>> ListDir(int dirfd, std::string_view path);

// The existing directory `path` as an O_PATH fd (symlinks resolved inside the root).
core::Result<core::UniqueFd> OpenDir(int root, std::string_view path);

// Removes dirfd/name, recursively for a directory, never following symlinks. Missing is fine.
core::Status RemoveAt(int dirfd, const std::string& name);

// Makes room for a new non-directory at dirfd/name: an existing file, symlink or node is
// unlinked; an existing directory is an error (a file never replaces a directory).
core::Status ClearForFile(int dirfd, const std::string& name, std::string_view path);

// Splits a cleaned absolute path into its parent and last component ("/a/b" -> "/a", "b").
// The root has no last component: {"/", ""}.
std::pair<std::string, std::string> SplitLast(std::string_view clean_path);

}  // namespace xbuild::solver::ops
