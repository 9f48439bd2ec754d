#include "frontend/parser/lex_state.h"

#include <algorithm>
#include <cctype>

#include "frontend/parser/line_parsers.h"

namespace xbuild::frontend::parser_internal {
namespace {

// RE2's \s.
bool IsReSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

int LineOf(std::string_view src, size_t pos) {
  return 1 + static_cast<int>(std::count(src.begin(), src.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
}

std::string_view TrimNewline(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool LexState::OnHashLine(size_t start, size_t stop) {
  if (directives_done_) return false;
  // BuildKit's ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ on the line without its newline.
  std::string_view line = TrimNewline(src_.substr(start, stop - start));
  size_t i = 1;
  while (i < line.size() && IsReSpace(line[i])) ++i;
  size_t key_start = i;
  if (i >= line.size() || !std::isalpha(static_cast<unsigned char>(line[i]))) {
    directives_done_ = true;
    return false;
  }
  while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i]))) ++i;
  std::string key(line.substr(key_start, i - key_start));
  while (i < line.size() && IsReSpace(line[i])) ++i;
  if (i >= line.size() || line[i] != '=') {
    directives_done_ = true;
    return false;
  }
  ++i;
  while (i < line.size() && IsReSpace(line[i])) ++i;
  std::string_view value = line.substr(i);
  while (!value.empty() && IsReSpace(value.back())) value.remove_suffix(1);
  for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (value.empty() || (key != "escape" && key != "syntax" && key != "check")) {
    directives_done_ = true;
    return false;
  }
  if (directives.count(key) != 0) {
    if (!error) error.emplace(LineOf(src_, start), "only one " + key + " parser directive can be used");
    return true;
  }
  directives[key] = std::string(value);
  if (key == "escape") {
    if (value != "`" && value != "\\") {
      if (!error) {
        error.emplace(LineOf(src_, start),
                      "invalid escape token '" + std::string(value) + "' does not match ` or \\");
      }
    } else {
      escape = value[0];
    }
  }
  return true;
}

void LexState::BeginInstruction() {
  directives_done_ = true;
  line_.clear();
}

bool LexState::EndInstruction() {
  pending_.clear();
  auto node = NodeFromLine(line_, static_cast<char>(escape));
  if (!node.ok() || !CanContainHeredoc(*node)) return false;
  auto docs = HeredocsFromLine(line_);
  if (!docs.ok()) return false;
  for (auto& d : *docs) pending_.push_back({std::move(d.name), d.chomp});
  return !pending_.empty();
}

bool LexState::OnHeredocLine(size_t start, size_t stop) {
  if (pending_.empty()) return false;
  std::string_view possible = TrimNewline(src_.substr(start, stop - start));
  if (pending_.front().chomp) {
    while (!possible.empty() && possible.front() == '\t') possible.remove_prefix(1);
  }
  if (possible != pending_.front().name) return false;
  pending_.pop_front();
  return true;
}

}  // namespace xbuild::frontend::parser_internal
