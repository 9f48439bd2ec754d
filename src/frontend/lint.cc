#include "frontend/lint.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "core/strings.h"

namespace xbuild::frontend {

using core::Code;
using core::Error;

std::string Warning::Kebab(const std::string& rule) {
  std::string out;
  for (size_t i = 0; i < rule.size(); ++i) {
    char c = rule[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      bool boundary = i > 0 && (std::islower(static_cast<unsigned char>(rule[i - 1])) ||
                                (i + 1 < rule.size() && std::islower(static_cast<unsigned char>(rule[i + 1]))));
      if (boundary && !out.empty()) out += '-';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

bool CheckConfig::Skipped(const std::string& rule) const {
  for (auto& s : skip)
    if (s == "all" || s == rule) return true;
  return false;
}

core::Result<CheckConfig> ParseCheckDirective(const std::string& value) {
  CheckConfig c;
  for (auto& raw : core::Split(value, ';')) {
    std::string part = core::Trim(raw);
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string::npos) return Error(Code::kInvalidArgument, "check directive: \"" + part + "\" is not key=value");
    std::string k = part.substr(0, eq), v = part.substr(eq + 1);
    if (k == "skip") {
      for (auto& r : core::Split(v, ',')) {
        std::string rule = core::Trim(r);
        if (!rule.empty()) c.skip.push_back(rule);
      }
    } else if (k == "error") {
      if (v != "true" && v != "false") return Error(Code::kInvalidArgument, "check directive: error=" + v + ": want true or false");
      c.error = v == "true";
    } else {
      return Error(Code::kInvalidArgument, "check directive: unknown key \"" + k + "\"");
    }
  }
  return c;
}

namespace {

bool IsLower(const std::string& s) {
  return std::none_of(s.begin(), s.end(), [](unsigned char c) { return std::isupper(c); });
}
bool IsUpper(const std::string& s) {
  return std::none_of(s.begin(), s.end(), [](unsigned char c) { return std::islower(c); });
}

// The "AS" word of a FROM line, as written.
std::string AsWord(const std::string& from_line) {
  std::vector<std::string> words;
  std::string cur;
  for (char c : from_line) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!cur.empty()) words.push_back(cur), cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) words.push_back(cur);
  for (size_t i = 1; i + 1 < words.size(); ++i) {
    if (core::ToUpper(words[i]) == "AS" && !words[i].starts_with("--")) return words[i];
  }
  return "";
}

// BuildKit's rule: an underscore-separated word of the name is a secret-ish word
// ((?:_|^)(apikey|auth|...)(?:_|$), case-insensitive) and no word is "public".
bool LooksSecret(const std::string& name) {
  static const char* kSecretWords[] = {"apikey", "auth", "credential", "credentials", "key", "password",
                                       "pword", "passwd", "secret", "token"};
  bool secret = false;
  for (auto word : core::Split(name, '_')) {
    word = core::ToLower(word);
    if (word == "public") return false;
    for (const char* s : kSecretWords) secret = secret || word == s;
  }
  return secret;
}

void LintInstruction(const Instruction& inst, std::vector<Warning>& out, bool& workdir_absolute) {
  int line = inst.range.start_line;
  if (auto* c = std::get_if<CmdCmd>(&inst.data); c && !c->cmd.exec_form) {
    out.push_back({"JSONArgsRecommended", "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals", line});
  }
  if (auto* e = std::get_if<EntrypointCmd>(&inst.data); e && !e->cmd.exec_form) {
    out.push_back({"JSONArgsRecommended", "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals", line});
  }
  if (std::holds_alternative<MaintainerCmd>(inst.data)) {
    out.push_back({"MaintainerDeprecated", "Maintainer instruction is deprecated in favor of using label", line});
  }
  auto legacy = [&](const std::vector<KeyValue>& kvs, const char* kw) {
    for (auto& kv : kvs) {
      if (kv.legacy) {
        out.push_back({"LegacyKeyValueFormat", std::string("\"") + kw + " key=value\" should be used instead of legacy \"" + kw + " key value\" format", line});
        break;
      }
    }
  };
  if (auto* e = std::get_if<EnvCmd>(&inst.data)) {
    legacy(e->vars, "ENV");
    for (auto& kv : e->vars)
      if (LooksSecret(kv.key)) out.push_back({"SecretsUsedInArgOrEnv", "Do not use ARG or ENV instructions for sensitive data (ENV \"" + kv.key + "\")", line});
  }
  if (auto* l = std::get_if<LabelCmd>(&inst.data)) legacy(l->labels, "LABEL");
  if (auto* a = std::get_if<ArgCmd>(&inst.data)) {
    for (auto& d : a->args)
      if (LooksSecret(d.name)) out.push_back({"SecretsUsedInArgOrEnv", "Do not use ARG or ENV instructions for sensitive data (ARG \"" + d.name + "\")", line});
  }
  if (auto* w = std::get_if<WorkdirCmd>(&inst.data)) {
    bool abs = w->path.starts_with("/") || w->path.starts_with("$");
    if (!abs && !workdir_absolute) {
      out.push_back({"WorkdirRelativePath", "Relative workdir \"" + w->path + "\" can have unexpected results if the base image changes", line});
    }
    workdir_absolute = workdir_absolute || abs;
  }
}

}  // namespace

std::vector<Warning> LintAst(const Dockerfile& df) {
  std::vector<Warning> out;
  for (auto& w : df.parse_warnings) out.push_back({w.rule.empty() ? "NoEmptyContinuation" : w.rule, w.message, w.line});

  // ConsistentInstructionCasing: every keyword should follow the majority's case.
  int upper = 0, lower = 0;
  std::vector<const Instruction*> all;
  for (auto& a : df.meta_args) all.push_back(&a);
  for (auto& st : df.stages)
    for (auto& c : st.commands) all.push_back(&c);
  std::vector<std::pair<std::string, int>> from_words;
  for (auto& st : df.stages) {
    std::string kw = st.from_original.substr(0, st.from_original.find_first_of(" \t"));
    from_words.emplace_back(kw, st.range.start_line);
  }
  auto count = [&](const std::string& kw) {
    if (IsUpper(kw)) ++upper;
    else if (IsLower(kw)) ++lower;
  };
  for (auto* i : all) count(i->keyword_original);
  for (auto& [kw, line] : from_words) count(kw);
  bool majority_upper = upper >= lower;
  auto check_case = [&](const std::string& kw, int line) {
    if (majority_upper ? IsUpper(kw) : IsLower(kw)) return;
    out.push_back({"ConsistentInstructionCasing", "Command '" + kw + "' should match the case of the command majority (" +
                                                       (majority_upper ? "uppercase" : "lowercase") + ")", line});
  };
  for (auto* i : all) check_case(i->keyword_original, i->range.start_line);
  for (auto& [kw, line] : from_words) check_case(kw, line);

  std::map<std::string, int> names;
  for (auto& st : df.stages) {
    int line = st.range.start_line;
    if (!st.name.empty()) {
      if (!IsLower(st.name)) out.push_back({"StageNameCasing", "Stage name '" + st.name + "' should be lowercase", line});
      std::string low = core::ToLower(st.name);
      if (names.count(low)) out.push_back({"DuplicateStageName", "Duplicate stage name \"" + st.name + "\", stage names should be unique", line});
      names[low] = line;
      std::string as = AsWord(st.from_original);
      std::string from_kw = st.from_original.substr(0, st.from_original.find_first_of(" \t"));
      if (!as.empty() && ((IsUpper(from_kw) && !IsUpper(as)) || (IsLower(from_kw) && !IsLower(as)))) {
        out.push_back({"FromAsCasing", "'" + as + "' and '" + from_kw + "' keywords' casing do not match", line});
      }
    }
    bool workdir_absolute = false;
    for (auto& c : st.commands) LintInstruction(c, out, workdir_absolute);
  }
  for (auto& a : df.meta_args) {
    bool dummy = true;
    LintInstruction(a, out, dummy);
  }
  return out;
}

std::vector<Warning> FilterWarnings(std::vector<Warning> all, const CheckConfig& cfg) {
  std::vector<Warning> out;
  for (auto& w : all)
    if (!cfg.Skipped(w.rule)) out.push_back(std::move(w));
  std::stable_sort(out.begin(), out.end(), [](const Warning& a, const Warning& b) { return a.line < b.line; });
  return out;
}

}  // namespace xbuild::frontend
