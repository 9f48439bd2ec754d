// COPY/ADD. Sources are read through O_PATH fds that never follow an entry's own symlink
// (except a symlink named as the source, which is followed inside its root); each one is
// reopened for reading through /proc/self/fd, which names the same inode without a second
// path lookup. Destinations are made with *at() calls on parents resolved in the target root.
#include "solver/ops/copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/fd.h"
#include "core/fs.h"
#include "core/path.h"
#include "core/strings.h"
#include "frontend/dockerignore.h"
#include "solver/ops/chmod.h"
#include "solver/ops/glob.h"
#include "solver/ops/unpack.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using core::UniqueFd;

namespace {

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// An entry of a source tree: an O_PATH fd on the entry itself and its lstat.
struct Node {
  UniqueFd fd;
  struct stat st {};
};

Result<Node> OpenNode(int dirfd, const std::string& name, const std::string& path) {
  int fd = ::openat(dirfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return core::SysError("lstat " + path);
  Node n{UniqueFd(fd), {}};
  if (::fstat(n.fd.get(), &n.st) != 0) return core::SysError("lstat " + path);
  return n;
}

Result<UniqueFd> Reopen(const Node& n, int flags, const std::string& path) {
  int fd = ::open(ProcFd(n.fd.get()).c_str(), flags | O_CLOEXEC);
  if (fd < 0) return core::SysError("open " + path);
  return UniqueFd(fd);
}

// copy_file_range where the filesystems allow it (reflinks, server-side copies), else a plain
// read/write loop.
Status CopyData(int in, int out, const std::string& path) {
  for (;;) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
    if (n == 0) return core::Ok();
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
        errno == EBADF)
      break;
    return core::SysError("copy " + path);
  }
  std::vector<char> buf(128 * 1024);
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::SysError("read " + path);
    }
    if (n == 0) return core::Ok();
    XB_TRY_CTX(core::WriteAll(out, std::string_view(buf.data(), static_cast<size_t>(n))), path);
  }
}

class Copier {
 public:
  Copier(const CopyAction& a, const CopyRoots& roots, std::optional<Owner> owner)
      : a_(a), roots_(roots), owner_(owner) {}

  Result<size_t> Run() {
    if (a_.src.find("://") != std::string::npos) {
      // ADD <url>: the frontend lowers it to an http or git source; this op reads only trees.
      return Error(Code::kInvalidArgument, "a URL source must be fetched by its own source op");
    }
    if (!a_.chmod.empty()) {
      XB_ASSIGN(ChmodSpec spec, ChmodSpec::Parse(a_.chmod));
      chmod_ = std::move(spec);
    }
    if (!a_.exclude_patterns.empty()) XB_TRY(CompileExcludes());
    dest_ = core::CleanPath("/" + a_.dest);
    dest_is_dir_ = a_.dest.ends_with('/') || dest_ == "/";
    XB_ASSIGN(std::vector<Source> sources, Sources());
    for (const Source& s : sources) XB_TRY(CopySource(s));
    return matched_;
  }

 private:
  struct Source {
    std::string path;  // in the source root, no leading '/' ("." = the root)
    std::string keep;  // --parents: the path it gets under dest
  };

  Status CompileExcludes() {
    // .dockerignore syntax (moby/patternmatcher, as BuildKit's --exclude). One pattern a line;
    // a leading '#' is escaped so that it is not read as a comment.
    std::string text;
    for (const std::string& p : a_.exclude_patterns)
      text += (p.starts_with('#') ? "\\" : "") + p + "\n";
    XB_ASSIGN_CTX(excludes_, frontend::DockerIgnore::Parse(text), "--exclude");
    return core::Ok();
  }

  // An excluded directory is still copied when an exception ("!x") may re-include something
  // below it; its excluded children are skipped one by one.
  bool Excluded(const std::string& rel, bool is_dir) const {
    if (excludes_.empty() || !excludes_.Excluded(rel)) return false;
    return !(is_dir && excludes_.MayHaveExceptionsUnder(rel));
  }

