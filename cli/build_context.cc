#include "cli/build_context.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "core/fs.h"
#include "core/path.h"
#include "frontend/source_url.h"
#include "solver/ops/git_source.h"

namespace xbuild::cli {

namespace {

using core::Code;
using core::Error;
using core::Result;

constexpr size_t kMaxDockerfile = 16 << 20;
constexpr size_t kMaxIgnoreFile = 16 << 20;

std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) { g_interrupted.store(true); }

// Ctrl-C while an archive is read or extracted stops it, and the extracted directory's owner
// removes it on the way out, instead of the default action killing the process and leaving it
// to the next command's cleanup. The previous handlers come back at the end of the scope.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = OnInterrupt;  // no SA_RESTART: a blocked read returns EINTR
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptScope() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
  core::Status Check() const {
    if (g_interrupted.load()) return Error(Code::kCancelled, "build cancelled");
    return core::Ok();
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// A file of an extracted context, read through core::OpenInRoot: a symlink in the archive
// cannot make xbuild read a host file as the Dockerfile or the ignore file.
Result<std::string> ReadInContext(const std::string& context, const std::string& rel, size_t max) {
  int root = ::open(context.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return core::SysError("open " + context);
  core::UniqueFd r(root);
  XB_ASSIGN(core::UniqueFd fd, core::OpenInRoot(r.get(), rel));
  return core::ReadFd(fd.get(), max).Context("read " + rel);
}

// The ignore file inside an extracted context: <dockerfile>.dockerignore first, then
// .dockerignore, as DockerIgnore::Load picks them in a directory.
Result<frontend::DockerIgnore> IgnoreInContext(const std::string& context,
                                               const std::string& dockerfile) {
  for (const std::string& rel : {dockerfile + ".dockerignore", std::string(".dockerignore")}) {
    if (dockerfile.empty() && rel != ".dockerignore") continue;
    auto text = ReadInContext(context, rel, kMaxIgnoreFile);
    if (!text.ok()) {
      int err = text.error().sys_errno();
      if (err == ENOENT || err == ENOTDIR) continue;
      return std::move(text).error();
    }
    return frontend::DockerIgnore::Parse(*text).Context(rel);
  }
  return frontend::DockerIgnore();
}

// With no -f and no Dockerfile, BuildKit falls back to a lowercase one.
constexpr const char* kLowerDockerfile = "dockerfile";

Result<std::string> ReadStdinDockerfile() {
  return core::ReadFd(0, kMaxDockerfile).Context("read the Dockerfile from stdin");
}

// A context made under the state root (an extracted archive, spooled stdin, a git checkout:
// `context` is in `dir`); the Dockerfile is -f inside it, or stdin when -f is "-". `what` names
// the context in errors.
Result<BuildInput> FromOwnedDir(std::unique_ptr<solver::ops::ContextDir> dir,
                                const std::string& context, const std::string& what,
                                const std::string& file_flag, const InterruptScope& interrupt) {
  BuildInput in;
  in.context_dir = context;
  if (file_flag == "-") {
    XB_ASSIGN(in.dockerfile_text, ReadStdinDockerfile());
    in.dockerfile_path = "-";
    in.dockerfile_name = "Dockerfile";
  } else {
    std::string rel = file_flag.empty() ? "Dockerfile" : file_flag;
    auto text = ReadInContext(in.context_dir, rel, kMaxDockerfile);
    if (file_flag.empty() && !text.ok() && text.error().sys_errno() == ENOENT) {
      auto lower = ReadInContext(in.context_dir, kLowerDockerfile, kMaxDockerfile);
      if (lower.ok()) rel = kLowerDockerfile, text = std::move(lower);
    }
    if (!text.ok()) {
      if (text.error().sys_errno() == ENOENT) {
        return Error(Code::kNotFound,
                     what + " has no " + rel + " (-f names a path inside it)");
      }
      return std::move(text).error().Context("read Dockerfile");
    }
    in.dockerfile_text = std::move(*text);
    in.dockerfile_path = rel;
    in.dockerfile_name = core::Basename(rel);
  }
  XB_TRY(interrupt.Check());
  XB_ASSIGN(in.ignore, IgnoreInContext(in.context_dir, file_flag == "-" ? "" : in.dockerfile_path));
  in.extracted = std::move(dir);
  return in;
}

Result<BuildInput> FromDirectory(const std::string& path, const std::string& file_flag) {
  BuildInput in;
  std::error_code ec;
  in.context_dir = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) return Error(Code::kInvalidArgument, "context " + path + ": " + ec.message());
  while (in.context_dir.size() > 1 && in.context_dir.ends_with('/')) in.context_dir.pop_back();
  in.dockerfile_path = file_flag.empty() ? core::JoinPath(path, "Dockerfile") : file_flag;
  if (file_flag.empty() && !core::Exists(in.dockerfile_path) &&
      core::Exists(core::JoinPath(path, kLowerDockerfile))) {
    in.dockerfile_path = core::JoinPath(path, kLowerDockerfile);
  }
  if (in.dockerfile_path == "-") {
    XB_ASSIGN(in.dockerfile_text, ReadStdinDockerfile());
    in.dockerfile_name = "Dockerfile";
  } else {
    XB_ASSIGN_CTX(in.dockerfile_text, core::ReadFile(in.dockerfile_path, kMaxDockerfile),
                  "read Dockerfile");
    in.dockerfile_name = core::Basename(in.dockerfile_path);
  }
  XB_ASSIGN(in.ignore, frontend::DockerIgnore::Load(path, in.dockerfile_path == "-"
                                                              ? core::JoinPath(path, "Dockerfile")
                                                              : in.dockerfile_path));
  return in;
}

// `xbuild build URL#ref:subdir`: a git URL (source_url.h; file:// included, since whoever runs
// the build names it), or a local repository path ending in .git, with or without a fragment.
// A directory named x.git that is not a repository stays a directory context.
bool IsGitContext(const std::string& path) {
  if (frontend::IsGitUrl(path)) return true;
  std::string repo = path.substr(0, path.find('#'));
  if (!repo.ends_with(".git") && !repo.ends_with(".git/")) return false;
  return core::Exists(core::JoinPath(repo, "HEAD")) || core::Exists(core::JoinPath(repo, ".git"));
}

Result<BuildInput> FromGit(Cli& cli, const std::string& path, const std::string& file_flag) {
  solver::ops::GitSpec spec;
  if (frontend::IsGitUrl(path)) {
    XB_ASSIGN(frontend::GitRef ref, frontend::ParseGitRef(path));
    spec.remote = ref.remote;
    spec.ref = ref.ref;
    spec.subdir = ref.subdir;
  } else {  // a local path: parsed as the file:// URL it stands for
    XB_ASSIGN(frontend::GitRef ref, frontend::ParseGitRef("file://" + path));
    spec.remote = path.substr(0, path.find('#'));
    spec.ref = ref.ref;
    spec.subdir = ref.subdir;
  }
  // Opening the store first runs the cleanup of what killed builds left there.
  auto store = cli.Store();
  if (!store.ok()) return std::move(store).error();
  InterruptScope interrupt;
  XB_ASSIGN_CTX(solver::ops::GitCheckout co,
                solver::ops::CheckoutGit(cli.ctx().root, spec, &g_interrupted),
                "unable to prepare context");
  XB_TRY(interrupt.Check());
  std::string context = co.root;
  return FromOwnedDir(std::move(co.dir), context, "the git context " + path, file_flag, interrupt);
}

}  // namespace

Result<BuildInput> LoadBuildInput(Cli& cli, const std::string& path, const std::string& file_flag) {
  struct stat st;
  bool from_stdin = path == "-";
  if (!from_stdin && IsGitContext(path)) return FromGit(cli, path, file_flag);
  if (!from_stdin) {
    if (::stat(path.c_str(), &st) != 0) return core::SysError("unable to prepare context: " + path);
    if (S_ISDIR(st.st_mode)) return FromDirectory(path, file_flag);
  } else if (file_flag == "-") {
    return Error(Code::kInvalidArgument,
                 "can't use stdin for both the build context and the Dockerfile");
  }
  // An archive, or stdin: extracted under the state root. Opening the store first runs the
  // cleanup of what killed builds left there.
  auto store = cli.Store();
  if (!store.ok()) return std::move(store).error();
  InterruptScope interrupt;
  XB_ASSIGN(auto dir, solver::ops::ContextDir::Create(cli.ctx().root));
  core::UniqueFd file;
  if (from_stdin) {
    XB_ASSIGN(file, dir->Spool(0, &g_interrupted));
  } else {
    XB_ASSIGN(file, core::Open(path, O_RDONLY));
  }
  XB_TRY(interrupt.Check());
  XB_ASSIGN_CTX(bool extracted, dir->Extract(file.get()),
                "extract the build context " + (from_stdin ? "from stdin" : path));
  XB_TRY(interrupt.Check());
  if (extracted) {
    std::string context = dir->context();
    return FromOwnedDir(std::move(dir), context, "the context archive", file_flag, interrupt);
  }
  if (!from_stdin) {
    return Error(Code::kInvalidArgument,
                 "unable to prepare context: " + path +
                     " is neither a directory nor a tar archive (plain, gzip, bzip2, xz or zstd)");
  }
  // Not an archive: stdin was the Dockerfile, and there is no context (as `docker build -`,
  // which also ignores -f then).
  if (::lseek(file.get(), 0, SEEK_SET) != 0) return core::SysError("seek the spooled stdin");
  BuildInput in;
  XB_ASSIGN(in.dockerfile_text,
            core::ReadFd(file.get(), kMaxDockerfile).Context("read the Dockerfile from stdin"));
  in.dockerfile_path = "-";
  in.dockerfile_name = "Dockerfile";
  return in;
}

}  // namespace xbuild::cli
