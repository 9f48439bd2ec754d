// xbuild cp [-L] CONTAINER:SRC DEST | SRC CONTAINER:DEST: Docker's cp, on running and stopped
// containers alike (a stopped one's writable layer is mounted for the copy). "-" as DEST or SRC
// is a tar stream on stdout or stdin.
//
// Docker's rules: a file onto a missing path makes that file (its parent must exist; a path
// ending in "/" must be an existing directory); onto a directory, goes into it. A directory onto
// a missing path becomes it; onto an existing directory goes into it as its basename, or with
// SRC ending in "/." its content does. A directory never replaces a file.
//
// A running container is copied as its processes see it: its root is /proc/<pid>/root of its
// process (exec::OpenRunningRoot), so its tmpfs, volumes and binds are there as they are
// mounted (a read-only one refuses writes). A stopped one's is its writable layer, and a path
// under a bind or volume mount (matched lexically) is copied in that mount's host directory.
//
// Every path inside the container resolves inside that root (core/path.h: openat2 with
// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): a symlink in the container, absolute or "../..", or
// one of its /proc magic links, can never make cp read or write a host path. The entries
// copied are never followed (CopyEntry); the last component of SRC is followed (inside the
// root) only with -L or a trailing "/" or "/.".
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cli/cli.h"
#include "core/fs.h"
#include "core/path.h"
#include "core/strings.h"
#include "exec/copy_tree.h"
#include "image/layer.h"

