// ApplyLayer: a tar stream onto a directory, confined to it.
//
// libarchive only parses; every filesystem change is made here with *at() calls relative to a
// directory fd that core::MkdirAllInRoot / core::OpenInRoot resolved inside the root, and the
// final component is never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, unlink before create).
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/fd.h"
#include "core/path.h"
#include "image/layer.h"
#include "image/layer_stream.h"

namespace xbuild::image {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using core::UniqueFd;

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The components of an entry name, cleaned lexically: "", "." dropped, ".." pops. A leading
// "/" is ignored (the name is relative to the root); climbing above the root is refused.
Result<std::vector<std::string>> SplitName(std::string_view raw) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view c = raw.substr(i, j - i);
    i = j + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (parts.empty()) {
        return Error(Code::kPermissionDenied, Quote(raw) + " climbs out of the layer root");
      }
      parts.pop_back();
      continue;
    }
    parts.emplace_back(c);
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t k = 0; k < n; ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  return out;
}

std::string ProcFd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

bool SkippedXattr(std::string_view name) {
  // overlayfs reads these from its layers; a layer must not be able to plant them.
  return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
}

// Removes dirfd/name, recursively for a directory, never following symlinks. Missing is fine.
Status RemoveAt(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return core::Ok();
    return core::SysError("stat " + name);
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return core::SysError("open " + name);
    UniqueFd sub(fd);
    XB_ASSIGN(std::vector<std::string> children, internal::ListDir(sub.get(), name));
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

class Applier {
 public:
  Applier(int root, const ApplyOptions& opts, internal::DecompressSource& src)
      : root_(root), opts_(opts), src_(src), chown_(opts.preserve_owner && ::geteuid() == 0),
        rbuf_(256 * 1024) {}
  ~Applier() {
    if (a_) archive_read_free(a_);
  }
  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;

  Result<ApplyStats> Run() {
    a_ = archive_read_new();
    if (!a_) return Error(Code::kInternal, "archive_read_new failed");
    archive_read_support_format_tar(a_);
    // An empty stream is an empty layer, as Go's archive/tar reads it.
    bool opened = archive_read_open(a_, this, nullptr, &Applier::ReadCb, nullptr) == ARCHIVE_OK;
    if (!opened && (src_error_ || src_.bytes() != 0)) return ArchiveError(true);
    for (; opened;) {
      archive_entry* e = nullptr;
      int rc = archive_read_next_header(a_, &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return ArchiveError(stats_.entries == 0);
      if (++stats_.entries > opts_.max_entries) {
        return Error(Code::kResourceExhausted,
                     "more than " + std::to_string(opts_.max_entries) + " entries");
      }
      const char* raw = archive_entry_pathname(e);
      if (!raw) raw = archive_entry_pathname_utf8(e);
      if (!raw) return Error(Code::kDataLoss, "tar entry with an unreadable name");
      Status s = Entry(e, raw);
      if (!s.ok()) {
        Error err = std::move(s).error();
        if (!stream_error_) return std::move(err).Context("entry " + Quote(raw));
        // The stream broke (truncated, corrupt, over the limit): say so first.
        return Error(err.code(), err.message() + " (in entry " + Quote(raw) + ")", err.sys_errno());
      }
    }
    // The diff_id covers the whole stream, trailing zero blocks included.
    XB_TRY(src_.Drain());
    XB_TRY(FinishDirs());
    stats_.bytes = src_.bytes();
    stats_.diff_id = src_.Finish();
    return stats_;
  }

 private:
  enum class Origin { kCreated, kKept };  // made by this layer / existing dir it re-declared
  struct DirMeta {
    std::string path;
    mode_t perm;
    struct timespec ts[2];
  };

  static la_ssize_t ReadCb(struct archive* a, void* client, const void** buf) {
    auto* self = static_cast<Applier*>(client);
    auto r = self->src_.Read(self->rbuf_.data(), self->rbuf_.size());
    if (!r.ok()) {
      self->src_error_.emplace(std::move(r).error());
      archive_set_error(a, EIO, "%s", self->src_error_->message().c_str());
      return -1;
    }
    *buf = self->rbuf_.data();
    return static_cast<la_ssize_t>(*r);
  }

  Error ArchiveError(bool first) {
    stream_error_ = true;
    if (src_error_) return *src_error_;
    const char* m = archive_error_string(a_);
    std::string msg = m ? m : "libarchive error";
    if (msg.find("runcated") != std::string::npos || msg.find("Premature") != std::string::npos) {
      return Error(Code::kDataLoss, "truncated tar: " + msg);
    }
    if (first) return Error(Code::kInvalidArgument, "not a tar archive: " + msg);
    return Error(Code::kDataLoss, "corrupt tar: " + msg);
  }

  void Remember(const struct stat& st, Origin o) { made_.try_emplace({st.st_dev, st.st_ino}, o); }
  const Origin* Made(const struct stat& st) const {
    auto it = made_.find({st.st_dev, st.st_ino});
    return it == made_.end() ? nullptr : &it->second;
  }

  // The directory `path` (resolved in the root, created as needed); reused while consecutive
  // entries share it. Only an entry whose parent is a proper prefix of `path` can change how
  // `path` resolves, and such an entry has another parent, which drops the cache.
  Result<int> ParentDir(const std::string& path) {
    if (!parent_fd_.valid() || parent_path_ != path) {
      parent_fd_.Reset();
      XB_ASSIGN(parent_fd_, core::MkdirAllInRoot(root_, path, 0755));
      parent_path_ = path;
    }
    return parent_fd_.get();
  }

  Status Entry(archive_entry* e, std::string_view raw) {
    XB_ASSIGN(std::vector<std::string> parts, SplitName(raw));
    if (parts.empty()) return core::Ok();  // the root itself: left as the caller made it
    const std::string& base = parts.back();
    std::string parent = Join(parts, parts.size() - 1);
    if (base.starts_with(kWhiteoutPrefix)) {
      parent_fd_.Reset();
      return Whiteout(parent, base);
    }
    XB_ASSIGN(int dir, ParentDir(parent));

    // A hardlink's target is resolved (in the root, last component not followed) before
    // anything at `base` is removed.
    UniqueFd link_src;
    struct stat link_st {};
    if (const char* hl = archive_entry_hardlink(e)) {
      XB_ASSIGN_CTX(std::vector<std::string> tparts, SplitName(hl), "hardlink target");
      if (tparts.empty()) return Error(Code::kPermissionDenied, "hardlink to the root");
      core::OpenInRootOptions o;
      o.flags = O_PATH;
      o.follow_last = false;
      XB_ASSIGN_CTX(link_src, core::OpenInRoot(root_, Join(tparts, tparts.size()), o),
                    "hardlink target " + Quote(hl));
      if (::fstat(link_src.get(), &link_st) != 0) return core::SysError("stat hardlink target");
      if (S_ISDIR(link_st.st_mode)) return Error(Code::kPermissionDenied, "hardlink to a directory");
    }

    mode_t type = link_src.valid() ? 0 : archive_entry_filetype(e);
    if (type == AE_IFSOCK) return core::Ok();
    struct stat old;
    if (::fstatat(dir, base.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
      if (link_src.valid() && old.st_dev == link_st.st_dev && old.st_ino == link_st.st_ino) {
        return core::Ok();  // already that link
      }
      if (S_ISDIR(old.st_mode) && type == AE_IFDIR) return Dir(e, dir, base, parts, &old);
      XB_TRY(RemoveAt(dir, base));
    } else if (errno != ENOENT) {
      return core::SysError("stat " + base);
    }

    if (link_src.valid()) return Hardlink(dir, base, link_src.get());
    switch (type) {
      case AE_IFREG: return File(e, dir, base);
      case AE_IFDIR: return Dir(e, dir, base, parts, nullptr);
      case AE_IFLNK: return Symlink(e, dir, base);
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: return Node(e, dir, base, type);
      default: return Error(Code::kInvalidArgument, "unsupported tar entry type");
    }
  }

  Status Whiteout(const std::string& parent, const std::string& base) {
    core::OpenInRootOptions o;
    o.flags = O_RDONLY | O_DIRECTORY;
    auto dir = core::OpenInRoot(root_, parent, o);
    if (base == kOpaqueMarker) {
      if (!dir.ok()) return core::Ok();  // nothing to hide
      return Opaque(dir->get(), parent);
    }
    if (base.starts_with(kWhiteoutMetaPrefix)) return core::Ok();  // AUFS metadata (.wh..wh.plnk)
    std::string name = base.substr(kWhiteoutPrefix.size());
    if (name.empty() || name == "." || name == "..") {
      return Error(Code::kPermissionDenied, "invalid whiteout name " + Quote(base));
    }
    if (!dir.ok()) return core::Ok();  // parent missing (or not a dir): nothing to delete
    struct stat st;
    if (::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return core::Ok();
      return core::SysError("stat " + name);
    }
    // A whiteout hides lower layers only, never what this same layer wrote.
    if (Made(st)) return core::Ok();
    return RemoveAt(dir->get(), name);
  }

  // Empties a directory of lower-layer content: what this layer created stays; a directory it
  // only re-declared is emptied in turn.
  Status Opaque(int dirfd, const std::string& path) {
    XB_ASSIGN(std::vector<std::string> children, internal::ListDir(dirfd, path));
    for (const std::string& c : children) {
      struct stat st;
      if (::fstatat(dirfd, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return core::SysError("stat " + c);
      }
      const Origin* o = Made(st);
      if (o && *o == Origin::kCreated) continue;
      if (o && S_ISDIR(st.st_mode)) {
        int fd = ::openat(dirfd, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return core::SysError("open " + c);
        UniqueFd sub(fd);
        XB_TRY(Opaque(sub.get(), path + "/" + c));
        continue;
      }
      XB_TRY(RemoveAt(dirfd, c));
    }
    return core::Ok();
  }

  static struct timespec Mtime(archive_entry* e) {
    return {static_cast<time_t>(archive_entry_mtime(e)), archive_entry_mtime_nsec(e)};
  }
  static void Times(archive_entry* e, struct timespec ts[2]) {
    ts[1] = Mtime(e);
    ts[0] = archive_entry_atime_is_set(e)
                ? timespec{static_cast<time_t>(archive_entry_atime(e)), archive_entry_atime_nsec(e)}
                : ts[1];
  }

  Status Chown(archive_entry* e, int dir, const std::string& base) {
    if (!chown_) return core::Ok();
    if (::fchownat(dir, base.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                   static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0) {
      return core::SysError("chown " + base);
    }
    return core::Ok();
  }

  // fd: a real fd (fsetxattr) or, with via_proc, an O_PATH fd (setxattr on /proc/self/fd/N,
  // which acts on the node itself, even a symlink).
  Status Xattrs(archive_entry* e, int fd, bool via_proc, const std::string& base) {
    archive_entry_xattr_reset(e);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      if (SkippedXattr(name)) continue;
      int rc = via_proc ? ::setxattr(ProcFd(fd).c_str(), name, value, size, 0)
                        : ::fsetxattr(fd, name, value, size, 0);
      if (rc != 0 && errno != EPERM && errno != ENOTSUP) {
        return core::SysError("setxattr " + base + " " + name);
      }
    }
    return core::Ok();
  }

  Status File(archive_entry* e, int dir, const std::string& base) {
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (size < 0) return Error(Code::kDataLoss, "negative size");
    declared_ += static_cast<uint64_t>(size);
    if (declared_ > opts_.max_uncompressed_bytes) {
      return Error(Code::kResourceExhausted, "files larger than the limit of " +
                                                 std::to_string(opts_.max_uncompressed_bytes) +
                                                 " bytes");
    }
    int fd = ::openat(dir, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return core::SysError("create " + base);
    UniqueFd f(fd);
    core::ScopeGuard drop([&] { ::unlinkat(dir, base.c_str(), 0); });  // no partial files
    for (;;) {
      const void* buf;
      size_t n;
      la_int64_t off;
      int rc = archive_read_data_block(a_, &buf, &n, &off);
      if (rc == ARCHIVE_EOF) break;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return ArchiveError(false);
      if (off < 0 || static_cast<uint64_t>(off) + n > static_cast<uint64_t>(size)) {
        return Error(Code::kDataLoss, "file data past the declared size");
      }
      const char* p = static_cast<const char*>(buf);
      while (n > 0) {
        ssize_t w = ::pwrite(f.get(), p, n, off);
        if (w < 0) {
          if (errno == EINTR) continue;
          return core::SysError("write " + base);
        }
        p += w;
        off += w;
        n -= static_cast<size_t>(w);
      }
    }
    if (::ftruncate(f.get(), size) != 0) return core::SysError("truncate " + base);  // sparse tail
    XB_TRY(Chown(e, dir, base));
    if (::fchmod(f.get(), archive_entry_perm(e)) != 0) return core::SysError("chmod " + base);
    XB_TRY(Xattrs(e, f.get(), false, base));
    struct timespec ts[2];
    Times(e, ts);
    if (::futimens(f.get(), ts) != 0) return core::SysError("set times " + base);
    struct stat st;
    if (::fstat(f.get(), &st) != 0) return core::SysError("stat " + base);
    Remember(st, Origin::kCreated);
    drop.Dismiss();
    return core::Ok();
  }

  // A new directory, or (old != nullptr) an existing one whose metadata is updated. Its mode and
  // times are set by FinishDirs, after its content is written.
  Status Dir(archive_entry* e, int dir, const std::string& base,
             const std::vector<std::string>& parts, const struct stat* old) {
    if (!old && ::mkdirat(dir, base.c_str(), 0700) != 0) return core::SysError("mkdir " + base);
    int fd = ::openat(dir, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return core::SysError("open " + base);
    UniqueFd d(fd);
    XB_TRY(Chown(e, dir, base));
    XB_TRY(Xattrs(e, d.get(), false, base));
    struct stat st;
    if (::fstat(d.get(), &st) != 0) return core::SysError("stat " + base);
    Remember(st, old ? Origin::kKept : Origin::kCreated);
    DirMeta m{Join(parts, parts.size()), archive_entry_perm(e), {}};
    Times(e, m.ts);
    dirs_.push_back(std::move(m));
    return core::Ok();
  }

  Status Symlink(archive_entry* e, int dir, const std::string& base) {
    const char* target = archive_entry_symlink(e);
    if (!target) target = archive_entry_symlink_utf8(e);
    if (!target) return Error(Code::kDataLoss, "symlink without a target");
    if (::symlinkat(target, dir, base.c_str()) != 0) return core::SysError("symlink " + base);
    return Finish(e, dir, base, /*chmod=*/false);
  }

  Status Node(archive_entry* e, int dir, const std::string& base, mode_t type) {
    dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
    if (::mknodat(dir, base.c_str(), type | 0600, dev) != 0) {
      // Unprivileged (e.g. rootless) extraction cannot make devices; Docker skips them too.
      if (errno == EPERM && type != AE_IFIFO && ::geteuid() != 0) return core::Ok();
      return core::SysError("mknod " + base);
    }
    return Finish(e, dir, base, /*chmod=*/true);
  }

  // Metadata of a node that has no fd of its own (symlink, device, fifo).
  Status Finish(archive_entry* e, int dir, const std::string& base, bool chmod) {
    int fd = ::openat(dir, base.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return core::SysError("open " + base);
    UniqueFd p(fd);
    XB_TRY(Chown(e, dir, base));
    if (chmod && ::chmod(ProcFd(p.get()).c_str(), archive_entry_perm(e)) != 0) {
      return core::SysError("chmod " + base);
    }
    XB_TRY(Xattrs(e, p.get(), true, base));
    struct timespec ts[2];
    Times(e, ts);
    if (::utimensat(dir, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return core::SysError("set times " + base);
    }
    struct stat st;
    if (::fstat(p.get(), &st) != 0) return core::SysError("stat " + base);
    Remember(st, Origin::kCreated);
    return core::Ok();
  }

  Status Hardlink(int dir, const std::string& base, int src) {
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd/N works without it.
    if (::linkat(src, "", dir, base.c_str(), AT_EMPTY_PATH) != 0 &&
        ::linkat(AT_FDCWD, ProcFd(src).c_str(), dir, base.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return core::SysError("link " + base);
    }
    struct stat st;
    if (::fstatat(dir, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return core::SysError("stat " + base);
    Remember(st, Origin::kCreated);
    return core::Ok();
  }

  // Directory modes and times, once everything below them is written.
  Status FinishDirs() {
    parent_fd_.Reset();
    for (const DirMeta& m : dirs_) {
      core::OpenInRootOptions o;
      o.flags = O_PATH | O_DIRECTORY;
      o.follow_last = false;
      auto fd = core::OpenInRoot(root_, m.path, o);
      struct stat st;
      // Gone or replaced by a non-directory later in the layer: nothing to do.
      if (!fd.ok() || ::fstat(fd->get(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      std::string p = ProcFd(fd->get());
      if (::chmod(p.c_str(), m.perm) != 0) return core::SysError("chmod " + m.path);
      if (::utimensat(AT_FDCWD, p.c_str(), m.ts, 0) != 0) return core::SysError("set times " + m.path);
    }
    return core::Ok();
  }

  int root_;
  const ApplyOptions& opts_;
  internal::DecompressSource& src_;
  bool chown_;
  archive* a_ = nullptr;
  std::vector<char> rbuf_;
  std::optional<Error> src_error_;
  bool stream_error_ = false;
  internal::Utf8Locale locale_;
  ApplyStats stats_;
  uint64_t declared_ = 0;
  std::map<std::pair<dev_t, ino_t>, Origin> made_;
  std::vector<DirMeta> dirs_;
  UniqueFd parent_fd_;
  std::string parent_path_;
};

}  // namespace

Result<ApplyStats> ApplyLayer(int fd, const std::string& target_dir, const ApplyOptions& opts) {
  std::string ctx = "apply layer";
  int r = ::open(target_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (r < 0) return core::SysError("open " + target_dir).Context(ctx);
  UniqueFd root(r);
  XB_ASSIGN_CTX(auto src, internal::DecompressSource::Open(fd, opts.max_uncompressed_bytes), ctx);
  Applier applier(root.get(), opts, *src);
  return applier.Run().Context(ctx);
}

}  // namespace xbuild::image
