#include "core/path.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <vector>

namespace xbuild::core {

std::string CleanPath(std::string_view path) {
  if (path.empty()) return ".";
  bool rooted = path.front() == '/';
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view c = path.substr(i, j - i);
    i = j + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(c);
      }
      continue;
    }
    parts.push_back(c);
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  if (out.empty()) return ".";
  return out;
}

bool EscapesRoot(std::string_view rel) {
  std::string c = CleanPath(rel);
  return c == ".." || c.starts_with("../");
}

namespace {

constexpr int kMaxSymlinks = 255;

std::atomic<int> g_openat2_state{0};  // 0 unknown, 1 works, -1 unsupported

Result<UniqueFd> OpenAt2(int root_fd, const std::string& rel, const OpenInRootOptions& o) {
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(o.flags | O_CLOEXEC | (o.follow_last ? 0 : O_NOFOLLOW));
  how.mode = (o.flags & (O_CREAT | O_TMPFILE)) ? o.mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EINTR || errno == EAGAIN) continue;  // EAGAIN: a concurrent rename; retry
    return SysError("open " + rel);
  }
}

void SplitInto(std::string_view path, std::vector<std::string>& stack) {
  // Pushes components so that the first component ends up on top (stack.back()).
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) stack.push_back(std::move(*it));
}

// The userspace walk. `dirs` is the chain of open directories from the root to the current
// one, so ".." pops (and stops at the root). A symlink's target is spliced in front of the
// remaining components; an absolute target resets the chain to the root.
struct Walker {
  int root_fd;
  std::vector<UniqueFd> dirs;  // dirs[0] is a dup of root
  int symlinks = 0;

  int cur() const { return dirs.empty() ? root_fd : dirs.back().get(); }

  Status Init() {
    int d = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0) return SysError("dup root fd");
    dirs.clear();
    dirs.emplace_back(d);
    return Ok();
  }

  void ToRoot() { dirs.resize(1); }
  void Up() {
    if (dirs.size() > 1) dirs.pop_back();
  }

  // Handles a symlink at component `name` of the current directory, if it is one.
  // Returns true when it spliced the target into `stack`.
  Result<bool> MaybeFollow(const std::string& name, std::vector<std::string>& stack) {
    struct stat st;
    if (::fstatat(cur(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return SysError("stat " + name);
    }
    if (!S_ISLNK(st.st_mode)) return false;
    if (++symlinks > kMaxSymlinks) return Error(Code::kPermissionDenied, "too many symlinks", ELOOP);
    char buf[4096];
    ssize_t n = ::readlinkat(cur(), name.c_str(), buf, sizeof buf - 1);
    if (n < 0) return SysError("readlink " + name);
    std::string_view target(buf, static_cast<size_t>(n));
    if (!target.empty() && target.front() == '/') ToRoot();
    SplitInto(target, stack);
    return true;
  }
};

Result<UniqueFd> WalkOpen(int root_fd, std::string_view path, const OpenInRootOptions& o,
                          bool mkdirs, mode_t dir_mode) {
  Walker w{root_fd, {}, 0};
  XB_TRY(w.Init());
  std::vector<std::string> stack;
  SplitInto(path, stack);
  if (stack.empty()) {
    int fd = ::openat(root_fd, ".", o.flags | O_CLOEXEC);
    if (fd < 0) return SysError("open /");
    return UniqueFd(fd);
  }
  while (!stack.empty()) {
    std::string name = std::move(stack.back());
    stack.pop_back();
    if (name == ".") continue;
    if (name == "..") {
      w.Up();
      continue;
    }
    bool last = stack.empty();
    if (last && !mkdirs) {
      int flags = o.flags | O_CLOEXEC | O_NOFOLLOW;
      int fd = ::openat(w.cur(), name.c_str(), flags, o.mode);
      if (fd >= 0) return UniqueFd(fd);
      int err = errno;
      // ELOOP (or EMLINK/ENOTDIR with O_PATH/O_DIRECTORY variants) means a symlink here.
      if ((err == ELOOP || err == EMLINK || err == ENOTDIR) && o.follow_last) {
        XB_ASSIGN(bool followed, w.MaybeFollow(name, stack));
        if (followed) continue;
      }
      return SysError("open " + name, err);
    }
    // An intermediate component: must be a directory reached without following a symlink.
    int fd = ::openat(w.cur(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ENOTDIR || err == ELOOP) {
        XB_ASSIGN(bool followed, w.MaybeFollow(name, stack));
        if (followed) continue;
        return SysError("open " + name, ENOTDIR);
      }
      if (err == ENOENT && mkdirs) {
        if (::mkdirat(w.cur(), name.c_str(), dir_mode) != 0 && errno != EEXIST) {
          return SysError("mkdir " + name);
        }
        stack.push_back(name);  // open it on the next turn (it may have raced into a symlink)
        continue;
      }
      return SysError("open " + name, err);
    }
    w.dirs.emplace_back(fd);
  }
  // mkdirs: return the final directory, reopened as a real (non-O_PATH) directory fd.
  int fd = ::openat(w.cur(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysError("open directory");
  return UniqueFd(fd);
}

}  // namespace

Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, OpenInRootOptions opts) {
  size_t start = path.find_first_not_of('/');
  std::string rel = start == std::string_view::npos ? std::string(".") : std::string(path.substr(start));
  if (opts.resolve == Resolve::kAuto && g_openat2_state.load() >= 0) {
    auto r = OpenAt2(root_fd, rel, opts);
    if (r.ok() || r.error().sys_errno() != ENOSYS) {
      g_openat2_state.store(1);
      return r;
    }
    g_openat2_state.store(-1);
  }
  // The path is not cleaned first: "a/symlink/.." must resolve the symlink before "..", as
  // the kernel does.
  return WalkOpen(root_fd, path, opts, false, 0);
}

Result<UniqueFd> MkdirAllInRoot(int root_fd, std::string_view path, mode_t mode, Resolve resolve) {
  OpenInRootOptions o;
  o.flags = O_RDONLY | O_DIRECTORY;
  o.resolve = resolve;
  return WalkOpen(root_fd, path, o, true, mode);
}

Result<std::string> SecureJoin(const std::string& root, std::string_view unsafe) {
  // Lexical walk with symlink evaluation against the real tree, like filepath-securejoin.
  std::vector<std::string> resolved;
  std::vector<std::string> stack;
  SplitInto(unsafe, stack);
  int links = 0;
  while (!stack.empty()) {
    std::string name = std::move(stack.back());
    stack.pop_back();
    if (name == "." ) continue;
    if (name == "..") {
      if (!resolved.empty()) resolved.pop_back();
      continue;
    }
    std::string cur = root;
    for (auto& r : resolved) cur = cur + "/" + r;
    cur += "/" + name;
    struct stat st;
    if (::lstat(cur.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) {
      resolved.push_back(name);
      continue;
    }
    if (++links > kMaxSymlinks) return Error(Code::kPermissionDenied, "too many symlinks", ELOOP);
    char buf[4096];
    ssize_t n = ::readlink(cur.c_str(), buf, sizeof buf - 1);
    if (n < 0) return SysError("readlink " + cur);
    std::string_view target(buf, static_cast<size_t>(n));
    if (!target.empty() && target.front() == '/') resolved.clear();
    SplitInto(target, stack);
  }
  std::string out = root;
  for (auto& r : resolved) out += "/" + r;
  return out;
}

}  // namespace xbuild::core
