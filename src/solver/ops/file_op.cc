#include "solver/ops/file_op.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <type_traits>

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

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

Result<UniqueFd> OpenRoot(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::SysError("open " + dir);
  return UniqueFd(fd);
}

class Runner {
 public:
  Runner(const FileOpEnv& env, int target) : env_(env), target_(target) {}

  Status Apply(const CopyAction& a) {
    if (a.src_input < 0 || static_cast<size_t>(a.src_input) >= env_.inputs.size()) {
      return Error(Code::kInvalidArgument,
                   "source input " + std::to_string(a.src_input) + " does not exist");
    }
    const FileOpInput& in = env_.inputs[static_cast<size_t>(a.src_input)];
    UniqueFd src;
    if (!in.root.empty()) {
      XB_ASSIGN_CTX(src, OpenRoot(in.root), "source tree");
    }
    XB_ASSIGN(std::optional<Owner> owner, ResolveOwner(a.chown));
    XB_ASSIGN(size_t copied,
              RunCopy(a, CopyRoots{src.valid() ? src.get() : -1, in.reset_owner, target_}, owner));
    copied_ += copied;
    return core::Ok();
  }

  // Every source of the op's copies was a wildcard that matched nothing.
  bool CopiedNothing() const { return copied_ == 0; }

  // WORKDIR: as BuildKit, an existing directory is left as it is; the directories made get
  // the mode and owner.
  Status Apply(const MkdirAction& a) {
    XB_ASSIGN(std::optional<Owner> owner, ResolveOwner(a.chown));
    std::string path = core::CleanPath("/" + a.path);
    if (a.make_parents) {
      XB_TRY(MakeDirs(target_, path, a.mode, owner.value_or(Owner{})));
      return core::Ok();
    }
    if (path == "/") return core::Ok();
    auto [parent_path, name] = SplitLast(path);
    XB_ASSIGN(UniqueFd parent, OpenDir(target_, parent_path));
    auto made = MakeDir(parent.get(), name, path, a.mode, owner.value_or(Owner{}));
    if (made.ok()) return core::Ok();
    struct stat st;
    if (made.error().sys_errno() == EEXIST && ::fstatat(parent.get(), name.c_str(), &st, 0) == 0 &&
        S_ISDIR(st.st_mode)) {
      return core::Ok();
    }
    return std::move(made).error();
  }

