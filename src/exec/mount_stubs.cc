#include "exec/mount_stubs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/path.h"

namespace xbuild::exec {

using core::Result;
using core::Status;

namespace {

// "/a/b/c" → "/a", "/a/b", "/a/b/c".
std::vector<std::string> Prefixes(const std::string& clean) {
  std::vector<std::string> out;
  for (size_t i = 1; i <= clean.size(); ++i) {
    if (i == clean.size() || clean[i] == '/') out.push_back(clean.substr(0, i));
  }
  return out;
}

// Whether `path` exists in the root (the last component not followed).
Result<bool> ExistsInRoot(int root_fd, const std::string& path) {
  auto fd = core::OpenInRoot(root_fd, path, {.flags = O_PATH, .follow_last = false});
  if (fd.ok()) return true;
  if (fd.error().sys_errno() == ENOENT) return false;
  return std::move(fd).error();
}

Result<core::UniqueFd> OpenDirInRoot(int root_fd, const std::string& path) {
  return core::OpenInRoot(root_fd, path, {.flags = O_RDONLY | O_DIRECTORY});
}

// Removes `path` if it is an empty directory or an empty regular file.
void RemoveIfEmpty(int root_fd, const std::string& path) {
  auto parent = OpenDirInRoot(root_fd, core::Dirname(path));
  if (!parent.ok()) return;
  std::string name = core::Basename(path);
  struct stat st;
  if (::fstatat(parent->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    ::unlinkat(parent->get(), name.c_str(), AT_REMOVEDIR);  // fails, as wanted, when not empty
  } else if (S_ISREG(st.st_mode) && st.st_size == 0) {
    ::unlinkat(parent->get(), name.c_str(), 0);
  }
}

}  // namespace

Result<std::vector<std::string>> MkdirsInRoot(int root_fd, std::string_view path, mode_t mode) {
  std::vector<std::string> prefixes = Prefixes(core::CleanPath("/" + std::string(path)));
  for (size_t i = 0; i < prefixes.size(); ++i) {
    XB_ASSIGN(bool exists, ExistsInRoot(root_fd, prefixes[i]));
    if (exists) continue;
    XB_TRY_CTX(core::MkdirAllInRoot(root_fd, prefixes.back(), mode), "mkdir " + prefixes.back());
    return std::vector<std::string>(prefixes.begin() + static_cast<ptrdiff_t>(i), prefixes.end());
  }
  return std::vector<std::string>();
}

Status MakeWorkdir(int root_fd, std::string_view path, uid_t uid, gid_t gid) {
  XB_ASSIGN(std::vector<std::string> created, MkdirsInRoot(root_fd, path));
  if (uid == 0 && gid == 0) return core::Ok();
  for (const std::string& dir : created) {
    XB_ASSIGN(core::UniqueFd fd, OpenDirInRoot(root_fd, dir));
    if (::fchown(fd.get(), uid, gid) != 0) return core::SysError("chown " + dir);
  }
  return core::Ok();
}

Status MountStubs::AddDir(std::string_view path) {
  XB_ASSIGN(std::vector<std::string> created, MkdirsInRoot(root_fd_, path));
  created_.insert(created_.end(), created.begin(), created.end());
  return core::Ok();
}

Status MountStubs::AddFile(std::string_view path) {
  std::string clean = core::CleanPath("/" + std::string(path));
  XB_TRY(AddDir(core::Dirname(clean)));
  XB_ASSIGN(bool exists, ExistsInRoot(root_fd_, clean));
  if (exists) return core::Ok();
  XB_ASSIGN(core::UniqueFd parent, OpenDirInRoot(root_fd_, core::Dirname(clean)));
  std::string name = core::Basename(clean);
  int fd = ::openat(parent.get(), name.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return core::Ok();  // raced in; not ours to remove
    return core::SysError("create mount point " + clean);
  }
  ::close(fd);
  created_.push_back(clean);
  return core::Ok();
}

void MountStubs::Remove() {
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) RemoveIfEmpty(root_fd_, *it);
  created_.clear();
}

}  // namespace xbuild::exec
