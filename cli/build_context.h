// Where `xbuild build PATH` takes its context and Dockerfile from, as `docker build` does, plus
// tar files:
//
//   PATH a directory  the context; the Dockerfile is -f (a host path; "-" = stdin) or
//                     PATH/Dockerfile; the ignore file <Dockerfile>.dockerignore or
//                     PATH/.dockerignore
//   PATH a file       a tar archive (plain, gzip, bzip2, xz, zstd), extracted under the state
//                     root (solver/ops/context_archive.h); -f names a path inside it (default
//                     Dockerfile), or "-" (stdin); its own .dockerignore applies
//   -                 stdin: a tar archive, taken as a file is; anything else is the
//                     Dockerfile, and the build has no context (a COPY from it fails)
//   URL#ref:subdir    a git repository (https://….git, git://, ssh://, git@host:path, file://,
//                     or a local path ending in .git): checked out under the state root
//                     (solver/ops/git_source.h), the context is its subdir; -f names a path
//                     inside that (default Dockerfile)
#pragma once

#include <memory>
#include <string>

#include "cli/cli.h"
#include "frontend/dockerignore.h"
#include "solver/ops/context_archive.h"

namespace xbuild::cli {

struct BuildInput {
  std::string context_dir;  // absolute; "" = the build has no context
  std::string dockerfile_text;
  std::string dockerfile_path;  // on the host, for messages; "-" for stdin
  std::string dockerfile_name;  // what errors call it ("Dockerfile")
  frontend::DockerIgnore ignore;
  // Set for an extracted archive: owns (and removes) the directory context_dir is in.
  std::unique_ptr<solver::ops::ContextDir> extracted;
};

core::Result<BuildInput> LoadBuildInput(Cli& cli, const std::string& path,
                                        const std::string& file_flag);

}  // namespace xbuild::cli
