#include "cli/build_exec.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>

#include "cli/build_progress.h"
#include "cli/registry_util.h"
#include "core/fs.h"
#include "core/strings.h"
#include "exec/netns_pool.h"
#include "exec/snapshot.h"
#include "frontend/source_url.h"
#include "solver/ops/build_cache.h"
#include "solver/ops/result_cache.h"
#include "solver/ops/runner.h"

namespace xbuild::cli {

namespace {

solver::CancelToken* g_cancel = nullptr;

// The first Ctrl-C (or SIGTERM) cancels: running steps are killed, the export stops at its
// next phase, and everything is cleaned up. A second one ends the process at once.
void OnSignal(int sig) {
  if (!g_cancel) return;
  if (g_cancel->Cancelled()) {
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_cancel->Cancel();
}

// Base image configs for lowering, through the runner (local store first, then the registry),
// each shown as BuildKit's "[internal] load metadata for <ref>" step.
class RunnerResolver : public frontend::ImageResolver {
 public:
  RunnerResolver(solver::ops::BuildRunner& r, BuildProgress& p) : runner_(r), progress_(p) {}
  core::Result<image::ImageConfig> ResolveImageConfig(const image::Reference& ref, const image::Platform&) override {
    // Once per image, however many stages start from it (BuildKit resolves each once too).
    if (auto it = resolved_.find(ref.String()); it != resolved_.end()) return it->second.config;
    ProgressStep step = progress_.StartStep("[internal] load metadata for " + ref.String());
    auto img = runner_.ResolveImage("docker-image://" + ref.String());
    if (!img.ok()) {
      step.Fail(img.error().ToString());
      return std::move(img).error();
    }
    step.Done();
    resolved_[ref.String()] = *img;
    return img->config;
  }
  std::optional<core::Digest> ResolvedDigest(const image::Reference& ref) override {
    auto it = resolved_.find(ref.String());
    if (it == resolved_.end()) return std::nullopt;
    return it->second.record.digest;
  }

 private:
  solver::ops::BuildRunner& runner_;
  BuildProgress& progress_;
  std::map<std::string, cache::ResolvedImage> resolved_;
};

// "Dockerfile:3" and the line itself, for a failed step.
std::string WhereInDockerfile(const BuildRequest& req, const solver::Vertex* v) {
  if (!v || v->meta.source_line <= 0) return "";
  core::Result<std::string> text = req.dockerfile_text;
  if (text->empty()) text = core::ReadFile(req.dockerfile_path, 16 << 20);
  std::string line;
  if (text.ok()) {
    size_t start = 0;
    for (int i = 1; i < v->meta.source_line && start != std::string::npos; ++i) {
      start = text->find('\n', start);
      if (start != std::string::npos) ++start;
    }
    if (start != std::string::npos) line = text->substr(start, text->find('\n', start) - start);
  }
  return req.df.filename + ":" + std::to_string(v->meta.source_line) + "\n --> " + line + "\n";
}

// builder.gc after a build (build_cache.h): said on stderr when it deleted something, or with
// --debug. A failed collection is a warning; the build itself succeeded.
int CollectBuildCache(Cli& cli, cache::ImageStore& store, exec::Snapshotter& snaps, const solver::ops::GcConfig& gc) {
  if (!gc.enabled || gc.rules.empty()) return kExitOk;
  auto r = solver::ops::RunGc(store, snaps, gc);
  if (!r.ok()) {
    std::fprintf(stderr, "WARNING: build cache garbage collection: %s\n", r.error().ToString().c_str());
    return kExitOk;
  }
  if (!r->deleted.empty() || cli.log().Enabled(core::LogLevel::kDebug)) {
    std::fprintf(stderr, "Build cache garbage collection (builder.gc): deleted %zu objects, reclaimed %s\n",
                 r->deleted.size(), HumanSize(static_cast<double>(r->reclaimed)).c_str());
  }
  return kExitOk;
}

}  // namespace

core::Result<std::pair<std::string, std::string>> ParseSecretFlag(const std::string& spec) {
  std::string id, src, env, type;
  for (const auto& field : core::Split(spec, ',')) {
    size_t eq = field.find('=');
    std::string k = field.substr(0, eq), v = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (k == "id") id = v;
    else if (k == "src" || k == "source") src = v;
    else if (k == "env") env = v;
    else if (k == "type") type = v;
    else return core::Error(core::Code::kInvalidArgument, "--secret " + spec + ": unexpected key \"" + k + "\"");
  }
  if (id.empty()) return core::Error(core::Code::kInvalidArgument, "--secret " + spec + ": id= is required");
  if (type == "env" && env.empty()) env = src.empty() ? id : src;
  if (src.empty() && env.empty()) {
    if (std::getenv(id.c_str())) env = id;
    else src = id;
  }
  if (!env.empty() && type != "file") {
    const char* v = std::getenv(env.c_str());
    if (!v) return core::Error(core::Code::kNotFound, "--secret " + spec + ": environment variable " + env + " is not set");
    return std::make_pair(id, std::string(v));
  }
  XB_ASSIGN_CTX(std::string data, core::ReadFile(src, 500 << 10), "--secret " + spec);
  return std::make_pair(id, data);
}

core::Result<std::pair<std::string, std::string>> ParseSshFlag(const std::string& spec) {
  size_t eq = spec.find('=');
  std::string id = spec.substr(0, eq);
  std::string path = eq == std::string::npos ? "" : spec.substr(eq + 1);
  if (path.find(',') != std::string::npos) path = path.substr(0, path.find(','));  // one socket
  if (id.empty()) return core::Error(core::Code::kInvalidArgument, "--ssh " + spec + ": an id is required");
  if (path.empty()) {
    const char* sock = std::getenv("SSH_AUTH_SOCK");
    if (!sock || !*sock) {
      return core::Error(core::Code::kInvalidArgument, "--ssh " + spec + ": SSH_AUTH_SOCK is not set; give the socket as " + id + "=PATH");
    }
    path = sock;
  }
  return std::make_pair(id, path);
}

// RUN instructions on the default network, at most 2: what the namespace pool makes ahead, from
// the Dockerfile, before lowering and base images (the rest, for steps that run side by side,
// are made when needed).
static int DefaultNetworkSteps(const frontend::Dockerfile& df) {
  int n = 0;
  for (const auto& st : df.stages) {
    for (const auto& inst : st.commands) {
      const auto* r = std::get_if<frontend::RunCmd>(&inst.data);
      n += r && (r->network.empty() || r->network == "default");
    }
  }
  return std::min(n, 2);
}

int ExecuteBuild(Cli& cli, BuildRequest req) {
  std::vector<image::Reference> tags;
  for (const auto& t : req.tags) {
    auto r = image::ParseReference(t);
    if (!r.ok()) return cli.Fail(std::move(r).error().Context("invalid tag " + t));
    tags.push_back(*r);
  }
  if (auto s = cli.Setup(); !s.ok()) return cli.Fail(s.error());  // the config file, for builder.gc
  auto gc = solver::ops::ParseGcConfig(cli.ctx().config.raw);
  if (!gc.ok()) return cli.Fail(gc.error());
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto reg = OpenRegistry(cli);
  if (!reg.ok()) return cli.Fail(reg.error());
  // Everything the build uses or makes (base images, snapshots, its image until tagged) is held
  // by this lease, so a prune beside it takes none of it (build_cache.h).
  auto build_lease = (*store)->CreateProcessLease(std::chrono::hours(24));
  if (!build_lease.ok()) return cli.Fail(build_lease.error());
  core::ScopeGuard release([&] { (void)(*store)->db().DeleteLease(build_lease->id); });
  exec::Snapshotter snaps(**store);
  snaps.set_lease(build_lease->id);
  ProgressOptions po;
  auto mode = ParseProgressMode(req.quiet ? "quiet" : req.progress);
  if (!mode.ok()) return cli.Fail(mode.error());
  po.mode = *mode;
  const char* term = std::getenv("TERM");
  po.terminal = ::isatty(STDERR_FILENO) == 1 && !(term && std::string_view(term) == "dumb");
  BuildProgress progress(po);
  // Closes the display (final frame, failed steps' output) before the error is printed.
  auto fail = [&](const core::Error& e) {
    progress.Close(false);
    return cli.Fail(e);
  };

  solver::ops::RunnerOptions ro;
  ro.context_dir = req.context;
  if (req.keep_checksums && !req.context.empty()) {
    ro.checksum_dir = core::JoinPath(cli.ctx().root, "checksums");
  }
  ro.pull = req.pull;
  ro.platform = req.lower.target_platform;
  ro.registry = reg->client.get();
  ro.output = [&](const solver::Vertex& v, int stream, std::string_view data) { progress.Output(v, stream, data); };
  ro.log = cli.ctx().log;
  ro.mount_sources = req.mount_sources;
  ro.lease = build_lease->id;
  ro.cdi_spec_dirs = exec::CdiSpecDirs(cli.ctx().config);  // RUN --device
  ro.default_network = req.network;
  ro.allow_host_network = req.allow_host_network;
  ro.ulimits = req.ulimits;
  ro.shm_size = req.shm_size;
  for (const auto& [name, value] : req.lower.named_contexts) {
    if (frontend::IsGitUrl(value)) {
      auto g = frontend::ParseGitRef(value);
      if (g.ok()) ro.named_git_contexts.push_back(g->remote);
      continue;
    }
    if (value.starts_with("docker-image://") || frontend::IsHttpUrl(value)) continue;
    std::error_code ec;
    std::string dir = std::filesystem::absolute(value, ec).lexically_normal().string();
    if (ec || !std::filesystem::is_directory(dir, ec)) {
      return cli.Fail(core::Error(core::Code::kInvalidArgument, "--build-context " + name + "=" + value + ": not a directory"));
    }
    ro.named_contexts[name] = dir;
  }
  // RUN steps' own network namespaces (exec/netns_pool.h), made as the build starts.
  std::optional<exec::NetnsPool> netns_pool;
  if (req.network == solver::NetworkMode::kDefault && ::geteuid() == 0) {
    netns_pool.emplace(cli.ctx().root);
    ro.netns_pool = &*netns_pool;
    netns_pool->Prewarm(DefaultNetworkSteps(req.df));
  }
  solver::ops::BuildRunner runner(**store, snaps, ro);
  RunnerResolver resolver(runner, progress);
  auto lowered = frontend::Lower(req.df, req.lower, &resolver);
  if (!lowered.ok()) return fail(lowered.error());
  // A base image's inline cache speaks of the base's build, not this one's.
  lowered->config.extra.erase(std::string(solver::ops::kInlineCacheKey));
  progress.Plan(lowered->definition);
  for (const auto& kv : req.labels) {
    size_t eq = kv.find('=');
    lowered->config.config.labels[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }

  solver::ops::DbResultCache cache(**store);
  cache.set_lease(build_lease->id);
  // Warnings (an unusable imported cache, ...) are shown after the progress display closes.
  std::vector<std::string> warnings;
  std::mutex wmu;
  auto warn = [&](const std::string& w) {
    std::lock_guard<std::mutex> l(wmu);
    warnings.push_back(w);
  };
  auto print_warnings = [&] {
    if (req.quiet || req.progress == "quiet") return;
    for (const auto& w : warnings) std::fprintf(stderr, "WARNING: %s\n", w.c_str());
  };
  std::optional<solver::ops::ImportedCache> imported;
  if (!req.cache_from.empty()) {
    imported.emplace(**store, snaps, reg->client.get());
    for (const auto& loc : req.cache_from) {
      if (auto w = imported->Add(loc)) warn(*w);
    }
    cache.set_imported(&*imported);
  }
  solver::SolveOptions so;
  so.no_cache = req.no_cache;
  so.on_warning = warn;
  const solver::Vertex* failed = nullptr;
  std::mutex fmu;
  std::vector<std::string> step_keys;  // exec/file/merge steps solved, for --cache-to
  so.on_event = [&](const solver::SolveEvent& e) {
    progress.Event(e);
    std::lock_guard<std::mutex> l(fmu);
    if (e.state == solver::VertexState::kFailed && !failed) failed = e.vertex;
    if ((e.state == solver::VertexState::kDone || e.state == solver::VertexState::kCached) &&
        !std::holds_alternative<solver::SourceOp>(e.vertex->op)) {
      step_keys.push_back(e.cache_key);
    }
  };
  solver::Solver solver(runner, cache, so);
  solver::CancelToken cancel;
  g_cancel = &cancel;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  auto result = solver.Solve(lowered->definition, cancel);
  core::ScopeGuard unhook([] { g_cancel = nullptr; });
  if (!result.ok()) {
    progress.Close(false);
    print_warnings();
    std::string where = WhereInDockerfile(req, failed);
    if (!where.empty()) std::fprintf(stderr, "------\n%s------\n", where.c_str());
    return cli.Fail(result.error());
  }

  ExportRequest er;
  er.tags = tags;
  er.outputs = req.outputs;
  er.push = req.push;
  er.compression = req.compression;
  er.oci_mediatypes = req.oci_mediatypes;
  er.source_date_epoch = req.lower.source_date_epoch;
  er.iidfile = req.iidfile;
  er.metadata_file = req.metadata_file;
  er.cancel = &cancel;
  er.annotations = req.annotations;
  // The steps' results realized on this root, for --cache-to (inline included).
  std::vector<solver::ops::SolvedStep> steps;
  if (!req.cache_to.empty()) {
    for (const auto& key : step_keys) {
      auto hit = cache.Lookup(key);
      if (hit.ok() && *hit && !(*hit)->outputs.empty() && !cache.IsLazy((*hit)->outputs[0])) {
        steps.push_back({key, (*hit)->outputs[0].id});
      }
    }
  }
  ProgressStep exporting = progress.StartStep("exporting to image");
  bool inline_cache = std::any_of(req.cache_to.begin(), req.cache_to.end(),
                                  [](const solver::ops::CacheLocation& l) { return l.type == "inline"; });
  if (inline_cache) {
    er.amend_config = [&](const std::vector<image::Descriptor>& layers, const cache::Lease& lease,
                          image::ImageConfig& config) -> core::Status {
      XB_ASSIGN(solver::ops::CacheConfig records,
                solver::ops::CollectCache(**store, snaps, steps, result->id, false, lease));
      XB_ASSIGN(core::Json inl, solver::ops::InlineCache(records, layers));
      config.extra[std::string(solver::ops::kInlineCacheKey)] = inl;
      exporting.StatusLine("inline cache: " + std::to_string(records.records.size()) + " records (mode=min)");
      return core::Ok();
    };
  }
  auto exported = ExportBuild(**store, snaps, reg->client.get(), *result, lowered->config, er,
                              [&](const std::string& text) { exporting.StatusLine(text); });
  if (!exported.ok()) {
    exporting.Fail(exported.error().ToString());
    return fail(exported.error());
  }
  exporting.Done();
  if (inline_cache && !exported->image_id) {
    warn("--cache-to type=inline: no image was made to carry the cache (it rides in an image, registry, docker or oci output)");
  }
  // --cache-to registry|local: the steps' results, as each destination's mode says.
  if (!req.cache_to.empty()) {
    for (const auto& loc : req.cache_to) {
      if (loc.type == "inline") continue;  // in the image config already
      std::string where = loc.type == "local" ? loc.dir : loc.ref;
      ProgressStep step = progress.StartStep("exporting cache to " + loc.type + " " + where);
      core::Result<bool> s = (*store)->WithLease<bool>([&](const cache::Lease& lease) -> core::Result<bool> {
        XB_ASSIGN(solver::ops::CacheConfig records,
                  solver::ops::CollectCache(**store, snaps, steps, result->id, loc.max, lease));
        step.StatusLine(std::to_string(records.records.size()) + " records, " + std::to_string(records.layers.size()) +
                        " layers (mode=" + (loc.max ? "max" : "min") + ")");
        XB_TRY(solver::ops::WriteCache(**store, reg->client.get(), records, loc, lease));
        return true;
      });
      if (!s.ok()) {
        step.Fail(s.error().ToString());
        if (!loc.ignore_error) {
          print_warnings();
          return fail(std::move(s).error().Context("export cache to " + where));
        }
        warn("cache export to " + where + " failed (ignored): " + s.error().ToString());
        continue;
      }
      step.Done();
    }
  }
  progress.Close(true);
  print_warnings();
  if (!req.iidfile.empty() && exported->image_id) {
    auto w = core::WriteFileAtomic(req.iidfile, exported->image_id->String());
    if (!w.ok()) return cli.Fail(w.error());
  }
  if (!req.metadata_file.empty()) {
    auto w = core::WriteFileAtomic(req.metadata_file, exported->metadata.dump(2) + "\n");
    if (!w.ok()) return cli.Fail(w.error());
  }
  if (req.quiet && exported->image_id) std::printf("%s\n", exported->image_id->String().c_str());
  return CollectBuildCache(cli, **store, snaps, *gc);
}

}  // namespace xbuild::cli
