#include "solver/ops/git_source.h"

#include <fcntl.h>
#include <git2.h>
#include <sys/stat.h>

#include <filesystem>
#include <mutex>
#include <vector>

#include "core/dynlib.h"
#include "core/fs.h"
#include "core/path.h"
#include "frontend/source_url.h"
#include "solver/ops/file_op.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

namespace {

// libgit2, opened on the first git source (core/dynlib.h) under the SONAME of the version we
// were built against (git2/version.h). It keeps process-wide state (allocator, TLS,
// transports): set up once and never shut down, so a checkout can start on any thread at any
// time.
struct GitApi {
  decltype(&::git_libgit2_init) libgit2_init = nullptr;
  decltype(&::git_error_last) error_last = nullptr;
  decltype(&::git_repository_free) repository_free = nullptr;
  decltype(&::git_object_free) object_free = nullptr;
  decltype(&::git_credential_ssh_key_from_agent) credential_ssh_key_from_agent = nullptr;
  decltype(&::git_revparse_single) revparse_single = nullptr;
  decltype(&::git_oid_tostr) oid_tostr = nullptr;
  decltype(&::git_clone_options_init) clone_options_init = nullptr;
  decltype(&::git_clone) clone = nullptr;
  decltype(&::git_object_peel) object_peel = nullptr;
  decltype(&::git_object_id) object_id = nullptr;
  decltype(&::git_commit_time) commit_time = nullptr;
  decltype(&::git_checkout_options_init) checkout_options_init = nullptr;
  decltype(&::git_checkout_tree) checkout_tree = nullptr;
  decltype(&::git_repository_set_head_detached) repository_set_head_detached = nullptr;
};

Result<GitApi> LoadGit() {
  XB_ASSIGN(core::DynLib lib,
            core::DynLib::Open("libgit2.so." LIBGIT2_SOVERSION, "libgit2-" LIBGIT2_SOVERSION));
  GitApi g;
  XB_TRY(lib.Bind(g.libgit2_init, "git_libgit2_init"));
  XB_TRY(lib.Bind(g.error_last, "git_error_last"));
  XB_TRY(lib.Bind(g.repository_free, "git_repository_free"));
  XB_TRY(lib.Bind(g.object_free, "git_object_free"));
  XB_TRY(lib.Bind(g.credential_ssh_key_from_agent, "git_credential_ssh_key_from_agent"));
  XB_TRY(lib.Bind(g.revparse_single, "git_revparse_single"));
  XB_TRY(lib.Bind(g.oid_tostr, "git_oid_tostr"));
  XB_TRY(lib.Bind(g.clone_options_init, "git_clone_options_init"));
  XB_TRY(lib.Bind(g.clone, "git_clone"));
  XB_TRY(lib.Bind(g.object_peel, "git_object_peel"));
  XB_TRY(lib.Bind(g.object_id, "git_object_id"));
  XB_TRY(lib.Bind(g.commit_time, "git_commit_time"));
  XB_TRY(lib.Bind(g.checkout_options_init, "git_checkout_options_init"));
  XB_TRY(lib.Bind(g.checkout_tree, "git_checkout_tree"));
  XB_TRY(lib.Bind(g.repository_set_head_detached, "git_repository_set_head_detached"));
  g.libgit2_init();
  return g;
}

const Result<GitApi>& Git() {
  static const Result<GitApi> api = LoadGit();
  return api;
}

Error GitError(const std::string& what) {
  const git_error* e = Git()->error_last();
  return Error(Code::kUnavailable,
               what + ": " + (e && e->message ? e->message : "unknown libgit2 error"));
}

struct RepoFree {
  void operator()(git_repository* p) const { Git()->repository_free(p); }
};
struct ObjectFree {
  void operator()(git_object* p) const { Git()->object_free(p); }
};
using Repo = std::unique_ptr<git_repository, RepoFree>;
using Object = std::unique_ptr<git_object, ObjectFree>;

struct FetchPayload {
  const std::atomic<bool>* cancel = nullptr;
  int credential_tries = 0;
};

// Returning non-zero aborts the transfer: how Ctrl-C (or a failed sibling step) stops a clone.
int OnTransfer(const git_indexer_progress*, void* payload) {
  auto* p = static_cast<FetchPayload*>(payload);
  return p->cancel && p->cancel->load() ? -1 : 0;
}

// ssh remotes authenticate with the agent (SSH_AUTH_SOCK), once: libgit2 asks again after a
// refusal, and asking forever would hang the build.
int OnCredentials(git_credential** out, const char*, const char* user_from_url,
                  unsigned int allowed, void* payload) {
  auto* p = static_cast<FetchPayload*>(payload);
  if (!(allowed & GIT_CREDENTIAL_SSH_KEY) || p->credential_tries++ > 0) return GIT_PASSTHROUGH;
  return Git()->credential_ssh_key_from_agent(out, user_from_url ? user_from_url : "git");
}

// The ref as a branch of the remote, a tag, then anything else git resolves by name (a full
// ref name, a commit id or prefix). ParseGitRef admitted only name characters, so this is never
// a revision expression.
Result<Object> ResolveRef(git_repository* repo, const GitSpec& spec) {
  std::vector<std::string> names;
  if (spec.ref.empty()) {
    names = {"HEAD"};
  } else {
    names = {"refs/remotes/origin/" + spec.ref, "refs/tags/" + spec.ref, spec.ref};
  }
  for (const auto& n : names) {
    git_object* o = nullptr;
    if (Git()->revparse_single(&o, repo, n.c_str()) == 0) return Object(o);
  }
  return Error(Code::kNotFound, spec.remote + ": no branch, tag or commit named \"" +
                                    (spec.ref.empty() ? "HEAD" : spec.ref) + "\"");
}

std::string OidHex(const git_oid* id) {
  char buf[GIT_OID_HEXSZ + 1];
  Git()->oid_tostr(buf, sizeof buf, id);
  return buf;
}

// Every entry's mtime (symlinks' own included) becomes the commit time.
Status SetTimes(const std::string& root, int64_t when) {
  struct timespec ts[2] = {{static_cast<time_t>(when), 0}, {static_cast<time_t>(when), 0}};
  std::error_code ec;
  std::vector<std::string> paths{root};
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    paths.push_back(it->path().string());
  }
  if (ec) return Error(Code::kIo, "walk " + root + ": " + ec.message());
  // Children before their directories, so setting a child's time does not touch the parent's.
  for (auto p = paths.rbegin(); p != paths.rend(); ++p) {
    if (::utimensat(AT_FDCWD, p->c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return core::SysError("set the mtime of " + *p);
    }
  }
  return core::Ok();
}

std::string Attr(const SourceOp& src, const std::string& name) {
  auto it = src.attrs.find(name);
  return it == src.attrs.end() ? "" : it->second;
}

}  // namespace

