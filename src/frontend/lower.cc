#include "frontend/lower.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/fs.h"
#include "core/json.h"
#include "core/path.h"
#include "core/strings.h"
#include "frontend/shell_lex.h"
#include "frontend/source_url.h"

namespace xbuild::frontend {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using solver::Output;

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Variables visible to an instruction: the stage's ARGs, overridden by its ENV.
class VarEnv : public Env {
 public:
  std::optional<std::string> Get(std::string_view name) const override {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, std::string> vars;
};

struct StageState {
  int index = 0;
  bool lowered = false;
  Output fs;                                  // scratch when null
  image::ImageConfig config;
  std::map<std::string, std::string> args;    // ARGs declared in this stage, with values
  std::set<std::string> declared_args;
  bool cmd_set = false;                       // CMD set in this stage (ENTRYPOINT keeps it)
  std::vector<int> deps;
  // Progress names, "[build 2/5] RUN make": the stage's steps that make a vertex, counted.
  int cmd_index = 0;
  int cmd_total = 0;
};

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

// Mirrors BuildKit's history text: `RUN /bin/sh -c make # buildkit`.
std::string HistoryFor(const Instruction& inst, const std::string& body) {
  return inst.keyword + " " + body + (inst.keyword == "RUN" || inst.keyword == "COPY" || inst.keyword == "ADD" ? " # buildkit" : "");
}

Result<int64_t> ParseDurationNs(const std::string& text, const std::string& where) {
  if (text.empty()) return int64_t{0};
  // Go durations: a sequence of <number><unit>, units ns us ms s m h.
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
    if (j == i) return Error(Code::kInvalidArgument, where + "invalid duration \"" + text + "\"");
    double n = std::stod(text.substr(i, j - i));
    size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) ++k;
    std::string unit = text.substr(j, k - j);
    double mult = unit == "ns" ? 1 : unit == "us" ? 1e3 : unit == "ms" ? 1e6 : unit == "s" ? 1e9 : unit == "m" ? 60e9 : unit == "h" ? 3600e9 : -1;
    if (mult < 0) return Error(Code::kInvalidArgument, where + "invalid duration \"" + text + "\": unknown unit \"" + unit + "\"");
    total += static_cast<int64_t>(n * mult);
    i = k;
  }
  return total;
}

