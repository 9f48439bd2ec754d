// Copying a file tree between two directory fds without ever following a symlink: the building
// block of `xbuild cp` and of a new volume's copy-up, where either side may be a container's
// tree that its processes (or its image) have filled with hostile links.
#pragma once

#include <string>

#include "core/result.h"

namespace xbuild::exec {

struct CopyTreeOptions {
  bool preserve_owner = true;  // lchown to the source's uid/gid (root only)
};

// Copies src_dir/src_name to dst_dir/dst_name, recursively for a directory. Symlinks are copied
// as links (their targets are never read), every open is O_NOFOLLOW and *at()-relative, so
// neither side can be made to read or write through a link. An existing directory at the
// destination is merged into; any other existing entry is replaced (a directory is never
// replaced by a file: ENOTDIR/EISDIR name it). Hard links are copied as separate files;
// sockets are skipped. Mode, owner and mtime follow the source. A directory is never copied
// into itself (the destination below the source, or the same directory seen through a bind
// mount): kInvalidArgument, before it would grow without end or lose files.
core::Status CopyEntry(int src_dir, const std::string& src_name, int dst_dir, const std::string& dst_name,
                       const CopyTreeOptions& opts = {});

// Copies every entry of directory src to directory dst (merging), as CopyEntry does for each.
core::Status CopyDirContents(int src, int dst, const CopyTreeOptions& opts = {});

}  // namespace xbuild::exec