  // COPY --parents: every match of src (wildcards and `**`), each keeping its path below the
  // "/./" pivot (or from the root when there is none).
  Result<std::vector<Source>> ParentsSources() {
    std::string src = a_.src;
    while (src.starts_with("./")) src = src.substr(2);  // a leading ./ is the root, not a pivot
    size_t piv = src.find("/./");
    std::string pivot = piv == std::string::npos ? "" : core::CleanPath("/" + src.substr(0, piv)).substr(1);
    std::string clean = core::CleanPath("/" + a_.src);
    std::string rel = clean == "/" ? "." : clean.substr(1);
    std::vector<std::string> paths;
    if (rel.find("**") != std::string::npos) {
      // `**` (any number of directories): matched as .dockerignore matches, over a walk of the
      // tree below the part with no wildcard; a matched directory is copied whole.
      XB_ASSIGN_CTX(frontend::DockerIgnore m, frontend::DockerIgnore::Parse(rel + "\n"), "--parents " + Quote(a_.src));
      std::string base;
      for (auto& part : core::Split(rel, '/')) {
        if (HasWildcard(part) || part.find("**") != std::string::npos) break;
        base = base.empty() ? part : base + "/" + part;
      }
      if (roots_.src >= 0) {
        auto dir = OpenDir(roots_.src, base.empty() ? "." : base);
        if (dir.ok()) XB_TRY(Walk(dir->get(), base, m, paths));
      }
    } else if (a_.allow_wildcard && HasWildcard(rel)) {
      if (roots_.src >= 0) {
        XB_ASSIGN(std::vector<WildcardMatch> matches, ResolveWildcards(roots_.src, rel));
        for (auto& mt : matches) paths.push_back(mt.path);
      }
    } else {
      paths.push_back(rel);
    }
    matched_ = paths.size();
    if (paths.empty() && !a_.allow_empty_wildcard) {
      return Error(Code::kNotFound, "no source files were specified: nothing matches " + Quote(clean));
    }
    std::vector<Source> out;
    for (auto& p : paths) {
      std::string keep = p;
      if (!pivot.empty()) {
        if (p == pivot) {
          keep = ".";
        } else if (p.starts_with(pivot + "/")) {
          keep = p.substr(pivot.size() + 1);
        }
      }
      if (!Excluded(p, false)) out.push_back({p, keep});
    }
    return out;
  }