  // Heredocs. Missing parents are made (0755, the owner or root): the heredoc's dest may be
  // new. An existing file or symlink is replaced, never written through.
  Status Apply(const MkfileAction& a) {
    XB_ASSIGN(std::optional<Owner> owner, ResolveOwner(a.chown));
    std::string path = core::CleanPath("/" + a.path);
    if (path == "/") return Error(Code::kInvalidArgument, "cannot write a file at /");
    auto [parent_path, name] = SplitLast(path);
    XB_ASSIGN(UniqueFd parent, MakeDirs(target_, parent_path, 0755, owner.value_or(Owner{})));
    XB_TRY(ClearForFile(parent.get(), name, path));
    int fd = ::openat(parent.get(), name.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return core::SysError("create " + path);
    UniqueFd f(fd);
    XB_TRY_CTX(core::WriteAll(f.get(), a.data), path);
    if (owner && CanChown() && ::fchown(f.get(), owner->uid, owner->gid) != 0) {
      return core::SysError("chown " + path);
    }
    if (::fchmod(f.get(), a.mode & 07777) != 0) return core::SysError("chmod " + path);
    return core::Ok();
  }

  Status Apply(const RmAction& a) {
    std::string path = core::CleanPath("/" + a.path);
    if (path == "/") return Error(Code::kInvalidArgument, "cannot remove /");
    if (a.allow_wildcard && HasWildcard(path)) {
      XB_ASSIGN(std::vector<WildcardMatch> matches, ResolveWildcards(target_, path));
      if (matches.empty() && !a.allow_not_found) {
        return Error(Code::kNotFound, "nothing matches " + Quote(path));
      }
      for (const WildcardMatch& m : matches) XB_TRY(Remove("/" + m.path, true));
      return core::Ok();
    }
    return Remove(path, a.allow_not_found);
  }

  // The link is made as named; its target is never resolved here.
  Status Apply(const SymlinkAction& a) {
    std::string path = core::CleanPath("/" + a.newpath);
    if (path == "/") return Error(Code::kInvalidArgument, "cannot make a symlink at /");
    auto [parent_path, name] = SplitLast(path);
    XB_ASSIGN(UniqueFd parent, OpenDir(target_, parent_path));
    if (::symlinkat(a.oldpath.c_str(), parent.get(), name.c_str()) != 0) {
      return core::SysError("symlink " + path);
    }
    return core::Ok();
  }

 private:
  // The --chown owner, resolved once per action; none when not asked for.
  Result<std::optional<Owner>> ResolveOwner(const std::optional<ChownOpt>& c) {
    if (!c || (c->user.empty() && c->group.empty())) return std::optional<Owner>();
    std::string shown = c->user + (c->group.empty() ? "" : ":" + c->group);
    if (!env_.resolve_owner) {
      return Error(Code::kInternal, "--chown=" + shown + ": no owner resolver given");
    }
    XB_ASSIGN_CTX(auto ids, env_.resolve_owner(*c), "--chown=" + shown);
    return std::optional<Owner>(Owner{ids.first, ids.second});
  }

  // Removes `path` (its parents resolved in the root, the last component never followed).
  Status Remove(const std::string& path, bool allow_not_found) {
    auto [parent_path, name] = SplitLast(path);
    auto parent = OpenDir(target_, parent_path);
    if (!parent.ok()) {
      if (allow_not_found && parent.error().sys_errno() == ENOENT) return core::Ok();
      return std::move(parent).error().Context("rm " + path);
    }
    struct stat st;
    if (::fstatat(parent->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT && allow_not_found) return core::Ok();
      return core::SysError("rm " + path);
    }
    return RemoveAt(parent->get(), name).Context("rm " + path);
  }

  const FileOpEnv& env_;
  int target_;
  size_t copied_ = 0;  // what the op's copy actions' sources matched
};

std::string Describe(const FileAction& action) {
  return std::visit(
      [](const auto& a) -> std::string {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, CopyAction>) {
          return "copy " + Quote(a.src) + " to " + Quote(a.dest);
        } else if constexpr (std::is_same_v<T, MkdirAction>) {
          return "mkdir " + Quote(a.path);
        } else if constexpr (std::is_same_v<T, MkfileAction>) {
          return "mkfile " + Quote(a.path);
        } else if constexpr (std::is_same_v<T, RmAction>) {
          return "rm " + Quote(a.path);
        } else {
          return "symlink " + Quote(a.newpath) + " -> " + Quote(a.oldpath);
        }
      },
      action);
}

}  // namespace

Status ApplyFileOp(const FileOp& op, const FileOpEnv& env) {
  XB_ASSIGN_CTX(UniqueFd target, OpenRoot(env.target), "file op target");
  Runner runner(env, target.get());
  bool only_copies = !op.actions.empty();
  std::string patterns;
  for (const FileActionStep& step : op.actions) {
    Status s = std::visit([&](const auto& a) { return runner.Apply(a); }, step.action);
    if (!s.ok()) return std::move(s).Context(Describe(step.action));
    if (auto* c = std::get_if<CopyAction>(&step.action)) {
      patterns += (patterns.empty() ? "" : ", ") + Quote(c->src);
    } else {
      only_copies = false;
    }
  }
  // `COPY foo nomatch* /` copies foo; a COPY none of whose sources matches anything fails.
  if (only_copies && runner.CopiedNothing()) {
    return Error(Code::kNotFound, "no source files were specified: nothing matches " + patterns);
  }
  return core::Ok();
}

}  // namespace xbuild::solver::ops
