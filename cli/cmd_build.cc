// xbuild build [OPTIONS] PATH
// --call=build (the default) runs the build (cli/build_exec.h); --call=targets|outline|check
// list stages, list build args, or run the build checks.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>

#include "cli/build_context.h"
#include "cli/build_exec.h"
#include "cli/build_progress.h"
#include "cli/cli.h"
#include "cli/table.h"
#include "core/fs.h"
#include "core/units.h"
#include "exec/host_options.h"
#include "frontend/ast.h"
#include "frontend/dockerignore.h"
#include "frontend/lint.h"
#include "frontend/lower.h"

namespace xbuild::cli {

namespace {

// Base image configs from the local image store; an image that is not there starts from an
// empty config and is remembered, so checks do not report its variables as undefined.
class StoreResolver : public frontend::ImageResolver {
 public:
  explicit StoreResolver(cache::ImageStore* store) : store_(store) {}
  core::Result<image::ImageConfig> ResolveImageConfig(const image::Reference& ref, const image::Platform&) override {
    if (store_) {
      auto img = store_->Resolve(ref.String());
      if (img.ok()) return img->config;
    }
    unknown.insert(ref.String());
    return image::ImageConfig{};
  }
  std::set<std::string> unknown;

 private:
  cache::ImageStore* store_;
};

int PrintTargets(const frontend::Dockerfile& df) {
  Table t;
  t.Header({"TARGET", "DESCRIPTION"});
  for (size_t i = 0; i < df.stages.size(); ++i) {
    const auto& st = df.stages[i];
    std::string name = st.name.empty() ? "stage-" + std::to_string(i) : st.name;
    t.Row({name, i + 1 == df.stages.size() ? "(default)" : ""});
  }
  t.Print(stdout);
  return kExitOk;
}

int PrintOutline(const frontend::Dockerfile& df, const std::string& target) {
  int idx = static_cast<int>(df.stages.size()) - 1;
  for (auto& st : df.stages)
    if (!target.empty() && st.name == target) idx = st.index;
  const auto& st = df.stages[static_cast<size_t>(idx)];
  std::printf("TARGET:      %s\n\n", st.name.empty() ? ("stage-" + std::to_string(idx)).c_str() : st.name.c_str());
  Table t;
  t.Header({"BUILD ARG", "VALUE", "DESCRIPTION"});
  for (auto& a : frontend::DeclaredArgs(df)) t.Row({a.name, a.default_value.value_or("<UNSET>"), ""});
  t.Print(stdout);
  return kExitOk;
}

// --network, --allow, --ulimit, --shm-size, --annotation: how RUN steps run and what the
// manifest says. Returns kExitOk or the usage error's exit code.
int ParseBuildHostFlags(Cli& cli, Flags& f, BuildRequest& req) {
  std::string net = f.GetString("network");
  if (net == "default" || net.empty()) req.network = solver::NetworkMode::kDefault;
  else if (net == "host") req.network = solver::NetworkMode::kHost;
  else if (net == "none") req.network = solver::NetworkMode::kNone;
  else return cli.UsageError("build", "invalid --network \"" + net + "\": want default, host or none");
  // --network host on the command line is the user's own choice: it grants network.host too.
  req.allow_host_network = net == "host";
  for (const auto& e : f.GetList("allow")) {
    if (e == "network.host") req.allow_host_network = true;
    else if (e != "security.insecure") return cli.UsageError("build", "invalid --allow \"" + e + "\": want network.host or security.insecure");
  }
  for (const auto& u : f.GetList("ulimit")) {
    auto r = exec::ParseUlimit(u);
    if (!r.ok()) return cli.UsageError("build", "--ulimit: " + r.error().message());
    req.ulimits.push_back(*r);
  }
  if (!f.GetString("shm-size").empty()) {
    auto size = core::ParseByteSize(f.GetString("shm-size"));
    if (!size.ok() || *size <= 0) return cli.UsageError("build", "invalid --shm-size \"" + f.GetString("shm-size") + "\"");
    req.shm_size = *size;
  }
  for (const auto& kv : f.GetList("annotation")) {
    size_t eq = kv.find('=');
    std::string key = eq == std::string::npos ? kv : kv.substr(0, eq);
    // buildx's optional "type[platform]:" prefix: manifest is the only kind an image has here.
    if (key.starts_with("manifest:")) key = key.substr(9);
    if (key.empty() || eq == std::string::npos || key.find(':') == 0) {
      return cli.UsageError("build", "invalid --annotation \"" + kv + "\": want KEY=VALUE");
    }
    req.annotations[key] = kv.substr(eq + 1);
  }
  return kExitOk;
}

}  // namespace

int RunBuild(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("file", 'f', "", "Name of the Dockerfile (default: PATH/Dockerfile)");
  f.String("target", 0, "", "Set the target build stage to build");
  f.List("build-arg", 0, "Set build-time variables");
  f.String("platform", 0, "", "Set target platform for build");
  f.String("call", 0, "build", "Set method for evaluating build (targets, outline, check)");
  f.Bool("check", 0, "Shorthand for \"--call=check\"");
  f.List("tag", 't', "Name and optionally a tag (format: \"name:tag\")");
  f.Bool("no-cache", 0, "Do not use cache when building the image");
  f.Bool("pull", 0, "Always attempt to pull all referenced images");
  f.Bool("quiet", 'q', "Suppress the build output and print image ID on success");
  f.String("progress", 0, "auto",
           "Set type of progress output (\"auto\", \"plain\", \"tty\", \"quiet\", \"rawjson\"); auto is tty on a "
           "terminal, else plain; the default comes from BUILDKIT_PROGRESS when set");
  f.String("iidfile", 0, "", "Write the image ID to a file");
  f.List("label", 0, "Set metadata for an image");
  f.String("oci-mediatypes", 0, "true", "Use OCI media types in the image manifest (true, false)");
  f.List("output", 'o', "Output destination (format: \"type=local,dest=path\"; types: image, registry, docker, oci, tar, local)");
  f.Bool("push", 0, "Push the image to its registry (every -t tag)");
  f.List("secret", 0, "Secret to expose to the build (format: \"id=mysecret[,src=/local/secret]\" or \"id=x,env=VAR\")");
  f.List("ssh", 0, "SSH agent socket to expose to the build (format: \"default|<id>[=<socket>]\")");
  f.List("cache-from", 0,
         "External cache sources (e.g. \"type=registry,ref=R\", \"type=local,src=DIR\", or an image built with inline cache)");
  f.List("cache-to", 0,
         "Cache export destinations (e.g. \"type=registry,ref=R,mode=max\", \"type=local,dest=DIR\", \"type=inline\")");
  f.Bool("load", 0, "Keep the image in the local store also when other outputs are given");
  f.String("compression", 0, "gzip", "Compression of layers that leave the machine (gzip, zstd, none)");
  f.String("metadata-file", 0, "", "Write build result metadata to a file");
  // What `docker build` / `buildx build` users paste into CI.
  f.String("network", 0, "default", "Set the networking mode for the RUN instructions (default, host, none)");
  f.List("add-host", 0, "Add a custom host-to-IP mapping (format: \"host:ip\"; ip may be host-gateway)");
  f.List("ulimit", 0, "Ulimit options (format: \"nofile=1024:2048\")");
  f.String("shm-size", 0, "", "Size of /dev/shm in RUN steps (e.g. 128m)");
  f.List("build-context", 0, "Additional build contexts (format: \"name=path|docker-image://ref|url\")");
  f.List("allow", 0, "Allow extra privileged entitlement (network.host, security.insecure)");
  f.List("annotation", 0, "Add an annotation to the image manifest (format: \"key=value\")");
  // Accepted and ignored, as docker build does with BuildKit.
  for (const char* name : {"rm", "force-rm", "compress"}) f.Bool(name, 0, "Ignored (BuildKit's behaviour)");
  for (const char* name : {"isolation", "memory-swap", "cpu-shares", "cpu-period", "cpu-quota", "cpuset-cpus",
                           "cpuset-mems", "cgroup-parent"}) {
    f.String(name, 0, "", "Ignored (BuildKit's behaviour)");
  }
  f.String("memory", 'm', "", "Ignored (BuildKit's behaviour)");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "build", "build [OPTIONS] PATH", args, pos, code, 1, 1)) return code;
  std::string call = f.GetBool("check") ? "check" : f.GetString("call");
  if (call != "build" && call != "targets" && call != "outline" && call != "check") {
    return cli.UsageError("build", "invalid --call \"" + call + "\": want build, targets, outline or check");
  }
  // The context and the Dockerfile: a directory, a tar archive or stdin (cli/build_context.h).
  // An extracted archive lives as long as `input`, to the end of this command.
  auto input = LoadBuildInput(cli, pos[0], f.GetString("file"));
  if (!input.ok()) return cli.Fail(input.error());
  auto parsed = frontend::ParseDockerfile(input->dockerfile_text, input->dockerfile_name);
  if (!parsed.ok()) return cli.Fail(parsed.error());
  const frontend::Dockerfile& df = *parsed;
  if (call == "targets") return PrintTargets(df);
  if (call == "outline") return PrintOutline(df, f.GetString("target"));

  // check: AST lints, then lowering (expansion-time lints) without running anything.
  frontend::CheckConfig cfg;
  if (auto it = df.directives.find("check"); it != df.directives.end()) {
    auto c = frontend::ParseCheckDirective(it->second);
    if (!c.ok()) return cli.Fail(std::move(c).error().Context(df.filename));
    cfg = *c;
  }
  frontend::LowerOptions lo;
  lo.target = f.GetString("target");
  lo.extra_hosts = f.GetList("add-host");
  for (const auto& kv : f.GetList("build-context")) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size()) {
      return cli.UsageError("build", "invalid --build-context \"" + kv + "\": want NAME=PATH, NAME=docker-image://REF or NAME=URL");
    }
    lo.named_contexts[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  lo.context_excludes = input->ignore.patterns();
  for (auto& kv : f.GetList("build-arg")) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      if (const char* v = std::getenv(kv.c_str())) lo.build_args[kv] = v;
    } else {
      lo.build_args[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  // SOURCE_DATE_EPOCH: the build arg, else the environment (passed on as the build arg, as
  // buildx does), clamps every timestamp of the image.
  if (!lo.build_args.count("SOURCE_DATE_EPOCH")) {
    if (const char* e = std::getenv("SOURCE_DATE_EPOCH"); e && *e) lo.build_args["SOURCE_DATE_EPOCH"] = e;
  }
  if (auto it = lo.build_args.find("SOURCE_DATE_EPOCH"); it != lo.build_args.end()) {
    auto sde = ParseSourceDateEpoch(it->second.c_str(), "SOURCE_DATE_EPOCH");
    if (!sde.ok()) return cli.Fail(sde.error());
    lo.source_date_epoch = *sde;
  }
  if (f.Changed("platform")) {
    auto p = image::ParsePlatform(f.GetString("platform"));
    if (!p.ok()) return cli.Fail(p.error());
    lo.target_platform = *p;
  }
  if (call == "build") {
    std::string progress = f.GetString("progress");
    if (const char* env = std::getenv("BUILDKIT_PROGRESS"); env && *env && !f.Changed("progress")) progress = env;
    if (auto m = ParseProgressMode(progress); !m.ok()) {
      return cli.UsageError("build", "invalid --progress \"" + progress + "\": want auto, plain, tty, quiet or rawjson");
    }
    BuildRequest req;
    req.df = df;
    req.dockerfile_path = input->dockerfile_path;
    req.dockerfile_text = input->dockerfile_text;
    req.context = input->context_dir;
    req.keep_checksums = !input->extracted;
    req.lower = lo;
    req.lower.warnings_sink = nullptr;
    req.tags = f.GetList("tag");
    req.labels = f.GetList("label");
    req.no_cache = f.GetBool("no-cache");
    req.pull = f.GetBool("pull");
    req.quiet = f.GetBool("quiet");
    req.progress = progress;
    req.iidfile = f.GetString("iidfile");
    req.oci_mediatypes = f.GetString("oci-mediatypes") != "false";
    req.metadata_file = f.GetString("metadata-file");
    req.push = f.GetBool("push");
    if (int rc = ParseBuildHostFlags(cli, f, req); rc != kExitOk) return rc;
    auto comp = ParseCompression(f.GetString("compression"));
    if (!comp.ok()) return cli.UsageError("build", comp.error().message());
    req.compression = *comp;
    if (req.compression == image::Compression::kZstd && f.Changed("oci-mediatypes") && !req.oci_mediatypes) {
      return cli.UsageError("build", "--compression=zstd needs OCI media types (zstd layers have no Docker media type)");
    }
    if (f.GetBool("load")) req.outputs.push_back(BuildOutput{"image", {}});
    for (const auto& spec : f.GetList("cache-from")) {
      auto loc = solver::ops::ParseCacheLocation(spec, false);
      if (!loc.ok()) return cli.UsageError("build", loc.error().message());
      req.cache_from.push_back(*loc);
    }
    for (const auto& spec : f.GetList("cache-to")) {
      auto loc = solver::ops::ParseCacheLocation(spec, true);
      if (!loc.ok()) return cli.UsageError("build", loc.error().message());
      req.cache_to.push_back(*loc);
    }
    // BuildKit's spelling of --cache-to type=inline (a boolean, as Go's strconv.ParseBool reads it).
    if (auto it = lo.build_args.find("BUILDKIT_INLINE_CACHE"); it != lo.build_args.end()) {
      static const std::set<std::string> kTrue = {"1", "t", "T", "true", "TRUE", "True"};
      static const std::set<std::string> kFalse = {"0", "f", "F", "false", "FALSE", "False"};
      if (!kTrue.count(it->second) && !kFalse.count(it->second)) {
        return cli.UsageError("build", "invalid --build-arg BUILDKIT_INLINE_CACHE=" + it->second + ": want 1 or 0 (true or false)");
      }
      bool have = std::any_of(req.cache_to.begin(), req.cache_to.end(),
                              [](const solver::ops::CacheLocation& l) { return l.type == "inline"; });
      if (kTrue.count(it->second) && !have) {
        solver::ops::CacheLocation inl;
        inl.type = "inline";
        req.cache_to.push_back(inl);
      }
    }
    for (const auto& spec : f.GetList("secret")) {
      auto sec = ParseSecretFlag(spec);
      if (!sec.ok()) return cli.Fail(sec.error());
      req.mount_sources.secrets[sec->first] = sec->second;
    }
    for (const auto& spec : f.GetList("ssh")) {
      auto ssh = ParseSshFlag(spec);
      if (!ssh.ok()) return cli.Fail(ssh.error());
      req.mount_sources.ssh[ssh->first] = ssh->second;
    }
    for (const auto& spec : f.GetList("output")) {
      auto o = ParseOutput(spec);
      if (!o.ok()) return cli.UsageError("build", o.error().message());
      req.outputs.push_back(*o);
    }
    return ExecuteBuild(cli, std::move(req));
  }
  cache::ImageStore* store = nullptr;
  if (auto s = cli.Store(); s.ok()) store = *s;
  StoreResolver resolver(store);
  std::vector<frontend::Warning> warnings = frontend::LintAst(df);
  std::vector<frontend::Warning> expansion;
  lo.warnings_sink = &expansion;
  auto lowered = frontend::Lower(df, lo, &resolver);
  std::optional<core::Error> lower_error;
  if (!lowered.ok()) lower_error = lowered.error();
  for (auto& w : expansion) {
    // Variables may come from a base image we could not see: do not guess while any is unknown.
    if (w.rule == "UndefinedVar" && !resolver.unknown.empty()) continue;
    warnings.push_back(w);
  }
  warnings = frontend::FilterWarnings(std::move(warnings), cfg);
  for (auto& w : warnings) {
    std::printf("WARNING: %s - %s\n%s:%d: %s\n\n", w.rule.c_str(), w.url().c_str(), df.filename.c_str(), w.line, w.message.c_str());
  }
  if (lower_error) {
    if (!warnings.empty()) std::printf("Check complete, %zu warnings found before the error.\n", warnings.size());
    return cli.Fail(*lower_error);
  }
  if (warnings.empty()) {
    std::printf("Check complete, no warnings found.\n");
    return kExitOk;
  }
  std::printf("Check complete, %zu warning%s found!\n", warnings.size(), warnings.size() == 1 ? " has been" : "s have been");
  return kExitError;
}

}  // namespace xbuild::cli
