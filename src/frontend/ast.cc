#include "frontend/ast.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/strings.h"

namespace xbuild::frontend {

using core::Code;
using core::Error;
using core::Result;

std::string Where(std::string_view filename, int line) {
  return std::string(filename) + ":" + std::to_string(line) + ": ";
}

namespace {

// Parsed --flags of one instruction: name -> values (repeatable flags keep all).
class FlagSet {
 public:
  static Result<FlagSet> Parse(const Node& n, const std::set<std::string>& allowed, const std::set<std::string>& bools,
                               const std::string& where) {
    FlagSet fs;
    for (auto& raw : n.flags) {
      std::string f = raw;
      if (!f.starts_with("--")) return Error(Code::kInvalidArgument, where + "invalid flag " + raw);
      f = f.substr(2);
      std::string value;
      bool has_value = false;
      if (auto eq = f.find('='); eq != std::string::npos) {
        value = f.substr(eq + 1);
        f = f.substr(0, eq);
        has_value = true;
      }
      if (!allowed.count(f)) return Error(Code::kInvalidArgument, where + "unknown flag --" + f);
      if (bools.count(f)) {
        if (!has_value) value = "true";
        if (value != "true" && value != "false") {
          return Error(Code::kInvalidArgument, where + "--" + f + ": expecting true or false, got \"" + value + "\"");
        }
      } else if (!has_value || value.empty()) {
        return Error(Code::kInvalidArgument, where + "--" + f + " requires a value");
      }
      fs.values_[f].push_back(value);
    }
    return fs;
  }
  std::string Get(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? "" : it->second.back();
  }
  std::vector<std::string> All(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  bool Bool(const std::string& name) const { return Get(name) == "true"; }
  bool Has(const std::string& name) const { return values_.count(name) > 0; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
};

Command ToCommand(const Node& n) {
  Command c;
  c.exec_form = n.json;
  c.args = n.args;
  return c;
}

Result<std::vector<KeyValue>> KeyValues(const Node& n, const std::string& where, const std::string& kw) {
  if (n.args.empty()) return Error(Code::kInvalidArgument, where + kw + " requires at least one argument");
  if (n.args.size() % 3 != 0) return Error(Code::kInvalidArgument, where + kw + ": malformed key/value list");
  std::vector<KeyValue> out;
  for (size_t i = 0; i + 2 < n.args.size(); i += 3) {
    if (n.args[i].empty()) return Error(Code::kInvalidArgument, where + kw + " names can not be blank");
    out.push_back({n.args[i], n.args[i + 1], n.args[i + 2].empty()});
  }
  return out;
}

Result<std::string> OneArg(const Node& n, const std::string& where, const std::string& kw) {
  if (n.args.size() != 1 || n.args[0].empty()) {
    return Error(Code::kInvalidArgument, where + kw + " requires exactly one argument");
  }
  return n.args[0];
}

}  // namespace

Result<Instruction> ToInstruction(const Node& n, std::string_view filename) {
  Instruction inst;
  inst.keyword = core::ToUpper(n.keyword);
  inst.keyword_original = n.keyword_original.empty() ? inst.keyword : n.keyword_original;
  inst.original = n.original;
  inst.range = {n.start_line, n.end_line};
  const std::string& kw = inst.keyword;
  std::string where = Where(filename, n.start_line) + kw + ": ";
  auto flags = [&](std::set<std::string> allowed, std::set<std::string> bools = {}) {
    return FlagSet::Parse(n, allowed, bools, where);
  };

  if (kw == "FROM") {
    XB_ASSIGN(FlagSet f, flags({"platform"}));
    FromCmd c;
    c.platform = f.Get("platform");
    if (n.args.size() == 1) {
      c.image = n.args[0];
    } else if (n.args.size() == 3 && core::ToUpper(n.args[1]) == "AS") {
      c.image = n.args[0];
      c.name = n.args[2];
    } else {
      return Error(Code::kInvalidArgument, where + "requires either one or three arguments");
    }
    inst.data = c;
  } else if (kw == "RUN") {
    XB_ASSIGN(FlagSet f, flags({"mount", "network", "security", "device"}));
    if (n.args.empty() && n.heredocs.empty()) return Error(Code::kInvalidArgument, where + "requires at least one argument");
    RunCmd c{ToCommand(n), n.heredocs, f.All("mount"), f.Get("network"), f.Get("security"), f.All("device")};
    inst.data = c;
  } else if (kw == "CMD" || kw == "ENTRYPOINT") {
    XB_TRY(flags({}));
    if (kw == "CMD") inst.data = CmdCmd{ToCommand(n)};
    else inst.data = EntrypointCmd{ToCommand(n)};
  } else if (kw == "SHELL") {
    XB_TRY(flags({}));
    if (!n.json) return Error(Code::kInvalidArgument, where + "requires the arguments to be in JSON form");
    if (n.args.empty()) return Error(Code::kInvalidArgument, where + "requires at least one argument");
    inst.data = ShellCmd{n.args};
  } else if (kw == "COPY" || kw == "ADD") {
    CopyCmd c;
    c.is_add = kw == "ADD";
    FlagSet f;
    if (c.is_add) {
      XB_ASSIGN(f, flags({"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude", "unpack"},
                         {"link", "keep-git-dir", "unpack"}));
      c.checksum = f.Get("checksum");
      c.keep_git_dir = f.Bool("keep-git-dir");
      if (f.Has("unpack")) c.unpack = f.Bool("unpack");
    } else {
      XB_ASSIGN(f, flags({"from", "chown", "chmod", "link", "parents", "exclude"}, {"link", "parents"}));
      c.from = f.Get("from");
      c.parents = f.Bool("parents");
    }
    c.chown = f.Get("chown");
    c.chmod = f.Get("chmod");
    c.link = f.Bool("link");
    c.excludes = f.All("exclude");
    c.heredocs = n.heredocs;
    if (n.args.size() < 2) return Error(Code::kInvalidArgument, where + "requires at least two arguments, but only one was provided. Destination could not be determined");
    c.sources.assign(n.args.begin(), n.args.end() - 1);
    c.dest = n.args.back();
    inst.data = c;
  } else if (kw == "ENV") {
    XB_TRY(flags({}));
    XB_ASSIGN(auto kv, KeyValues(n, where, kw));
    inst.data = EnvCmd{kv};
  } else if (kw == "LABEL") {
    XB_TRY(flags({}));
    XB_ASSIGN(auto kv, KeyValues(n, where, kw));
    inst.data = LabelCmd{kv};
  } else if (kw == "MAINTAINER") {
    XB_TRY(flags({}));
    XB_ASSIGN(std::string name, OneArg(n, where, kw));
    inst.data = MaintainerCmd{name};
  } else if (kw == "EXPOSE") {
    XB_TRY(flags({}));
    if (n.args.empty()) return Error(Code::kInvalidArgument, where + "requires at least one argument");
    inst.data = ExposeCmd{n.args};
  } else if (kw == "VOLUME") {
    XB_TRY(flags({}));
    if (n.args.empty()) return Error(Code::kInvalidArgument, where + "requires at least one argument");
    for (auto& p : n.args)
      if (p.empty()) return Error(Code::kInvalidArgument, where + "specified cannot be an empty string");
    inst.data = VolumeCmd{n.args};
  } else if (kw == "USER") {
    XB_TRY(flags({}));
    XB_ASSIGN(std::string u, OneArg(n, where, kw));
    inst.data = UserCmd{u};
  } else if (kw == "WORKDIR") {
    XB_TRY(flags({}));
    XB_ASSIGN(std::string p, OneArg(n, where, kw));
    inst.data = WorkdirCmd{p};
  } else if (kw == "ARG") {
    XB_TRY(flags({}));
    if (n.args.empty()) return Error(Code::kInvalidArgument, where + "requires at least one argument");
    ArgCmd c;
    for (auto& a : n.args) {
      auto eq = a.find('=');
      ArgDef d;
      d.name = eq == std::string::npos ? a : a.substr(0, eq);
      if (eq != std::string::npos) d.default_value = a.substr(eq + 1);
      if (d.name.empty()) return Error(Code::kInvalidArgument, where + "names can not be blank");
      c.args.push_back(d);
    }
    inst.data = c;
  } else if (kw == "ONBUILD") {
    XB_TRY(flags({}));
    if (!n.next) return Error(Code::kInvalidArgument, where + "requires an instruction");
    std::string nested = core::ToUpper(n.next->keyword);
    if (nested == "ONBUILD") return Error(Code::kInvalidArgument, where + "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (nested == "FROM" || nested == "MAINTAINER") {
      return Error(Code::kInvalidArgument, where + nested + " isn't allowed as an ONBUILD trigger");
    }
    std::string expr = n.next->original.empty() ? n.original : n.next->original;
    // A trigger with heredocs keeps their bodies, so that the child parses it whole.
    for (const Heredoc& d : n.heredocs) expr += "\n" + d.content + d.name;
    for (const Heredoc& d : n.next->heredocs) expr += "\n" + d.content + d.name;
    inst.data = OnbuildCmd{expr};
  } else if (kw == "STOPSIGNAL") {
    XB_TRY(flags({}));
    XB_ASSIGN(std::string s, OneArg(n, where, kw));
    inst.data = StopsignalCmd{s};
  } else if (kw == "HEALTHCHECK") {
    XB_ASSIGN(FlagSet f, flags({"interval", "timeout", "start-period", "start-interval", "retries"}));
    if (n.args.empty()) return Error(Code::kInvalidArgument, where + "requires an argument (CMD or NONE)");
    HealthcheckCmd c;
    std::string sub = core::ToUpper(n.args[0]);
    if (sub == "NONE") {
      if (n.args.size() > 1) return Error(Code::kInvalidArgument, where + "NONE takes no arguments");
      if (!n.flags.empty()) return Error(Code::kInvalidArgument, where + "options cannot be used with NONE");
      c.test = {"NONE"};
    } else if (sub == "CMD") {
      if (n.args.size() < 2) return Error(Code::kInvalidArgument, where + "CMD requires a command");
      if (n.json) {
        c.test = {"CMD"};
        c.test.insert(c.test.end(), n.args.begin() + 1, n.args.end());
      } else {
        c.test = {"CMD-SHELL", n.args[1]};
      }
    } else {
      return Error(Code::kInvalidArgument, where + "unknown type \"" + n.args[0] + "\": want CMD or NONE");
    }
    c.interval = f.Get("interval");
    c.timeout = f.Get("timeout");
    c.start_period = f.Get("start-period");
    c.start_interval = f.Get("start-interval");
    c.retries = f.Get("retries");
    inst.data = c;
  } else {
    return Error(Code::kInvalidArgument, Where(filename, n.start_line) + "unknown instruction: " + inst.keyword_original);
  }
  return inst;
}

Result<Dockerfile> BuildAst(const ParseResult& parsed, std::string_view filename) {
  Dockerfile df;
  df.filename = std::string(filename);
  df.directives = parsed.directives;
  df.parse_warnings = parsed.warnings;
  df.escape = parsed.escape;
  for (auto& node : parsed.children) {
    XB_ASSIGN(Instruction inst, ToInstruction(node, filename));
    if (auto* from = std::get_if<FromCmd>(&inst.data)) {
      Stage st;
      st.index = static_cast<int>(df.stages.size());
      st.name = from->name;
      st.base = from->image;
      st.platform = from->platform;
      st.range = inst.range;
      st.from_original = inst.original;
      df.stages.push_back(std::move(st));
      continue;
    }
    if (df.stages.empty()) {
      if (inst.keyword != "ARG") {
        return Error(Code::kInvalidArgument, Where(filename, inst.range.start_line) + inst.keyword +
                                                 ": no build stage in current context (only ARG may come before the first FROM)");
      }
      df.meta_args.push_back(std::move(inst));
      continue;
    }
    df.stages.back().commands.push_back(std::move(inst));
  }
  if (df.stages.empty()) {
    return Error(Code::kInvalidArgument, std::string(filename) + ": no FROM instruction: a Dockerfile needs at least one build stage");
  }
  return df;
}

Result<Dockerfile> ParseDockerfile(std::string_view text, std::string_view filename) {
  XB_ASSIGN(ParseResult parsed, Parse(text, filename));
  return BuildAst(parsed, filename);
}

}  // namespace xbuild::frontend
