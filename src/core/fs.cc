#include "core/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ftw.h>

namespace xbuild::core {

Result<UniqueFd> Open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return SysError("open " + path);
  return UniqueFd(fd);
}

Result<std::string> ReadFd(int fd, size_t max_size) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("read");
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size) {
      return Error(Code::kResourceExhausted,
                   "larger than the limit of " + std::to_string(max_size) + " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path, size_t max_size) {
  XB_ASSIGN(UniqueFd fd, Open(path, O_RDONLY));
  return ReadFd(fd.get(), max_size).Context("read " + path);
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

Status FsyncPath(const std::string& path) {
  XB_ASSIGN(UniqueFd fd, Open(path, O_RDONLY));
  if (::fsync(fd.get()) != 0) return SysError("fsync " + path);
  return Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode, Sync sync) {
  std::string tmp = path + ".tmp-XXXXXX";
  int raw = ::mkstemp(tmp.data());
  if (raw < 0) return SysError("create temp file for " + path);
  UniqueFd fd(raw);
  ScopeGuard cleanup([&] { ::unlink(tmp.c_str()); });
  XB_TRY_CTX(WriteAll(fd.get(), data), "write " + tmp);
  if (::fchmod(fd.get(), mode) != 0) return SysError("chmod " + tmp);
  if (sync != Sync::kNone && ::fsync(fd.get()) != 0) return SysError("fsync " + tmp);
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return SysError("rename to " + path);
  cleanup.Dismiss();
  return sync == Sync::kFull ? FsyncPath(Dirname(path)) : Ok();
}

Status MkdirAll(const std::string& path, mode_t mode) {
  if (path.empty()) return Ok();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Ok();
    return Error(Code::kAlreadyExists, "mkdir " + path + ": exists and is not a directory");
  }
  std::string parent = Dirname(path);
  if (parent != path) XB_TRY(MkdirAll(parent, mode));
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return SysError("mkdir " + path);
  return Ok();
}

namespace {
int RemoveEntry(const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }
}  // namespace

Status RemoveAll(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok();
    return SysError("stat " + path);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return SysError("remove " + path);
    return Ok();
  }
  // FTW_PHYS: never follow symlinks; FTW_DEPTH: children first; FTW_MOUNT: stay on this fs.
  if (::nftw(path.c_str(), RemoveEntry, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0) {
    return SysError("remove " + path);
  }
  return Ok();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::string> MakeTempDir(const std::string& parent, std::string_view prefix) {
  XB_TRY(MkdirAll(parent, 0700));
  std::string tmpl = JoinPath(parent, std::string(prefix) + "XXXXXX");
  if (!::mkdtemp(tmpl.data())) return SysError("mkdtemp " + tmpl);
  return tmpl;
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (out.back() != '/') out += '/';
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  out += b;
  return out;
}

std::string Dirname(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string Basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

namespace {
thread_local uint64_t g_du_total = 0;
int DuEntry(const char*, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_F) g_du_total += static_cast<uint64_t>(st->st_size);
  return 0;
}
}  // namespace

uint64_t DiskUsage(const std::string& path) {
  g_du_total = 0;
  ::nftw(path.c_str(), DuEntry, 64, FTW_PHYS);
  return g_du_total;
}

}  // namespace xbuild::core
