#include "solver/ops/runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "exec/network.h"
#include "exec/sandbox.h"
#include "exec/user.h"
#include "frontend/dockerignore.h"
#include "image/manifest.h"
#include "solver/ops/file_op.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;

namespace {

constexpr std::string_view kImageScheme = "docker-image://";
constexpr std::string_view kLocalScheme = "local://";

// Runs fn on a fresh snapshot over `parent`, mounted; commits it when fn succeeds and removes
// it otherwise.
Result<std::string> WithNewSnapshot(exec::Snapshotter& snaps, const std::string& parent,
                                    const std::function<Status(const std::string& mount)>& fn) {
  XB_ASSIGN(std::string id, snaps.Prepare(parent));
  auto mounted = snaps.Mount(id);
  Status s = mounted.ok() ? fn(*mounted) : Status(std::move(mounted).error());
  Status u = snaps.Unmount(id);
  if (s.ok()) s = u;
  if (s.ok()) s = snaps.Commit(id);
  if (!s.ok()) {
    (void)snaps.Remove(id);
    return std::move(s).error();
  }
  return id;
}

// The .dockerignore patterns the frontend put on a context source.
Result<frontend::DockerIgnore> ContextIgnore(const SourceOp& src) {
  auto it = src.attrs.find("local.excludepatterns");
  if (it == src.attrs.end()) return frontend::DockerIgnore();
  auto j = core::Json::parse(it->second, nullptr, false);
  std::string text;
  if (j.is_array()) {
    for (const auto& p : j) {
      if (p.is_string()) text += p.get<std::string>() + "\n";
    }
  }
  return frontend::DockerIgnore::Parse(text);
}

// What a context source reads: its COPY's paths (local.followpaths) minus .dockerignore.
Result<ContextSelection> SelectionOf(const SourceOp& src) {
  ContextSelection sel;
  XB_ASSIGN(sel.ignore, ContextIgnore(src));
  if (auto it = src.attrs.find("local.followpaths"); it != src.attrs.end()) {
    auto j = core::Json::parse(it->second, nullptr, false);
    Error bad(Code::kInvalidArgument, "local.followpaths: want a JSON array of paths");
    if (!j.is_array()) return bad;
    for (const auto& p : j) {
      if (!p.is_string()) return bad;
      sel.includes.push_back(p.get<std::string>());
    }
  }
  return sel;
}

}  // namespace

std::string ProcessFailure(const std::vector<std::string>& args, int exit_code) {
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  return "process \"" + cmd + "\" did not complete successfully: exit code: " + std::to_string(exit_code);
}

BuildRunner::BuildRunner(cache::ImageStore& store, exec::Snapshotter& snaps, RunnerOptions opts)
    : store_(store), snaps_(snaps), opts_(std::move(opts)) {
  if (!opts_.http) own_http_ = std::make_unique<registry::CurlTransport>(registry::TransportOptions{});
  http_ = std::make_unique<HttpSource>(opts_.http ? *opts_.http : *own_http_, store_.root());
  std::set<std::string> named_repos;  // --build-context NAME=file://...: the user named them
  for (const auto& url : opts_.named_git_contexts) named_repos.insert(url);
  git_ = std::make_unique<GitSource>(store_.root(), std::move(named_repos));
}

Result<cache::ResolvedImage> BuildRunner::ResolveImage(const std::string& identifier) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = images_.find(identifier);
    if (it != images_.end()) return it->second;
  }
  std::string name = identifier.substr(kImageScheme.size());
  XB_ASSIGN(image::Reference ref, image::ParseReference(name));
  std::optional<cache::ResolvedImage> img;
  if (!opts_.pull) {
    auto local = store_.Resolve(ref.String());
    if (local.ok()) local = Hold(std::move(*local), ref.String());
    if (local.ok()) {
      img = std::move(*local);
    } else if (local.error().code() != Code::kNotFound) {
      return std::move(local).error();
    }
  }
  if (!img) {
    if (!opts_.registry) {
      return Error(Code::kNotFound, ref.Familiar() + ": not in the local store, and no registry to pull it from");
    }
    XB_ASSIGN_CTX(registry::PullResult pulled, opts_.registry->Pull(store_, ref, opts_.platform, nullptr),
                  "load base image");
    XB_ASSIGN(cache::ResolvedImage loaded, store_.Load(pulled.record));
    XB_ASSIGN(cache::ResolvedImage r, Hold(std::move(loaded), ref.String()));
    img = std::move(r);
  }
  std::lock_guard<std::mutex> l(mu_);
  images_[identifier] = *img;
  return *img;
}

