// Docker-style flag parsing: --long, --long=value, --long value, -s, -s value, -abc (bools),
// "--" ends flags. Flags and positionals may interleave unless stop_at_positional is set
// (for commands whose trailing arguments are another command's, like `run IMAGE CMD...`).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace xbuild::cli {

class Flags {
 public:
  enum class Kind { kBool, kString, kList };

  void Bool(const std::string& name, char short_name, const std::string& help);
  void String(const std::string& name, char short_name, const std::string& def, const std::string& help);
  void List(const std::string& name, char short_name, const std::string& help);
  void set_stop_at_positional(bool v) { stop_at_positional_ = v; }

  // Parses args; returns the positionals. Unknown flags are errors naming the flag.
  core::Result<std::vector<std::string>> Parse(const std::vector<std::string>& args);

  bool GetBool(const std::string& name) const;
  const std::string& GetString(const std::string& name) const;
  const std::vector<std::string>& GetList(const std::string& name) const;
  bool Changed(const std::string& name) const;
  std::string Usage() const;

 private:
  struct Spec {
    Kind kind;
    char short_name;
    std::string help;
    std::string def;
    bool changed = false;
    bool b = false;
    std::string s;
    std::vector<std::string> list;
  };
  core::Status Set(const std::string& name, Spec& spec, const std::string& value);
  Spec* FindShort(char c);

  std::map<std::string, Spec> specs_;
  std::vector<std::string> order_;
  bool stop_at_positional_ = false;
};

}  // namespace xbuild::cli