  // Entries below dir (path `rel`) that m matches, in sorted walk order; a match is not
  // descended into.
  Status Walk(int dir, const std::string& rel, const frontend::DockerIgnore& m, std::vector<std::string>& out) {
    XB_ASSIGN(UniqueFd d, core::Open("/proc/self/fd/" + std::to_string(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    XB_ASSIGN(std::vector<std::string> names, ListDir(d.get(), rel));
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      std::string p = rel.empty() ? name : rel + "/" + name;
      XB_ASSIGN(Node n, OpenNode(d.get(), name, p));
      if (m.Excluded(p)) {
        out.push_back(p);
      } else if (S_ISDIR(n.st.st_mode)) {
        XB_TRY(Walk(n.fd.get(), p, m, out));
      }
    }
    return core::Ok();
  }

  Result<std::vector<Source>> Sources() {
    if (a_.parents) return ParentsSources();
    std::string clean = core::CleanPath("/" + a_.src);
    std::string rel = clean == "/" ? "." : clean.substr(1);
    bool wildcard = a_.allow_wildcard && HasWildcard(rel);
    matched_ = 1;
    if (!wildcard) return std::vector<Source>{{rel, ""}};
    std::vector<WildcardMatch> matches;
    if (roots_.src >= 0) {
      XB_ASSIGN(matches, ResolveWildcards(roots_.src, rel));
    }
    matched_ = matches.size();
    if (matches.empty() && !a_.allow_empty_wildcard) {
      return Error(Code::kNotFound,
                   "no source files were specified: nothing matches " + Quote(clean));
    }
    std::vector<Source> out;
    for (const WildcardMatch& m : matches) {
      if (!Excluded(m.rel, m.is_dir)) out.push_back({m.path, ""});
    }
    // Several matches: the destination is a directory, named so or not (BuildKit copies each
    // match into it; each archive of `ADD *.tar /dest` is extracted there).
    if (out.size() > 1) dest_is_dir_ = true;
    return out;
  }

  // Owner of the directories made on the way to dest: the --chown owner, else root.
  Owner MadeDirOwner() const { return owner_.value_or(Owner{}); }

  Result<UniqueFd> DestDir(const std::string& path) {
    if (a_.create_dest_path) return MakeDirs(roots_.dst, path, 0755, MadeDirOwner());
    return OpenDir(roots_.dst, path).Context("destination");
  }

  Status CopySource(const Source& s) {
    std::string shown = s.path == "." ? "/" : "/" + s.path;
    if (roots_.src < 0) return core::SysError("lstat " + shown, ENOENT);
    core::OpenInRootOptions o;
    o.flags = O_PATH;
    o.follow_last = a_.follow_symlinks;
    auto fd = core::OpenInRoot(roots_.src, s.path, o);
    if (!fd.ok())
      return core::SysError("lstat " + shown,
                            fd.error().sys_errno() ? fd.error().sys_errno() : EIO);
    Node n{std::move(*fd), {}};
    if (::fstat(n.fd.get(), &n.st) != 0) return core::SysError("lstat " + shown);

    if (a_.parents) {
      // The entry as itself, at dest/<keep>; the directories on the way are made.
      if (s.keep == "." && S_ISDIR(n.st.st_mode)) {
        XB_ASSIGN(UniqueFd src_dir, Reopen(n, O_RDONLY | O_DIRECTORY, shown));
        XB_ASSIGN(UniqueFd dir, DestDir(dest_));
        return CopyChildren(src_dir.get(), dir.get(), dest_, "");
      }
      std::string target = core::JoinPath(dest_, s.keep);
      auto [parent_path, name] = SplitLast(target);
      XB_ASSIGN(UniqueFd parent, DestDir(parent_path));
      return CopyEntry(n, parent.get(), name, target, "");
    }

    if (S_ISREG(n.st.st_mode) && a_.attempt_unpack) {
      XB_ASSIGN(UniqueFd in, Reopen(n, O_RDONLY, shown));
      UnpackOptions uo{owner_, a_.timestamp};
      XB_ASSIGN_CTX(bool unpacked, UnpackArchive(in.get(), roots_.dst, dest_, uo),
                    "unpack " + shown);
      if (unpacked) return core::Ok();
    }
    if (S_ISDIR(n.st.st_mode) && (a_.dir_contents_only || s.path == ".")) {
      // The contents go into dest; dest itself is made like any other parent and does not
      // take the source directory's metadata (BuildKit's copier does the same).
      XB_ASSIGN(UniqueFd src_dir, Reopen(n, O_RDONLY | O_DIRECTORY, shown));
      XB_ASSIGN(UniqueFd dir, DestDir(dest_));
      return CopyChildren(src_dir.get(), dir.get(), dest_, "");
    }
    // The entry itself: into dest when dest is a directory (named so, or one that exists,
    // possibly through a symlink resolved in the target), else as dest.
    bool into = dest_is_dir_ || OpenDir(roots_.dst, dest_).ok();
    std::string parent_path, name;
    if (into) {
      parent_path = dest_;
      name = core::Basename(s.path);
    } else {
      std::tie(parent_path, name) = SplitLast(dest_);
    }
    XB_ASSIGN(UniqueFd parent, DestDir(parent_path));
    return CopyEntry(n, parent.get(), name, core::JoinPath(parent_path, name), "");
  }

  // rel: the entry's path below the copied directory, for --exclude ("" = a named source).
  Status CopyEntry(const Node& n, int dst_dir, const std::string& name, const std::string& path,
                   const std::string& rel) {
    bool is_dir = S_ISDIR(n.st.st_mode);
    if (!rel.empty() && Excluded(rel, is_dir)) return core::Ok();
    if (is_dir) return CopyDir(n, dst_dir, name, path, rel);
    XB_TRY(ClearForFile(dst_dir, name, path));
    switch (n.st.st_mode & S_IFMT) {
      case S_IFREG:
        return CopyFile(n, dst_dir, name, path);
      case S_IFLNK:
        return CopySymlink(n, dst_dir, name, path);
      case S_IFCHR:
      case S_IFBLK:
      case S_IFIFO:
        return CopyNode(n, dst_dir, name, path);
      default:
        return core::Ok();  // sockets are not copied
    }
  }

  Status CopyDir(const Node& n, int dst_dir, const std::string& name, const std::string& path,
                 const std::string& rel) {
    XB_ASSIGN(UniqueFd src_dir, Reopen(n, O_RDONLY | O_DIRECTORY, path));
    struct stat old;
    if (::fstatat(dst_dir, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return core::SysError("stat " + path);
      if (::mkdirat(dst_dir, name.c_str(), 0700) != 0) return core::SysError("mkdir " + path);
    } else if (S_ISLNK(old.st_mode)) {
      // A symlink in the target where the source has a directory (bin -> usr/bin): merge into
      // what it points to inside the target, and leave that directory's metadata alone.
      auto target = OpenDir(roots_.dst, path);
      if (!target.ok()) {
        return Error(Code::kAlreadyExists,
                     "cannot copy a directory onto " + path + ", a symlink to a non-directory");
      }
      return CopyChildren(src_dir.get(), target->get(), path, rel);
    } else if (!S_ISDIR(old.st_mode)) {
      return Error(Code::kAlreadyExists, "cannot copy a directory onto non-directory " + path);
    }
    // An existing directory takes the source's metadata, as in BuildKit's copier.
    int fd = ::openat(dst_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return core::SysError("open " + path);
    UniqueFd dir(fd);
    XB_TRY(CopyChildren(src_dir.get(), dir.get(), path, rel));
    // After the content: creating entries changes the times, and a read-only mode could stop
    // an unprivileged copy from writing them.
    XB_TRY(Chown(n.st, dst_dir, name, path));
    if (::fchmod(dir.get(), Mode(n.st)) != 0) return core::SysError("chmod " + path);
    CopyXattrs(src_dir.get(), dir.get());
    return SetTimes(n.st, dst_dir, name, path);
  }

  // Copies the entries of the source directory open at src_dir into dst_dir.
  Status CopyChildren(int src_dir, int dst_dir, const std::string& path, const std::string& rel) {
    XB_ASSIGN(std::vector<std::string> names, ListDir(src_dir, path));
    for (const std::string& name : names) {
      std::string child_path = core::JoinPath(path, name);
      XB_ASSIGN(Node child, OpenNode(src_dir, name, child_path));
      XB_TRY(CopyEntry(child, dst_dir, name, child_path, rel.empty() ? name : rel + "/" + name));
    }
    return core::Ok();
  }

  Status CopyFile(const Node& n, int dst_dir, const std::string& name, const std::string& path) {
    // A file with several links: the first copy holds the data, later ones link to it.
    std::pair<dev_t, ino_t> id{n.st.st_dev, n.st.st_ino};
    if (n.st.st_nlink > 1) {
      auto it = links_.find(id);
      if (it != links_.end() && Link(it->second, dst_dir, name)) return core::Ok();
    }
    XB_ASSIGN(UniqueFd in, Reopen(n, O_RDONLY, path));
    int fd =
        ::openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return core::SysError("create " + path);
    UniqueFd out(fd);
    core::ScopeGuard drop([&] { ::unlinkat(dst_dir, name.c_str(), 0); });  // no partial files
    XB_TRY(CopyData(in.get(), out.get(), path));
    XB_TRY(Chown(n.st, dst_dir, name, path));
    if (::fchmod(out.get(), Mode(n.st)) != 0) return core::SysError("chmod " + path);
    CopyXattrs(in.get(), out.get());
    XB_TRY(SetTimes(n.st, dst_dir, name, path));
    drop.Dismiss();
    if (n.st.st_nlink > 1) links_.emplace(id, path);
    return core::Ok();
  }

  // Links dst_dir/name to the earlier copy at `first` (a target path); false if that failed
  // (the earlier copy was replaced since), and the caller copies the data instead.
  bool Link(const std::string& first, int dst_dir, const std::string& name) {
    auto [dir_path, base] = SplitLast(first);
    auto dir = OpenDir(roots_.dst, dir_path);
    return dir.ok() && ::linkat(dir->get(), base.c_str(), dst_dir, name.c_str(), 0) == 0;
  }

  Status CopySymlink(const Node& n, int dst_dir, const std::string& name, const std::string& path) {
    // The target is copied as it is, never resolved: it is only read inside a container.
    std::string target(PATH_MAX + 1, '\0');
    ssize_t len = ::readlinkat(n.fd.get(), "", target.data(), target.size());
    if (len < 0) return core::SysError("readlink " + path);
    if (static_cast<size_t>(len) == target.size())
      return Error(Code::kInvalidArgument, "symlink target too long: " + path);
    target.resize(static_cast<size_t>(len));
    if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0)
      return core::SysError("symlink " + path);
    XB_TRY(Chown(n.st, dst_dir, name, path));
    return SetTimes(n.st, dst_dir, name, path);
  }

  Status CopyNode(const Node& n, int dst_dir, const std::string& name, const std::string& path) {
    if (::mknodat(dst_dir, name.c_str(), (n.st.st_mode & S_IFMT) | 0600, n.st.st_rdev) != 0) {
      // Unprivileged copies cannot make devices; they are skipped, as Docker's rootless does.
      if (errno == EPERM && !S_ISFIFO(n.st.st_mode) && !CanChown()) return core::Ok();
      return core::SysError("mknod " + path);
    }
    XB_TRY(Chown(n.st, dst_dir, name, path));
    if (::fchmodat(dst_dir, name.c_str(), Mode(n.st), 0) != 0)
      return core::SysError("chmod " + path);
    return SetTimes(n.st, dst_dir, name, path);
  }

  mode_t Mode(const struct stat& st) const {
    return chmod_ ? chmod_->Apply(st.st_mode, S_ISDIR(st.st_mode)) : st.st_mode & 07777;
  }

  // --chown, else 0:0 for the build context, else the source's owner; only as root.
  Status Chown(const struct stat& st, int dir, const std::string& name, const std::string& path) {
    if (!CanChown()) return core::Ok();
    Owner o = owner_ ? *owner_ : roots_.reset_owner ? Owner{} : Owner{st.st_uid, st.st_gid};
    if (::fchownat(dir, name.c_str(), o.uid, o.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return core::SysError("chown " + path);
    }
    return core::Ok();
  }

  // The source's atime and mtime, each clamped down to the action's timestamp when set.
  Status SetTimes(const struct stat& st, int dir, const std::string& name,
                  const std::string& path) {
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (a_.timestamp) {
      for (struct timespec& t : ts) {
        if (t.tv_sec >= *a_.timestamp) t = {static_cast<time_t>(*a_.timestamp), 0};
      }
    }
    if (::utimensat(dir, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return core::SysError("set times " + path);
    }
    return core::Ok();
  }

  const CopyAction& a_;
  CopyRoots roots_;
  std::optional<Owner> owner_;
  std::optional<ChmodSpec> chmod_;
  frontend::DockerIgnore excludes_;
  std::string dest_;  // cleaned, absolute
  bool dest_is_dir_ = false;
  size_t matched_ = 0;  // what the source matched, --exclude or not (0: a wildcard, nothing)
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // source inode -> its first copy
};

}  // namespace

void CopyXattrs(int from, int to) {
  ssize_t len = ::flistxattr(from, nullptr, 0);
  if (len <= 0) return;
  std::string names(static_cast<size_t>(len), '\0');
  len = ::flistxattr(from, names.data(), names.size());
  if (len <= 0) return;
  names.resize(static_cast<size_t>(len));
  std::vector<char> value;
  for (size_t i = 0; i < names.size(); i = names.find('\0', i) + 1) {
    const char* name = names.c_str() + i;
    std::string_view n = name;
    if (n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")) continue;
    ssize_t vlen = ::fgetxattr(from, name, nullptr, 0);
    if (vlen < 0) continue;
    value.resize(static_cast<size_t>(vlen));
    vlen = ::fgetxattr(from, name, value.data(), value.size());
    if (vlen < 0) continue;
    (void)::fsetxattr(to, name, value.data(), static_cast<size_t>(vlen), 0);
  }
}

Result<size_t> RunCopy(const CopyAction& a, const CopyRoots& roots, std::optional<Owner> owner) {
  Copier c(a, roots, owner);
  return c.Run();
}

}  // namespace xbuild::solver::ops
