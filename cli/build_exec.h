// Running a build (`xbuild build` with --call=build, the default): lower the Dockerfile, solve it
// with the real runner (snapshots, sandbox, build cache), export the image, tag it.
#pragma once

#include <string>
#include <vector>

#include "cli/build_output.h"
#include "cli/cli.h"
#include "exec/host_options.h"
#include "frontend/ast.h"
#include "frontend/lower.h"
#include "solver/ops/remote_cache.h"
#include "solver/ops/run_mounts.h"

namespace xbuild::cli {

struct BuildRequest {
  frontend::Dockerfile df;
  std::string dockerfile_path;
  std::string dockerfile_text;
  std::string context;  // an absolute directory; "" = the build has no context
  // The context is the user's directory: its checksum cache is kept under the state root for
  // the next build (an extracted archive is new every time).
  bool keep_checksums = true;
  frontend::LowerOptions lower;
  std::vector<std::string> tags;
  std::vector<std::string> labels;  // "k=v"
  bool no_cache = false;
  bool pull = false;
  bool quiet = false;
  std::string progress = "auto";  // auto|plain|tty|quiet|rawjson
  std::string iidfile;
  std::string metadata_file;
  bool oci_mediatypes = true;
  std::vector<BuildOutput> outputs;  // -o
  bool push = false;
  image::Compression compression = image::Compression::kGzip;
  solver::ops::RunMountSources mount_sources;  // --secret, --ssh
  std::vector<solver::ops::CacheLocation> cache_from, cache_to;
  // RUN steps: --network (default: a namespace of their own), --allow network.host, --ulimit,
  // --shm-size.
  solver::NetworkMode network = solver::NetworkMode::kDefault;
  bool allow_host_network = false;
  std::vector<exec::Rlimit> ulimits;
  int64_t shm_size = 0;
  std::map<std::string, std::string> annotations;  // --annotation: on the image manifest
};

// --secret id=ID[,src=FILE|,env=VAR][,type=file|env] -> (id, bytes), read now (at most 500 KiB,
// BuildKit's limit). With neither src nor env, the environment variable named ID, else ./ID.
core::Result<std::pair<std::string, std::string>> ParseSecretFlag(const std::string& spec);
// --ssh default | ID=SOCKET[,SOCKET] -> (id, socket path); "default" alone is $SSH_AUTH_SOCK.
core::Result<std::pair<std::string, std::string>> ParseSshFlag(const std::string& spec);

int ExecuteBuild(Cli& cli, BuildRequest req);

}  // namespace xbuild::cli
