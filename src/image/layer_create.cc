// CreateLayer / CreateDiffLayer: a tree (or two) to a tar stream, via libarchive's pax writer,
// compressed and hashed by internal::CompressSink as it streams.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/fd.h"
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
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct Xattr {
  std::string name;
  std::string value;
  bool operator==(const Xattr&) const = default;
};
using Xattrs = std::vector<Xattr>;

// The xattrs a layer records: security.capability and user.*, minus overlay's own
// (user.overlay.*) when the tree is an overlay upper dir. Sorted by name.
Result<Xattrs> ReadXattrs(const std::string& path, DirKind kind) {
  Xattrs out;
  ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
  if (n < 0) {
    if (errno == ENOTSUP || errno == ENOSYS) return out;
    return core::SysError("listxattr " + path);
  }
  if (n == 0) return out;
  std::string names(static_cast<size_t>(n), '\0');
  n = ::llistxattr(path.c_str(), names.data(), names.size());
  if (n < 0) return core::SysError("listxattr " + path);
  names.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < names.size();) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    bool keep = name == "security.capability" || name.starts_with("user.");
    if (kind == DirKind::kOverlayUpper && name.starts_with("user.overlay.")) keep = false;
    if (!keep || name.empty()) continue;
    ssize_t vn = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vn < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      return core::SysError("getxattr " + path + " " + name);
    }
    std::string value(static_cast<size_t>(vn), '\0');
    vn = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vn < 0) return core::SysError("getxattr " + path + " " + name);
    value.resize(static_cast<size_t>(vn));
    out.push_back({std::move(name), std::move(value)});
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

bool IsOpaqueDir(const std::string& path) {
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    char v[2];
    ssize_t n = ::lgetxattr(path.c_str(), name, v, sizeof v);
    if (n == 1 && v[0] == 'y') return true;
  }
  return false;
}

bool IsOverlayWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

Result<UniqueFd> OpenDirAt(int dirfd, const std::string& name, const std::string& path) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return core::SysError("open " + path);
  return UniqueFd(fd);
}

Result<std::string> ReadLinkAt(int dirfd, const std::string& name, const std::string& path) {
  std::string buf(4096, '\0');
  for (;;) {
    ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
    if (n < 0) return core::SysError("readlink " + path);
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 2);
  }
}

