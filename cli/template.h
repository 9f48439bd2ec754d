// A small subset of Go's text/template, enough for `inspect -f`: literal text, {{.A.B}},
// {{json .A}}, {{index .A "key"}}, and {{.}}. Values print as Go prints them ("[a b]",
// "map[k:v]", "<nil>").
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace xbuild::cli {

class Template {
 public:
  static core::Result<Template> Parse(const std::string& text);
  core::Result<std::string> Execute(const core::Json& data) const;

 private:
  struct Part {
    bool literal = true;
    std::string text;               // literal text
    std::string func;               // "", "json" or "index"
    std::vector<std::string> path;  // field path from the root
    std::string key;                // for index
  };
  std::vector<Part> parts_;
};

}  // namespace xbuild::cli
