// Directories and files that xbuild creates inside a rootfs before a run: the WORKDIR, and the
// mount points of its bind mounts. Every path is resolved inside the rootfs (symlinks cannot
// leave it).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::exec {

// Creates the missing directories of `path` inside the root and returns the cleaned absolute
// paths of those it created, outermost first.
core::Result<std::vector<std::string>> MkdirsInRoot(int root_fd, std::string_view path,
                                                    mode_t mode = 0755);

// Creates the working directory where missing; what xbuild creates is owned by uid:gid, as
// BuildKit does for a RUN step's cwd.
core::Status MakeWorkdir(int root_fd, std::string_view path, uid_t uid, gid_t gid);

// Empty mount points for bind mounts, remembered so that Remove() can take them out again
// after the run and they do not end up in a RUN step's layer.
class MountStubs {
 public:
  explicit MountStubs(int root_fd) : root_fd_(root_fd) {}
  MountStubs(const MountStubs&) = delete;
  MountStubs& operator=(const MountStubs&) = delete;

  core::Status AddDir(std::string_view path);
  // A missing file is created empty; an existing path (even a symlink) is left to the runtime.
  core::Status AddFile(std::string_view path);
  // Best effort, deepest first: removes what Add* created that is still an empty directory or
  // an empty regular file.
  void Remove();

 private:
  int root_fd_;
  std::vector<std::string> created_;  // in creation order
};

}  // namespace xbuild::exec
