// libarchive only parses here; every filesystem change is made with *at() calls on directory
// fds resolved inside the target root, as in image/layer_apply.cc.
#include "solver/ops/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "core/fd.h"
#include "core/path.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using core::UniqueFd;

namespace {

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// A reader for tar in the compressions Docker's ADD accepts. Built-in decoders only: a codec
// this libarchive was built without is an error, never an external program run on user data.
Result<ArchivePtr> NewReader(int fd) {
  ArchivePtr a(archive_read_new(), &archive_read_free);
  if (!a) return Error(Code::kInternal, "archive_read_new failed");
  for (auto add : {archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                   archive_read_support_filter_xz, archive_read_support_filter_zstd}) {
    // ARCHIVE_WARN: no built-in decoder; libarchive would run an external program for it.
    if (add(a.get()) != ARCHIVE_OK) {
      const char* m = archive_error_string(a.get());
      return Error(Code::kInternal, std::string("libarchive: ") + (m ? m : "missing decoder"));
    }
  }
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd, 64 * 1024) != ARCHIVE_OK) {
    return Error(Code::kInvalidArgument, "not an archive");
  }
  return a;
}

// The cleaned name of an entry relative to the destination ("" for the destination itself).
Result<std::string> EntryName(std::string_view raw) {
  size_t start = raw.find_first_not_of('/');
  std::string name = core::CleanPath(start == std::string_view::npos ? "" : raw.substr(start));
  if (name == ".") return std::string();
  if (core::EscapesRoot(name)) {
    return Error(Code::kPermissionDenied,
                 "archive entry " + Quote(raw) + " is outside the destination");
  }
  return name;
}

class Extractor {
 public:
  Extractor(archive* a, int root, std::string dest, const UnpackOptions& opts)
      : a_(a), root_(root), dest_(std::move(dest)), opts_(opts) {}

