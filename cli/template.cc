#include "cli/template.h"

#include <sstream>

namespace xbuild::cli {

using core::Code;
using core::Error;
using core::Json;

namespace {

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string GoString(const Json& j) {
  if (j.is_null()) return "<nil>";
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  if (j.is_number()) return j.dump();
  if (j.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? " " : "") + GoString(j[i]);
    return s + "]";
  }
  std::string s = "map[";
  bool first = true;
  for (auto& [k, v] : j.items()) {
    s += (first ? "" : " ") + k + ":" + GoString(v);
    first = false;
  }
  return s + "]";
}

}  // namespace

core::Result<Template> Template::Parse(const std::string& text) {
  Template t;
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find("{{", i);
    if (open == std::string::npos) {
      t.parts_.push_back({true, text.substr(i), "", {}, ""});
      break;
    }
    if (open > i) t.parts_.push_back({true, text.substr(i, open - i), "", {}, ""});
    size_t close = text.find("}}", open);
    if (close == std::string::npos) return Error(Code::kInvalidArgument, "template: unclosed action \"{{\"");
    std::string action = Trim(text.substr(open + 2, close - open - 2));
    Part p;
    p.literal = false;
    std::istringstream words(action);
    std::string w;
    std::vector<std::string> toks;
    while (words >> w) toks.push_back(w);
    if (toks.empty()) return Error(Code::kInvalidArgument, "template: empty action");
    std::string field = toks[0];
    if (toks[0] == "json" && toks.size() == 2) {
      p.func = "json";
      field = toks[1];
    } else if (toks[0] == "index" && toks.size() == 3) {
      p.func = "index";
      field = toks[1];
      p.key = toks[2];
      if (p.key.size() >= 2 && p.key.front() == '"' && p.key.back() == '"') p.key = p.key.substr(1, p.key.size() - 2);
    } else if (toks.size() != 1) {
      return Error(Code::kInvalidArgument, "template: unsupported action \"" + action + "\"");
    }
    if (field.empty() || field[0] != '.') {
      return Error(Code::kInvalidArgument, "template: unsupported action \"" + action + "\"");
    }
    size_t k = 1;
    while (k < field.size()) {
      size_t dot = field.find('.', k);
      if (dot == std::string::npos) dot = field.size();
      p.path.push_back(field.substr(k, dot - k));
      k = dot + 1;
    }
    t.parts_.push_back(std::move(p));
    i = close + 2;
  }
  return t;
}

core::Result<std::string> Template::Execute(const Json& data) const {
  std::string out;
  for (auto& p : parts_) {
    if (p.literal) {
      out += p.text;
      continue;
    }
    const Json* cur = &data;
    for (auto& name : p.path) {
      if (!cur->is_object()) return Error(Code::kInvalidArgument, "template: can't evaluate field " + name);
      auto it = cur->find(name);
      if (it == cur->end()) return Error(Code::kInvalidArgument, "template: can't evaluate field " + name);
      cur = &*it;
    }
    if (p.func == "json") {
      out += cur->dump();
    } else if (p.func == "index") {
      auto it = cur->is_object() ? cur->find(p.key) : cur->end();
      out += it == cur->end() ? "<no value>" : GoString(*it);
    } else {
      out += GoString(*cur);
    }
  }
  return out;
}

}  // namespace xbuild::cli