namespace xbuild::cli {

namespace {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

struct Side {
  std::string container;  // empty: the local filesystem (or "-")
  std::string path;
};

Side ParseSide(const std::string& arg) {
  // Docker: "NAME:PATH" unless the part before ":" contains "/" (a local path such as ./a:b).
  size_t colon = arg.find(':');
  if (colon == std::string::npos || colon == 0 || arg.substr(0, colon).find('/') != std::string::npos) return {"", arg};
  return {arg.substr(0, colon), arg.substr(colon + 1)};
}

std::string ProcFd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// A path inside the rootfs: its parent directory as an fd (resolved inside the root) and its
// last component (never followed here). "/" is the parent "/" with name ".".
struct InRoot {
  core::UniqueFd parent;
  std::string name;
};

Result<InRoot> LocateInRoot(int root_fd, const std::string& path, bool follow_last) {
  std::string clean = core::CleanPath("/" + path);
  if (follow_last && clean != "/") {
    // Resolve the whole path inside the root, then split what it names.
    XB_ASSIGN(std::string joined, core::SecureJoin(ProcFd(root_fd), clean));
    std::string prefix = ProcFd(root_fd);
    clean = core::CleanPath("/" + joined.substr(prefix.size()));
  }
  if (clean == "/") {
    XB_ASSIGN(core::UniqueFd fd, core::OpenInRoot(root_fd, "/", {.flags = O_RDONLY | O_DIRECTORY}));
    return InRoot{std::move(fd), "."};
  }
  size_t slash = clean.rfind('/');
  std::string dir = slash == 0 ? "/" : clean.substr(0, slash);
  auto parent = core::OpenInRoot(root_fd, dir, {.flags = O_RDONLY | O_DIRECTORY});
  if (!parent.ok()) return Error(Code::kNotFound, "Could not find the file " + path + " in container");
  return InRoot{std::move(parent).value(), clean.substr(slash + 1)};
}

bool StatAt(int dir, const std::string& name, struct stat& st, bool follow) {
  return ::fstatat(dir, name.c_str(), &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0;
}

bool EndsWithDot(const std::string& p) { return p == "." || p.ends_with("/."); }

// Copies src_dir/src_name to the destination by Docker's rules. `dest_parent`/`dest_name` name
// the destination path (dest_name "." for a directory given as such); `dest_trailing_slash`
// says DEST ended in "/".
Status CopyByRules(int src_dir, const std::string& src_name, const std::string& src_arg, int dest_parent,
                   const std::string& dest_name, const std::string& dest_arg, bool dest_trailing_slash) {
  struct stat src_st, dst_st;
  if (!StatAt(src_dir, src_name, src_st, false)) return core::SysError("stat " + src_arg);
  bool src_is_dir = S_ISDIR(src_st.st_mode);
  if ((src_arg.ends_with('/') || EndsWithDot(src_arg)) && !src_is_dir) {
    return Error(Code::kInvalidArgument, "cannot copy " + src_arg + ": not a directory");
  }
  bool dest_exists = StatAt(dest_parent, dest_name, dst_st, true);
  std::string base = src_name == "." ? "." : src_name;
  if (!dest_exists) {
    if (dest_trailing_slash && !src_is_dir) {
      return Error(Code::kNotFound, "destination directory " + dest_arg + " does not exist");
    }
    return exec::CopyEntry(src_dir, src_name, dest_parent, dest_name);
  }
  bool dest_is_dir = S_ISDIR(dst_st.st_mode);
  if (src_is_dir && !dest_is_dir) return Error(Code::kInvalidArgument, "cannot copy a directory to a file: " + dest_arg);
  if (!dest_is_dir) {
    if (dest_trailing_slash) return Error(Code::kInvalidArgument, "destination " + dest_arg + " is not a directory");
    return exec::CopyEntry(src_dir, src_name, dest_parent, dest_name);
  }
  // Into the existing directory (opened without following a link the container may own: the
  // caller resolved the destination inside its root already).
  int d = ::openat(dest_parent, dest_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (dest_name == "." ? 0 : O_NOFOLLOW));
  if (d < 0) return core::SysError("open " + dest_arg);
  core::UniqueFd dest_dir(d);
  if (src_is_dir && EndsWithDot(src_arg)) {
    int s = ::openat(src_dir, src_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (s < 0) return core::SysError("open " + src_arg);
    core::UniqueFd src_fd(s);
    return exec::CopyDirContents(s, d);
  }
  std::string into = base == "." ? core::Basename(core::CleanPath(src_arg)) : base;
  if (into.empty() || into == "/" || into == ".") into = "root";
  return exec::CopyEntry(src_dir, src_name, d, into);
}

// Writes src_dir/name (recursively) to a tar on fd 1 under `arcname`, never following links.
Status TarEntry(struct archive* a, int dir, const std::string& name, const std::string& arcname) {
  struct stat st;
  if (!StatAt(dir, name, st, false)) return core::SysError("stat " + arcname);
  struct archive_entry* e = archive_entry_new();
  archive_entry_copy_stat(e, &st);
  archive_entry_set_pathname(e, arcname.c_str());
  core::UniqueFd fd;
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = ::readlinkat(dir, name.c_str(), target, sizeof target - 1);
    if (n >= 0) target[n] = '\0';
    archive_entry_set_symlink(e, n >= 0 ? target : "");
  } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
    int f = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
    if (f < 0) {
      archive_entry_free(e);
      return core::SysError("open " + arcname);
    }
    fd = core::UniqueFd(f);
  }
  int rc = archive_write_header(a, e);
  archive_entry_free(e);
  if (rc != ARCHIVE_OK) return Error(Code::kIo, std::string("write tar: ") + archive_error_string(a));
  if (S_ISREG(st.st_mode)) {
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return core::SysError("read " + arcname);
      if (n == 0) break;
      if (archive_write_data(a, buf, static_cast<size_t>(n)) < 0) return Error(Code::kIo, std::string("write tar: ") + archive_error_string(a));
    }
  }
  if (S_ISDIR(st.st_mode)) {
    int copy = ::dup(fd.get());
    DIR* d = copy >= 0 ? ::fdopendir(copy) : nullptr;
    if (!d) return core::SysError("read directory " + arcname);
    std::vector<std::string> names;
    while (struct dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) XB_TRY(TarEntry(a, fd.get(), n, arcname + "/" + n));
  }
  return core::Ok();
}

Status WriteTar(int dir, const std::string& name, const std::string& arcname) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_fd(a, 1) != ARCHIVE_OK) {
    archive_write_free(a);
    return Error(Code::kIo, "write tar to stdout");
  }
  Status s = TarEntry(a, dir, name, arcname);
  archive_write_close(a);
  archive_write_free(a);
  return s;
}

