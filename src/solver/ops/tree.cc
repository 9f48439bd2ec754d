#include "solver/ops/tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "core/path.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using core::UniqueFd;

Result<std::vector<std::string>> ListDir(int dirfd, std::string_view path) {
  std::string what(path);
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::SysError("open " + what);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return core::SysError("opendir " + what);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, &::closedir);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  if (errno != 0) return core::SysError("read directory " + what);
  std::sort(names.begin(), names.end());
  return names;
}

Result<UniqueFd> MakeDir(int dirfd, const std::string& name, std::string_view path, mode_t mode,
                         std::optional<Owner> owner) {
  std::string p(path);
  // 0700 until the owner and mode are set, so nobody else gets in in between.
  if (::mkdirat(dirfd, name.c_str(), 0700) != 0) return core::SysError("mkdir " + p);
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return core::SysError("open " + p);
  UniqueFd d(fd);
  if (owner && CanChown() && ::fchown(d.get(), owner->uid, owner->gid) != 0) {
    return core::SysError("chown " + p);
  }
  if (::fchmod(d.get(), mode & 07777) != 0) return core::SysError("chmod " + p);
  return d;
}

bool CanChown() { return ::geteuid() == 0; }

std::string ProcFd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::pair<std::string, std::string> SplitLast(std::string_view clean_path) {
  size_t slash = clean_path.rfind('/');
  if (slash == std::string_view::npos) return {".", std::string(clean_path)};
  std::string dir(clean_path.substr(0, slash));
  if (dir.empty()) dir = "/";
  return {dir, std::string(clean_path.substr(slash + 1))};
}

Result<UniqueFd> MakeDirs(int root, std::string_view path, mode_t mode,
                          std::optional<Owner> owner) {
  std::string clean = core::CleanPath(std::string("/") + std::string(path));
  int fd = ::openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::SysError("open /");
  UniqueFd cur(fd);
  std::string sofar;
  size_t i = 1;
  while (i < clean.size()) {
    size_t j = clean.find('/', i);
    if (j == std::string::npos) j = clean.size();
    std::string name = clean.substr(i, j - i);
    i = j + 1;
    sofar += "/" + name;
    int next = ::openat(cur.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next >= 0) {
      cur.Reset(next);
      continue;
    }
    int err = errno;
    if (err == ENOENT) {
      auto made = MakeDir(cur.get(), name, sofar, mode, owner);
      if (!made.ok() && made.error().sys_errno() == EEXIST) {
        i -= name.size() + 1;  // raced with another writer: look again
        sofar.resize(sofar.size() - name.size() - 1);
        continue;
      }
      XB_ASSIGN(cur, std::move(made));
      continue;
    }
    struct stat st;
    if ((err == ENOTDIR || err == ELOOP) &&
        ::fstatat(cur.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      // Resolve the whole prefix again: the kernel (or the userspace walk) follows the link
      // inside the root, "/" and ".." included, and creates a dangling link's target.
      XB_ASSIGN(UniqueFd resolved, core::MkdirAllInRoot(root, sofar, 0755));
      cur = std::move(resolved);
      continue;
    }
    return core::SysError("mkdir " + sofar, err == ELOOP ? ENOTDIR : err);
  }
  return cur;
}

Result<UniqueFd> OpenDir(int root, std::string_view path) {
  core::OpenInRootOptions o;
  o.flags = O_PATH | O_DIRECTORY;
  return core::OpenInRoot(root, path, o);
}

Status RemoveAt(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return core::Ok();
    return core::SysError("stat " + name);
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = ::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return core::SysError("open " + name);
    UniqueFd sub(fd);
    XB_ASSIGN(std::vector<std::string> children, ListDir(sub.get(), name));
    for (const std::string& c : children) XB_TRY_CTX(RemoveAt(sub.get(), c), name);
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return core::SysError("rmdir " + name);
    }
    return core::Ok();
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return core::SysError("unlink " + name);
  }
  return core::Ok();
}

Status ClearForFile(int dirfd, const std::string& name, std::string_view path) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return core::Ok();
    return core::SysError("stat " + std::string(path));
  }
  if (S_ISDIR(st.st_mode)) {
    return Error(Code::kAlreadyExists,
                 "cannot replace directory " + std::string(path) + " with a non-directory");
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return core::SysError("unlink " + std::string(path));
  }
  return core::Ok();
}

}  // namespace xbuild::solver::ops
