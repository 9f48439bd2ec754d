// The stat-keyed checksum cache of one build context directory: the sha256 of each regular
// file's content, remembered with the file's stat, so that a file whose stat has not changed
// is never read again (git's index does the same for `git status`).
//
// A cached digest is used only when every field of the stat matches: size, mtime and ctime in
// nanoseconds, inode, device and mode. ctime cannot be set from userspace, so rewriting a file
// and restoring its size and mtime (utimensat) still invalidates its entry. The caller records
// an entry only when the file's ctime is older than the clock tick in which it was read (see
// ChecksumContext): a write landing in the same tick as the read would keep the stat and
// change the content ("racily clean" in git's terms), so such files are simply hashed again
// next time.
//
// On disk: <root>/checksums/<hex sha256 of the context's absolute path>, one file per context
// directory, host byte order (it never leaves the machine):
//
//   "xbuild-checksums 1\n"
//   u32 n, then n bytes: the context's absolute path (checked on load)
//   records, until the trailer:
//     u32 n, n bytes path (relative to the context, '/'-separated)
//     u64 size, i64 mtime_ns, i64 ctime_ns, u64 inode, u64 device, u32 mode, u8 age
//     32 bytes sha256 of the content
//   32 bytes: sha256 of everything above (the trailer)
//
// A flat file rather than a metadata.db table: a build reads all of a context's entries at
// once and replaces them at once, which a single read and an atomic rename do in milliseconds
// for 100,000 files, without row-by-row inserts or holding the DB's write lock that other
// builds' steps need. The file is a hint, never an authority: a missing, truncated, foreign
// or otherwise corrupt file (anything the trailer or the parse rejects) is ignored whole and
// rebuilt. Save() writes a temp file and renames it over the old one, so concurrent builds of
// one context each leave a complete file (the last rename wins; entries the loser added are
// hashed again later). `age` counts the saves since an entry was last used; entries unused for
// kMaxAge saves are dropped, so deleted files do not accumulate.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/digest.h"
#include "core/result.h"

namespace xbuild::solver::ops {

// The part of a stat that says "this file has not changed since".
struct FileStat {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t ino = 0;
  uint64_t dev = 0;
  uint32_t mode = 0;
  static FileStat Of(const struct stat& st);
  bool operator==(const FileStat&) const = default;
};

class ChecksumCache {
 public:
  static constexpr uint8_t kMaxAge = 8;

  // An empty cache that Save() does not write anywhere (contexts extracted from a tar: their
  // inodes are new on every build).
  ChecksumCache() = default;
  ChecksumCache(const ChecksumCache&) = delete;
  ChecksumCache& operator=(const ChecksumCache&) = delete;

  // The cache of `context_dir` (an absolute path) kept under `dir`: what the file holds when
  // it is present and intact, else empty.
  static std::unique_ptr<ChecksumCache> Open(const std::string& dir,
                                             const std::string& context_dir);
  // The file Open() uses for a context.
  static std::string FileFor(const std::string& dir, const std::string& context_dir);

  // The digest recorded for `rel` when its stat is exactly `st`.
  std::optional<core::Digest> Lookup(const std::string& rel, const FileStat& st);
  void Record(const std::string& rel, const FileStat& st, const core::Digest& digest);
  // Drops a stale entry (the file changed and its new digest is not worth keeping yet).
  void Forget(const std::string& rel);
  // Writes the entries back when anything changed since Open (or the last Save).
  core::Status Save();

  size_t size() const;
  bool loaded() const { return loaded_; }  // Open found an intact file

 private:
  struct Entry {
    FileStat st;
    core::Digest digest;
    uint8_t age = 0;
    bool used = false;  // looked up or recorded since Open
  };
  bool Parse(std::string_view data);
  std::string Serialize() const;

  std::string file_;     // "" = memory only
  std::string context_;  // the context's absolute path, as recorded in the file
  bool loaded_ = false;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  bool dirty_ = false;                              // guarded by mu_
};

}  // namespace xbuild::solver::ops