// An image found in the store, held by the build's lease: taken, then looked up again, so an
// image a prune removed in between is not used (kNotFound, as if it had never been there).
Result<cache::ResolvedImage> BuildRunner::Hold(cache::ResolvedImage img, const std::string& name) {
  if (opts_.lease.empty()) return img;
  XB_TRY(store_.db().AddLeaseResource(opts_.lease, "image", img.record.digest.String()));
  XB_ASSIGN(auto still, store_.db().GetImage(img.record.digest));
  if (!still) return Error(Code::kNotFound, "No such image: " + name + " (removed as the build took it)");
  return img;
}

Result<std::string> BuildRunner::ContentKey(const Vertex& v, const std::vector<Ref>&) {
  const auto* src = std::get_if<SourceOp>(&v.op);
  if (!src) return std::string();
  if (src->identifier.starts_with(kImageScheme)) {
    XB_ASSIGN(cache::ResolvedImage img, ResolveImage(src->identifier));
    // The image's config digest (its ID: the layers' diff_ids, env, ...), not its manifest's:
    // the same image pulled from a registry, loaded from an archive or stored with other layer
    // compressions gives the same keys, so caches made on one root serve another.
    return img.record.config.String();
  }
  if (src->identifier.starts_with(kLocalScheme)) return ContextKey(v, *src);
  if (IsGitSource(*src)) return git_->Key(v.digest, *src, nullptr);
  if (IsHttpSource(*src)) return http_->Key(v.digest, *src, nullptr);
  return Error(Code::kInvalidArgument, "source " + src->identifier + " is not supported yet");
}

Result<VertexResult> BuildRunner::Run(const Vertex& v, const std::vector<Ref>& inputs, const std::string&,
                                      const CancelToken& cancel) {
  if (const auto* src = std::get_if<SourceOp>(&v.op)) {
    if (src->identifier.starts_with(kLocalScheme)) return RunContext(v, *src, cancel);
    if (IsGitSource(*src) || IsHttpSource(*src)) return RunRemote(v, *src, cancel);
    XB_ASSIGN(cache::ResolvedImage img, ResolveImage(src->identifier));
    XB_ASSIGN(std::string id, snaps_.FromImage(img));
    return VertexResult{{Ref{id}}};
  }
  if (const auto* e = std::get_if<ExecOp>(&v.op)) return RunExec(v, *e, inputs, cancel);
  if (const auto* f = std::get_if<FileOp>(&v.op)) return RunFile(v, *f, inputs);
  if (std::holds_alternative<MergeOp>(v.op)) return RunMerge(inputs);
  return Error(Code::kInvalidArgument, std::string(OpKind(v.op)) + " ops are not supported yet");
}

// The directory a local:// source names: the build context, or a --build-context directory.
Result<std::string> BuildRunner::LocalDir(const SourceOp& src) const {
  std::string name = src.identifier.substr(kLocalScheme.size());
  if (name == "context") {
    if (opts_.context_dir.empty()) {
      return Error(Code::kFailedPrecondition,
                   "this build has no context to copy from (a Dockerfile read from stdin comes "
                   "without one)");
    }
    return opts_.context_dir;
  }
  auto it = opts_.named_contexts.find(name);
  if (it == opts_.named_contexts.end()) return Error(Code::kNotFound, "no build context named " + name);
  return it->second;
}

ChecksumCache& BuildRunner::Checksums(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  if (dir != opts_.context_dir) {  // a named context's: in memory, for this build
    auto& c = named_checksums_[dir];
    if (!c) c = std::make_unique<ChecksumCache>();
    return *c;
  }
  if (!checksums_) {
    checksums_ = opts_.checksum_dir.empty()
                     ? std::make_unique<ChecksumCache>()
                     : ChecksumCache::Open(opts_.checksum_dir, opts_.context_dir);
  }
  return *checksums_;
}

// A COPY's context source is keyed by the checksum of exactly what it selects: that key is
// the FileOp's input key, so the COPY (and what follows it) reruns only when a file it can read
// changed. The manifest is kept for Run, which copies those entries and no others.
Result<std::string> BuildRunner::ContextKey(const Vertex& v, const SourceOp& src) {
  XB_ASSIGN(std::string dir, LocalDir(src));
  XB_ASSIGN(ContextSelection sel, SelectionOf(src));
  ChecksumCache& cache = Checksums(dir);
  XB_ASSIGN_CTX(ContextManifest m, ChecksumContext(dir, sel, cache),
                "checksum the build context");
  // The cache is a hint: failing to keep it costs the next build a re-read, not this build.
  if (Status s = cache.Save(); !s.ok() && opts_.log) opts_.log->Warn(s.error().ToString());
  std::string key = m.key.String();
  std::lock_guard<std::mutex> l(mu_);
  manifests_[v.digest] = std::make_shared<const ContextManifest>(std::move(m));
  return key;
}