// One tar stream being written: libarchive's pax writer over a CompressSink.
class TarWriter {
 public:
  static Result<std::unique_ptr<TarWriter>> New(int out_fd, const LayerOptions& opts) {
    std::unique_ptr<TarWriter> w(new TarWriter(opts));
    XB_ASSIGN(w->sink_, internal::CompressSink::New(opts.compression, opts.level, out_fd));
    w->a_ = archive_write_new();
    if (!w->a_) return Error(Code::kInternal, "archive_write_new failed");
    if (archive_write_set_format_pax_restricted(w->a_) != ARCHIVE_OK ||
        archive_write_set_format_option(w->a_, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w->a_, 64 * 1024) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->a_, 1) != ARCHIVE_OK) {
      return w->ArchiveError("configure tar writer");
    }
    if (archive_write_open(w->a_, w.get(), nullptr, &TarWriter::WriteCb, nullptr) != ARCHIVE_OK) {
      return w->ArchiveError("open tar writer");
    }
    return w;
  }

  ~TarWriter() {
    if (a_) archive_write_free(a_);  // also closes, if Finish was not reached
  }
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Writes the entry `name` for the node dirfd/base (full path `path`, lstat `st`). Handles
  // hardlinks (by dev/ino), symlinks, devices, fifos and file data; skips sockets.
  Status AddNode(const std::string& name, int dirfd, const std::string& base,
                 const std::string& path, const struct stat& st, const Xattrs& xattrs) {
    if (S_ISSOCK(st.st_mode)) return core::Ok();
    Entry e;
    XB_TRY(Begin(e, name, st));
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, inserted] = links_.try_emplace({st.st_dev, st.st_ino}, name);
      if (!inserted) {
        archive_entry_set_filetype(e.e, AE_IFREG);
        archive_entry_set_size(e.e, 0);
        archive_entry_copy_hardlink(e.e, it->second.c_str());
        return Finish(e, name, xattrs, -1, 0);
      }
    }
    UniqueFd data;
    int64_t size = 0;
    switch (st.st_mode & S_IFMT) {
      case S_IFREG: {
        int fd = ::openat(dirfd, base.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return core::SysError("open " + path);
        data.Reset(fd);
        size = st.st_size;
        archive_entry_set_filetype(e.e, AE_IFREG);
        archive_entry_set_size(e.e, size);
        break;
      }
      case S_IFDIR: archive_entry_set_filetype(e.e, AE_IFDIR); break;
      case S_IFLNK: {
        XB_ASSIGN(std::string target, ReadLinkAt(dirfd, base, path));
        archive_entry_set_filetype(e.e, AE_IFLNK);
        archive_entry_copy_symlink(e.e, target.c_str());
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
        archive_entry_set_filetype(e.e, S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(e.e, major(st.st_rdev));
        archive_entry_set_rdevminor(e.e, minor(st.st_rdev));
        break;
      case S_IFIFO: archive_entry_set_filetype(e.e, AE_IFIFO); break;
      default: return Error(Code::kInvalidArgument, "unsupported file type: " + path);
    }
    return Finish(e, name, xattrs, data.get(), size);
  }

  // An empty regular file named `name` (a whiteout), with owner/mtime from `like`.
  Status AddMarker(const std::string& name, const struct stat& like, mode_t perm) {
    Entry e;
    XB_TRY(Begin(e, name, like));
    archive_entry_set_filetype(e.e, AE_IFREG);
    archive_entry_set_perm(e.e, perm);
    archive_entry_set_size(e.e, 0);
    return Finish(e, name, {}, -1, 0);
  }

  Result<LayerResult> Close() {
    if (archive_write_close(a_) != ARCHIVE_OK) return ArchiveError("close tar");
    return sink_->Finish();
  }

 private:
  struct Entry {
    archive_entry* e = nullptr;
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry() {
      if (e) archive_entry_free(e);
    }
  };

  explicit TarWriter(const LayerOptions& opts) : epoch_(opts.source_date_epoch), buf_(256 * 1024) {}

  static la_ssize_t WriteCb(struct archive*, void* client, const void* buf, size_t len) {
    auto* w = static_cast<TarWriter*>(client);
    Status s = w->sink_->Write(buf, len);
    if (!s.ok()) {
      w->sink_error_.emplace(std::move(s).error());
      return -1;
    }
    return static_cast<la_ssize_t>(len);
  }

  Error ArchiveError(std::string_view what) {
    if (sink_error_) return Error(*sink_error_).Context(what);
    const char* msg = a_ ? archive_error_string(a_) : nullptr;
    return Error(Code::kInternal, std::string(what) + ": " + (msg ? msg : "libarchive error"));
  }

  Status Begin(Entry& e, const std::string& name, const struct stat& st) {
    e.e = archive_entry_new();
    if (!e.e) return Error(Code::kInternal, "archive_entry_new failed");
    archive_entry_copy_pathname(e.e, name.c_str());
    archive_entry_set_perm(e.e, st.st_mode & 07777);
    archive_entry_set_uid(e.e, st.st_uid);
    archive_entry_set_gid(e.e, st.st_gid);
    int64_t mtime = st.st_mtim.tv_sec;
    if (epoch_ && mtime > *epoch_) mtime = *epoch_;
    // Whole seconds, no atime/ctime: as Docker writes them, and reproducible.
    archive_entry_set_mtime(e.e, mtime, 0);
    return core::Ok();
  }

  Status Finish(Entry& e, const std::string& name, const Xattrs& xattrs, int data_fd,
                int64_t size) {
    for (const Xattr& x : xattrs) {
      archive_entry_xattr_add_entry(e.e, x.name.c_str(), x.value.data(), x.value.size());
    }
    int rc = archive_write_header(a_, e.e);
    if (rc != ARCHIVE_OK) return ArchiveError("write tar header for " + name);
    int64_t left = size;
    while (left > 0) {
      ssize_t n = ::read(data_fd, buf_.data(),
                         static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(buf_.size()))));
      if (n < 0) {
        if (errno == EINTR) continue;
        return core::SysError("read " + name);
      }
      if (n == 0) break;  // the file shrank: libarchive pads the entry with zeros
      if (archive_write_data(a_, buf_.data(), static_cast<size_t>(n)) != n) {
        return ArchiveError("write tar data for " + name);
      }
      left -= n;
    }
    if (archive_write_finish_entry(a_) != ARCHIVE_OK) return ArchiveError("finish tar entry " + name);
    return core::Ok();
  }

  internal::Utf8Locale locale_;  // first: active while a_ lives
  std::optional<int64_t> epoch_;
  std::unique_ptr<internal::CompressSink> sink_;
  archive* a_ = nullptr;
  std::optional<Error> sink_error_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first name of each multi-link inode
  std::vector<char> buf_;
};