Result<solver::Mount> ParseRunMount(const std::string& spec, const std::string& where) {
  solver::Mount m;
  m.type = solver::MountType::kBind;
  m.readonly = true;
  std::string type = "bind";
  std::vector<std::pair<std::string, std::string>> kvs;
  for (auto& field : core::Split(spec, ',')) {
    if (field.empty()) continue;
    auto eq = field.find('=');
    std::string k = core::ToLower(eq == std::string::npos ? field : field.substr(0, eq));
    std::string v = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (k == "type") type = v;
    else kvs.emplace_back(k, v);
  }
  if (type == "cache") m.type = solver::MountType::kCache, m.readonly = false;
  else if (type == "tmpfs") m.type = solver::MountType::kTmpfs, m.readonly = false;
  else if (type == "secret") m.type = solver::MountType::kSecret;
  else if (type == "ssh") m.type = solver::MountType::kSsh;
  else if (type != "bind") return Error(Code::kInvalidArgument, where + "unsupported mount type \"" + type + "\"");
  // Secrets and ssh sockets are optional unless required=true (BuildKit's default).
  if (m.type == solver::MountType::kSecret || m.type == solver::MountType::kSsh) m.optional = true;
  for (auto& [k, v] : kvs) {
    if (k == "target" || k == "dst" || k == "destination") m.dest = v;
    else if (k == "source" || k == "src") m.selector = v;
    else if (k == "id") (m.type == solver::MountType::kCache ? m.cache_id : m.secret_id) = v;
    else if (k == "ro" || k == "readonly") m.readonly = v.empty() || v == "true";
    else if (k == "rw" || k == "readwrite") m.readonly = !(v.empty() || v == "true");
    else if (k == "sharing") {
      if (v == "shared") m.sharing = solver::CacheSharing::kShared;
      else if (v == "private") m.sharing = solver::CacheSharing::kPrivate;
      else if (v == "locked") m.sharing = solver::CacheSharing::kLocked;
      else return Error(Code::kInvalidArgument, where + "invalid cache sharing \"" + v + "\"");
    } else if (k == "required") m.optional = !(v.empty() || v == "true");
    else if (k == "size") m.tmpfs_size = std::atoll(v.c_str());
    else if (k == "uid") m.uid = static_cast<uint32_t>(std::atoi(v.c_str()));
    else if (k == "gid") m.gid = static_cast<uint32_t>(std::atoi(v.c_str()));
    else if (k == "mode") m.mode = static_cast<uint32_t>(std::strtoul(v.c_str(), nullptr, 8));
    else if (k == "env") m.env = v;
    else if (k == "from") continue;  // resolved by the caller
    else return Error(Code::kInvalidArgument, where + "unexpected key \"" + k + "\" in --mount " + spec);
  }
  if (!m.env.empty() && m.type != solver::MountType::kSecret) {
    return Error(Code::kInvalidArgument, where + "env= applies to secret mounts only");
  }
  if (m.type == solver::MountType::kSecret && m.secret_id.empty() && !m.dest.empty()) m.secret_id = core::Basename(m.dest);
  if (m.type == solver::MountType::kSecret && m.secret_id.empty()) {
    return Error(Code::kInvalidArgument, where + "a secret mount needs id= or target=");
  }
  if (m.type == solver::MountType::kSsh && m.secret_id.empty()) m.secret_id = "default";
  // A secret named only as an environment variable gets no file (BuildKit's rule).
  if (m.type == solver::MountType::kSecret && m.dest.empty() && !m.secret_id.empty() && m.env.empty()) m.dest = "/run/secrets/" + m.secret_id;
  if (m.type == solver::MountType::kSsh && m.dest.empty()) m.dest = "/run/buildkit/ssh_agent.0";
  // An empty target is relative like any other: it mounts on the working directory.
  return m;
}

// What a COPY --parents source reads from the context: the path up to its first component with
// a wildcard (`**` included), so that the context selection holds every possible match.
std::string ParentsBase(const std::string& src) {
  std::string out;
  for (auto& part : core::Split(src, '/')) {
    if (part.find_first_of("*?[") != std::string::npos) break;
    out += (out.empty() ? "" : "/") + part;
  }
  return out.empty() ? "." : out;
}

// The `from=` of a --mount spec ("" when absent).
std::string MountFrom(const std::string& spec) {
  for (auto& field : core::Split(spec, ',')) {
    if (field.starts_with("from=")) return field.substr(5);
  }
  return "";
}

// The heredoc a COPY/ADD source word names ("<<EOF" or "<<-EOF"), if any.
const Heredoc* FindHeredoc(const std::vector<Heredoc>& heredocs, const std::string& source) {
  for (auto& h : heredocs)
    if (source == "<<" + h.name || source == "<<-" + h.name) return &h;
  return nullptr;
}

bool ValidChmod(const std::string& s) {
  if (s.empty()) return true;
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '7'; })) return s.size() <= 4;
  // symbolic: [ugoa]*[+-=][rwxXst]* separated by commas
  for (char c : s) {
    if (!std::strchr("ugoa+-=rwxXst,", c)) return false;
  }
  return s.find_first_of("+-=") != std::string::npos;
}

class Lowerer {
 public:
  Lowerer(const Dockerfile& df, const LowerOptions& o, ImageResolver* r) : df_(df), opts_(o), resolver_(r), lex_(df.escape) {}

  Result<LowerResult> Run();

 private:
  std::string Where(int line) const { return frontend::Where(df_.filename, line); }