// The deepest of the container's mounts over `path` (matched lexically, as Docker does), or null.
const exec::MountSpec* DeepestMount(const exec::ContainerRecord& r, const std::string& path,
                                    bool with_tmpfs) {
  std::string clean = core::CleanPath("/" + path);
  const exec::MountSpec* best = nullptr;
  for (const exec::MountSpec& m : r.mounts) {
    if (m.type == "tmpfs" && !with_tmpfs) continue;
    bool under = clean == m.target || clean.starts_with(m.target == "/" ? "/" : m.target + "/");
    if (under && (!best || m.target.size() > best->target.size())) best = &m;
  }
  return best;
}

// Docker refuses to copy into a read-only volume or bind mount, or into a --read-only rootfs
// (with its own words). A stopped container's bind is written in its host directory, so without
// this a `:ro` bind's host files would be changed.
Status CheckWritable(const exec::ContainerRecord& r, const std::string& path) {
  const exec::MountSpec* m = DeepestMount(r, path, true);
  if (m ? !m->readonly : !r.read_only) return core::Ok();
  std::string why = m ? "mounted volume is marked read-only" : "container rootfs is marked read-only";
  return Error(Code::kFailedPrecondition, "copy to " + r.name + ":" + path + ": " + why);
}

// Where a container path lives: the host directory of the deepest bind or volume mount over it
// (matched lexically) with the path below it, else the rootfs (empty) and the path itself.
std::pair<std::string, std::string> MountFor(const exec::ContainerRecord& r, const std::string& root,
                                             const std::string& path) {
  std::string clean = core::CleanPath("/" + path);
  const exec::MountSpec* best = DeepestMount(r, path, false);
  if (!best) return {"", path};
  std::string dir = best->type == "volume" ? exec::Volumes(root).DataDir(best->source) : best->source;
  if (!core::Exists(dir)) return {"", path};
  std::string below = best->target == "/" ? clean : clean.substr(best->target.size());
  if (below.empty()) below = "/";
  // Docker's rules look at a trailing "/" or "/." of the path as given.
  if (path.ends_with("/.") && below != "/") {
    below += "/.";
  } else if (path.ends_with('/') && below != "/") {
    below += "/";
  }
  return {dir, below};
}

// For a container read as running: its root as its process sees it. A process that has ended
// since is no error: once the record says so and its monitor is done, `r` is read again and the
// result is no fd (it is then copied as a stopped container).
Result<core::UniqueFd> RunningRoot(exec::Containers& containers, exec::ContainerRecord& r) {
  auto root = exec::OpenRunningRoot(r);
  if (root.ok()) return root;
  auto now = containers.Get(r.id);
  if (!now.ok() || now->status == exec::kStatusRunning || containers.MonitorAlive(r.id)) return root;
  r = std::move(now).value();
  return core::UniqueFd();
}

}  // namespace

