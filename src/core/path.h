// Path resolution that never leaves a root directory.
//
// Every path that comes from a layer, a build context or a container is resolved with these
// functions: symlinks are followed as if `root` were "/" (an absolute target or a ".." restarts
// at, or stops at, the root), so a hostile tree cannot make xbuild read or write outside it.
// openat2(RESOLVE_IN_ROOT) is used where the kernel has it; otherwise a userspace walk with
// O_NOFOLLOW at every step gives the same answer.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <string>
#include <string_view>

#include "core/fd.h"
#include "core/result.h"

namespace xbuild::core {

// Lexical clean like Go's path.Clean: "a/./b/../c//" -> "a/c"; "" -> ".".
std::string CleanPath(std::string_view path);

// True if the cleaned relative path would climb above its start ("..", "../x").
bool EscapesRoot(std::string_view rel);

enum class Resolve {
  kAuto,      // openat2 when available, else the userspace walk
  kUserspace  // always the userspace walk (tests use this to check the fallback)
};

struct OpenInRootOptions {
  int flags = O_RDONLY;     // open(2) flags; O_CLOEXEC is always added
  mode_t mode = 0;          // for O_CREAT
  bool follow_last = true;  // false: the final component is not followed (O_NOFOLLOW)
  Resolve resolve = Resolve::kAuto;
};

// Opens `path` (absolute or relative, both taken relative to the root) beneath root_fd.
Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, OpenInRootOptions opts = {});

// Resolves `unsafe` inside `root` and returns root + the resolved path (like
// filepath-securejoin). The result may name something that does not exist yet. Note that this
// is a string and thus racy against a tree that changes concurrently; prefer OpenInRoot.
Result<std::string> SecureJoin(const std::string& root, std::string_view unsafe);

// Creates every directory of `path` beneath root_fd (resolving symlinks inside the root) and
// returns an O_DIRECTORY fd for the last one.
Result<UniqueFd> MkdirAllInRoot(int root_fd, std::string_view path, mode_t mode = 0755,
                                Resolve resolve = Resolve::kAuto);

}  // namespace xbuild::core