  Result<std::string> Expand(const std::string& word, const VarEnv& env, int line, const std::string& kw) {
    auto r = lex_.ProcessWord(word, env);
    if (!r.ok()) return Error(Code::kInvalidArgument, Where(line) + kw + ": " + r.error().message());
    for (auto& u : r->unmatched) Undefined(u, line);
    return r->result;
  }
  Result<std::vector<std::string>> ExpandWords(const std::string& word, const VarEnv& env, int line, const std::string& kw) {
    auto r = lex_.ProcessWords(word, env);
    if (!r.ok()) return Error(Code::kInvalidArgument, Where(line) + kw + ": " + r.error().message());
    for (auto& u : r->unmatched) Undefined(u, line);
    return r->words;
  }
  void Undefined(const std::string& name, int line) {
    if (!in_stage_ || known_names_.count(name)) return;
    Warn({"UndefinedVar", "Usage of undefined variable '$" + name + "'", line});
  }

  void Warn(Warning w) {
    if (opts_.warnings_sink) opts_.warnings_sink->push_back(w);
    warnings_.push_back(std::move(w));
  }
  Status ResolveMetaArgs();
  Result<int> FindStage(const std::string& name, int current, int line, const std::string& what);
  Status ComputeDeps();
  Status LowerStage(int i);
  Status Dispatch(StageState& st, const Instruction& inst);
  VarEnv EnvFor(const StageState& st) const;
  void AddHistory(StageState& st, const std::string& created_by, bool empty_layer);
  Result<Output> ContextSource(const std::vector<std::string>& includes);
  Output ImageSource(const image::Reference& ref, const image::Platform& p, std::string name);
  Result<Output> UrlSource(const std::string& url, const CopyCmd& c, const std::string& checksum,
                           const std::string& where, std::string* copy_src);
  std::string StepName(StageState& st, const std::string& text);

