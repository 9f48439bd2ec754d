// Build contexts that are not a directory: a tar archive (plain, gzip, bzip2, xz or zstd, told
// by its content), from a file or from stdin, extracted for the length of one build into a
// private directory under the state root (also where a git context or ADD's git source is
// checked out and ADD's URL downloads land, git_source.h and http_source.h):
//
//   contexts/<id>/owner.json   the owning xbuild process (exec::WriteOwner)
//   contexts/<id>/ctx/         the extracted context (a clone; a download)
//   contexts/<id>/stdin        stdin, kept while it is told apart (a tar, or a Dockerfile)
//
// Extraction is UnpackArchive's (ADD's): every write resolves inside ctx/, names climbing out
// ("../x") are refused, absolute names land inside, and a symlink the archive plants is never
// followed out of it. The owner removes the directory when it is destroyed, so a build that
// ends (success, error, Ctrl-C) leaves nothing; CleanupStaleContexts removes those of processes
// that died without cleaning up (SIGKILL), and is run by every command that opens the store.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "core/fd.h"
#include "core/result.h"

namespace xbuild::solver::ops {

class ContextDir {
 public:
  static core::Result<std::unique_ptr<ContextDir>> Create(const std::string& state_root);
  ~ContextDir();
  ContextDir(const ContextDir&) = delete;
  ContextDir& operator=(const ContextDir&) = delete;

  // The extracted context (empty until Extract).
  const std::string& context() const { return context_; }

  // Extracts the archive open for reading at fd (from offset 0) into context() and returns
  // true; false, having written nothing, when it is not a tar archive with an entry.
  core::Result<bool> Extract(int fd);
  // Copies all of fd (a pipe, a terminal) into a file of this directory and returns that file,
  // open for reading at offset 0; kCancelled once *cancel is true (checked at least every 100ms).
  core::Result<core::UniqueFd> Spool(int fd, const std::atomic<bool>* cancel);

 private:
  explicit ContextDir(std::string dir) : dir_(std::move(dir)), context_(dir_ + "/ctx") {}
  std::string dir_;
  std::string context_;
};

// Removes contexts/<id> directories whose owner process is gone.
core::Status CleanupStaleContexts(const std::string& state_root);

}  // namespace xbuild::solver::ops
