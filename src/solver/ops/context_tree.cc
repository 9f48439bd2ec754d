// The walk reads the context through directory fds (fstatat/openat on one name at a time,
// never following it), and resolves a named path one component at a time so that every symlink
// it meets is seen and kept; files are opened with core::OpenInRoot. Nothing outside the
// context is read, whatever its symlinks say.
#include "solver/ops/context_tree.h"

#include <endian.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <unordered_set>
#include <utility>

#include "core/fd.h"
#include "core/fs.h"
#include "core/path.h"
#include "solver/ops/copy.h"
#include "solver/ops/glob.h"
#include "solver/ops/tree.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using core::UniqueFd;

namespace {

constexpr int kMaxLinks = 40;  // symlinks followed in one path, as the kernel's ELOOP limit
constexpr size_t kBufferSize = 128 * 1024;

std::string Join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

std::string ParentOf(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? "" : rel.substr(0, slash);
}

// Walk order: paths compared bytewise with '/' below every other byte, which is a depth-first
// walk with each directory's names sorted ("a", "a/x", "a-b").
bool WalkLess(const ContextEntry& a, const ContextEntry& b) {
  size_t n = std::min(a.path.size(), b.path.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = static_cast<unsigned char>(a.path[i]),
                  y = static_cast<unsigned char>(b.path[i]);
    if (x == y) continue;
    if (x == '/') return true;
    if (y == '/') return false;
    return x < y;
  }
  return a.path.size() < b.path.size();
}

Result<std::string> ReadLink(int dirfd, const std::string& name, const std::string& shown) {
  std::string target(PATH_MAX + 1, '\0');
  ssize_t len = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
  if (len < 0) return core::SysError("readlink " + shown);
  if (static_cast<size_t>(len) == target.size())
    return Error(Code::kInvalidArgument, "symlink target too long: " + shown);
  target.resize(static_cast<size_t>(len));
  return target;
}

// The kernel stamps ctime from this clock; a file whose ctime is older than the tick in which
// it was read cannot change again without its ctime changing.
int64_t CoarseNowNs() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Error Changed(const std::string& path) {
  return Error(Code::kAborted, "the build context changed while the build was reading it (" + path +
                                   "): build again");
}

// Lists the selection (see context_tree.h) in walk order, with lstat data and link targets.
class Walker {
 public:
  Walker(int root, const ContextSelection& sel) : root_(root), sel_(sel) {}

  Result<std::vector<ContextEntry>> Run() {
    bool all = sel_.includes.empty();
    std::vector<std::string> paths;
    for (const std::string& inc : sel_.includes) {
      std::string clean = core::CleanPath("/" + inc);
      if (clean == "/") {
        all = true;
        break;
      }
      paths.push_back(clean.substr(1));
    }
    if (all) {
      XB_TRY(Tree("", root_));
    } else {
      for (const std::string& p : paths) {
        if (!HasWildcard(p)) {
          XB_TRY(Select(p));
          continue;
        }
        XB_ASSIGN(std::vector<WildcardMatch> matches, ResolveWildcards(root_, p));
        for (const WildcardMatch& m : matches) XB_TRY(Select(m.path));
      }
    }
    // Several paths may select overlapping trees, in any order.
    if (!std::is_sorted(out_.begin(), out_.end(), WalkLess))
      std::stable_sort(out_.begin(), out_.end(), WalkLess);
    out_.erase(
        std::unique(out_.begin(), out_.end(),
                    [](const ContextEntry& a, const ContextEntry& b) { return a.path == b.path; }),
        out_.end());
    return std::move(out_);
  }

 private:
  // Left out of the context: .dockerignore excludes it, and for a directory no exception
  // re-includes anything below it (moby's walker descends into such a directory).
  bool Ignored(const std::string& rel, bool is_dir) const {
    if (sel_.ignore.empty() || !sel_.ignore.Excluded(rel)) return false;
    return !(is_dir && sel_.ignore.MayHaveExceptionsUnder(rel));
  }

