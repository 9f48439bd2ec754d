// What a build reads from its context directory: the selection a context source names, its
// checksum (the source's content key), and the copy of exactly that selection into a snapshot.
//
// Selection. The frontend gives every COPY/ADD from the context its own `local://context`
// source whose `local.followpaths` are that instruction's source paths (BuildKit's attribute
// for the same purpose), and `local.excludepatterns` the .dockerignore. The selection is, for
// each path (wildcards matched as COPY matches them, glob.h): every symlink met while resolving
// it inside the context (as itself), the entry it resolves to and, for a directory, its whole
// tree (symlinks below it not followed), plus the directories above each of those; minus what
// .dockerignore excludes. No paths (or ".") select the whole context. A missing path selects
// nothing: the COPY then fails on the snapshot with its own "not found". So a source's content
// key covers exactly what its COPY can read, and a change to any other file of the context
// changes no key: the FileOp's cache key takes the source's key as its input key, and nothing
// after an unaffected COPY runs again. (COPY --exclude is not applied here: a change to a file
// the COPY excludes still reruns it, which is wasteful but never wrong.)
//
// Checksum. Each entry contributes its path, type and permission bits, and: a regular file
// its size and the sha256 of its content, a symlink its target, a device its number. Not
// mtimes, not owners (context files become 0:0 in the snapshot), not a directory's size
// (which says how many names it holds, not which). File digests come from the stat-keyed
// ChecksumCache when the file's stat is unchanged, so an unchanged context is checked with one
// lstat per entry and no reads.
//
// Transfer. The snapshot is filled from the manifest that was checksummed, not from a second
// walk: each entry is re-read, and each file hashed while it is copied, and anything that no
// longer matches (content, type, mode, size, link target, a missing entry) fails with
// kAborted: the context changed after its checksum was taken, and the snapshot would not be
// what its cache key names. A cache hit does not read the context at all.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/result.h"
#include "frontend/dockerignore.h"
#include "solver/ops/checksum_cache.h"

namespace xbuild::solver::ops {

struct ContextSelection {
  std::vector<std::string> includes;  // relative paths, may hold wildcards; empty = everything
  frontend::DockerIgnore ignore;
};

struct ContextEntry {
  std::string path;  // relative to the context, '/'-separated, never "."
  FileStat stat;     // as seen by the walk, or by the read that hashed the file
  uint64_t nlink = 1;
  uint64_t rdev = 0;    // character and block devices
  std::string link;     // symlinks: the target, as written
  core::Digest digest;  // regular files: sha256 of the content
};

// Entries in walk order: a directory before everything under it, names sorted bytewise within
// a directory (comparing paths with '/' below every other byte gives that order).
struct ContextManifest {
  std::vector<ContextEntry> entries;
  core::Digest key;
};

struct ChecksumStats {
  size_t entries = 0;
  size_t files = 0;   // regular files
  size_t hashed = 0;  // files read (no usable cache entry)
  uint64_t bytes_hashed = 0;
};

// The selection of the context at `dir` and its checksum; reads only files whose stat is not in
// `cache`, and records their digests there when they are settled (ctime older than the clock
// tick of the read, stat unchanged by it).
core::Result<ContextManifest> ChecksumContext(const std::string& dir, const ContextSelection& sel,
                                              ChecksumCache& cache, ChecksumStats* stats = nullptr);

// Copies the manifest's entries from `dir` into the empty directory `target`: modes, mtimes,
// xattrs (best effort) and hardlinks kept, owners 0:0 when running as root. kAborted when the
// context no longer matches the manifest; kCancelled when *cancel turns true.
core::Status TransferContext(const std::string& dir, const ContextManifest& m,
                             const std::string& target, const std::atomic<bool>* cancel = nullptr);

}  // namespace xbuild::solver::ops
