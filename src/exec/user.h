// Resolves a Docker USER string against the passwd and group files of a root filesystem, the
// way runc and Docker do (moby/sys/user GetExecUser).
//
//   ""            root: uid 0, with gid and home from passwd's uid-0 entry when there is one
//   "name"        passwd entry by name; an unknown name is an error
//   "uid"         passwd entry by uid; an unknown uid is used as is (gid 0, home "/")
//   "x:group"     the primary group is the group file's entry by name, or the number as is
//   "x:gid"
//
// The additional gids start with the primary gid (containerd's and runc's rule since
// CVE-2023-25173); without an explicit group, the groups whose member list names the user
// follow it. /etc/passwd and /etc/group are read inside the rootfs only: symlinks are
// resolved as if the rootfs were "/", so a hostile image cannot make xbuild read the host's.
// A missing file reads as empty.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::exec {

struct ExecUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::string home = "/";
};

// rootfs_fd: an O_DIRECTORY fd of the root filesystem.
core::Result<ExecUser> ResolveUser(int rootfs_fd, std::string_view user);

}  // namespace xbuild::exec