// The spec of an ADD's git source. A Dockerfile only names remote repositories: a path or
// file:// URL here would read this machine's files outside the context (unless the user named
// it as a build context).
Result<GitSpec> GitSource::SpecOf(const SourceOp& src) const {
  GitSpec s;
  s.remote = Attr(src, "git.fullurl");
  s.ref = Attr(src, "git.ref");
  s.subdir = Attr(src, "git.subdir");
  s.checksum = Attr(src, "git.checksum");
  s.keep_git_dir = Attr(src, "git.keepgitdir") == "true";
  bool allowed_local = s.remote.starts_with("file://") && local_allowed_.count(s.remote);
  if (!frontend::IsGitUrl(s.remote) || (s.remote.starts_with("file://") && !allowed_local)) {
    return Error(Code::kPermissionDenied, "git source " + s.remote + ": not a remote repository");
  }
  if (core::EscapesRoot(core::CleanPath(s.subdir))) {
    return Error(Code::kPermissionDenied, s.remote + ": subdir " + s.subdir + " climbs out");
  }
  return s;
}

bool IsGitSource(const SourceOp& src) { return src.identifier.starts_with("git://"); }

Result<GitCheckout> CheckoutGit(const std::string& state_root, const GitSpec& spec,
                                const std::atomic<bool>* cancel) {
  if (!Git().ok()) return Git().error();
  const GitApi& git = *Git();
  GitCheckout out;
  XB_ASSIGN(out.dir, ContextDir::Create(state_root));
  const std::string& clone = out.dir->context();
  std::string what = "git " + spec.remote + (spec.ref.empty() ? "" : "#" + spec.ref);

  FetchPayload payload;
  payload.cancel = cancel;
  git_clone_options opts;
  git.clone_options_init(&opts, GIT_CLONE_OPTIONS_VERSION);
  opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;  // the ref's tree is checked out below
  opts.fetch_opts.callbacks.transfer_progress = OnTransfer;
  opts.fetch_opts.callbacks.credentials = OnCredentials;
  opts.fetch_opts.callbacks.payload = &payload;
  git_repository* raw = nullptr;
  if (git.clone(&raw, spec.remote.c_str(), clone.c_str(), &opts) != 0) {
    if (cancel && cancel->load()) return Error(Code::kCancelled, what + ": cancelled");
    return GitError("clone " + spec.remote);
  }
  Repo repo(raw);
  XB_ASSIGN(Object target, ResolveRef(repo.get(), spec));
  git_object* peeled = nullptr;
  if (git.object_peel(&peeled, target.get(), GIT_OBJECT_COMMIT) != 0) {
    return GitError(what + ": not a commit");
  }
  Object commit(peeled);
  out.commit = OidHex(git.object_id(commit.get()));
  out.commit_time = git.commit_time(reinterpret_cast<const git_commit*>(commit.get()));
  if (!spec.checksum.empty()) {
    std::string tag = OidHex(git.object_id(target.get()));  // an annotated tag's own id
    if (!out.commit.starts_with(spec.checksum) && !tag.starts_with(spec.checksum)) {
      return Error(Code::kFailedPrecondition, what + ": checksum mismatch: expected commit " +
                                                  spec.checksum + ", got " + out.commit);
    }
  }
  git_checkout_options co;
  git.checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
  co.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git.checkout_tree(repo.get(), commit.get(), &co) != 0 ||
      git.repository_set_head_detached(repo.get(), git.object_id(commit.get())) != 0) {
    return GitError(what + ": check out " + out.commit);
  }
  commit.reset();
  target.reset();
  repo.reset();
  if (!spec.keep_git_dir) {
    XB_TRY(core::RemoveAll(core::JoinPath(clone, ".git")));
  }
  XB_TRY(SetTimes(clone, out.commit_time));

  XB_ASSIGN(out.root, core::SecureJoin(clone, spec.subdir));
  struct stat st;
  if (::lstat(out.root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(Code::kNotFound, what + ": no directory \"" + spec.subdir + "\" in it");
  }
  return out;
}

