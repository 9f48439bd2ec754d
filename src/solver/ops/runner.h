// BuildRunner: the OpRunner of real builds. Each op becomes a snapshot:
//   Source docker-image  -> the image from the local store (or pulled: missing, or --pull),
//                           unpacked once into a committed snapshot; content key = its config
//                           digest
//   Source local://      -> the part of the context the source selects (its COPY's paths minus
//                           .dockerignore, context_tree.h) copied into a committed snapshot;
//                           content key = the checksum of that selection, file digests from the
//                           context's stat-keyed ChecksumCache. ContentKey keeps the manifest it
//                           checksummed and Run copies exactly that, verifying each file as it
//                           copies it, so the snapshot is what its key names.
//   Exec (RUN)           -> a new snapshot over the rootfs input, mounted, the process run in
//                           the sandbox (exec::Run), then committed; a non-zero exit fails the
//                           step with Docker's message
//   Source http(s)://    -> ADD <url>: one downloaded file (http_source.h); content key = its
//                           sha256, or the --checksum
//   Source git://        -> ADD <git url>: a checkout (git_source.h); content key = the commit
//   File (COPY, WORKDIR) -> a new snapshot over input 0, the actions applied to its mount
// Outputs are snapshot ids (Ref), which the exporter turns into layers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cache/image_store.h"
#include "exec/cdi.h"
#include "exec/netns_pool.h"
#include "exec/snapshot.h"
#include "image/manifest.h"
#include "registry/client.h"
#include "solver/ops/checksum_cache.h"
#include "solver/ops/context_tree.h"
#include "solver/ops/git_source.h"
#include "solver/ops/http_source.h"
#include "solver/ops/run_mounts.h"
#include "solver/scheduler.h"

namespace xbuild::solver::ops {

// Output of a running step: (vertex, 1 = stdout / 2 = stderr, bytes).
using StepOutputFn = std::function<void(const Vertex&, int, std::string_view)>;

struct RunnerOptions {
  std::string context_dir;  // the build context, absolute ("" when the build has none)
  // Where the context's checksum cache persists across builds (<root>/checksums); "" keeps it
  // in memory only (a context extracted from a tar is new on every build).
  std::string checksum_dir;
  bool pull = false;        // --pull: always ask the registry for base images
  image::Platform platform = image::HostPlatform();
  registry::Client* registry = nullptr;  // null: only local images
  StepOutputFn output;
  core::Logger* log = nullptr;
  RunMountSources mount_sources;  // --secret, --ssh
  registry::Transport* http = nullptr;  // ADD <url>; null: a CurlTransport of the runner's own
  // The build's lease: base images resolved are held by it ("image" resources), so a prune
  // running beside the build leaves them (and, through the snapshotter's lease, their snapshots).
  std::string lease;
  std::vector<std::string> cdi_spec_dirs = exec::DefaultCdiSpecDirs();  // RUN --device (exec/cdi.h)
  // The network of a RUN step that names none (`build --network`): kDefault is a namespace of
  // its own from netns_pool, with a way out; kHost and kNone as named.
  NetworkMode default_network = NetworkMode::kDefault;
  exec::NetnsPool* netns_pool = nullptr;  // null: kDefault steps use the host's network
  // RUN --network=host needs the network.host entitlement (--allow network.host, or
  // --network host on the command line), as in BuildKit.
  bool allow_host_network = false;
  std::vector<exec::Rlimit> ulimits;  // --ulimit
  // --build-context NAME=DIR: the directory of each `local://NAME` source (absolute).
  std::map<std::string, std::string> named_contexts;
  std::vector<std::string> named_git_contexts;  // --build-context NAME=<git url> (file:// allowed)
  int64_t shm_size = 0;               // --shm-size; 0: Docker's 64 MiB
};

class BuildRunner : public OpRunner {
 public:
  BuildRunner(cache::ImageStore& store, exec::Snapshotter& snaps, RunnerOptions opts);

  Result<std::string> ContentKey(const Vertex& v, const std::vector<Ref>& inputs) override;
  Result<VertexResult> Run(const Vertex& v, const std::vector<Ref>& inputs, const std::string& cache_key,
                           const CancelToken& cancel) override;

  // The image a docker-image source resolved to (after ContentKey or Run saw it).
  Result<cache::ResolvedImage> ResolveImage(const std::string& identifier);

 private:
  Result<VertexResult> RunExec(const Vertex& v, const ExecOp& op, const std::vector<Ref>& inputs,
                               const CancelToken& cancel);
  // The step's network: the sandbox's mode and namespace, and the pooled namespace to give back.
  Status StepNetwork(const ExecOp& op, exec::SandboxOptions& sandbox, std::string& pooled);
  Result<VertexResult> RunFile(const Vertex& v, const FileOp& op, const std::vector<Ref>& inputs);
  Result<VertexResult> RunMerge(const std::vector<Ref>& inputs);
  Result<std::string> ContextKey(const Vertex& v, const SourceOp& src);
  Result<VertexResult> RunContext(const Vertex& v, const SourceOp& src, const CancelToken& cancel);
  Result<VertexResult> RunRemote(const Vertex& v, const SourceOp& src, const CancelToken& cancel);
  ChecksumCache& Checksums(const std::string& dir);
  Result<std::string> LocalDir(const SourceOp& src) const;
  Result<cache::ResolvedImage> Hold(cache::ResolvedImage img, const std::string& name);

  cache::ImageStore& store_;
  exec::Snapshotter& snaps_;
  RunnerOptions opts_;
  std::mutex mu_;
  std::once_flag netns_warned_;  // the host-network fallback is warned about once
  std::map<std::string, cache::ResolvedImage> images_;  // guarded by mu_: identifier -> image
  std::unique_ptr<ChecksumCache> checksums_;             // guarded by mu_ (created once)
  std::map<std::string, std::unique_ptr<ChecksumCache>> named_checksums_;  // guarded by mu_
  // What ContentKey checksummed for each context source, for its Run to copy.
  std::map<core::Digest, std::shared_ptr<const ContextManifest>> manifests_;  // guarded by mu_
  std::unique_ptr<registry::Transport> own_http_;  // when opts_.http is null
  std::unique_ptr<HttpSource> http_;
  std::unique_ptr<GitSource> git_;
};

// Docker's message for a failed RUN: `process "/bin/sh -c false" did not complete
// successfully: exit code: 1`.
std::string ProcessFailure(const std::vector<std::string>& args, int exit_code);

}  // namespace xbuild::solver::ops