  const Dockerfile& df_;
  const LowerOptions& opts_;
  ImageResolver* resolver_;
  ShellLex lex_;
  std::map<std::string, std::string> meta_args_;  // global ARG values
  std::set<std::string> declared_unset_meta_;     // global ARGs declared without a value
  std::set<std::string> used_build_args_;
  std::vector<StageState> states_;
  std::vector<std::string> stage_bases_;  // expanded FROM names
  std::vector<image::Platform> stage_platforms_;
  std::vector<Warning> warnings_;
  bool in_stage_ = false;
  bool in_trigger_ = false;            // dispatching a base image's ONBUILD trigger
  std::set<std::string> known_names_;  // names defined in the current scope (for UndefinedVar)
  bool single_state_ = false;          // one stage and no other image: names carry no stage
};

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
    XB_ASSIGN(int base, FindStage(stage_bases_[static_cast<size_t>(st.index)], st.index, st.range.start_line, "FROM"));
    if (base >= 0) s.deps.push_back(base);
    for (auto& inst : st.commands) {
      std::string from;
      if (auto* c = std::get_if<CopyCmd>(&inst.data)) from = c->from;
      if (auto* r = std::get_if<RunCmd>(&inst.data)) {
        for (auto& m : r->mounts)
          if (std::string f = MountFrom(m); !f.empty()) from = f;
      }
      if (from.empty() || from.find('$') != std::string::npos) continue;
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

// ADD <url>: a source of its own that the FileOp copies from, as dockerfile2llb lowers it: an
// http source holding one file (copied by its name), or a git checkout (its whole tree, "/").
// The URL is the progress name; the fetch itself happens in the runner.
Result<Output> Lowerer::UrlSource(const std::string& url, const CopyCmd& c,
                                  const std::string& checksum, const std::string& where,
                                  std::string* copy_src) {
  solver::SourceOp src;
  solver::VertexMeta meta;
  meta.description = url;
  if (IsGitUrl(url)) {
    auto g = ParseGitRef(url);
    if (!g.ok()) return Error(Code::kInvalidArgument, where + g.error().message());
    // A file:// repository is a directory of this machine outside the context: a Dockerfile
    // must not be able to read it. Whoever runs the build can name it as the context.
    if (g->local) {
      return Error(Code::kInvalidArgument,
                   where + url + ": ADD does not read file:// repositories (they are outside " +
                       "the build context); build from it as a git context instead");
    }
    if (!checksum.empty() &&
        (checksum.size() > 64 || !std::all_of(checksum.begin(), checksum.end(), [](char ch) {
          return std::isxdigit(static_cast<unsigned char>(ch));
        }))) {
      return Error(Code::kInvalidArgument,
                   where + "--checksum of a git source is a commit id (hex), got " + checksum);
    }
    std::string shown = g->remote.find("://") == std::string::npos
                            ? g->remote
                            : g->remote.substr(g->remote.find("://") + 3);
    src.identifier = "git://" + shown + (g->ref.empty() ? "" : "#" + g->ref);
    src.attrs["git.fullurl"] = g->remote;
    if (!g->ref.empty()) src.attrs["git.ref"] = g->ref;
    if (!g->subdir.empty()) src.attrs["git.subdir"] = g->subdir;
    if (c.keep_git_dir) src.attrs["git.keepgitdir"] = "true";
    if (!checksum.empty()) src.attrs["git.checksum"] = core::ToLower(checksum);
    *copy_src = "/";
  } else {
    if (!checksum.empty()) {
      auto d = core::Digest::Parse(checksum);
      if (!d.ok()) {
        return Error(Code::kInvalidArgument,
                     where + "invalid --checksum " + checksum + ": want sha256:<64 hex digits>");
      }
      src.attrs["http.checksum"] = d->String();
    }
    src.identifier = url;
    *copy_src = UrlFilename(url);
    src.attrs["http.filename"] = *copy_src;
  }
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
  XB_ASSIGN(int base_stage, FindStage(base, i, stage.range.start_line, "FROM"));
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
  } else if (core::ToLower(base) == "scratch") {
    st.config.os = platform.os;
    st.config.architecture = platform.architecture;
    st.config.variant = platform.variant;
  } else {
    auto ref = image::ParseReference(base);
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
    st.config.os = platform.os;
    st.config.architecture = platform.architecture;
    st.config.variant = platform.variant;
    triggers = st.config.config.on_build;
    st.cmd_total += TriggerSteps(triggers);
    st.fs = ImageSource(*ref, platform, StepName(st, "FROM " + shown));
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
  const std::string& kw = inst.keyword;
  std::string where = Where(line) + kw + ": ";
  VarEnv env = EnvFor(st);
  known_names_.clear();
  for (auto& [k, v] : env.vars) known_names_.insert(k);
  for (auto& n : st.declared_args) known_names_.insert(n);
  solver::VertexMeta meta;
  meta.source_line = line;
  if (MakesVertex(kw)) meta.description = StepName(st, UppercaseKeyword(inst.original));

  return std::visit(
      [&](const auto& c) -> Status {
        using T = std::decay_t<decltype(c)>;
        image::ContainerConfig& cc = st.config.config;
        if constexpr (std::is_same_v<T, EnvCmd>) {
          // Every value of one ENV sees the state before it.
          std::vector<std::pair<std::string, std::string>> out;
          std::string hist;
          for (auto& kv : c.vars) {
            XB_ASSIGN(std::string key, Expand(kv.key, env, line, kw));
            XB_ASSIGN(std::string value, Expand(kv.value, env, line, kw));
            out.emplace_back(key, value);
            hist += (hist.empty() ? "" : " ") + key + "=" + value;
          }
          for (auto& [k, v] : out) st.config.SetEnv(k, v);
          AddHistory(st, "ENV " + hist, true);
        } else if constexpr (std::is_same_v<T, ArgCmd>) {
          std::string hist;
          for (auto& d : c.args) {
            std::optional<std::string> value;
            if (auto it = opts_.build_args.find(d.name); it != opts_.build_args.end()) {
              value = it->second;
              used_build_args_.insert(d.name);
            } else if (d.default_value) {
              XB_ASSIGN(std::string v, Expand(*d.default_value, env, line, kw));
              value = v;
            } else if (auto mit = meta_args_.find(d.name); mit != meta_args_.end()) {
              value = mit->second;  // re-importing a global ARG
            } else if (auto pa = PlatformArgs(opts_.target_platform, opts_.build_platform); pa.count(d.name)) {
              value = pa[d.name];
            }
            st.declared_args.insert(d.name);
            if (value) {
              st.args[d.name] = *value;
              env.vars[d.name] = *value;
            }
            hist += (hist.empty() ? "" : " ") + d.name + (value ? "=" + *value : "");
          }
          AddHistory(st, "ARG " + hist, true);
        } else if constexpr (std::is_same_v<T, RunCmd>) {
          solver::ExecOp op;
          std::vector<std::string> shell = cc.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : cc.shell;
          if (c.cmd.exec_form) {
            op.args = c.cmd.args;
          } else {
            std::string script = c.cmd.args.empty() ? "" : c.cmd.args[0];
            std::string trimmed = script;
            trimmed.erase(0, trimmed.find_first_not_of(" \t"));
            bool only_heredoc = !c.heredocs.empty() && trimmed.starts_with("<<") && trimmed.find(' ') == std::string::npos;
            if (only_heredoc) {
              script = c.heredocs[0].content;
            } else {
              for (auto& h : c.heredocs) script += "\n" + h.content + h.name;
            }
            op.args = shell;
            op.args.push_back(script);
          }
          // The step's environment: image ENV, then the stage's ARGs (build args are visible to
          // RUN but are not kept in the image).
          std::map<std::string, std::string> vars;
          for (auto& [k, v] : st.args) vars[k] = v;
          for (auto& p : ProxyArgs()) {
            if (auto it = opts_.build_args.find(p); it != opts_.build_args.end()) vars[p] = it->second, used_build_args_.insert(p);
          }
          for (auto& e : cc.env) {
            auto eq = e.find('=');
            if (eq != std::string::npos) vars[e.substr(0, eq)] = e.substr(eq + 1);
          }
          for (auto& [k, v] : vars) op.env.push_back(k + "=" + v);
          op.cwd = cc.working_dir.empty() ? "/" : cc.working_dir;
          op.user = cc.user;
          solver::Mount root;
          root.input = 0;
          root.dest = "/";
          root.output = 0;
          op.mounts.push_back(root);
          std::vector<Output> inputs{st.fs};
          for (auto& spec : c.mounts) {
            XB_ASSIGN(std::string expanded, Expand(spec, env, line, kw));
            XB_ASSIGN(solver::Mount m, ParseRunMount(expanded, where));
            bool env_only = m.type == solver::MountType::kSecret && m.dest.empty();
            if (!env_only && (m.dest.empty() || m.dest[0] != '/')) m.dest = core::CleanPath(op.cwd + "/" + m.dest);
            // The source of a bind/cache mount: a stage, an image, or the context.
            std::string from = MountFrom(expanded);
            if (m.type == solver::MountType::kBind || (m.type == solver::MountType::kCache && !from.empty())) {
              Output src;
              if (from.empty()) {
                XB_ASSIGN(src, ContextSource({}));
              } else if (IsNumber(from)) {
                src = states_[static_cast<size_t>(std::atoi(from.c_str()))].fs;
              } else {
                XB_ASSIGN(int idx, FindStage(from, st.index, line, "RUN --mount"));
                if (idx >= 0) {
                  src = states_[static_cast<size_t>(idx)].fs;
                } else {
                  auto ref = image::ParseReference(from);
                  if (!ref.ok()) return Error(Code::kInvalidArgument, where + ref.error().message());
                  src = ImageSource(*ref, opts_.target_platform, "FROM " + ref->String());
                }
              }
              m.input = static_cast<int>(inputs.size());
              inputs.push_back(src);
            }
            if (m.type == solver::MountType::kCache && m.cache_id.empty()) m.cache_id = m.dest;
            op.mounts.push_back(m);
          }
          if (!c.network.empty()) {
            if (c.network == "none") op.network = solver::NetworkMode::kNone;
            else if (c.network == "host") op.network = solver::NetworkMode::kHost;
            else if (c.network != "default") return Error(Code::kInvalidArgument, where + "unsupported --network=" + c.network + " (want default, none or host)");
          }
          if (!c.security.empty()) {
            if (c.security == "insecure") op.security = solver::SecurityMode::kInsecure;
            else if (c.security != "sandbox") return Error(Code::kInvalidArgument, where + "unsupported --security=" + c.security);
          }
          op.devices = c.devices;
          st.fs = solver::MakeVertex(op, inputs, meta);
          // History as Docker writes it, with the build args the step saw: "|1 A=b /bin/sh -c ...".
          std::string prefix;
          if (!st.args.empty()) {
            prefix = "|" + std::to_string(st.args.size());
            for (auto& [k, v] : st.args) prefix += " " + k + "=" + v;
            prefix += " ";
          }
          std::string body = c.cmd.exec_form ? core::Json(c.cmd.args).dump() : JoinArgs(op.args);
          AddHistory(st, HistoryFor(inst, prefix + body), false);
        } else if constexpr (std::is_same_v<T, CopyCmd>) {
          XB_ASSIGN(std::string dest, Expand(c.dest, env, line, kw));
          std::vector<std::string> sources;
          std::string checksum;
          if (!c.checksum.empty()) {
            XB_ASSIGN(checksum, Expand(c.checksum, env, line, kw));
          }
          auto is_url = [&](const std::string& s) { return IsHttpUrl(s) || IsGitUrl(s); };
          for (auto& s : c.sources) {
            if (FindHeredoc(c.heredocs, s)) {
              sources.push_back(s);
              continue;
            }
            XB_ASSIGN(std::string e, Expand(s, env, line, kw));
            if (is_url(e) && (!c.is_add || !c.from.empty())) {
              return Error(Code::kInvalidArgument, where + "source can't be a URL for " + kw);
            }
            if (!checksum.empty() && !is_url(e)) {
              return Error(Code::kInvalidArgument,
                           where + "checksum can't be specified for non-HTTP(S) sources: " + e);
            }
            sources.push_back(e);
          }
          std::string workdir = cc.working_dir.empty() ? "/" : cc.working_dir;
          bool dest_dir = dest.ends_with("/") || dest == "." || dest.ends_with("/.");
          if (sources.size() > 1 && !dest_dir) {
            return Error(Code::kInvalidArgument, where + "When using " + kw + " with more than one source file, the destination must be a directory and end with a /");
          }
          std::string abs_dest = dest.starts_with("/") ? dest : workdir + "/" + dest;
          abs_dest = core::CleanPath(abs_dest);
          if (dest_dir && abs_dest != "/") abs_dest += "/";
          if (!ValidChmod(c.chmod)) return Error(Code::kInvalidArgument, where + "invalid --chmod=" + c.chmod);
          std::optional<solver::ChownOpt> chown;
          if (!c.chown.empty()) {
            XB_ASSIGN(std::string ch, Expand(c.chown, env, line, kw));
            auto colon = ch.find(':');
            chown = solver::ChownOpt{colon == std::string::npos ? ch : ch.substr(0, colon), colon == std::string::npos ? "" : ch.substr(colon + 1)};
          }
          // The source tree: the context, a stage, or an image.
          Output src;
          std::string from = c.from;
          if (!from.empty()) {
            XB_ASSIGN(from, Expand(from, env, line, kw));
            if (IsNumber(from)) {
              int idx = std::atoi(from.c_str());
              if (idx >= st.index) return Error(Code::kInvalidArgument, where + "stage " + from + " needs to be defined before current stage");
              src = states_[static_cast<size_t>(idx)].fs;
            } else {
              XB_ASSIGN(int idx, FindStage(from, st.index, line, kw + " --from"));
              if (idx >= 0) {
                src = states_[static_cast<size_t>(idx)].fs;
              } else {
                auto ref = image::ParseReference(from);
                if (!ref.ok()) return Error(Code::kInvalidArgument, where + "--from: " + ref.error().message());
                src = ImageSource(*ref, opts_.target_platform, "FROM " + ref->String());
              }
            }
          } else {
            std::vector<std::string> includes;
            for (auto& s : sources)
              if (!FindHeredoc(c.heredocs, s) && !is_url(s)) includes.push_back(core::CleanPath(c.parents ? ParentsBase(s) : s));
            // Only heredocs (or URLs): nothing is read from the context, so the step neither
            // depends on it nor needs one (`xbuild build - < Dockerfile`).
            if (!includes.empty()) {
              XB_ASSIGN(src, ContextSource(includes));
            }
          }
          solver::FileOp fop;
          std::vector<Output> inputs{c.link ? Output{} : st.fs, src};
          for (auto& s : sources) {
            if (const Heredoc* hd = FindHeredoc(c.heredocs, s)) {
              solver::MkfileAction mk;
              mk.path = dest_dir ? abs_dest + hd->name : abs_dest;
              mk.data = hd->content;
              if (hd->expand) {
                XB_ASSIGN(mk.data, Expand(hd->content, env, line, kw));
              }
              mk.chown = chown;
              if (!c.chmod.empty() && std::all_of(c.chmod.begin(), c.chmod.end(), [](char ch) { return ch >= '0' && ch <= '7'; })) {
                mk.mode = static_cast<uint32_t>(std::strtoul(c.chmod.c_str(), nullptr, 8));
              }
              fop.actions.push_back({fop.actions.empty() ? 0 : -1, mk});
              continue;
            }
            solver::CopyAction cp;
            cp.src_input = 1;
            cp.src = s;
            if (is_url(s)) {
              XB_ASSIGN(Output remote, UrlSource(s, c, checksum, where, &cp.src));
              inputs.push_back(remote);
              cp.src_input = static_cast<int>(inputs.size()) - 1;
            }
            cp.dest = abs_dest;
            cp.chown = chown;
            cp.chmod = c.chmod;
            cp.exclude_patterns = c.excludes;
            // A remote archive is not unpacked (BuildKit's rule), only a context one.
            cp.attempt_unpack = c.is_add && c.unpack.value_or(true) && c.from.empty() && !is_url(s);
            cp.timestamp = opts_.source_date_epoch;
            if (c.parents) {
              cp.parents = true;
              if (!abs_dest.ends_with("/")) {  // always a directory
                abs_dest += "/";
                cp.dest = abs_dest;
              }
            }
            fop.actions.push_back({fop.actions.empty() ? 0 : -1, cp});
          }
          Output layer = solver::MakeVertex(fop, inputs, meta);
          if (c.link) {
            st.fs = st.fs.scratch() ? layer : solver::MakeVertex(solver::MergeOp{}, {st.fs, layer}, meta);
          } else {
            st.fs = layer;
          }
          AddHistory(st, HistoryFor(inst, JoinArgs(sources) + " " + dest), false);
        } else if constexpr (std::is_same_v<T, WorkdirCmd>) {
          XB_ASSIGN(std::string p, Expand(c.path, env, line, kw));
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
          st.fs = solver::MakeVertex(fop, {st.fs}, meta);
          AddHistory(st, "WORKDIR " + wd, false);
        } else if constexpr (std::is_same_v<T, UserCmd>) {
          XB_ASSIGN(cc.user, Expand(c.user, env, line, kw));
          AddHistory(st, "USER " + cc.user, true);
        } else if constexpr (std::is_same_v<T, CmdCmd>) {
          std::vector<std::string> args = Argv(c.cmd, cc.shell);
          cc.cmd = args;
          st.cmd_set = true;
          AddHistory(st, "CMD " + core::Json(args).dump(), true);
        } else if constexpr (std::is_same_v<T, EntrypointCmd>) {
          std::vector<std::string> args = Argv(c.cmd, cc.shell);
          cc.entrypoint = args;
          if (!st.cmd_set) cc.cmd = std::nullopt;  // an inherited CMD does not survive a new ENTRYPOINT
          AddHistory(st, "ENTRYPOINT " + core::Json(args).dump(), true);
        } else if constexpr (std::is_same_v<T, ShellCmd>) {
          cc.shell = c.shell;
          AddHistory(st, "SHELL " + core::Json(c.shell).dump(), true);
        } else if constexpr (std::is_same_v<T, LabelCmd>) {
          std::string hist;
          for (auto& kv : c.labels) {
            XB_ASSIGN(std::string k, Expand(kv.key, env, line, kw));
            XB_ASSIGN(std::string v, Expand(kv.value, env, line, kw));
            cc.labels[k] = v;
            hist += (hist.empty() ? "" : " ") + k + "=" + v;
          }
          AddHistory(st, "LABEL " + hist, true);
        } else if constexpr (std::is_same_v<T, MaintainerCmd>) {
          XB_ASSIGN(st.config.author, Expand(c.name, env, line, kw));
          AddHistory(st, "MAINTAINER " + st.config.author, true);
        } else if constexpr (std::is_same_v<T, ExposeCmd>) {
          std::string hist;
          for (auto& p : c.ports) {
            XB_ASSIGN(auto words, ExpandWords(p, env, line, kw));
            for (auto w : words) {
              std::string proto = "tcp";
              if (auto slash = w.find('/'); slash != std::string::npos) {
                proto = core::ToLower(w.substr(slash + 1));
                w = w.substr(0, slash);
              }
              if (auto colon = w.rfind(':'); colon != std::string::npos) w = w.substr(colon + 1);
              if (w.empty() || !std::all_of(w.begin(), w.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '-'; }) ||
                  (proto != "tcp" && proto != "udp" && proto != "sctp")) {
                return Error(Code::kInvalidArgument, where + "invalid port \"" + p + "\"");
              }
              cc.exposed_ports.insert(w + "/" + proto);
              hist += (hist.empty() ? "" : " ") + w + "/" + proto;
            }
          }
          AddHistory(st, "EXPOSE " + hist, true);
        } else if constexpr (std::is_same_v<T, VolumeCmd>) {
          std::string hist;
          for (auto& p : c.paths) {
            XB_ASSIGN(std::string v, Expand(p, env, line, kw));
            if (v.empty()) return Error(Code::kInvalidArgument, where + "VOLUME specified can not be an empty string");
            cc.volumes.insert(v);
            hist += (hist.empty() ? "" : " ") + v;
          }
          AddHistory(st, "VOLUME [" + hist + "]", true);
        } else if constexpr (std::is_same_v<T, StopsignalCmd>) {
          XB_ASSIGN(cc.stop_signal, Expand(c.signal, env, line, kw));
          AddHistory(st, "STOPSIGNAL " + cc.stop_signal, true);
        } else if constexpr (std::is_same_v<T, HealthcheckCmd>) {
          image::HealthConfig h;
          h.test = c.test;
          XB_ASSIGN(h.interval_ns, ParseDurationNs(c.interval, where + "--interval: "));
          XB_ASSIGN(h.timeout_ns, ParseDurationNs(c.timeout, where + "--timeout: "));
          XB_ASSIGN(h.start_period_ns, ParseDurationNs(c.start_period, where + "--start-period: "));
          XB_ASSIGN(h.start_interval_ns, ParseDurationNs(c.start_interval, where + "--start-interval: "));
          if (!c.retries.empty()) {
            if (!IsNumber(c.retries)) return Error(Code::kInvalidArgument, where + "--retries: not a number: " + c.retries);
            h.retries = std::atoi(c.retries.c_str());
          }
          cc.healthcheck = h;
          AddHistory(st, "HEALTHCHECK " + core::Json(h.test).dump(), true);
        } else if constexpr (std::is_same_v<T, OnbuildCmd>) {
          std::string expr = c.expression;
          // Store the trigger without the ONBUILD keyword, as Docker does.
          if (core::ToUpper(expr.substr(0, 7)) == "ONBUILD") expr.erase(0, expr.find_first_not_of(" \t", 7));
          cc.on_build.push_back(expr);
          AddHistory(st, "ONBUILD " + expr, true);
        } else if constexpr (std::is_same_v<T, FromCmd>) {
          return Error(Code::kInternal, where + "unexpected FROM inside a stage");
        }
        return core::Ok();
      },
      inst.data);
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
    if (!used_build_args_.count(k) && std::find(ProxyArgs().begin(), ProxyArgs().end(), k) == ProxyArgs().end()) {
      res.unused_build_args.push_back(k);
    }
  }
  return res;
}

}  // namespace

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

Result<LowerResult> Lower(const Dockerfile& df, const LowerOptions& opts, ImageResolver* resolver) {
  Lowerer l(df, opts, resolver);
  return l.Run();
}

}  // namespace xbuild::frontend
