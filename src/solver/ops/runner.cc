#include "solver/ops/runner.h"

#include "core/fs.h"
#include "core/json.h"
#include "exec/sandbox.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;

namespace {

constexpr std::string_view kImageScheme = "docker-image://";
constexpr std::string_view kLocalScheme = "local://";
constexpr std::string_view kDirRef = "dir:";

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

std::string SnapshotOf(const Ref& r) { return r.id.starts_with(kDirRef) ? "" : r.id; }

}  // namespace

std::string ProcessFailure(const std::vector<std::string>& args, int exit_code) {
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  return "process \"" + cmd + "\" did not complete successfully: exit code: " + std::to_string(exit_code);
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
    XB_ASSIGN(cache::ResolvedImage r, store_.Load(pulled.record));
    img = std::move(r);
  }
  std::lock_guard<std::mutex> l(mu_);
  images_[identifier] = *img;
  return *img;
}

Result<std::string> BuildRunner::ContentKey(const Vertex& v, const std::vector<Ref>&) {
  const auto* src = std::get_if<SourceOp>(&v.op);
  if (!src) return std::string();
  if (src->identifier.starts_with(kImageScheme)) {
    XB_ASSIGN(cache::ResolvedImage img, ResolveImage(src->identifier));
    return img.record.digest.String();
  }
  if (src->identifier.starts_with(kLocalScheme)) {
    // The context is read in place: steps that copy from it key on what they read (their
    // file op computes it), so the source itself keys on its location only.
    return "dir:" + opts_.context_dir;
  }
  return Error(Code::kInvalidArgument, "source " + src->identifier + " is not supported yet");
}

Result<VertexResult> BuildRunner::Run(const Vertex& v, const std::vector<Ref>& inputs, const std::string&,
                                      const CancelToken& cancel) {
  if (const auto* src = std::get_if<SourceOp>(&v.op)) {
    if (src->identifier.starts_with(kLocalScheme)) return VertexResult{{Ref{std::string(kDirRef) + opts_.context_dir}}};
    XB_ASSIGN(cache::ResolvedImage img, ResolveImage(src->identifier));
    XB_ASSIGN(std::string id, snaps_.FromImage(img));
    return VertexResult{{Ref{id}}};
  }
  if (const auto* e = std::get_if<ExecOp>(&v.op)) return RunExec(v, *e, inputs, cancel);
  if (const auto* f = std::get_if<FileOp>(&v.op)) return RunFile(v, *f, inputs);
  return Error(Code::kInvalidArgument, std::string(OpKind(v.op)) + " ops are not supported yet");
}

Result<VertexResult> BuildRunner::RunExec(const Vertex& v, const ExecOp& op, const std::vector<Ref>& inputs,
                                          const CancelToken& cancel) {
  if (op.mounts.empty() || op.mounts[0].dest != "/") return Error(Code::kInvalidArgument, "RUN without a root filesystem");
  for (size_t i = 1; i < op.mounts.size(); ++i) {
    return Error(Code::kInvalidArgument, "RUN --mount=" + op.mounts[i].dest + ": mounts are not supported yet");
  }
  const Mount& rootm = op.mounts[0];
  std::string parent = rootm.input >= 0 ? SnapshotOf(inputs.at(static_cast<size_t>(rootm.input))) : "";
  int exit_code = 0;
  XB_ASSIGN(std::string id, WithNewSnapshot(snaps_, parent, [&](const std::string& mount) -> Status {
    exec::RunRequest req;
    req.root = store_.root();
    req.process.args = op.args;
    req.process.env = op.env;
    req.process.cwd = op.cwd.empty() ? "/" : op.cwd;
    req.process.user = op.user;
    req.sandbox.rootfs = mount;
    req.sandbox.network = op.network == NetworkMode::kNone ? exec::Network::kNone : exec::Network::kHost;
    req.sandbox.extra_hosts = op.extra_hosts;
    req.sandbox.security = op.security == SecurityMode::kInsecure ? exec::Security::kInsecure : exec::Security::kSandbox;
    if (opts_.output) req.output = [&](int stream, std::string_view data) { opts_.output(v, stream, data); };
    req.cancel = cancel.flag();
    req.log = opts_.log;
    XB_ASSIGN(exit_code, exec::Run(req));
    if (exit_code != 0) return Error(Code::kFailedPrecondition, ProcessFailure(op.args, exit_code));
    return core::Ok();
  }));
  return VertexResult{{Ref{id}}};
}

Result<VertexResult> BuildRunner::RunFile(const Vertex& v, const FileOp& op, const std::vector<Ref>& inputs) {
  (void)op;
  (void)inputs;
  (void)v;
  return Error(Code::kInvalidArgument, "file operations are not wired in yet");
}

}  // namespace xbuild::solver::ops