// One directory child, stat'ed, with the name it gets in the tar.
struct Child {
  std::string name;       // on disk
  std::string emit_name;  // in the tar (differs for overlay whiteouts)
  struct stat st;
  bool whiteout = false;  // emit a whiteout for `name`
};

bool ByEmitName(const Child& a, const Child& b) { return a.emit_name < b.emit_name; }

Result<std::vector<Child>> ReadChildren(int dirfd, const std::string& path, DirKind kind) {
  XB_ASSIGN(std::vector<std::string> names, internal::ListDir(dirfd, path));
  std::vector<Child> out;
  out.reserve(names.size());
  for (std::string& n : names) {
    Child c;
    if (::fstatat(dirfd, n.c_str(), &c.st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed meanwhile
      return core::SysError("stat " + path + "/" + n);
    }
    c.whiteout = kind == DirKind::kOverlayUpper && IsOverlayWhiteout(c.st);
    c.emit_name = c.whiteout ? std::string(kWhiteoutPrefix) + n : n;
    c.name = std::move(n);
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), ByEmitName);
  return out;
}

struct Walk {
  TarWriter& w;
  DirKind kind;

  // Writes one node (and, for a directory, its whole subtree).
  Status Node(int dirfd, const std::string& dir_path, const std::string& prefix, const Child& c) {
    std::string path = dir_path + "/" + c.name;
    std::string name = prefix + c.emit_name;
    if (c.whiteout) return w.AddMarker(name, c.st, 0600);
    XB_ASSIGN(Xattrs xattrs, ReadXattrs(path, kind));
    XB_TRY(w.AddNode(name, dirfd, c.name, path, c.st, xattrs));
    if (!S_ISDIR(c.st.st_mode)) return core::Ok();
    if (kind == DirKind::kOverlayUpper && IsOpaqueDir(path)) {
      XB_TRY(w.AddMarker(name + "/" + std::string(kOpaqueMarker), c.st, c.st.st_mode & 0777));
    }
    XB_ASSIGN(UniqueFd sub, OpenDirAt(dirfd, c.name, path));
    return Tree(sub.get(), path, name + "/");
  }

  // Writes every child of the directory dirfd (full path dir_path), names prefixed by prefix.
  Status Tree(int dirfd, const std::string& dir_path, const std::string& prefix) {
    XB_ASSIGN(std::vector<Child> children, ReadChildren(dirfd, dir_path, kind));
    for (const Child& c : children) XB_TRY(Node(dirfd, dir_path, prefix, c));
    return core::Ok();
  }
};