int RunCp(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("follow-link", 'L', "Always follow symbol link in SRC_PATH");
  f.Bool("archive", 'a', "Archive mode (copy all uid/gid information)");
  f.Bool("quiet", 'q', "Suppress progress output during copy");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tcp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
                    args, pos, code, 2, 2)) {
    return code;
  }
  Side src = ParseSide(pos[0]), dst = ParseSide(pos[1]);
  if (src.container.empty() == dst.container.empty()) {
    return cli.UsageError("cp", src.container.empty() ? "must specify at least one container source"
                                                      : "copying between containers is not supported");
  }
  const Side& ctr_side = src.container.empty() ? dst : src;
  if (ctr_side.path.empty()) return cli.UsageError("cp", "path in container \"" + ctr_side.container + "\" is empty");
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  auto rec = (*containers)->Find(ctr_side.container);
  if (!rec.ok()) return cli.Fail(rec.error());
  exec::Snapshotter snaps(**store);
  core::UniqueFd live_root;
  if (rec->status == exec::kStatusRunning) {
    auto r = RunningRoot(**containers, *rec);
    if (!r.ok()) return cli.Fail(r.error());
    live_root = std::move(r).value();
  }
  bool running = live_root.valid();
  // A stopped one's path under one of its volumes or bind mounts is copied there (Docker's cp
  // sees them too); a running one's mounts are all in its own view.
  auto [mount_dir, in_mount] =
      running ? std::make_pair(std::string(), ctr_side.path) : MountFor(*rec, cli.ctx().root, ctr_side.path);
  std::string rootfs;
  bool mounted_here = false;
  if (!mount_dir.empty()) {
    rootfs = mount_dir;
  } else if (!running) {
    auto m = snaps.Mount(rec->snapshot);
    if (!m.ok()) return cli.Fail(m.error());
    rootfs = *m;
    mounted_here = true;
  }
  core::ScopeGuard unmount([&] {
    if (mounted_here) (void)snaps.Unmount(rec->snapshot);
  });
  auto root_fd = running ? Result<core::UniqueFd>(std::move(live_root)) : core::Open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!root_fd.ok()) return cli.Fail(root_fd.error());

  if (!src.container.empty()) {
    // Container -> host (or a tar on stdout).
    bool follow = f.GetBool("follow-link") || src.path.ends_with('/') || EndsWithDot(src.path);
    auto from = LocateInRoot(root_fd->get(), in_mount, follow);
    if (!from.ok()) return cli.Fail(from.error());
    struct stat st;
    if (!StatAt(from->parent.get(), from->name, st, false)) {
      return cli.Fail(Error(Code::kNotFound, "Could not find the file " + src.path + " in container " + src.container));
    }
    if (dst.path == "-") {
      std::string arc = from->name == "." ? "." : from->name;
      if (auto s = WriteTar(from->parent.get(), from->name, arc); !s.ok()) return cli.Fail(s.error());
      return kExitOk;
    }
    std::string dest = dst.path;
    std::string parent = core::Dirname(core::CleanPath(dest));
    std::string name = core::Basename(core::CleanPath(dest));
    auto dfd = core::Open(parent.empty() ? "." : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!dfd.ok()) return cli.Fail(Error(Code::kNotFound, "destination directory " + parent + " does not exist"));
    if (name == "/" || name.empty()) name = ".";
    Status s = CopyByRules(from->parent.get(), from->name, src.path, dfd->get(), name, dest, dest.ends_with('/'));
    if (!s.ok()) return cli.Fail(std::move(s).error().Context("copy " + pos[0] + " to " + dest));
    return kExitOk;
  }

  // Host (or a tar on stdin) -> container: the destination resolves inside the rootfs.
  if (Status w = CheckWritable(*rec, dst.path); !w.ok()) return cli.Fail(w.error());
  if (src.path == "-") {
    auto dir = core::OpenInRoot(root_fd->get(), in_mount, {.flags = O_RDONLY | O_DIRECTORY});
    if (!dir.ok()) {
      return cli.Fail(Error(Code::kNotFound, "destination \"" + dst.container + ":" + dst.path + "\" must be a directory"));
    }
    image::ApplyOptions opts;
    auto applied = image::ApplyLayer(0, ProcFd(dir->get()), opts);
    if (!applied.ok()) return cli.Fail(applied.error());
    return kExitOk;
  }
  std::string src_clean = core::CleanPath(src.path);
  std::string src_parent = core::Dirname(src_clean);
  std::string src_name = core::Basename(src_clean);
  if (src_clean == "/") {
    src_parent = "/";
    src_name = ".";
  }
  // A local SRC follows its last link only with -L (Docker's default copies the link itself).
  auto sfd = core::Open(src_parent.empty() ? "." : src_parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!sfd.ok()) return cli.Fail(sfd.error());
  struct stat st;
  if (!StatAt(sfd->get(), src_name, st, false)) {
    return cli.Fail(core::SysError("stat " + src.path));
  }
  auto to = LocateInRoot(root_fd->get(), in_mount, true);
  if (!to.ok()) {
    return cli.Fail(Error(Code::kNotFound, "destination " + dst.container + ":" + dst.path +
                                               ": its directory does not exist in the container (links resolve inside it)"));
  }
  Status s = CopyByRules(sfd->get(), src_name, src.path, to->parent.get(), to->name, dst.path, dst.path.ends_with('/'));
  if (!s.ok()) return cli.Fail(std::move(s).error().Context("copy " + src.path + " to " + pos[1]));
  return kExitOk;
}

}  // namespace xbuild::cli
