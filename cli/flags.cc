#include "cli/flags.h"

namespace xbuild::cli {

using core::Code;
using core::Error;

void Flags::Bool(const std::string& name, char s, const std::string& help) {
  specs_[name] = Spec{Kind::kBool, s, help, "", false, false, "", {}};
  order_.push_back(name);
}
void Flags::String(const std::string& name, char s, const std::string& def, const std::string& help) {
  specs_[name] = Spec{Kind::kString, s, help, def, false, false, def, {}};
  order_.push_back(name);
}
void Flags::List(const std::string& name, char s, const std::string& help) {
  specs_[name] = Spec{Kind::kList, s, help, "", false, false, "", {}};
  order_.push_back(name);
}

Flags::Spec* Flags::FindShort(char c) {
  for (auto& [n, s] : specs_)
    if (s.short_name == c) return &s;
  return nullptr;
}

core::Status Flags::Set(const std::string& name, Spec& spec, const std::string& value) {
  spec.changed = true;
  switch (spec.kind) {
    case Kind::kBool:
      if (value == "true" || value == "1" || value.empty()) spec.b = true;
      else if (value == "false" || value == "0") spec.b = false;
      else return Error(Code::kInvalidArgument, "invalid argument \"" + value + "\" for \"--" + name + "\" flag: want true or false");
      break;
    case Kind::kString: spec.s = value; break;
    case Kind::kList: spec.list.push_back(value); break;
  }
  return core::Ok();
}

core::Result<std::vector<std::string>> Flags::Parse(const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      pos.insert(pos.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.size() > 2 && a.starts_with("--")) {
      std::string name = a.substr(2), value;
      bool has_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      auto it = specs_.find(name);
      if (it == specs_.end()) return Error(Code::kInvalidArgument, "unknown flag: --" + name);
      if (it->second.kind != Kind::kBool && !has_value) {
        if (i + 1 >= args.size()) return Error(Code::kInvalidArgument, "flag needs an argument: --" + name);
        value = args[++i];
      }
      XB_TRY(Set(name, it->second, value));
      continue;
    }
    if (a.size() > 1 && a[0] == '-' && a != "-") {
      for (size_t k = 1; k < a.size(); ++k) {
        Spec* s = FindShort(a[k]);
        if (!s) return Error(Code::kInvalidArgument, std::string("unknown shorthand flag: '") + a[k] + "' in " + a);
        std::string name;
        for (auto& [n, sp] : specs_)
          if (&sp == s) name = n;
        if (s->kind == Kind::kBool) {
          XB_TRY(Set(name, *s, ""));
          continue;
        }
        std::string value = a.substr(k + 1);
        if (!value.empty() && value[0] == '=') value.erase(0, 1);
        if (value.empty()) {
          if (i + 1 >= args.size()) return Error(Code::kInvalidArgument, std::string("flag needs an argument: '") + a[k] + "' in -" + a[k]);
          value = args[++i];
        }
        XB_TRY(Set(name, *s, value));
        break;
      }
      continue;
    }
    pos.push_back(a);
    if (stop_at_positional_) {
      pos.insert(pos.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
  }
  return pos;
}

bool Flags::GetBool(const std::string& name) const { return specs_.at(name).b; }
const std::string& Flags::GetString(const std::string& name) const { return specs_.at(name).s; }
const std::vector<std::string>& Flags::GetList(const std::string& name) const { return specs_.at(name).list; }
bool Flags::Changed(const std::string& name) const { return specs_.at(name).changed; }

std::string Flags::Usage() const {
  std::string out = "Options:\n";
  for (auto& name : order_) {
    const Spec& s = specs_.at(name);
    std::string left = s.short_name ? std::string("  -") + s.short_name + ", --" + name : "      --" + name;
    if (s.kind == Kind::kString) left += " string";
    if (s.kind == Kind::kList) left += " list";
    if (left.size() < 30) left.resize(30, ' ');
    else left += "  ";
    out += left + s.help;
    if (s.kind == Kind::kString && !s.def.empty()) out += " (default \"" + s.def + "\")";
    out += "\n";
  }
  return out;
}

}  // namespace xbuild::cli
