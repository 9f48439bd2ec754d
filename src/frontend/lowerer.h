// The lowering's internals, shared by lower.cc (stages, ARG scoping, the config instructions),
// lower_run.cc (RUN and its mounts) and lower_copy.cc (COPY/ADD, heredoc files, URL sources):
// one Apply per instruction, as dockerfile2llb has one dispatch function per instruction.
// Not part of the frontend's interface (lower.h is).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "frontend/lower.h"
#include "frontend/shell_lex.h"

namespace xbuild::frontend::lowering {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using solver::Output;

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
  std::vector<std::string> arg_order;         // ARG names in the order first declared (history)
  bool cmd_set = false;                       // CMD set in this stage (ENTRYPOINT keeps it)
  std::vector<int> deps;
  // Progress names, "[build 2/5] RUN make": the stage's steps that make a vertex, counted.
  int cmd_index = 0;
  int cmd_total = 0;
};

// What every instruction's Apply gets: where it is, the variables it sees, its vertex's
// progress name and line.
struct Step {
  const Instruction& inst;
  int line;
  std::string kw;
  std::string where;  // "Dockerfile:12: RUN: "
  VarEnv env;
  solver::VertexMeta meta;
};

bool IsNumber(const std::string& s);
// Exec form as written; shell form runs under SHELL (default /bin/sh -c).
std::vector<std::string> Argv(const Command& cmd, const std::vector<std::string>& shell);
std::string JoinArgs(const std::vector<std::string>& v);
// Mirrors BuildKit's history text: `RUN /bin/sh -c make # buildkit`.
std::string HistoryFor(const Instruction& inst, const std::string& body);
// The `from=` of a --mount spec ("" when absent).
std::string MountFrom(const std::string& spec);

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
  // A COPY/ADD heredoc's body, as dockerfile2llb expands it: quotes are plain characters
  // (`'${name}'` expands), the escape character is always `\` (whatever `# escape=` says),
  // and it drops itself before the next character (`\$` is `$`, `\\` is `\`).
  Result<std::string> ExpandHeredoc(const std::string& body, const VarEnv& env, int line, const std::string& kw) {
    ShellLex lex('\\');
    lex.set_skip_process_quotes(true);
    auto r = lex.ProcessWord(body, env);
    if (!r.ok()) return Error(Code::kInvalidArgument, Where(line) + kw + ": " + r.error().message());
    for (auto& u : r->unmatched) Undefined(u, line);
    return r->result;
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
  // One per instruction (lower.cc; RUN in lower_run.cc, COPY/ADD in lower_copy.cc).
  Status Apply(StageState& st, Step& step, const EnvCmd& c);
  Status Apply(StageState& st, Step& step, const ArgCmd& c);
  Status Apply(StageState& st, Step& step, const RunCmd& c);
  Status Apply(StageState& st, Step& step, const CopyCmd& c);
  Status Apply(StageState& st, Step& step, const WorkdirCmd& c);
  Status Apply(StageState& st, Step& step, const UserCmd& c);
  Status Apply(StageState& st, Step& step, const CmdCmd& c);
  Status Apply(StageState& st, Step& step, const EntrypointCmd& c);
  Status Apply(StageState& st, Step& step, const ShellCmd& c);
  Status Apply(StageState& st, Step& step, const LabelCmd& c);
  Status Apply(StageState& st, Step& step, const MaintainerCmd& c);
  Status Apply(StageState& st, Step& step, const ExposeCmd& c);
  Status Apply(StageState& st, Step& step, const VolumeCmd& c);
  Status Apply(StageState& st, Step& step, const StopsignalCmd& c);
  Status Apply(StageState& st, Step& step, const HealthcheckCmd& c);
  Status Apply(StageState& st, Step& step, const OnbuildCmd& c);
  Status Apply(StageState& st, Step& step, const FromCmd& c);
  VarEnv EnvFor(const StageState& st) const;
  void AddHistory(StageState& st, const std::string& created_by, bool empty_layer);
  Result<Output> ContextSource(const std::vector<std::string>& includes);
  Output ImageSource(const image::Reference& ref, const image::Platform& p, std::string name);
  Result<Output> UrlSource(const std::string& url, const CopyCmd& c, const std::string& checksum,
                           const std::string& where, std::string* copy_src);
  std::string StepName(StageState& st, const std::string& text);
  // --build-context NAME (LowerOptions::named_contexts): its tree, nullopt when there is no
  // such context. docker-image://REF is that image (*image set, for FROM's config); a git URL a
  // checkout; anything else a directory of the client, `local://NAME`, selecting `includes`
  // (all of it when empty), which the runner maps to the directory.
  Result<std::optional<Output>> NamedContext(const std::string& name, const std::vector<std::string>& includes,
                                             const image::Platform& p, const std::string& where,
                                             std::optional<image::Reference>* image = nullptr);

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
  std::string target_stage_name_;      // TARGETSTAGE
  bool single_state_ = false;          // one stage and no other image: names carry no stage
};

}  // namespace xbuild::frontend::lowering