Result<VertexResult> BuildRunner::RunContext(const Vertex& v, const SourceOp& src,
                                             const CancelToken& cancel) {
  std::shared_ptr<const ContextManifest> m;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = manifests_.find(v.digest);
    if (it != manifests_.end()) {
      m = std::move(it->second);
      manifests_.erase(it);
    }
  }
  if (!m) {  // Run without ContentKey first: take the checksum now
    auto key = ContextKey(v, src);
    if (!key.ok()) return std::move(key).error();
    return RunContext(v, src, cancel);
  }
  XB_ASSIGN(std::string dir, LocalDir(src));
  XB_ASSIGN(std::string id, WithNewSnapshot(snaps_, "", [&](const std::string& mount) -> Status {
    return TransferContext(dir, *m, mount, cancel.flag());
  }));
  return VertexResult{{Ref{id}}};
}

// ADD <url>: what the source's key fetched (or a new fetch), into a new snapshot of its own.
Result<VertexResult> BuildRunner::RunRemote(const Vertex& v, const SourceOp& src,
                                            const CancelToken& cancel) {
  XB_ASSIGN(std::string id, WithNewSnapshot(snaps_, "", [&](const std::string& mount) -> Status {
    if (IsGitSource(src)) return git_->Snapshot(v.digest, src, mount, cancel.flag());
    return http_->Snapshot(v.digest, src, mount, cancel.flag());
  }));
  return VertexResult{{Ref{id}}};
}

Result<VertexResult> BuildRunner::RunExec(const Vertex& v, const ExecOp& op, const std::vector<Ref>& inputs,
                                          const CancelToken& cancel) {
  if (op.mounts.empty() || op.mounts[0].dest != "/") return Error(Code::kInvalidArgument, "RUN without a root filesystem");
  if (!op.platform.empty()) {
    image::Platform host = image::HostPlatform();
    XB_ASSIGN(image::Platform want, image::ParsePlatform(op.platform));
    if (want.os != host.os || want.architecture != host.architecture) {
      return Error(Code::kFailedPrecondition,
                   "a RUN step for " + op.platform + " cannot run on this " + host.String() +
                       " machine (emulated RUN steps are not supported yet; COPY, ADD and FROM are)");
    }
  }
  XB_ASSIGN(std::unique_ptr<RunMounts> extra, RunMounts::Prepare(store_, snaps_, op, inputs, opts_.mount_sources));
  // RUN --device (exec/cdi.h): resolved before anything runs; the names are in the cache key.
  XB_ASSIGN(exec::CdiEdits cdi, exec::ResolveRunDevices(opts_.cdi_spec_dirs, op.devices));
  const Mount& rootm = op.mounts[0];
  std::string parent = rootm.input >= 0 ? inputs.at(static_cast<size_t>(rootm.input)).id : "";
  int exit_code = 0;
  XB_ASSIGN(std::string id, WithNewSnapshot(snaps_, parent, [&](const std::string& mount) -> Status {
    exec::RunRequest req;
    req.root = store_.root();
    req.process.args = op.args;
    req.process.env = op.env;
    req.process.env.insert(req.process.env.end(), extra->env().begin(), extra->env().end());
    req.sandbox.mounts = extra->mounts();
    req.process.cwd = op.cwd.empty() ? "/" : op.cwd;
    req.process.user = op.user;
    req.sandbox.rootfs = mount;
    std::string pooled;
    XB_TRY(StepNetwork(op, req.sandbox, pooled));
    core::ScopeGuard give_back([&] {
      if (!pooled.empty()) opts_.netns_pool->Release(pooled);
    });
    req.sandbox.extra_hosts = exec::ResolveHostGateway(op.extra_hosts, pooled.empty() ? "host" : "build");
    req.sandbox.rlimits = opts_.ulimits;
    req.sandbox.shm_size = opts_.shm_size;
    req.process.env.insert(req.process.env.end(), op.proxy_env.begin(), op.proxy_env.end());
    if (!op.hostname.empty()) {
      req.sandbox.hostname = op.hostname;
      if (std::none_of(op.env.begin(), op.env.end(), [](const std::string& e) { return e.starts_with("HOSTNAME="); })) {
        req.process.env.push_back("HOSTNAME=" + op.hostname);
      }
    }
    req.sandbox.security = op.security == SecurityMode::kInsecure ? exec::Security::kInsecure : exec::Security::kSandbox;
    if (opts_.output) req.output = [&](int stream, std::string_view data) { opts_.output(v, stream, data); };
    req.cancel = cancel.flag();
    req.log = opts_.log;
    req.sandbox.cdi = cdi;  // RUN --device
    XB_ASSIGN(exit_code, exec::Run(req));
    if (exit_code != 0) return Error(Code::kFailedPrecondition, ProcessFailure(op.args, exit_code));
    return core::Ok();
  }));
  return VertexResult{{Ref{id}}};
}

