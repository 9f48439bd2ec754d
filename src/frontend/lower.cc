#include "frontend/lowerer.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/fs.h"
#include "core/json.h"
#include "core/path.h"
#include "core/strings.h"
#include "core/units.h"
#include "frontend/shell_lex.h"
#include "frontend/source_url.h"

namespace xbuild::frontend::lowering {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The instructions that make a vertex, and so a numbered progress step (BuildKit's cmdTotal).
bool MakesVertex(const std::string& keyword) {
  return keyword == "RUN" || keyword == "COPY" || keyword == "ADD" || keyword == "WORKDIR";
}

// "run  make" -> "RUN  make": the instruction as written, keyword in upper case (uppercaseCmd).
std::string UppercaseKeyword(const std::string& original) {
  size_t sp = original.find_first_of(" \t");
  return core::ToUpper(original.substr(0, sp)) + (sp == std::string::npos ? "" : original.substr(sp));
}

// ONBUILD triggers that make a vertex. BuildKit leaves them out of a stage's total (so its
// indexes can pass the total); they are counted here.
int TriggerSteps(const std::vector<std::string>& triggers) {
  int n = 0;
  for (const auto& t : triggers) {
    std::string trimmed = core::Trim(t);
    n += MakesVertex(core::ToUpper(trimmed.substr(0, trimmed.find_first_of(" \t"))));
  }
  return n;
}

// A HEALTHCHECK duration flag (Go's time.ParseDuration); unset is 0 (the default).
Result<int64_t> ParseDurationNs(const std::string& text, const std::string& where) {
  if (text.empty()) return int64_t{0};
  auto ns = core::ParseGoDuration(text);
  if (!ns.ok()) return Error(Code::kInvalidArgument, where + ns.error().message());
  return *ns;
}

}  // namespace

bool IsNumber(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Exec form as written; shell form runs under SHELL (default /bin/sh -c).
std::vector<std::string> Argv(const Command& cmd, const std::vector<std::string>& shell) {
  if (cmd.exec_form) return cmd.args;
  std::vector<std::string> args = shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : shell;
  args.push_back(cmd.args.empty() ? "" : cmd.args[0]);
  return args;
}

std::string JoinArgs(const std::vector<std::string>& v) {
  std::string s;
  for (auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Mirrors BuildKit's history text: `RUN /bin/sh -c make # buildkit`.
std::string HistoryFor(const Instruction& inst, const std::string& body) {
  return inst.keyword + " " + body + (inst.keyword == "RUN" || inst.keyword == "COPY" || inst.keyword == "ADD" ? " # buildkit" : "");
}

VarEnv Lowerer::EnvFor(const StageState& st) const {
  VarEnv env;
  for (auto& [k, v] : st.args) env.vars[k] = v;
  for (auto& e : st.config.config.env) {
    auto eq = e.find('=');
    if (eq != std::string::npos) env.vars[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return env;
}

void Lowerer::AddHistory(StageState& st, const std::string& created_by, bool empty_layer) {
  image::HistoryEntry h;
  h.created_by = created_by;
  h.comment = "buildkit.dockerfile.v0";
  h.empty_layer = empty_layer;
  if (opts_.source_date_epoch) h.created = image::FormatTime(*opts_.source_date_epoch);
  st.config.history.push_back(h);
}

Status Lowerer::ResolveMetaArgs() {
  VarEnv env;
  for (auto& [k, v] : PlatformArgs(opts_.target_platform, opts_.build_platform)) env.vars[k] = v;
  for (auto& inst : df_.meta_args) {
    auto& arg = std::get<ArgCmd>(inst.data);
    for (auto& d : arg.args) {
      std::string value;
      bool has = false;
      if (auto it = opts_.build_args.find(d.name); it != opts_.build_args.end()) {
        value = it->second;
        has = true;
        used_build_args_.insert(d.name);
      } else if (d.default_value) {
        auto r = lex_.ProcessWord(*d.default_value, env);
        if (!r.ok()) return Error(Code::kInvalidArgument, Where(inst.range.start_line) + "ARG: " + r.error().message());
        value = r->result;
        has = true;
      }
      if (has) {
        meta_args_[d.name] = value;
        env.vars[d.name] = value;
      } else {
        meta_args_.erase(d.name);
        env.vars.erase(d.name);
        declared_unset_meta_.insert(d.name);
      }
    }
  }
  // Expand each stage's base name and platform with the global ARGs.
  for (auto& st : df_.stages) {
    auto base = lex_.ProcessWord(st.base, env);
    if (!base.ok()) return Error(Code::kInvalidArgument, Where(st.range.start_line) + "FROM: " + base.error().message());
    for (auto& u : base->unmatched) {
      if (!declared_unset_meta_.count(u)) {
        Warn({"UndefinedArgInFrom", "FROM argument '" + u + "' is not declared", st.range.start_line});
      }
    }
    if (base->result.empty()) {
      return Error(Code::kInvalidArgument, Where(st.range.start_line) + "FROM: base name (" + st.base + ") should not be blank");
    }
    stage_bases_.push_back(base->result);
    image::Platform p = opts_.target_platform;
    if (!st.platform.empty()) {
      auto pw = lex_.ProcessWord(st.platform, env);
      if (!pw.ok()) return Error(Code::kInvalidArgument, Where(st.range.start_line) + "FROM: " + pw.error().message());
      auto parsed = image::ParsePlatform(pw->result);
      if (!parsed.ok()) return Error(Code::kInvalidArgument, Where(st.range.start_line) + "FROM: " + parsed.error().message());
      p = *parsed;
    }
    stage_platforms_.push_back(p);
  }
  return core::Ok();
}

Result<int> Lowerer::FindStage(const std::string& name, int current, int line, const std::string& what) {
  std::string want = core::ToLower(name);
  for (auto& st : df_.stages) {
    if (!st.name.empty() && core::ToLower(st.name) == want) {
      if (st.index == current) {
        return Error(Code::kInvalidArgument, Where(line) + what + ": circular dependency detected on stage: " + name);
      }
      if (st.index > current) {
        return Error(Code::kInvalidArgument, Where(line) + what + ": stage \"" + name + "\" needs to be defined before current stage");
      }
      return st.index;
    }
  }
  return -1;
}

Status Lowerer::ComputeDeps() {
  bool external_images = false;
  for (auto& st : df_.stages) {
    StageState& s = states_[static_cast<size_t>(st.index)];
    s.index = st.index;
    const std::string& base_name = stage_bases_[static_cast<size_t>(st.index)];
    if (!opts_.named_contexts.count(base_name)) {  // a named context stands in for a stage
      XB_ASSIGN(int base, FindStage(base_name, st.index, st.range.start_line, "FROM"));
      if (base >= 0) s.deps.push_back(base);
    }
    for (auto& inst : st.commands) {
      std::string from;
      if (auto* c = std::get_if<CopyCmd>(&inst.data)) from = c->from;
      if (auto* r = std::get_if<RunCmd>(&inst.data)) {
        for (auto& m : r->mounts) {
          std::string f = MountFrom(m);
          if (f.find('$') != std::string::npos) {  // BuildKit's message, for every stage
            return Error(Code::kInvalidArgument,
                         Where(inst.range.start_line) + "RUN: --mount " + m +
                             ": 'from' doesn't support variable expansion, define alias stage instead");
          }
          if (!f.empty()) from = f;
        }
      }
      if (from.empty() || from.find('$') != std::string::npos || opts_.named_contexts.count(from)) continue;
      if (IsNumber(from)) {
        int idx = std::atoi(from.c_str());
        if (idx >= st.index) {
          return Error(Code::kInvalidArgument, Where(inst.range.start_line) + inst.keyword + ": stage " + from + " needs to be defined before current stage");
        }
        s.deps.push_back(idx);
        continue;
      }
      XB_ASSIGN(int dep, FindStage(from, st.index, inst.range.start_line, inst.keyword + " --from"));
      if (dep >= 0) s.deps.push_back(dep);
      if (dep < 0) external_images = true;
    }
  }
  // As BuildKit: step names say their stage unless the build has one stage and reads no image
  // besides its base (a COPY --from=<image> counts as a stage there).
  single_state_ = df_.stages.size() == 1 && !external_images;
  return core::Ok();
}

Output Lowerer::ImageSource(const image::Reference& ref, const image::Platform& p, std::string name) {
  solver::SourceOp src;
  src.identifier = "docker-image://" + ref.String();
  src.attrs["image.platform"] = p.String();
  solver::VertexMeta meta;
  meta.description = std::move(name);
  return solver::MakeVertex(src, {}, meta);
}

// dockerfile2llb's prefixCommand: "[2/3] RUN ..." in a one-stage build, "[build 2/5] ..." or
// "[stage-1 2/5] ..." otherwise; the index is padded to the total's width ("[ 3/12]").
std::string Lowerer::StepName(StageState& st, const std::string& text) {
  if (st.cmd_total == 0) return text;
  std::string out = "[";
  if (!single_state_) {
    const Stage& stage = df_.stages[static_cast<size_t>(st.index)];
    out += (stage.name.empty() ? "stage-" + std::to_string(st.index) : stage.name) + " ";
  }
  std::string index = std::to_string(++st.cmd_index);
  std::string total = std::to_string(st.cmd_total);
  if (index.size() < total.size()) index.insert(0, total.size() - index.size(), ' ');
  out += index + "/" + total + "] ";
  if (in_trigger_) out += "ONBUILD ";
  return out + text;
}

Result<Output> Lowerer::ContextSource(const std::vector<std::string>& includes) {
  solver::SourceOp src;
  src.identifier = "local://context";
  core::Json inc = includes;
  if (!includes.empty()) src.attrs["local.followpaths"] = core::CanonicalJson(inc);
  if (!opts_.context_excludes.empty()) src.attrs["local.excludepatterns"] = core::CanonicalJson(core::Json(opts_.context_excludes));
  solver::VertexMeta meta;
  meta.description = "[internal] load build context";
  return solver::MakeVertex(src, {}, meta);
}

Status Lowerer::LowerStage(int i) {
  StageState& st = states_[static_cast<size_t>(i)];
  if (st.lowered) return core::Ok();
  for (int d : st.deps) XB_TRY(LowerStage(d));
  const Stage& stage = df_.stages[static_cast<size_t>(i)];
  const std::string& base = stage_bases_[static_cast<size_t>(i)];
  const image::Platform& platform = stage_platforms_[static_cast<size_t>(i)];
  std::vector<std::string> triggers;
  std::optional<image::Reference> named_image;
  XB_ASSIGN(std::optional<Output> named, NamedContext(base, {}, platform, Where(stage.range.start_line) + "FROM: ", &named_image));
  int base_stage = -1;
  if (!named) {
    XB_ASSIGN(base_stage, FindStage(base, i, stage.range.start_line, "FROM"));
  }
  // The steps named "[i/total]": FROM an image, then every instruction that makes a vertex.
  st.cmd_index = 0;
  st.cmd_total = base_stage < 0 && core::ToLower(base) != "scratch" ? 1 : 0;
  for (const auto& inst : stage.commands) st.cmd_total += MakesVertex(inst.keyword);
  if (base_stage >= 0) {
    const StageState& b = states_[static_cast<size_t>(base_stage)];
    st.fs = b.fs;
    st.config = b.config;
    triggers = st.config.config.on_build;
    st.cmd_total += TriggerSteps(triggers);
  } else if (named ? !named_image : core::ToLower(base) == "scratch") {
    // scratch, or a named directory or checkout with scratch's config (BuildKit's emptyImage)
    if (named) st.fs = *named;
    st.config.config.working_dir = "/";
  } else {
    auto ref = named_image ? Result<image::Reference>(*named_image) : image::ParseReference(base);
    if (!ref.ok()) return Error(Code::kInvalidArgument, Where(stage.range.start_line) + "FROM: " + ref.error().message());
    std::string shown = ref->String();
    if (resolver_) {
      auto cfg = resolver_->ResolveImageConfig(*ref, platform);
      if (!cfg.ok()) return std::move(cfg).error().Context(Where(stage.range.start_line) + "FROM " + ref->Familiar());
      st.config = *cfg;
      st.config.history.clear();
      for (auto& h : cfg->history) st.config.history.push_back(h);
      if (auto d = resolver_->ResolvedDigest(*ref); d && !ref->digest) shown += "@" + d->String();
    }
    triggers = st.config.config.on_build;
    st.cmd_total += TriggerSteps(triggers);
    st.fs = ImageSource(*ref, platform, StepName(st, "FROM " + shown));
  }
  if (base_stage < 0) {  // not a stage: the image is for the stage's platform
    st.config.os = platform.os;
    st.config.architecture = platform.architecture;
    st.config.variant = platform.variant;
  }
  st.config.config.on_build.clear();  // triggers run once, in the child; they are not inherited
  if (!st.config.GetEnv("PATH")) st.config.SetEnv("PATH", kDefaultPath);
  st.cmd_set = false;
  in_stage_ = true;
  for (auto& t : triggers) {
    auto parsed = Parse(t, df_.filename);
    if (!parsed.ok() || parsed->children.size() != 1) {
      return Error(Code::kInvalidArgument, Where(stage.range.start_line) + "FROM: invalid ONBUILD trigger \"" + t + "\" in base image " + base);
    }
    XB_ASSIGN(Instruction inst, ToInstruction(parsed->children[0], df_.filename));
    inst.range = stage.range;
    in_trigger_ = true;
    Status s = Dispatch(st, inst);
    in_trigger_ = false;
    XB_TRY(s);
  }
  for (auto& inst : stage.commands) XB_TRY(Dispatch(st, inst));
  in_stage_ = false;
  st.lowered = true;
  return core::Ok();
}

Status Lowerer::Dispatch(StageState& st, const Instruction& inst) {
  const int line = inst.range.start_line;
  Step step{inst, line, inst.keyword, Where(line) + inst.keyword + ": ", EnvFor(st), {}};
  known_names_.clear();
  for (auto& [k, v] : step.env.vars) known_names_.insert(k);
  for (auto& n : st.declared_args) known_names_.insert(n);
  step.meta.source_line = line;
  if (MakesVertex(step.kw)) step.meta.description = StepName(st, UppercaseKeyword(inst.original));
  return std::visit([&](const auto& c) { return Apply(st, step, c); }, inst.data);
}

Status Lowerer::Apply(StageState& st, Step& step, const EnvCmd& c) {
  // Every value of one ENV sees the state before it.
  std::vector<std::pair<std::string, std::string>> out;
  std::string hist;
  for (auto& kv : c.vars) {
    XB_ASSIGN(std::string key, Expand(kv.key, step.env, step.line, step.kw));
    XB_ASSIGN(std::string value, Expand(kv.value, step.env, step.line, step.kw));
    out.emplace_back(key, value);
    hist += (hist.empty() ? "" : " ") + key + "=" + value;
  }
  for (auto& [k, v] : out) st.config.SetEnv(k, v);
  AddHistory(st, "ENV " + hist, true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const ArgCmd& c) {
  std::string hist;
  for (auto& d : c.args) {
    std::optional<std::string> value, default_value;
    if (d.default_value) {
      XB_ASSIGN(default_value, Expand(*d.default_value, step.env, step.line, step.kw));
    }
    if (auto it = opts_.build_args.find(d.name); it != opts_.build_args.end()) {
      value = it->second;
      used_build_args_.insert(d.name);
    } else if (default_value) {
      value = default_value;
    } else if (auto mit = meta_args_.find(d.name); mit != meta_args_.end()) {
      value = mit->second;  // re-importing a global ARG
    } else if (auto pa = PlatformArgs(opts_.target_platform, opts_.build_platform); pa.count(d.name)) {
      value = pa[d.name];
    } else if (d.name == "TARGETSTAGE") {
      value = target_stage_name_;  // BuildKit's: the stage being built, "default" if unnamed
    }
    if (st.declared_args.insert(d.name).second) st.arg_order.push_back(d.name);
    if (value) {
      st.args[d.name] = *value;
      step.env.vars[d.name] = *value;
    }
    // The history shows the declared default, never a --build-arg's value (BuildKit's rule).
    hist += (hist.empty() ? "" : " ") + d.name + (default_value ? "=" + *default_value : "");
  }
  AddHistory(st, "ARG " + hist, true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const WorkdirCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  XB_ASSIGN(std::string p, Expand(c.path, step.env, step.line, step.kw));
  std::string wd = p.starts_with("/") ? p : (cc.working_dir.empty() ? "/" : cc.working_dir) + "/" + p;
  wd = core::CleanPath(wd);
  cc.working_dir = wd;
  if (wd == "/") {
    AddHistory(st, "WORKDIR " + wd, true);
    return core::Ok();
  }
  // As BuildKit does: the directory is made (owned by USER) and recorded as a layer.
  solver::FileOp fop;
  solver::MkdirAction mk;
  mk.path = wd;
  if (!cc.user.empty()) {
    auto colon = cc.user.find(':');
    mk.chown = solver::ChownOpt{colon == std::string::npos ? cc.user : cc.user.substr(0, colon),
                                colon == std::string::npos ? "" : cc.user.substr(colon + 1)};
  }
  fop.actions.push_back({0, mk});
  st.fs = solver::MakeVertex(fop, {st.fs}, step.meta);
  AddHistory(st, "WORKDIR " + wd, false);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const UserCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  XB_ASSIGN(cc.user, Expand(c.user, step.env, step.line, step.kw));
  AddHistory(st, "USER " + cc.user, true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step&, const CmdCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  std::vector<std::string> args = Argv(c.cmd, cc.shell);
  cc.cmd = args;
  st.cmd_set = true;
  AddHistory(st, "CMD " + core::Json(args).dump(), true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step&, const EntrypointCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  std::vector<std::string> args = Argv(c.cmd, cc.shell);
  cc.entrypoint = args;
  if (!st.cmd_set) cc.cmd = std::nullopt;  // an inherited CMD does not survive a new ENTRYPOINT
  AddHistory(st, "ENTRYPOINT " + core::Json(args).dump(), true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step&, const ShellCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  cc.shell = c.shell;
  AddHistory(st, "SHELL " + core::Json(c.shell).dump(), true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const LabelCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  std::string hist;
  for (auto& kv : c.labels) {
    XB_ASSIGN(std::string k, Expand(kv.key, step.env, step.line, step.kw));
    XB_ASSIGN(std::string v, Expand(kv.value, step.env, step.line, step.kw));
    cc.labels[k] = v;
    hist += (hist.empty() ? "" : " ") + k + "=" + v;
  }
  AddHistory(st, "LABEL " + hist, true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const MaintainerCmd& c) {
  XB_ASSIGN(st.config.author, Expand(c.name, step.env, step.line, step.kw));
  AddHistory(st, "MAINTAINER " + st.config.author, true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const ExposeCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  std::string hist;
  for (auto& p : c.ports) {
    XB_ASSIGN(auto words, ExpandWords(p, step.env, step.line, step.kw));
    for (auto w : words) {
      std::string proto = "tcp";
      if (auto slash = w.find('/'); slash != std::string::npos) {
        proto = core::ToLower(w.substr(slash + 1));
        w = w.substr(0, slash);
      }
      if (auto colon = w.rfind(':'); colon != std::string::npos) w = w.substr(colon + 1);
      if (w.empty() || !std::all_of(w.begin(), w.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '-'; }) ||
          (proto != "tcp" && proto != "udp" && proto != "sctp")) {
        return Error(Code::kInvalidArgument, step.where + "invalid port \"" + p + "\"");
      }
      cc.exposed_ports.insert(w + "/" + proto);
      hist += (hist.empty() ? "" : " ") + w + "/" + proto;
    }
  }
  AddHistory(st, "EXPOSE " + hist, true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const VolumeCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  std::string hist;
  for (auto& p : c.paths) {
    XB_ASSIGN(std::string v, Expand(p, step.env, step.line, step.kw));
    if (v.empty()) return Error(Code::kInvalidArgument, step.where + "VOLUME specified can not be an empty string");
    cc.volumes.insert(v);
    hist += (hist.empty() ? "" : " ") + v;
  }
  AddHistory(st, "VOLUME [" + hist + "]", true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const StopsignalCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  XB_ASSIGN(cc.stop_signal, Expand(c.signal, step.env, step.line, step.kw));
  AddHistory(st, "STOPSIGNAL " + cc.stop_signal, true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step& step, const HealthcheckCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  image::HealthConfig h;
  h.test = c.test;
  XB_ASSIGN(h.interval_ns, ParseDurationNs(c.interval, step.where + "--interval: "));
  XB_ASSIGN(h.timeout_ns, ParseDurationNs(c.timeout, step.where + "--timeout: "));
  XB_ASSIGN(h.start_period_ns, ParseDurationNs(c.start_period, step.where + "--start-period: "));
  XB_ASSIGN(h.start_interval_ns, ParseDurationNs(c.start_interval, step.where + "--start-interval: "));
  if (!c.retries.empty()) {
    if (!IsNumber(c.retries)) return Error(Code::kInvalidArgument, step.where + "--retries: not a number: " + c.retries);
    h.retries = std::atoi(c.retries.c_str());
  }
  cc.healthcheck = h;
  AddHistory(st, "HEALTHCHECK " + core::Json(h.test).dump(), true);
  return core::Ok();
}

Status Lowerer::Apply(StageState& st, Step&, const OnbuildCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  std::string expr = c.expression;
  // Store the trigger without the ONBUILD keyword, as Docker does.
  if (core::ToUpper(expr.substr(0, 7)) == "ONBUILD") expr.erase(0, expr.find_first_not_of(" \t", 7));
  cc.on_build.push_back(expr);
  AddHistory(st, "ONBUILD " + expr, true);
  return core::Ok();
}

Status Lowerer::Apply(StageState&, Step& step, const FromCmd&) {
  return Error(Code::kInternal, step.where + "unexpected FROM inside a stage");
}

Result<LowerResult> Lowerer::Run() {
  XB_TRY(ResolveMetaArgs());
  states_.resize(df_.stages.size());
  XB_TRY(ComputeDeps());
  int target = static_cast<int>(df_.stages.size()) - 1;
  if (!opts_.target.empty()) {
    target = -1;
    for (auto& st : df_.stages)
      if (!st.name.empty() && core::ToLower(st.name) == core::ToLower(opts_.target)) target = st.index;
    if (target < 0) return Error(Code::kNotFound, "target stage \"" + opts_.target + "\" could not be found");
  }
  const std::string& name = df_.stages[static_cast<size_t>(target)].name;
  target_stage_name_ = name.empty() ? "default" : name;
  XB_TRY(LowerStage(target));
  LowerResult res;
  res.target_stage = target;
  for (auto& s : states_)
    if (s.lowered) res.stages.push_back(s.index);
  res.definition = solver::Flatten(states_[static_cast<size_t>(target)].fs);
  res.config = states_[static_cast<size_t>(target)].config;
  if (opts_.source_date_epoch) res.config.created = image::FormatTime(*opts_.source_date_epoch);
  res.warnings = warnings_;
  for (auto& [k, v] : opts_.build_args) {
    if (!used_build_args_.count(k) && !k.starts_with("BUILDKIT_") &&
        std::find(ProxyArgs().begin(), ProxyArgs().end(), k) == ProxyArgs().end()) {
      res.unused_build_args.push_back(k);
    }
  }
  return res;
}

}  // namespace xbuild::frontend::lowering

namespace xbuild::frontend {

// In pairs, upper case first (lower_run.cc reads them so).
const std::vector<std::string>& ProxyArgs() {
  static const std::vector<std::string> kArgs = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                                 "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                                 "ALL_PROXY",  "all_proxy"};
  return kArgs;
}

std::map<std::string, std::string> PlatformArgs(const image::Platform& t, const image::Platform& b) {
  return {{"TARGETPLATFORM", t.String()}, {"TARGETOS", t.os},     {"TARGETARCH", t.architecture},
          {"TARGETVARIANT", t.variant},   {"BUILDPLATFORM", b.String()}, {"BUILDOS", b.os},
          {"BUILDARCH", b.architecture},  {"BUILDVARIANT", b.variant}};
}

std::vector<ArgInfo> DeclaredArgs(const Dockerfile& df) {
  std::vector<ArgInfo> out;
  std::set<std::string> seen;
  auto add = [&](const Instruction& inst, bool global) {
    for (auto& d : std::get<ArgCmd>(inst.data).args) {
      if (!seen.insert(d.name).second) continue;
      out.push_back({d.name, d.default_value, inst.range.start_line, global});
    }
  };
  for (auto& inst : df.meta_args) add(inst, true);
  for (auto& st : df.stages)
    for (auto& inst : st.commands)
      if (std::holds_alternative<ArgCmd>(inst.data)) add(inst, false);
  return out;
}
core::Result<LowerResult> Lower(const Dockerfile& df, const LowerOptions& opts, ImageResolver* resolver) {
  lowering::Lowerer l(df, opts, resolver);
  return l.Run();
}

}  // namespace xbuild::frontend
