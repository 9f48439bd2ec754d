#include "frontend/parser/line_parsers.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace xbuild::frontend::parser_internal {
namespace {

core::Error SyntaxError(std::string msg) { return core::Error(core::Code::kInvalidArgument, std::move(msg)); }

// Decodes one UTF-8 code point at s[pos] like Go's utf8.DecodeRuneInString: invalid -> U+FFFD, 1.
char32_t DecodeRune(std::string_view s, size_t pos, size_t& width) {
  auto b = static_cast<unsigned char>(s[pos]);
  width = 1;
  if (b < 0x80) return b;
  int n = b >= 0xF0 && b < 0xF5 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0;
  if (n == 0 || pos + n > s.size()) return 0xFFFD;
  char32_t c = b & (0x7F >> n);
  for (int i = 1; i < n; ++i) {
    auto cb = static_cast<unsigned char>(s[pos + i]);
    if ((cb & 0xC0) != 0x80) return 0xFFFD;
    c = (c << 6) | (cb & 0x3F);
  }
  if ((n == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (n == 4 && (c < 0x10000 || c > 0x10FFFF))) {
    return 0xFFFD;
  }
  width = n;
  return c;
}

bool IsAsciiSpace(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
// BuildKit's reWhitespace: [\t\v\f\r ]
bool IsReWhitespace(unsigned char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// parseWords: words split at whitespace, quotes and escapes kept.
std::vector<std::string> ParseWords(std::string_view rest, char escape) {
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::vector<std::string> words;
  std::string word;
  char32_t quote = 0;
  bool blank_ok = false;
  char32_t ch = 0;
  size_t width = 0;
  auto put = [&](size_t p, size_t w) { word.append(rest.substr(p, w)); };
  for (size_t pos = 0; pos <= rest.size(); pos += width) {
    if (pos != rest.size()) ch = DecodeRune(rest, pos, width);
    if (phase == kSpaces) {
      if (pos == rest.size()) break;
      if (IsSpaceRune(ch)) continue;
      phase = kWord;
    }
    if (pos == rest.size()) {
      if (blank_ok || !word.empty()) words.push_back(word);
      break;
    }
    if (phase == kWord) {
      if (IsSpaceRune(ch)) {
        phase = kSpaces;
        if (blank_ok || !word.empty()) words.push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
      }
      if (ch == static_cast<char32_t>(escape)) {
        if (pos + width == rest.size()) continue;  // an escape at the end is dropped
        put(pos, width);
        pos += width;
        ch = DecodeRune(rest, pos, width);
      }
      put(pos, width);
      continue;
    }
    // kQuote
    if (ch == quote) phase = kWord;
    if (ch == static_cast<char32_t>(escape) && quote != '\'') {
      if (pos + width == rest.size()) {
        phase = kWord;
        continue;
      }
      put(pos, width);
      pos += width;
      ch = DecodeRune(rest, pos, width);
    }
    put(pos, width);
  }
  return words;
}

// reWhitespace.Split(s, n) (n < 0: all).
std::vector<std::string> SplitWhitespace(std::string_view s, int n) {
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    if (n > 0 && static_cast<int>(out.size()) == n - 1) break;
    if (IsReWhitespace(static_cast<unsigned char>(s[i]))) {
      size_t j = i;
      while (j < s.size() && IsReWhitespace(static_cast<unsigned char>(s[j]))) ++j;
      out.emplace_back(s.substr(start, i - start));
      start = i = j;
    } else {
      ++i;
    }
  }
  out.emplace_back(s.substr(start));
  return out;
}

// extractBuilderFlags: leading "--flag" words (unquoted), then the rest of the line.
std::string_view ExtractBuilderFlags(std::string_view line, std::vector<std::string>& words) {
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  char ch = 0;
  for (size_t pos = 0; pos <= line.size(); ++pos) {
    if (pos != line.size()) ch = line[pos];
    if (phase == kSpaces) {
      if (pos == line.size()) break;
      if (IsAsciiSpace(static_cast<unsigned char>(ch))) continue;
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') return line.substr(pos);
      phase = kWord;
    }
    if (pos == line.size()) {
      if (word != "--" && (blank_ok || !word.empty())) words.push_back(word);
      break;
    }
    if (phase == kWord) {
      if (IsAsciiSpace(static_cast<unsigned char>(ch))) {
        phase = kSpaces;
        if (word == "--") return line.substr(pos);
        if (blank_ok || !word.empty()) words.push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) continue;
        ch = line[++pos];
      }
      word.push_back(ch);
      continue;
    }
    if (ch == quote) {
      phase = kWord;
      continue;
    }
    if (ch == '\\') {
      if (pos + 1 == line.size()) {
        phase = kWord;
        continue;
      }
      ch = line[++pos];
    }
    word.push_back(ch);
  }
  return {};
}

core::Status ParseNameVal(std::string_view rest, std::string_view key, char escape, Node& node) {
  auto words = ParseWords(rest, escape);
  if (words.empty()) return core::Ok();
  if (words[0].find('=') == std::string::npos) {
    auto parts = SplitWhitespace(rest, 2);
    if (parts.size() < 2) return SyntaxError(std::string(key) + " must have two arguments");
    node.args = {parts[0], parts[1], ""};
    return core::Ok();
  }
  for (const auto& word : words) {
    auto eq = word.find('=');
    if (eq == std::string::npos) {
      return SyntaxError("Syntax error - can't find = in " + GoQuote(word) + ". Must be of the form: name=value");
    }
    if (eq == 0) return SyntaxError(std::string(key) + " names can not be blank");
    node.args.push_back(word.substr(0, eq));
    node.args.push_back(word.substr(eq + 1));
    node.args.emplace_back("=");
  }
  return core::Ok();
}

// parseMaybeJSON (to_list=false) and parseMaybeJSONToList (to_list=true).
core::Status ParseMaybeJson(std::string_view rest, bool to_list, Node& node) {
  if (rest.empty()) return core::Ok();
  size_t i = 0;
  size_t width = 0;
  while (i < rest.size() && IsSpaceRune(DecodeRune(rest, i, width))) i += width;
  if (i < rest.size() && rest[i] == '[') {
    std::vector<std::string> elems;
    switch (ParseJsonArray(rest.substr(i), elems)) {
      case JsonStatus::kOk:
        node.args = std::move(elems);
        node.json = true;
        return core::Ok();
      case JsonStatus::kNotStrings:
        return SyntaxError("when using JSON array syntax, arrays must be comprised of strings only");
      case JsonStatus::kNotJson:
        break;
    }
  }
  if (to_list) {
    node.args = SplitWhitespace(rest, -1);
  } else {
    node.args = {std::string(rest)};
  }
  return core::Ok();
}

core::Status ParseHealthConfig(std::string_view rest, Node& node) {
  size_t sep = 0;
  while (sep < rest.size() && !IsSpaceRune(static_cast<unsigned char>(rest[sep]))) ++sep;
  size_t next = sep;
  while (next < rest.size() && IsSpaceRune(static_cast<unsigned char>(rest[next]))) ++next;
  if (sep == 0) return core::Ok();
  Node cmd;
  XB_TRY(ParseMaybeJson(rest.substr(next), false, cmd));
  node.args.emplace_back(rest.substr(0, sep));
  for (auto& a : cmd.args) node.args.push_back(std::move(a));
  node.json = cmd.json;
  return core::Ok();
}

// A shell word split of the line as BuildKit's shell lexer does with raw quotes and escapes.
std::vector<std::string> RawShellWords(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (IsAsciiSpace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    word.push_back(c);
    if (c == '\\' && i + 1 < line.size()) {
      word.push_back(line[++i]);
    } else if (c == '\'' || c == '"') {
      for (++i; i < line.size(); ++i) {
        word.push_back(line[i]);
        if (line[i] == c) break;
        if (c == '"' && line[i] == '\\' && i + 1 < line.size()) word.push_back(line[++i]);
      }
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

// The heredoc delimiter word with quotes removed and escapes processed.
core::Result<std::string> UnquoteWord(std::string_view w) {
  std::string out;
  for (size_t i = 0; i < w.size(); ++i) {
    char c = w[i];
    if (c == '\\') {
      if (i + 1 < w.size()) out.push_back(w[++i]);
    } else if (c == '\'' || c == '"') {
      size_t j = i + 1;
      for (; j < w.size() && w[j] != c; ++j) {
        if (c == '"' && w[j] == '\\' && j + 1 < w.size() &&
            (w[j + 1] == '"' || w[j + 1] == '\\' || w[j + 1] == '$')) {
          ++j;
        }
        out.push_back(w[j]);
      }
      if (j >= w.size()) {
        return SyntaxError(std::string("unexpected end of statement while looking for matching ") +
                           (c == '"' ? "double-quote" : "single-quote"));
      }
      i = j;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

bool IsSpaceRune(char32_t c) {
  switch (c) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ': case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsAsciiSpace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && IsAsciiSpace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string GoQuote(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    size_t width = 0;
    char32_t c = DecodeRune(s, i, width);
    if (c == 0xFFFD && width == 1) {  // an invalid byte
      auto b = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      switch (c) {
        case '\a': out += "\\a"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\v': out += "\\v"; break;
        default:
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
      }
    } else if (c < 0xA0 || c == 0xAD || (c >= 0x2028 && c <= 0x202F) || c == 0xFEFF) {
      char buf[12];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out.append(s.substr(i, width));
    }
    i += width;
  }
  out += '"';
  return out;
}

core::Result<Node> NodeFromLine(std::string_view line, char escape) {
  Node node;
  node.original = std::string(line);
  std::string_view trimmed = TrimSpace(line);
  size_t cut = 0;
  while (cut < trimmed.size() && !IsReWhitespace(static_cast<unsigned char>(trimmed[cut]))) ++cut;
  node.keyword_original = std::string(trimmed.substr(0, cut));
  node.keyword = Lower(node.keyword_original);
  std::string_view rest;
  if (cut < trimmed.size()) {
    size_t start = cut;
    while (start < trimmed.size() && IsReWhitespace(static_cast<unsigned char>(trimmed[start]))) ++start;
    rest = TrimSpace(ExtractBuilderFlags(trimmed.substr(start), node.flags));
  }
  const std::string& k = node.keyword;
  if (k == "add" || k == "copy" || k == "volume") {
    XB_TRY(ParseMaybeJson(rest, true, node));
  } else if (k == "cmd" || k == "entrypoint" || k == "run" || k == "shell") {
    XB_TRY(ParseMaybeJson(rest, false, node));
  } else if (k == "arg") {
    node.args = ParseWords(rest, escape);
  } else if (k == "env" || k == "label") {
    XB_TRY(ParseNameVal(rest, k == "env" ? "ENV" : "LABEL", escape, node));
  } else if (k == "expose" || k == "from") {
    if (!rest.empty()) node.args = SplitWhitespace(rest, -1);
  } else if (k == "healthcheck") {
    XB_TRY(ParseHealthConfig(rest, node));
  } else if (k == "maintainer" || k == "stopsignal" || k == "user" || k == "workdir") {
    if (!rest.empty()) node.args = {std::string(rest)};
  } else if (k == "onbuild") {
    if (!rest.empty()) {
      XB_ASSIGN(Node child, NodeFromLine(rest, escape));
      node.next = std::make_unique<Node>(std::move(child));
    }
  } else {
    return SyntaxError("unknown instruction: " + node.keyword_original);
  }
  return node;
}

bool CanContainHeredoc(const Node& node) {
  const Node* n = &node;
  if (n->keyword == "onbuild" && n->next) n = n->next.get();
  return (n->keyword == "run" || n->keyword == "copy" || n->keyword == "add") && !n->json;
}

core::Result<std::vector<Heredoc>> HeredocsFromLine(std::string_view line) {
  std::vector<Heredoc> docs;
  if (line.find("<<") == std::string_view::npos) return docs;
  for (const auto& word : RawShellWords(line)) {
    // ^(\d*)<<(-?)([^<]*)$
    size_t i = 0;
    while (i < word.size() && std::isdigit(static_cast<unsigned char>(word[i]))) ++i;
    if (word.compare(i, 2, "<<") != 0) continue;
    i += 2;
    bool chomp = i < word.size() && word[i] == '-';
    if (chomp) ++i;
    std::string_view rest = std::string_view(word).substr(i);
    if (rest.empty() || rest.find('<') != std::string_view::npos) continue;
    XB_ASSIGN(std::string name, UnquoteWord(rest));
    if (name.empty() && rest.find_first_of("'\"") == std::string_view::npos) continue;
    auto quotes = [](std::string_view s) { return std::count(s.begin(), s.end(), '\'') + std::count(s.begin(), s.end(), '"'); };
    Heredoc doc;
    doc.name = std::move(name);
    doc.chomp = chomp;
    doc.expand = quotes(doc.name) == quotes(rest);
    docs.push_back(std::move(doc));
  }
  return docs;
}

}  // namespace xbuild::frontend::parser_internal