  void Push(const std::string& rel, const struct stat& st, std::string link = "") {
    ContextEntry e;
    e.path = rel;
    e.stat = FileStat::Of(st);
    e.nlink = st.st_nlink;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) e.rdev = st.st_rdev;
    e.link = std::move(link);
    out_.push_back(std::move(e));
  }

  static void PushComponents(std::vector<std::string>& todo, std::string_view path) {
    std::vector<std::string> comps;
    size_t start = 0;
    while (start <= path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string_view::npos) slash = path.size();
      std::string_view c = path.substr(start, slash - start);
      if (!c.empty() && c != ".") comps.emplace_back(c);
      start = slash + 1;
    }
    todo.insert(todo.end(), comps.rbegin(), comps.rend());
  }

  // The directory `rel` (a resolved path: real directories only) as an O_PATH fd.
  Result<UniqueFd> OpenResolved(const std::string& rel) {
    if (rel.empty()) {
      int fd = ::fcntl(root_, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return core::SysError("dup context fd");
      return UniqueFd(fd);
    }
    core::OpenInRootOptions o;
    o.flags = O_PATH | O_DIRECTORY;
    o.follow_last = false;
    return core::OpenInRoot(root_, rel, o);
  }

  // Resolves `path` one component at a time, as COPY's open does (symlinks followed inside the
  // context), keeping every directory passed and symlink met, then what it ends at.
  Status Select(const std::string& path) {
    std::vector<std::string> todo;
    PushComponents(todo, path);
    std::string cur;  // resolved so far ("" = the root)
    XB_ASSIGN(UniqueFd curfd, OpenResolved(cur));
    int links = 0;
    while (!todo.empty()) {
      std::string c = std::move(todo.back());
      todo.pop_back();
      if (c == "..") {
        cur = ParentOf(cur);
        XB_ASSIGN(curfd, OpenResolved(cur));
        continue;
      }
      std::string rel = Join(cur, c);
      struct stat st;
      if (::fstatat(curfd.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return core::Ok();  // COPY reports it
        return core::SysError("lstat " + rel);
      }
      bool is_dir = S_ISDIR(st.st_mode);
      if (S_ISSOCK(st.st_mode) || Ignored(rel, is_dir)) return core::Ok();
      if (S_ISLNK(st.st_mode)) {
        if (++links > kMaxLinks) return core::Ok();  // ELOOP: COPY reports it
        XB_ASSIGN(std::string target, ReadLink(curfd.get(), c, rel));
        Push(rel, st, target);
        if (target.starts_with('/')) {
          cur.clear();
          XB_ASSIGN(curfd, OpenResolved(cur));
        }
        PushComponents(todo, target);
        continue;
      }
      if (todo.empty()) {
        Push(rel, st);
        if (!is_dir) return core::Ok();
        int fd = ::openat(curfd.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return core::SysError("open " + rel);
        UniqueFd dir(fd);
        return Tree(rel, dir.get());
      }
      if (!is_dir) return core::Ok();  // ENOTDIR: COPY reports it
      if (passed_.insert(rel).second) Push(rel, st);
      int fd = ::openat(curfd.get(), c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return core::SysError("open " + rel);
      curfd = UniqueFd(fd);
      cur = std::move(rel);
    }
    // It resolved to a directory through ".." (or a symlink to one): the whole of it.
    if (cur.empty()) return Tree("", root_);
    int fd = ::openat(curfd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return core::SysError("open " + cur);
    UniqueFd dir(fd);
    return Tree(cur, dir.get());
  }

  // Everything below the directory `rel` open at dirfd, not following symlinks.
  Status Tree(const std::string& rel, int dirfd) {
    XB_ASSIGN(std::vector<std::string> names, ListDir(dirfd, rel.empty() ? "." : rel));
    for (const std::string& name : names) {
      std::string child = Join(rel, name);
      struct stat st;
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed since the listing
        return core::SysError("lstat " + child);
      }
      bool is_dir = S_ISDIR(st.st_mode);
      if (S_ISSOCK(st.st_mode) || Ignored(child, is_dir)) continue;
      if (S_ISLNK(st.st_mode)) {
        XB_ASSIGN(std::string target, ReadLink(dirfd, name, child));
        Push(child, st, std::move(target));
        continue;
      }
      Push(child, st);
      if (!is_dir) continue;
      int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return core::SysError("open " + child);
      UniqueFd sub(fd);
      XB_TRY(Tree(child, sub.get()));
    }
    return core::Ok();
  }

  int root_;
  const ContextSelection& sel_;
  std::vector<ContextEntry> out_;
  std::unordered_set<std::string> passed_;  // directories Select went through, already listed
};

// Hashes one regular file of the manifest and, when its stat is settled, records the digest.
Status HashFile(int root, ContextEntry& e, ChecksumCache& cache, std::vector<char>& buf,
                ChecksumStats& stats) {
  int64_t tick = CoarseNowNs();
  core::OpenInRootOptions o;
  o.flags = O_RDONLY;
  o.follow_last = false;
  auto fd = core::OpenInRoot(root, e.path, o);
  if (!fd.ok()) return Changed(e.path);
  struct stat before, after;
  if (::fstat(fd->get(), &before) != 0) return core::SysError("stat " + e.path);
  if (!S_ISREG(before.st_mode)) return Changed(e.path);
  core::Sha256 h;
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd->get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::SysError("read " + e.path);
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (::fstat(fd->get(), &after) != 0) return core::SysError("stat " + e.path);
  e.stat = FileStat::Of(before);
  e.nlink = before.st_nlink;
  e.digest = h.Finish();
  ++stats.hashed;
  stats.bytes_hashed += total;
  // Kept only when nothing moved during the read and no later write can hide behind the same
  // ctime: otherwise the next build reads the file again.
  if (FileStat::Of(after) == e.stat && total == e.stat.size && e.stat.ctime_ns < tick) {
    cache.Record(e.path, e.stat, e.digest);
  } else {
    cache.Forget(e.path);
  }
  return core::Ok();
}

template <typename T>
void PutRaw(core::Sha256& h, T v) {
  h.Update(&v, sizeof v);
}

core::Digest KeyOf(const std::vector<ContextEntry>& entries) {
  core::Sha256 h;
  h.Update("xbuild-context-v1\n");
  for (const ContextEntry& e : entries) {
    h.Update(e.path.data(), e.path.size() + 1);  // with its NUL: paths never hold one
    uint32_t mode = e.stat.mode & (S_IFMT | 07777);
    PutRaw(h, static_cast<uint32_t>(htole32(mode)));
    switch (mode & S_IFMT) {
      case S_IFREG:
        PutRaw(h, static_cast<uint64_t>(htole64(e.stat.size)));
        h.Update(e.digest.bytes().data(), core::Digest::kSize);
        break;
      case S_IFLNK:
        h.Update(e.link.data(), e.link.size() + 1);
        break;
      case S_IFCHR:
      case S_IFBLK:
        PutRaw(h, static_cast<uint64_t>(htole64(e.rdev)));
        break;
      default:
        break;
    }
  }
  return h.Finish();
}

// Fills an empty directory from a manifest (see TransferContext).
class Transfer {
 public:
  Transfer(int src, int dst, const ContextManifest& m, const std::atomic<bool>* cancel)
      : src_(src), dst_(dst), m_(m), cancel_(cancel), buf_(kBufferSize) {}

  Status Run() {
    for (size_t i = 0; i < m_.entries.size(); ++i) {
      if (cancel_ && (i % 256) == 0 && cancel_->load()) return Error(Code::kCancelled, "cancelled");
      const ContextEntry& e = m_.entries[i];
      std::string parent = ParentOf(e.path);
      std::string name = e.path.substr(parent.empty() ? 0 : parent.size() + 1);
      // Walk order puts every directory before its entries, so the parent is on the stack.
      while (!open_.empty() && open_.back().first != parent) open_.pop_back();
      if (!parent.empty() && open_.empty())
        return Error(Code::kInternal, "context manifest out of order at " + e.path);
      int dir = open_.empty() ? dst_ : open_.back().second.get();
      XB_TRY(Entry(e, dir, name));
    }
    open_.clear();
    return FinishDirs();
  }

 private:
  // The source entry, opened without following it, and its fresh stat; Changed when it is gone
  // or no longer of the manifest's type and mode.
  Result<UniqueFd> OpenSource(const ContextEntry& e, int flags, struct stat& st) {
    core::OpenInRootOptions o;
    o.flags = flags;
    o.follow_last = false;
    auto fd = core::OpenInRoot(src_, e.path, o);
    if (!fd.ok()) return Changed(e.path);
    if (::fstat(fd->get(), &st) != 0) return core::SysError("stat " + e.path);
    if ((st.st_mode & (S_IFMT | 07777)) != (e.stat.mode & (S_IFMT | 07777))) return Changed(e.path);
    return std::move(*fd);
  }

  Status Chown(int dir, const std::string& name, const std::string& path) {
    if (CanChown() && ::fchownat(dir, name.c_str(), 0, 0, AT_SYMLINK_NOFOLLOW) != 0)
      return core::SysError("chown " + path);
    return core::Ok();
  }

  Status Entry(const ContextEntry& e, int dir, const std::string& name) {
    switch (e.stat.mode & S_IFMT) {
      case S_IFDIR:
        return Dir(e, dir, name);
      case S_IFREG:
        return File(e, dir, name);
      case S_IFLNK:
        return Symlink(e, dir, name);
      default:
        return Node(e, dir, name);
    }
  }

  // Mode and times wait for FinishDirs: creating the entries below would change them.
  Status Dir(const ContextEntry& e, int dir, const std::string& name) {
    struct stat st;
    XB_ASSIGN(UniqueFd in, OpenSource(e, O_RDONLY | O_DIRECTORY, st));
    if (::mkdirat(dir, name.c_str(), 0700) != 0) return core::SysError("mkdir " + e.path);
    int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return core::SysError("open " + e.path);
    UniqueFd out(fd);
    XB_TRY(Chown(dir, name, e.path));
    CopyXattrs(in.get(), out.get());
    dirs_.push_back({e.path, st.st_mode & 07777, {st.st_atim, st.st_mtim}});
    open_.emplace_back(e.path, std::move(out));
    return core::Ok();
  }

  Status File(const ContextEntry& e, int dir, const std::string& name) {
    std::pair<uint64_t, uint64_t> id{e.stat.dev, e.stat.ino};
    if (e.nlink > 1) {
      // A later name of a file already copied: link to the copy, as the context has it.
      auto it = links_.find(id);
      if (it != links_.end() && it->second.second == e.digest &&
          ::linkat(dst_, it->second.first.c_str(), dir, name.c_str(), 0) == 0) {
        return core::Ok();
      }
    }
    struct stat st;
    XB_ASSIGN(UniqueFd in, OpenSource(e, O_RDONLY, st));
    int fd =
        ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return core::SysError("create " + e.path);
    UniqueFd out(fd);
    core::Sha256 h;
    uint64_t total = 0;
    for (;;) {
      ssize_t n = ::read(in.get(), buf_.data(), buf_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return core::SysError("read " + e.path);
      }
      if (n == 0) break;
      h.Update(buf_.data(), static_cast<size_t>(n));
      XB_TRY_CTX(core::WriteAll(out.get(), std::string_view(buf_.data(), static_cast<size_t>(n))),
                 e.path);
      total += static_cast<uint64_t>(n);
    }
    // What was written is what was read: it must be what the key was computed from.
    if (total != e.stat.size || h.Finish() != e.digest) return Changed(e.path);
    if (CanChown() && ::fchown(out.get(), 0, 0) != 0) return core::SysError("chown " + e.path);
    if (::fchmod(out.get(), st.st_mode & 07777) != 0) return core::SysError("chmod " + e.path);
    CopyXattrs(in.get(), out.get());
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::futimens(out.get(), ts) != 0) return core::SysError("set times " + e.path);
    if (e.nlink > 1) links_.emplace(id, std::make_pair(e.path, e.digest));
    return core::Ok();
  }

  Status Symlink(const ContextEntry& e, int dir, const std::string& name) {
    struct stat st;
    XB_ASSIGN(UniqueFd in, OpenSource(e, O_PATH, st));
    XB_ASSIGN(std::string target, ReadLink(in.get(), "", e.path));
    if (target != e.link) return Changed(e.path);
    if (::symlinkat(target.c_str(), dir, name.c_str()) != 0)
      return core::SysError("symlink " + e.path);
    XB_TRY(Chown(dir, name, e.path));
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(dir, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
      return core::SysError("set times " + e.path);
    return core::Ok();
  }

  Status Node(const ContextEntry& e, int dir, const std::string& name) {
    struct stat st;
    XB_ASSIGN(UniqueFd in, OpenSource(e, O_PATH, st));
    bool device = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
    if (device && st.st_rdev != e.rdev) return Changed(e.path);
    if (::mknodat(dir, name.c_str(), (st.st_mode & S_IFMT) | 0600, device ? st.st_rdev : 0) != 0) {
      // Unprivileged builds cannot make devices; skipped, as the file actions do.
      if (errno == EPERM && device && !CanChown()) return core::Ok();
      return core::SysError("mknod " + e.path);
    }
    XB_TRY(Chown(dir, name, e.path));
    if (::fchmodat(dir, name.c_str(), st.st_mode & 07777, 0) != 0)
      return core::SysError("chmod " + e.path);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(dir, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
      return core::SysError("set times " + e.path);
    return core::Ok();
  }

  // Innermost first, so that a directory's times are set after the last change under it.
  Status FinishDirs() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      core::OpenInRootOptions o;
      o.flags = O_RDONLY | O_DIRECTORY;
      o.follow_last = false;
      XB_ASSIGN(UniqueFd d, core::OpenInRoot(dst_, it->path, o));
      if (::fchmod(d.get(), it->perm) != 0) return core::SysError("chmod " + it->path);
      if (::futimens(d.get(), it->ts) != 0) return core::SysError("set times " + it->path);
    }
    return core::Ok();
  }

  struct DirMeta {
    std::string path;
    mode_t perm;
    struct timespec ts[2];
  };

  int src_, dst_;
  const ContextManifest& m_;
  const std::atomic<bool>* cancel_;
  std::vector<char> buf_;
  std::vector<std::pair<std::string, UniqueFd>> open_;  // target directories on the current path
  std::vector<DirMeta> dirs_;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<std::string, core::Digest>>
      links_;  // inode -> first copy
};

Result<UniqueFd> OpenRoot(const std::string& dir, int flags) {
  int fd = ::open(dir.c_str(), flags | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::SysError("open " + dir);
  return UniqueFd(fd);
}

}  // namespace

Result<ContextManifest> ChecksumContext(const std::string& dir, const ContextSelection& sel,
                                        ChecksumCache& cache, ChecksumStats* stats) {
  XB_ASSIGN(UniqueFd root, OpenRoot(dir, O_PATH));
  Walker w(root.get(), sel);
  ContextManifest m;
  XB_ASSIGN(m.entries, w.Run());
  ChecksumStats local;
  ChecksumStats& s = stats ? *stats : local;
  s = ChecksumStats{};
  s.entries = m.entries.size();
  std::vector<char> buf;
  for (ContextEntry& e : m.entries) {
    if (!S_ISREG(e.stat.mode)) continue;
    ++s.files;
    if (auto d = cache.Lookup(e.path, e.stat)) {
      e.digest = *d;
      continue;
    }
    if (buf.empty()) buf.resize(kBufferSize);
    XB_TRY(HashFile(root.get(), e, cache, buf, s));
  }
  m.key = KeyOf(m.entries);
  return m;
}

Status TransferContext(const std::string& dir, const ContextManifest& m, const std::string& target,
                       const std::atomic<bool>* cancel) {
  XB_ASSIGN(UniqueFd src, OpenRoot(dir, O_PATH));
  XB_ASSIGN(UniqueFd dst, OpenRoot(target, O_RDONLY));
  Transfer t(src.get(), dst.get(), m, cancel);
  return t.Run();
}

}  // namespace xbuild::solver::ops