// ---- diff ----

bool SameMeta(const struct stat& a, const struct stat& b) {
  if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT)) return false;
  if (a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid) return false;
  if ((S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) && a.st_rdev != b.st_rdev) return false;
  if (S_ISDIR(a.st_mode)) return true;  // a dir's mtime moves with its children; not compared
  return a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
         a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

Result<bool> SameContent(int dir_a, int dir_b, const std::string& name, const std::string& path) {
  int fa = ::openat(dir_a, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fa < 0) return core::SysError("open " + path);
  UniqueFd a(fa);
  int fb = ::openat(dir_b, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fb < 0) return core::SysError("open " + path);
  UniqueFd b(fb);
  std::vector<char> ba(64 * 1024), bb(64 * 1024);
  for (;;) {
    ssize_t na = ::read(a.get(), ba.data(), ba.size());
    if (na < 0) return core::SysError("read " + path);
    size_t got = 0;
    while (got < static_cast<size_t>(na)) {
      ssize_t nb = ::read(b.get(), bb.data() + got, static_cast<size_t>(na) - got);
      if (nb < 0) return core::SysError("read " + path);
      if (nb == 0) return false;
      got += static_cast<size_t>(nb);
    }
    if (std::memcmp(ba.data(), bb.data(), got) != 0) return false;
    if (na == 0) {
      char c;
      return ::read(b.get(), &c, 1) == 0;
    }
  }
}

struct Diff {
  TarWriter& w;
  Walk plain{w, DirKind::kPlain};

  // Ancestors of the current directory not yet written: written before the first entry below
  // them, so the layer carries the parents of every change.
  struct Pending {
    std::string name;  // tar name, without the trailing '/'
    int dirfd;         // the parent's fd in upper
    std::string base;
    std::string path;
    struct stat st;
    bool written;
  };
  std::vector<Pending> pending;

  Status FlushParents() {
    for (Pending& p : pending) {
      if (p.written) continue;
      XB_ASSIGN(Xattrs xattrs, ReadXattrs(p.path, DirKind::kPlain));
      XB_TRY(w.AddNode(p.name, p.dirfd, p.base, p.path, p.st, xattrs));
      p.written = true;
    }
    return core::Ok();
  }

  Status Dir(int low, const std::string& low_path, int up, const std::string& up_path,
             const struct stat& up_st, const std::string& prefix) {
    XB_ASSIGN(std::vector<Child> ups, ReadChildren(up, up_path, DirKind::kPlain));
    XB_ASSIGN(std::vector<Child> lows, ReadChildren(low, low_path, DirKind::kPlain));
    std::map<std::string, const Child*> low_by_name;
    for (const Child& c : lows) low_by_name.emplace(c.name, &c);
    std::set<std::string_view> up_names;
    for (const Child& c : ups) up_names.insert(c.name);
    std::vector<Child> items = ups;
    for (const Child& c : lows) {
      if (up_names.count(c.name)) continue;
      Child wo = c;
      wo.whiteout = true;
      wo.emit_name = std::string(kWhiteoutPrefix) + c.name;
      items.push_back(std::move(wo));
    }
    std::sort(items.begin(), items.end(), ByEmitName);
    for (const Child& c : items) {
      std::string name = prefix + c.emit_name;
      if (c.whiteout) {
        XB_TRY(FlushParents());
        XB_TRY(w.AddMarker(name, up_st, 0));
        continue;
      }
      std::string up_child = up_path + "/" + c.name;
      std::string low_child = low_path + "/" + c.name;
      auto it = low_by_name.find(c.name);
      const struct stat* ls = it == low_by_name.end() ? nullptr : &it->second->st;
      bool same_type = ls && (ls->st_mode & S_IFMT) == (c.st.st_mode & S_IFMT);
      if (!same_type) {  // added, or replaced by another type: the whole subtree
        XB_TRY(FlushParents());
        XB_TRY(plain.Node(up, up_path, prefix, c));
        continue;
      }
      XB_ASSIGN(bool changed, Changed(low, up, c, *ls, low_child, up_child));
      if (!S_ISDIR(c.st.st_mode)) {
        if (changed) {
          XB_TRY(FlushParents());
          XB_ASSIGN(Xattrs xattrs, ReadXattrs(up_child, DirKind::kPlain));
          XB_TRY(w.AddNode(name, up, c.name, up_child, c.st, xattrs));
        }
        continue;
      }
      XB_ASSIGN(UniqueFd sub_up, OpenDirAt(up, c.name, up_child));
      XB_ASSIGN(UniqueFd sub_low, OpenDirAt(low, c.name, low_child));
      pending.push_back({name, up, c.name, up_child, c.st, false});
      if (changed) XB_TRY(FlushParents());
      Status s = Dir(sub_low.get(), low_child, sub_up.get(), up_child, c.st, name + "/");
      pending.pop_back();
      XB_TRY(std::move(s));
    }
    return core::Ok();
  }