  Status Run(archive_entry* first) {
    XB_TRY(MakeDirs(root_, dest_, 0755, ParentOwner()));
    for (archive_entry* e = first; e;) {
      XB_TRY(Entry(e));
      int rc = archive_read_next_header(a_, &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return ArchiveError();
    }
    return FinishDirs();
  }

 private:
  struct DirMeta {
    std::string path;
    mode_t perm;
    struct timespec ts[2];
  };

  std::optional<Owner> ParentOwner() const { return opts_.owner.value_or(Owner{}); }

  Error ArchiveError() const {
    const char* m = archive_error_string(a_);
    return Error(Code::kDataLoss, std::string("read archive: ") + (m ? m : "libarchive error"));
  }

  std::optional<Owner> EntryOwner(archive_entry* e) const {
    if (opts_.owner) return opts_.owner;
    return Owner{static_cast<uint32_t>(archive_entry_uid(e)),
                 static_cast<uint32_t>(archive_entry_gid(e))};
  }

  void Times(archive_entry* e, struct timespec ts[2]) const {
    ts[1] = {static_cast<time_t>(archive_entry_mtime(e)), archive_entry_mtime_nsec(e)};
    if (opts_.timestamp && ts[1].tv_sec >= *opts_.timestamp)
      ts[1] = {static_cast<time_t>(*opts_.timestamp), 0};
    ts[0] = ts[1];
  }

  Status Entry(archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (!raw) raw = archive_entry_pathname_utf8(e);
    if (!raw) return Error(Code::kDataLoss, "archive entry with an unreadable name");
    XB_ASSIGN(std::string name, EntryName(raw));
    if (name.empty()) return core::Ok();  // the destination itself: left as it is
    std::string path = dest_ + "/" + name;
    auto [parent_path, base] = SplitLast(path);
    XB_ASSIGN(UniqueFd parent, MakeDirs(root_, parent_path, 0755, ParentOwner()));
    return Write(e, parent.get(), base, path).Context("archive entry " + Quote(raw));
  }

  Status Write(archive_entry* e, int dir, const std::string& base, const std::string& path) {
    UniqueFd link_src;
    if (const char* hl = archive_entry_hardlink(e)) {
      XB_ASSIGN(link_src, HardlinkTarget(hl));
    }
    mode_t type = link_src.valid() ? 0 : archive_entry_filetype(e);
    struct stat old;
    if (::fstatat(dir, base.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
      if (!(S_ISDIR(old.st_mode) && type == AE_IFDIR)) XB_TRY(RemoveAt(dir, base));
    } else if (errno != ENOENT) {
      return core::SysError("stat " + path);
    }
    if (link_src.valid()) return Hardlink(link_src.get(), dir, base, path);
    switch (type) {
      case AE_IFREG:
        return File(e, dir, base, path);
      case AE_IFDIR:
        return Dir(e, dir, base, path);
      case AE_IFLNK:
        return Symlink(e, dir, base, path);
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        return Node(e, dir, base, path, type);
      case AE_IFSOCK:
        return core::Ok();
      default:
        return Error(Code::kInvalidArgument, "unsupported archive entry type");
    }
  }

  Result<UniqueFd> HardlinkTarget(const char* raw) {
    XB_ASSIGN(std::string name, EntryName(raw));
    if (name.empty()) return Error(Code::kPermissionDenied, "hardlink to the destination itself");
    core::OpenInRootOptions o;
    o.flags = O_PATH;
    o.follow_last = false;
    XB_ASSIGN_CTX(UniqueFd fd, core::OpenInRoot(root_, dest_ + "/" + name, o),
                  "hardlink target " + Quote(raw));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return core::SysError("stat hardlink target");
    if (S_ISDIR(st.st_mode)) return Error(Code::kPermissionDenied, "hardlink to a directory");
    return fd;
  }

  Status Chown(archive_entry* e, int dir, const std::string& base, const std::string& path) {
    std::optional<Owner> o = EntryOwner(e);
    if (!o || !CanChown()) return core::Ok();
    if (::fchownat(dir, base.c_str(), o->uid, o->gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return core::SysError("chown " + path);
    }
    return core::Ok();
  }

  Status Xattrs(archive_entry* e, int fd) {
    archive_entry_xattr_reset(e);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      std::string_view n = name;
      if (n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")) continue;
      (void)::fsetxattr(fd, name, value, size, 0);  // best effort, as Docker does
    }
    return core::Ok();
  }

  Status File(archive_entry* e, int dir, const std::string& base, const std::string& path) {
    int fd =
        ::openat(dir, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return core::SysError("create " + path);
    UniqueFd f(fd);
    for (;;) {
      const void* buf;
      size_t n;
      la_int64_t off;
      int rc = archive_read_data_block(a_, &buf, &n, &off);
      if (rc == ARCHIVE_EOF) break;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return ArchiveError();
      const char* p = static_cast<const char*>(buf);
      while (n > 0) {
        ssize_t w = ::pwrite(f.get(), p, n, off);
        if (w < 0) {
          if (errno == EINTR) continue;
          return core::SysError("write " + path);
        }
        p += w;
        off += w;
        n -= static_cast<size_t>(w);
      }
    }
    if (archive_entry_size_is_set(e) && ::ftruncate(f.get(), archive_entry_size(e)) != 0) {
      return core::SysError("truncate " + path);  // a sparse tail
    }
    XB_TRY(Chown(e, dir, base, path));
    if (::fchmod(f.get(), archive_entry_perm(e)) != 0) return core::SysError("chmod " + path);
    XB_TRY(Xattrs(e, f.get()));
    struct timespec ts[2];
    Times(e, ts);
    if (::futimens(f.get(), ts) != 0) return core::SysError("set times " + path);
    return core::Ok();
  }

  // Mode and times wait for FinishDirs: writing the content would change them.
  Status Dir(archive_entry* e, int dir, const std::string& base, const std::string& path) {
    if (::mkdirat(dir, base.c_str(), 0700) != 0 && errno != EEXIST)
      return core::SysError("mkdir " + path);
    int fd = ::openat(dir, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return core::SysError("open " + path);
    UniqueFd d(fd);
    XB_TRY(Chown(e, dir, base, path));
    XB_TRY(Xattrs(e, d.get()));
    DirMeta m{path, archive_entry_perm(e), {}};
    Times(e, m.ts);
    dirs_.push_back(std::move(m));
    return core::Ok();
  }

  Status Symlink(archive_entry* e, int dir, const std::string& base, const std::string& path) {
    const char* target = archive_entry_symlink(e);
    if (!target) target = archive_entry_symlink_utf8(e);
    if (!target) return Error(Code::kDataLoss, "symlink without a target");
    if (::symlinkat(target, dir, base.c_str()) != 0) return core::SysError("symlink " + path);
    XB_TRY(Chown(e, dir, base, path));
    struct timespec ts[2];
    Times(e, ts);
    if (::utimensat(dir, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
      return core::SysError("set times " + path);
    return core::Ok();
  }

  Status Node(archive_entry* e, int dir, const std::string& base, const std::string& path,
              mode_t type) {
    dev_t dev =
        type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
    if (::mknodat(dir, base.c_str(), type | 0600, dev) != 0) {
      // Unprivileged extraction cannot make devices; Docker skips them too.
      if (errno == EPERM && type != AE_IFIFO && !CanChown()) return core::Ok();
      return core::SysError("mknod " + path);
    }
    XB_TRY(Chown(e, dir, base, path));
    if (::fchmodat(dir, base.c_str(), archive_entry_perm(e), 0) != 0)
      return core::SysError("chmod " + path);
    struct timespec ts[2];
    Times(e, ts);
    if (::utimensat(dir, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
      return core::SysError("set times " + path);
    return core::Ok();
  }

  Status Hardlink(int src, int dir, const std::string& base, const std::string& path) {
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd/N works without it.
    if (::linkat(src, "", dir, base.c_str(), AT_EMPTY_PATH) != 0 &&
        ::linkat(AT_FDCWD, ProcFd(src).c_str(), dir, base.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return core::SysError("link " + path);
    }
    return core::Ok();
  }

  // Innermost first, so that setting a parent's times is the last change under it.
  Status FinishDirs() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      core::OpenInRootOptions o;
      o.flags = O_PATH | O_DIRECTORY;
      o.follow_last = false;
      auto fd = core::OpenInRoot(root_, it->path, o);
      if (!fd.ok()) continue;  // replaced by a non-directory later in the archive
      std::string p = ProcFd(fd->get());
      if (::chmod(p.c_str(), it->perm) != 0) return core::SysError("chmod " + it->path);
      if (::utimensat(AT_FDCWD, p.c_str(), it->ts, 0) != 0)
        return core::SysError("set times " + it->path);
    }
    return core::Ok();
  }

  archive* a_;
  int root_;
  std::string dest_;
  const UnpackOptions& opts_;
  std::vector<DirMeta> dirs_;
};

}  // namespace

Result<bool> UnpackArchive(int fd, int root_fd, const std::string& dest,
                           const UnpackOptions& opts) {
  auto reader = NewReader(fd);
  if (!reader.ok()) {
    if (reader.error().code() == Code::kInternal) return std::move(reader).error();
    return false;
  }
  // As Docker's isArchivePath: it is an archive when a first tar header reads; an empty
  // archive (only the end blocks) is not one and is copied as a file.
  archive_entry* first = nullptr;
  int rc = archive_read_next_header(reader->get(), &first);
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return false;
  Extractor x(reader->get(), root_fd, core::CleanPath("/" + dest), opts);
  XB_TRY(x.Run(first));
  return true;
}

}  // namespace xbuild::solver::ops
