#include "cli/build_exec.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <map>
#include <mutex>

#include "cli/registry_util.h"
#include "core/fs.h"
#include "exec/snapshot.h"
#include "solver/ops/export.h"
#include "solver/ops/result_cache.h"
#include "solver/ops/runner.h"

namespace xbuild::cli {

namespace {

using Clock = std::chrono::steady_clock;

solver::CancelToken* g_cancel = nullptr;

void OnSignal(int) {
  if (g_cancel) g_cancel->Cancel();
}

// Base image configs for lowering, through the runner (local store first, then the registry).
class RunnerResolver : public frontend::ImageResolver {
 public:
  explicit RunnerResolver(solver::ops::BuildRunner& r) : runner_(r) {}
  core::Result<image::ImageConfig> ResolveImageConfig(const image::Reference& ref, const image::Platform&) override {
    XB_ASSIGN(cache::ResolvedImage img, runner_.ResolveImage("docker-image://" + ref.String()));
    return img.config;
  }

 private:
  solver::ops::BuildRunner& runner_;
};

// BuildKit's plain progress: "#N [stage 1/2] RUN ...", output lines "#N 0.123 text", "#N DONE 0.4s".
class PlainProgress {
 public:
  explicit PlainProgress(bool quiet) : quiet_(quiet), start_(Clock::now()) {}

  void Event(const solver::SolveEvent& e) {
    if (quiet_) return;
    std::lock_guard<std::mutex> l(mu_);
    int n = Number(e.vertex);
    const std::string& name = Name(e.vertex);
    switch (e.state) {
      case solver::VertexState::kStarted:
        std::fprintf(stderr, "#%d %s\n", n, name.c_str());
        break;
      case solver::VertexState::kCached:
        std::fprintf(stderr, "#%d %s\n#%d CACHED\n\n", n, name.c_str(), n);
        break;
      case solver::VertexState::kDone:
        std::fprintf(stderr, "#%d DONE %.1fs\n\n", n, Seconds(e.elapsed));
        break;
      case solver::VertexState::kFailed:
        std::fprintf(stderr, "#%d ERROR: %s\n\n", n, e.error.c_str());
        break;
      case solver::VertexState::kCancelled:
        std::fprintf(stderr, "#%d CANCELED\n\n", n);
        break;
    }
  }

  void Output(const solver::Vertex& v, std::string_view data) {
    if (quiet_) return;
    std::lock_guard<std::mutex> l(mu_);
    int n = Number(&v);
    std::string& buf = partial_[n];
    buf.append(data);
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::fprintf(stderr, "#%d %.3f %s\n", n, Seconds(Clock::now() - start_), buf.substr(0, nl).c_str());
      buf.erase(0, nl + 1);
    }
  }

  void Line(const std::string& text) {
    if (!quiet_) std::fprintf(stderr, "%s\n", text.c_str());
  }

 private:
  static double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
  int Number(const solver::Vertex* v) {
    auto [it, added] = numbers_.try_emplace(v, static_cast<int>(numbers_.size()) + 1);
    return it->second;
  }
  static const std::string& Name(const solver::Vertex* v) { return v->meta.description; }

  bool quiet_;
  Clock::time_point start_;
  std::mutex mu_;
  std::map<const solver::Vertex*, int> numbers_;
  std::map<int, std::string> partial_;
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

}  // namespace

int ExecuteBuild(Cli& cli, BuildRequest req) {
  if (!req.lower.target_platform.os.empty() && (req.lower.target_platform.os != image::HostPlatform().os ||
                                                req.lower.target_platform.architecture != image::HostPlatform().architecture)) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument,
                                "build: platform " + req.lower.target_platform.String() + " cannot run on this " +
                                    image::HostPlatform().String() + " machine"));
  }
  std::vector<image::Reference> tags;
  for (const auto& t : req.tags) {
    auto r = image::ParseReference(t);
    if (!r.ok()) return cli.Fail(std::move(r).error().Context("invalid tag " + t));
    tags.push_back(*r);
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto reg = OpenRegistry(cli);
  if (!reg.ok()) return cli.Fail(reg.error());
  exec::Snapshotter snaps(**store);
  PlainProgress progress(req.quiet || req.progress == "quiet");

  solver::ops::RunnerOptions ro;
  ro.context_dir = req.context;
  if (req.keep_checksums && !req.context.empty()) {
    ro.checksum_dir = core::JoinPath(cli.ctx().root, "checksums");
  }
  ro.pull = req.pull;
  ro.platform = req.lower.target_platform;
  ro.registry = reg->client.get();
  ro.output = [&](const solver::Vertex& v, int, std::string_view data) { progress.Output(v, data); };
  ro.log = cli.ctx().log;
  solver::ops::BuildRunner runner(**store, snaps, ro);
  RunnerResolver resolver(runner);
  auto lowered = frontend::Lower(req.df, req.lower, &resolver);
  if (!lowered.ok()) return cli.Fail(lowered.error());
  for (const auto& kv : req.labels) {
    size_t eq = kv.find('=');
    lowered->config.config.labels[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }

  solver::ops::DbResultCache cache(**store);
  solver::SolveOptions so;
  so.no_cache = req.no_cache;
  const solver::Vertex* failed = nullptr;
  std::mutex fmu;
  so.on_event = [&](const solver::SolveEvent& e) {
    progress.Event(e);
    if (e.state == solver::VertexState::kFailed) {
      std::lock_guard<std::mutex> l(fmu);
      if (!failed) failed = e.vertex;
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
  g_cancel = nullptr;
  if (!result.ok()) {
    std::string where = WhereInDockerfile(req, failed);
    if (!where.empty()) std::fprintf(stderr, "------\n%s------\n", where.c_str());
    return cli.Fail(result.error());
  }

  auto t0 = Clock::now();
  solver::ops::ExportOptions eo;
  eo.oci_mediatypes = req.oci_mediatypes;
  eo.source_date_epoch = req.lower.source_date_epoch;
  auto rec = solver::ops::ExportImage(**store, snaps, *result, lowered->config, eo);
  if (!rec.ok()) return cli.Fail(std::move(rec).error().Context("export image"));
  for (const auto& t : tags) {
    auto s = (*store)->Tag(t, rec->digest);
    if (!s.ok()) return cli.Fail(s.error());
  }
  progress.Line("#0 exporting to image");
  progress.Line("#0 writing image " + rec->config.String() + " done");
  for (const auto& t : tags) progress.Line("#0 naming to " + t.String() + " done");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(Clock::now() - t0).count());
  progress.Line(std::string("#0 DONE ") + buf);
  if (!req.iidfile.empty()) {
    auto w = core::WriteFileAtomic(req.iidfile, rec->config.String());
    if (!w.ok()) return cli.Fail(w.error());
  }
  if (req.quiet) std::printf("%s\n", rec->config.String().c_str());
  return kExitOk;
}

}  // namespace xbuild::cli
