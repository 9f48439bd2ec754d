#include "solver/ops/context_archive.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/digest.h"
#include "core/fs.h"
#include "exec/sandbox.h"
#include "solver/ops/unpack.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using core::UniqueFd;

namespace {

std::string ContextsDir(const std::string& state_root) {
  return core::JoinPath(state_root, "contexts");
}

}  // namespace

Result<std::unique_ptr<ContextDir>> ContextDir::Create(const std::string& state_root) {
  XB_TRY(core::MkdirAll(ContextsDir(state_root), 0700));
  XB_ASSIGN(std::string id, core::RandomHex(8));
  std::string dir = core::JoinPath(ContextsDir(state_root), id);
  if (::mkdir(dir.c_str(), 0700) != 0) return core::SysError("mkdir " + dir);
  // From here on the destructor removes it; before the owner file exists, so does a failure.
  std::unique_ptr<ContextDir> c(new ContextDir(dir));
  XB_TRY(exec::WriteOwner(dir));
  if (::mkdir(c->context_.c_str(), 0755) != 0) return core::SysError("mkdir " + c->context_);
  return c;
}

ContextDir::~ContextDir() { (void)core::RemoveAll(dir_); }

Result<bool> ContextDir::Extract(int fd) {
  int root = ::open(context_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return core::SysError("open " + context_);
  UniqueFd r(root);
  return UnpackArchive(fd, r.get(), "/", UnpackOptions{});
}

Result<UniqueFd> ContextDir::Spool(int fd, const std::atomic<bool>* cancel) {
  std::string path = core::JoinPath(dir_, "stdin");
  XB_ASSIGN(UniqueFd out, core::Open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
  char buf[1 << 16];
  for (;;) {
    if (cancel && cancel->load()) return Error(Code::kCancelled, "build cancelled");
    // Waits in poll, not read, so that a signal landing just before the wait cannot leave the
    // cancel flag unseen until more input comes.
    struct pollfd p {
      fd, POLLIN, 0
    };
    int ready = ::poll(&p, 1, cancel ? 100 : -1);
    if (ready < 0 && errno != EINTR) return core::SysError("poll stdin");
    if (ready <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::SysError("read stdin");
    }
    if (n == 0) break;
    XB_TRY_CTX(core::WriteAll(out.get(), std::string_view(buf, static_cast<size_t>(n))),
               "write " + path);
  }
  if (::lseek(out.get(), 0, SEEK_SET) != 0) return core::SysError("seek " + path);
  return out;
}

Status CleanupStaleContexts(const std::string& state_root) {
  std::error_code ec;
  Status first;
  for (const auto& e : std::filesystem::directory_iterator(ContextsDir(state_root), ec)) {
    std::string dir = e.path().string();
    // No owner file yet: a process between mkdir and writing it (or killed there); left alone,
    // as the sandbox does with its bundles.
    if (!core::Exists(core::JoinPath(dir, "owner.json")) || exec::OwnerAlive(dir)) continue;
    Status s = core::RemoveAll(dir);
    if (!s.ok() && first.ok()) first = std::move(s);
  }
  return first;
}

}  // namespace xbuild::solver::ops
