#include "cli/change.h"

#include <algorithm>
#include <cctype>

#include "core/json.h"
#include "core/strings.h"

namespace xbuild::cli {

using core::Code;
using core::Error;

namespace {

// Splits shell-like words: quotes group, backslash escapes (outside single quotes).
core::Result<std::vector<std::string>> SplitWords(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < s.size()) cur += s[++i];
      else cur += c;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '"' || c == '\'') quote = c;
    else if (c == '\\' && i + 1 < s.size()) cur += s[++i];
    else cur += c;
  }
  if (quote) return Error(Code::kInvalidArgument, "unterminated quote");
  if (in_word) out.push_back(cur);
  return out;
}

// JSON array of strings (exec form), or nullopt when the text is not one (shell form).
std::optional<std::vector<std::string>> ExecForm(const std::string& s) {
  auto j = core::Json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return std::nullopt;
  std::vector<std::string> v;
  for (auto& e : j) {
    if (!e.is_string()) return std::nullopt;
    v.push_back(e.get<std::string>());
  }
  return v;
}

std::vector<std::string> CommandForm(const image::ImageConfig& cfg, const std::string& args) {
  if (auto v = ExecForm(args)) return *v;
  std::vector<std::string> shell = cfg.config.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : cfg.config.shell;
  shell.push_back(args);
  return shell;
}

core::Result<std::vector<std::pair<std::string, std::string>>> KeyValues(const std::string& what, const std::string& args) {
  XB_ASSIGN(auto words, SplitWords(args));
  std::vector<std::pair<std::string, std::string>> kv;
  if (words.empty()) return Error(Code::kInvalidArgument, what + " requires at least one argument");
  if (words[0].find('=') == std::string::npos) {
    // Legacy form: KEY VALUE with spaces.
    size_t sp = args.find_first_of(" \t");
    std::string key = words[0];
    std::string value = sp == std::string::npos ? "" : args.substr(args.find_first_not_of(" \t", sp));
    if (sp == std::string::npos) return Error(Code::kInvalidArgument, what + " names " + key + " without a value");
    kv.emplace_back(key, value);
    return kv;
  }
  for (auto& w : words) {
    auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0) return Error(Code::kInvalidArgument, what + ": \"" + w + "\" is not KEY=VALUE");
    kv.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  return kv;
}

}  // namespace

core::Status ApplyChange(image::ImageConfig& cfg, const std::string& change) {
  auto err = [&](const std::string& why) {
    return Error(Code::kInvalidArgument, "--change \"" + change + "\": " + why);
  };
  std::string s = change;
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return err("empty instruction");
  size_t sp = s.find_first_of(" \t", b);
  std::string kw = core::ToUpper(s.substr(b, sp == std::string::npos ? std::string::npos : sp - b));
  std::string args = sp == std::string::npos ? "" : s.substr(sp);
  size_t ab = args.find_first_not_of(" \t");
  args = ab == std::string::npos ? "" : args.substr(ab);
  while (!args.empty() && std::isspace(static_cast<unsigned char>(args.back()))) args.pop_back();
  image::ContainerConfig& c = cfg.config;

  if (kw == "CMD") {
    c.cmd = CommandForm(cfg, args);
  } else if (kw == "ENTRYPOINT") {
    c.entrypoint = CommandForm(cfg, args);
  } else if (kw == "ENV") {
    auto kv = KeyValues("ENV", args);
    if (!kv.ok()) return err(kv.error().message());
    for (auto& [k, v] : *kv) cfg.SetEnv(k, v);
  } else if (kw == "LABEL") {
    auto kv = KeyValues("LABEL", args);
    if (!kv.ok()) return err(kv.error().message());
    for (auto& [k, v] : *kv) c.labels[k] = v;
  } else if (kw == "EXPOSE") {
    auto words = SplitWords(args);
    if (!words.ok() || words->empty()) return err("EXPOSE requires at least one port");
    for (auto p : *words) {
      std::string proto = "tcp";
      if (auto slash = p.find('/'); slash != std::string::npos) {
        proto = p.substr(slash + 1);
        p = p.substr(0, slash);
      }
      proto = core::ToLower(proto);
      if (p.empty() || !std::all_of(p.begin(), p.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '-'; }) ||
          (proto != "tcp" && proto != "udp" && proto != "sctp")) {
        return err("invalid port \"" + p + "/" + proto + "\"");
      }
      c.exposed_ports.insert(p + "/" + proto);
    }
  } else if (kw == "USER") {
    if (args.empty()) return err("USER requires an argument");
    c.user = args;
  } else if (kw == "WORKDIR") {
    if (args.empty()) return err("WORKDIR requires an argument");
    c.working_dir = args.front() == '/' ? args : (c.working_dir.empty() ? "/" : c.working_dir) + "/" + args;
  } else if (kw == "VOLUME") {
    std::vector<std::string> vols;
    if (auto v = ExecForm(args)) vols = *v;
    else if (auto w = SplitWords(args); w.ok()) vols = *w;
    if (vols.empty()) return err("VOLUME requires at least one path");
    for (auto& v : vols) c.volumes.insert(v);
  } else if (kw == "STOPSIGNAL") {
    if (args.empty()) return err("STOPSIGNAL requires an argument");
    c.stop_signal = args;
  } else if (kw == "ONBUILD") {
    if (args.empty()) return err("ONBUILD requires an instruction");
    c.on_build.push_back(args);
  } else {
    return err(kw + " is not a valid change command (want CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR or STOPSIGNAL)");
  }
  return core::Ok();
}

}  // namespace xbuild::cli
