// Small filesystem helpers over POSIX calls, all returning Result with the path in the error.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/fd.h"
#include "core/result.h"

namespace xbuild::core {

// Reads a whole file; refuses files larger than max_size (kResourceExhausted).
Result<std::string> ReadFile(const std::string& path, size_t max_size = SIZE_MAX);
Result<std::string> ReadFd(int fd, size_t max_size = SIZE_MAX);
Status WriteAll(int fd, std::string_view data);
// How much of WriteFileAtomic must survive a crash of the machine. Every mode is atomic for
// other processes (a reader sees the old content or the new, never a mix); each fsync costs
// 0.2-1 ms, and `xbuild run` writes a handful of small files before its process starts.
enum class Sync {
  kFull,  // the data and the directory entry: a file that must exist after a power loss
  kData,  // the data only: replaces a file that exists, which keeps its old content or the new
  kNone,  // nothing: a file whose meaning ends with the boot (a pid, a mount's owner)
};
// Writes data to path via a temp file in the same dir and a rename, synced as `sync` says.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644,
                       Sync sync = Sync::kFull);
Status MkdirAll(const std::string& path, mode_t mode = 0755);
// Removes a file or a directory tree, never following symlinks. Missing is fine.
Status RemoveAll(const std::string& path);
Status FsyncPath(const std::string& path);
bool Exists(const std::string& path);
Result<UniqueFd> Open(const std::string& path, int flags, mode_t mode = 0);
// A fresh directory under parent (mkdtemp); prefix names it.
Result<std::string> MakeTempDir(const std::string& parent, std::string_view prefix);
std::string JoinPath(std::string_view a, std::string_view b);
std::string Dirname(std::string_view path);
std::string Basename(std::string_view path);
// Total size in bytes of regular files under path (no symlinks followed).
uint64_t DiskUsage(const std::string& path);

}  // namespace xbuild::core
