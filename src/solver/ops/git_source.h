// Git repositories: ADD <git URL> (BuildKit's git source) and git build contexts.
//
// CheckoutGit clones with libgit2 into a private directory under the state root (a ContextDir:
// removed by its owner, and after a kill by CleanupStaleContexts), resolves the ref (a branch,
// then a tag, then a full ref name or a commit id or prefix; none = the remote's HEAD) to a
// commit, checks it out, and:
//  - --checksum: the commit id (or an annotated tag's id) must start with it;
//  - the subdir is resolved inside the checkout (core::SecureJoin: a symlink cannot lead out of
//    it; "../" was refused when the URL was parsed) and must be a directory;
//  - .git is removed unless keep_git_dir;
//  - every entry's mtime is set to the commit time (BuildKit's git.mtime=commit), so the same
//    commit gives the same files, and the same layer, on every build and machine.
// Submodules are not checked out. The clone is complete (libgit2 1.5 has no shallow fetch).
//
// GitSource is the runner's side of ADD: the source's attrs are `git.fullurl`, `git.ref`,
// `git.subdir`, `git.keepgitdir` ("true") and `git.checksum`; only remote URLs are accepted
// there (http, https, git, ssh, scp-like), never a path of this machine. Its content key is
// the commit id with the subdir and keep flag, so a branch that moved reruns the ADD and an
// unchanged one is CACHED; the checkout made for the key is kept for the snapshot.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "core/result.h"
#include "solver/definition.h"
#include "solver/ops/context_archive.h"
#include "solver/ops/fetched.h"

namespace xbuild::solver::ops {

struct GitSpec {
  std::string remote;    // URL or local path as libgit2 takes it
  std::string ref;       // "" = HEAD
  std::string subdir;    // relative, cleaned; "" = the root
  std::string checksum;  // hex prefix of the commit id; "" = none
  bool keep_git_dir = false;
};

struct GitCheckout {
  std::unique_ptr<ContextDir> dir;  // owns the clone
  std::string root;                 // the subdir, resolved inside the clone (absolute)
  std::string commit;               // full hex id
  int64_t commit_time = 0;          // seconds since the epoch
};

core::Result<GitCheckout> CheckoutGit(const std::string& state_root, const GitSpec& spec,
                                      const std::atomic<bool>* cancel);

bool IsGitSource(const SourceOp& src);

class GitSource {
 public:
  // `local_allowed`: file:// repositories whoever runs the build named (build --build-context);
  // every other local repository is refused (a Dockerfile must not read the machine's files).
  explicit GitSource(std::string state_root, std::set<std::string> local_allowed = {})
      : state_root_(std::move(state_root)), local_allowed_(std::move(local_allowed)) {}

  core::Result<std::string> Key(const core::Digest& vertex, const SourceOp& src,
                                const std::atomic<bool>* cancel);
  // Copies the checkout (its subdir) into `dir`, an empty snapshot; entries become 0:0.
  core::Status Snapshot(const core::Digest& vertex, const SourceOp& src, const std::string& dir,
                        const std::atomic<bool>* cancel);

 private:
  core::Result<GitSpec> SpecOf(const SourceOp& src) const;

  std::string state_root_;
  std::set<std::string> local_allowed_;
  Fetched<std::shared_ptr<GitCheckout>> checkouts_;
};

}  // namespace xbuild::solver::ops
