#include "exec/copy_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "core/fd.h"
#include "core/fs.h"

namespace xbuild::exec {

using core::Status;

namespace {

constexpr size_t kLinkMax = 4096;

core::Result<std::vector<std::string>> Names(int dirfd) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::SysError("open directory");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return core::SysError("fdopendir");
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  return names;
}

void SetMeta(int dst_dir, const std::string& name, const struct stat& st, const CopyTreeOptions& opts) {
  if (opts.preserve_owner && ::geteuid() == 0) {
    (void)::fchownat(dst_dir, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  }
  if (!S_ISLNK(st.st_mode)) (void)::fchmodat(dst_dir, name.c_str(), st.st_mode & 07777, 0);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  (void)::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
}

// Makes room for a non-directory at dst_dir/name.
Status ClearForFile(int dst_dir, const std::string& name) {
  struct stat st;
  if (::fstatat(dst_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return core::Ok();
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return core::SysError("cannot overwrite directory " + name + " with non-directory");
  }
  if (::unlinkat(dst_dir, name.c_str(), 0) != 0) return core::SysError("unlink " + name);
  return core::Ok();
}

Status CopyFile(int src_dir, const std::string& src_name, int dst_dir, const std::string& dst_name) {
  int in = ::openat(src_dir, src_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (in < 0) return core::SysError("open " + src_name);
  core::UniqueFd in_fd(in);
  int out = ::openat(dst_dir, dst_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) return core::SysError("create " + dst_name);
  core::UniqueFd out_fd(out);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return core::SysError("read " + src_name);
    if (n == 0) break;
    XB_TRY_CTX(core::WriteAll(out, std::string_view(buf, static_cast<size_t>(n))), "write " + dst_name);
  }
  return core::Ok();
}

// One copy: its options, and the directory it writes into first (its top), which the source
// must never reach: a tree copied into itself (through a bind mount, or a destination below
// the source) would grow as it is read, and a directory copied onto itself would lose files.
struct Copy {
  explicit Copy(const CopyTreeOptions& o) : opts(o) {}
  const CopyTreeOptions& opts;
  bool has_top = false;
  dev_t top_dev = 0;
  ino_t top_ino = 0;
};

Status NotTheTop(const Copy& c, const struct stat& src, const std::string& src_name) {
  if (c.has_top && src.st_dev == c.top_dev && src.st_ino == c.top_ino) {
    return core::Error(core::Code::kInvalidArgument, "cannot copy a directory, " + src_name + ", into itself");
  }
  return core::Ok();
}

// Records the top destination directory (the first one written), then refuses a source
// directory that is it.
Status CheckNotInto(Copy& c, int src, int dst, const std::string& src_name) {
  struct stat s, d;
  if (::fstat(src, &s) != 0 || ::fstat(dst, &d) != 0) return core::SysError("stat " + src_name);
  if (!c.has_top) {
    c.has_top = true;
    c.top_dev = d.st_dev;
    c.top_ino = d.st_ino;
  }
  return NotTheTop(c, s, src_name);
}

Status CopyEntryIn(Copy& c, int src_dir, const std::string& src_name, int dst_dir, const std::string& dst_name);

Status CopyDirContentsIn(Copy& c, int src, int dst, const std::string& src_name) {
  XB_TRY(CheckNotInto(c, src, dst, src_name));
  XB_ASSIGN(std::vector<std::string> names, Names(src));
  for (const std::string& n : names) {
    XB_TRY(CopyEntryIn(c, src, n, dst, n));
  }
  return core::Ok();
}

Status CopyEntryIn(Copy& c, int src_dir, const std::string& src_name, int dst_dir, const std::string& dst_name) {
  const CopyTreeOptions& opts = c.opts;
  struct stat st;
  if (::fstatat(src_dir, src_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return core::SysError("stat " + src_name);
  if (S_ISDIR(st.st_mode)) {
    XB_TRY(NotTheTop(c, st, src_name));  // before anything is made for it
    struct stat dst_st;
    bool exists = ::fstatat(dst_dir, dst_name.c_str(), &dst_st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !S_ISDIR(dst_st.st_mode)) {
      errno = ENOTDIR;
      return core::SysError("cannot overwrite non-directory " + dst_name + " with directory");
    }
    if (!exists && ::mkdirat(dst_dir, dst_name.c_str(), 0700) != 0) return core::SysError("mkdir " + dst_name);
    int s = ::openat(src_dir, src_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s < 0) return core::SysError("open " + src_name);
    core::UniqueFd s_fd(s);
    int d = ::openat(dst_dir, dst_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d < 0) return core::SysError("open " + dst_name);
    core::UniqueFd d_fd(d);
    XB_TRY_CTX(CopyDirContentsIn(c, s, d, src_name), src_name);
    SetMeta(dst_dir, dst_name, st, opts);
    return core::Ok();
  }
  if (S_ISSOCK(st.st_mode)) return core::Ok();
  XB_TRY(ClearForFile(dst_dir, dst_name));
  if (S_ISLNK(st.st_mode)) {
    char target[kLinkMax];
    ssize_t n = ::readlinkat(src_dir, src_name.c_str(), target, sizeof target);
    if (n < 0) return core::SysError("readlink " + src_name);
    std::string t(target, static_cast<size_t>(n));
    if (::symlinkat(t.c_str(), dst_dir, dst_name.c_str()) != 0) return core::SysError("symlink " + dst_name);
  } else if (S_ISREG(st.st_mode)) {
    XB_TRY(CopyFile(src_dir, src_name, dst_dir, dst_name));
  } else if (::mknodat(dst_dir, dst_name.c_str(), st.st_mode, st.st_rdev) != 0) {
    return core::SysError("mknod " + dst_name);
  }
  SetMeta(dst_dir, dst_name, st, opts);
  return core::Ok();
}

}  // namespace

Status CopyDirContents(int src, int dst, const CopyTreeOptions& opts) {
  Copy c(opts);
  return CopyDirContentsIn(c, src, dst, ".");
}

Status CopyEntry(int src_dir, const std::string& src_name, int dst_dir, const std::string& dst_name,
                 const CopyTreeOptions& opts) {
  Copy c(opts);
  return CopyEntryIn(c, src_dir, src_name, dst_dir, dst_name);
}

}  // namespace xbuild::exec