Result<std::string> GitSource::Key(const core::Digest& vertex, const SourceOp& src,
                                   const std::atomic<bool>* cancel) {
  XB_ASSIGN(GitSpec spec, SpecOf(src));
  XB_ASSIGN(GitCheckout co, CheckoutGit(state_root_, spec, cancel));
  // The subdir and keep flag are attrs, so in the vertex digest already: the commit says the rest.
  std::string key = "git-commit:" + co.commit;
  checkouts_.Put(vertex, std::make_shared<GitCheckout>(std::move(co)));
  return key;
}

Status GitSource::Snapshot(const core::Digest& vertex, const SourceOp& src, const std::string& dir,
                           const std::atomic<bool>* cancel) {
  std::optional<std::shared_ptr<GitCheckout>> co = checkouts_.Take(vertex);
  if (!co) {  // Run without ContentKey first: check out now
    XB_ASSIGN(GitSpec spec, SpecOf(src));
    XB_ASSIGN(GitCheckout fresh, CheckoutGit(state_root_, spec, cancel));
    co = std::make_shared<GitCheckout>(std::move(fresh));
  }
  // The checkout's tree, copied as COPY copies a directory: symlinks as symlinks, modes and
  // (commit) mtimes kept, owners 0:0.
  FileOp copy;
  CopyAction all;
  all.src_input = 0;
  all.src = "/";
  all.dest = "/";
  all.follow_symlinks = false;
  copy.actions.push_back({-1, all});
  FileOpEnv env;
  env.target = dir;
  env.inputs.push_back(FileOpInput{(*co)->root, true});
  return ApplyFileOp(copy, env);
}

}  // namespace xbuild::solver::ops