  Result<bool> Changed(int low, int up, const Child& c, const struct stat& ls,
                       const std::string& low_path, const std::string& up_path) {
    if (!SameMeta(ls, c.st)) return true;
    XB_ASSIGN(Xattrs xl, ReadXattrs(low_path, DirKind::kPlain));
    XB_ASSIGN(Xattrs xu, ReadXattrs(up_path, DirKind::kPlain));
    if (xl != xu) return true;
    if (S_ISLNK(c.st.st_mode)) {
      XB_ASSIGN(std::string tl, ReadLinkAt(low, c.name, low_path));
      XB_ASSIGN(std::string tu, ReadLinkAt(up, c.name, up_path));
      return tl != tu;
    }
    // Equal size and mtime. Only when both mtimes lack a sub-second part (a filesystem with
    // coarse timestamps, or a tree restored from a tar) may the content still differ.
    if (S_ISREG(c.st.st_mode) && ls.st_mtim.tv_nsec == 0 && c.st.st_mtim.tv_nsec == 0) {
      XB_ASSIGN(bool same, SameContent(low, up, c.name, up_path));
      return !same;
    }
    return false;
  }
};

Result<UniqueFd> OpenRoot(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::SysError("open " + dir);
  return UniqueFd(fd);
}

}  // namespace

Result<LayerResult> CreateLayer(const std::string& dir, DirKind kind, int out_fd,
                                const LayerOptions& opts) {
  std::string ctx = "create layer from " + dir;
  XB_ASSIGN_CTX(UniqueFd root, OpenRoot(dir), ctx);
  XB_ASSIGN_CTX(auto w, TarWriter::New(out_fd, opts), ctx);
  Walk walk{*w, kind};
  XB_TRY_CTX(walk.Tree(root.get(), dir, ""), ctx);
  return w->Close().Context(ctx);
}

Result<LayerResult> CreateDiffLayer(const std::string& lower, const std::string& upper,
                                    int out_fd, const LayerOptions& opts) {
  std::string ctx = "create diff layer " + lower + " -> " + upper;
  XB_ASSIGN_CTX(UniqueFd low, OpenRoot(lower), ctx);
  XB_ASSIGN_CTX(UniqueFd up, OpenRoot(upper), ctx);
  struct stat up_st;
  if (::fstat(up.get(), &up_st) != 0) return core::SysError("stat " + upper).Context(ctx);
  XB_ASSIGN_CTX(auto w, TarWriter::New(out_fd, opts), ctx);
  Diff diff{*w, Walk{*w, DirKind::kPlain}, {}};
  XB_TRY_CTX(diff.Dir(low.get(), lower, up.get(), upper, up_st, ""), ctx);
  return w->Close().Context(ctx);
}

}  // namespace xbuild::image