Status BuildRunner::StepNetwork(const ExecOp& op, exec::SandboxOptions& sandbox, std::string& pooled) {
  NetworkMode mode = op.network == NetworkMode::kDefault ? opts_.default_network : op.network;
  if (op.network == NetworkMode::kHost && !opts_.allow_host_network) {
    return Error(Code::kPermissionDenied,
                 "RUN --network=host needs the network.host entitlement: build with --allow network.host");
  }
  sandbox.network = mode == NetworkMode::kNone ? exec::Network::kNone : exec::Network::kHost;
  if (mode != NetworkMode::kDefault || !opts_.netns_pool) return core::Ok();
  auto ns = opts_.netns_pool->Acquire();
  if (!ns.ok()) {
    // Without slirp4netns the step still runs, on the host's network, as before.
    std::call_once(netns_warned_, [&] {
      if (opts_.log) opts_.log->Warn("RUN steps use the host's network: " + ns.error().ToString());
    });
    return core::Ok();
  }
  pooled = *ns;
  sandbox.network = exec::Network::kBridge;
  sandbox.netns_path = *ns;
  return core::Ok();
}

Result<VertexResult> BuildRunner::RunFile(const Vertex&, const FileOp& op, const std::vector<Ref>& inputs) {
  // Every action writes into one tree: a new snapshot over the first action's input.
  int first = op.actions.empty() ? -1 : op.actions[0].input;
  std::string parent = first >= 0 && static_cast<size_t>(first) < inputs.size() ? inputs[static_cast<size_t>(first)].id : "";
  // Readable views of the inputs: each snapshot through a private view (two steps reading one
  // snapshot at once never share a mount).
  std::vector<std::string> views;
  core::ScopeGuard drop_views([&] {
    for (const auto& id : views) (void)snaps_.Remove(id);
  });
  FileOpEnv env;
  for (const auto& in : inputs) {
    FileOpInput fi;
    if (!in.id.empty()) {
      XB_ASSIGN(std::string view, snaps_.Prepare(in.id));
      views.push_back(view);
      XB_ASSIGN(fi.root, snaps_.Mount(view));
    }
    env.inputs.push_back(fi);
  }
  XB_ASSIGN(std::string id, WithNewSnapshot(snaps_, parent, [&](const std::string& mount) -> Status {
    env.target = mount;
    env.resolve_owner = [&](const ChownOpt& o) -> Result<std::pair<uint32_t, uint32_t>> {
      XB_ASSIGN(core::UniqueFd root, core::Open(mount, O_PATH | O_DIRECTORY | O_CLOEXEC));
      XB_ASSIGN(exec::ExecUser u, exec::ResolveUser(root.get(), o.group.empty() ? o.user : o.user + ":" + o.group));
      // Docker: a user without a group uses the same number for the group.
      return std::make_pair(u.uid, o.group.empty() ? u.uid : u.gid);
    };
    return ApplyFileOp(op, env);
  }));
  return VertexResult{{Ref{id}}};
}

// COPY --link: the first input's tree with each further input's files laid over it, as a new
// snapshot over the first (so its layer is exactly the linked files, whatever is below). The
// linked step itself ran on an empty tree, so its cache key never depends on the base: a base
// change reruns only this cheap merge.
Result<VertexResult> BuildRunner::RunMerge(const std::vector<Ref>& inputs) {
  if (inputs.empty()) return VertexResult{{Ref{}}};
  std::vector<std::string> views;
  core::ScopeGuard drop_views([&] {
    for (const auto& id : views) (void)snaps_.Remove(id);
  });
  FileOp copy;
  FileOpEnv env;
  for (size_t i = 1; i < inputs.size(); ++i) {
    if (inputs[i].id.empty()) continue;  // an empty tree adds nothing
    XB_ASSIGN(std::string view, snaps_.Prepare(inputs[i].id));
    views.push_back(view);
    XB_ASSIGN(std::string root, snaps_.Mount(view));
    CopyAction all;
    all.src_input = static_cast<int>(env.inputs.size());
    all.src = "/";
    all.dest = "/";
    all.follow_symlinks = false;
    copy.actions.push_back({copy.actions.empty() ? 0 : -1, all});
    env.inputs.push_back(FileOpInput{root, false});
  }
  XB_ASSIGN(std::string id, WithNewSnapshot(snaps_, inputs[0].id, [&](const std::string& mount) -> Status {
    env.target = mount;
    return ApplyFileOp(copy, env);
  }));
  return VertexResult{{Ref{id}}};
}

}  // namespace xbuild::solver::ops
