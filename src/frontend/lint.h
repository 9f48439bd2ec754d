// Build checks ("lints") as BuildKit names them. Each finding names its rule and line;
// `# check=skip=Rule1,Rule2;error=true` in the Dockerfile skips rules or makes findings fatal.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "frontend/ast.h"

namespace xbuild::frontend {

struct Warning {
  std::string rule;     // "JSONArgsRecommended"
  std::string message;  // human text
  int line = 0;
  std::string url() const { return "https://docs.docker.com/go/dockerfile/rule/" + Kebab(rule) + "/"; }
  static std::string Kebab(const std::string& rule);
};

struct CheckConfig {
  std::vector<std::string> skip;  // rule names, or "all"
  bool error = false;             // findings fail the build
  bool Skipped(const std::string& rule) const;
};

core::Result<CheckConfig> ParseCheckDirective(const std::string& value);

// Lints that need only the AST (casing, forms, deprecated instructions, ...).
std::vector<Warning> LintAst(const Dockerfile& df);

// Drops skipped rules and sorts by line.
std::vector<Warning> FilterWarnings(std::vector<Warning> all, const CheckConfig& cfg);

}  // namespace xbuild::frontend
