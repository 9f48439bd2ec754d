// State shared by the generated Dockerfile lexer's actions and predicates: the escape character,
// parser directives and the heredoc delimiters a logical line has opened. Internal to the parser.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace xbuild::frontend::parser_internal {

struct PendingHeredoc {
  std::string name;
  bool chomp = false;
};

class LexState {
 public:
  explicit LexState(std::string_view src) : src_(src) {}

  bool AtStart(size_t pos) const { return pos == 0; }
  void EndDirectives() { directives_done_ = true; }
  // A `#` line at the top level [start, stop): true when it is a parser directive.
  bool OnHashLine(size_t start, size_t stop);

  void BeginInstruction();
  void Append(size_t start, size_t stop) { line_.append(src_.substr(start, stop - start)); }
  void SawEmptyContinuation() {}
  // The logical line ended: true when it opens heredocs, whose bodies follow.
  bool EndInstruction();
  // A raw line inside a heredoc: true when it is the pending delimiter.
  bool OnHeredocLine(size_t start, size_t stop);
  bool HeredocPending() const { return !pending_.empty(); }

  int escape = '\\';
  std::map<std::string, std::string> directives;
  // The first directive error, with its 1-based line.
  std::optional<std::pair<int, std::string>> error;

 private:
  std::string_view src_;
  bool directives_done_ = false;
  std::string line_;
  std::deque<PendingHeredoc> pending_;
};

}  // namespace xbuild::frontend::parser_internal
