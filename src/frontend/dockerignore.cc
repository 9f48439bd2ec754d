#include "frontend/dockerignore.h"

#include <cstdint>
#include <utility>

#include "core/fs.h"
#include "core/path.h"

namespace xbuild::frontend {
namespace {

constexpr char32_t kRuneError = 0xFFFD;
constexpr size_t kMaxIgnoreFileSize = 16 << 20;

// Go's utf8.DecodeRuneInString: an invalid or truncated sequence is U+FFFD of width 1.
std::pair<char32_t, size_t> DecodeRune(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const size_t avail = s.size() - i;
  const unsigned b0 = byte(0);
  if (b0 < 0x80) return {b0, 1};
  auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return k < avail && byte(k) >= lo && byte(k) <= hi;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1)) return {((b0 & 0x1F) << 6) | (byte(1) & 0x3F), 2};
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (cont(1, b0 == 0xE0 ? 0xA0 : 0x80, b0 == 0xED ? 0x9F : 0xBF) && cont(2)) {
      return {((b0 & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F), 3};
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (cont(1, b0 == 0xF0 ? 0x90 : 0x80, b0 == 0xF4 ? 0x8F : 0xBF) && cont(2) && cont(3)) {
      return {((b0 & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) |
                  (byte(3) & 0x3F),
              4};
    }
  }
  return {kRuneError, 1};
}

std::vector<char32_t> DecodeAll(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto [r, n] = DecodeRune(s, i);
    out.push_back(r);
    i += n;
  }
  return out;
}

// Go's unicode.IsSpace.
bool IsSpace(char32_t r) {
  if (r <= 0xFF) return r == ' ' || (r >= '\t' && r <= '\r') || r == 0x85 || r == 0xA0;
  return r == 0x1680 || (r >= 0x2000 && r <= 0x200A) || r == 0x2028 || r == 0x2029 ||
         r == 0x202F || r == 0x205F || r == 0x3000;
}

// Go's strings.TrimSpace.
std::string_view TrimSpace(std::string_view s) {
  while (!s.empty()) {
    auto [r, n] = DecodeRune(s, 0);
    if (!IsSpace(r)) break;
    s.remove_prefix(n);
  }
  while (!s.empty()) {
    // Step back to the start of the last rune (at most 4 bytes).
    size_t start = s.size() - 1;
    while (start > 0 && s.size() - start < 4 &&
           (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
      --start;
    }
    auto [r, n] = DecodeRune(s, start);
    if (start + n != s.size()) {
      start = s.size() - 1;  // not a whole rune: an invalid byte, never a space
      r = kRuneError;
    }
    if (!IsSpace(r)) break;
    s.remove_suffix(s.size() - start);
  }
  return s;
}

// One character of a class, maybe escaped (Go's filepath getEsc). Fails like filepath.Match
// on an empty, '-' or ']' start, a dangling '\', invalid UTF-8, or a class cut off at the end.
bool GetClassChar(std::string_view p, size_t* i, char32_t* out) {
  if (*i >= p.size() || p[*i] == '-' || p[*i] == ']') return false;
  if (p[*i] == '\\') {
    ++*i;
    if (*i >= p.size()) return false;
  }
  auto [r, n] = DecodeRune(p, *i);
  if (r == kRuneError && n == 1) return false;
  *i += n;
  *out = r;
  return *i < p.size();
}

// Parses the class whose '[' is at p[*i - 1] (Go's filepath.Match syntax).
bool ParseClass(std::string_view p, size_t* i, bool* negated,
                std::vector<std::pair<char32_t, char32_t>>* ranges) {
  *negated = *i < p.size() && p[*i] == '^';
  if (*negated) ++*i;
  for (size_t n = 0;; ++n) {
    if (*i < p.size() && p[*i] == ']' && n > 0) {
      ++*i;
      return true;
    }
    char32_t lo = 0;
    if (!GetClassChar(p, i, &lo)) return false;
    char32_t hi = lo;
    if (p[*i] == '-') {
      ++*i;
      if (!GetClassChar(p, i, &hi)) return false;
    }
    ranges->emplace_back(lo, hi);
  }
}

// The syntax check moby does with filepath.Match(pattern, "."): classes must be well formed
// and a '\' must escape something.
bool ValidGlob(std::string_view p) {
  std::vector<std::pair<char32_t, char32_t>> scratch;
  for (size_t i = 0; i < p.size();) {
    const char c = p[i++];
    if (c == '\\') {
      if (i >= p.size()) return false;
      ++i;
    } else if (c == '[') {
      bool negated = false;
      if (!ParseClass(p, &i, &negated, &scratch)) return false;
    }
  }
  return true;
}

// Go's filepath.Match for one path component of a pattern without classes: `*`, `?`, `\x`.
bool MatchComponent(const std::vector<char32_t>& pat, const std::vector<char32_t>& name) {
  size_t p = 0, n = 0, star_p = SIZE_MAX, star_n = 0;
  while (n < name.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star_p = ++p;
      star_n = n;
      continue;
    }
    if (p < pat.size()) {
      char32_t want = pat[p];
      size_t width = 1;
      if (want == '\\' && p + 1 < pat.size()) {
        want = pat[p + 1];
        width = 2;
      }
      if (pat[p] == '?' || want == name[n]) {
        p += width;
        ++n;
        continue;
      }
    }
    if (star_p == SIZE_MAX) return false;
    p = star_p;
    n = ++star_n;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

std::vector<std::string_view> SplitSlash(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t slash = s.find('/');
    out.push_back(s.substr(0, slash));
    if (slash == std::string_view::npos) return out;
    s.remove_prefix(slash + 1);
  }
}

}  // namespace

core::Result<DockerIgnore> DockerIgnore::Parse(std::string_view text) {
  DockerIgnore out;
  bool first = true;
  while (!text.empty()) {
    // bufio.ScanLines: split on '\n', drop one trailing '\r'.
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    first = false;

    if (line.starts_with('#')) continue;  // a comment only at the very start of the line
    line = TrimSpace(line);
    if (line.empty()) continue;
    const bool invert = line.front() == '!';
    if (invert) line = TrimSpace(line.substr(1));
    std::string pattern;
    if (!line.empty()) {
      pattern = core::CleanPath(line);
      if (pattern.size() > 1 && pattern.front() == '/') pattern.erase(0, 1);
    }
    if (invert) pattern.insert(0, "!");

    // patternmatcher.New: clean again (so "!/" becomes "!"), split off the '!'.
    std::string cleaned = core::CleanPath(pattern);
    const bool exclusion = cleaned.front() == '!';
    if (exclusion && cleaned.size() == 1) {
      return core::Error(core::Code::kInvalidArgument, "illegal exclusion pattern: \"!\"");
    }
    std::string_view body = cleaned;
    if (exclusion) body.remove_prefix(1);
    XB_ASSIGN(Pattern compiled, Compile(body, exclusion));
    out.has_exceptions_ = out.has_exceptions_ || exclusion;
    out.patterns_.push_back(std::move(pattern));
    out.compiled_.push_back(std::move(compiled));
  }
  return out;
}

core::Result<DockerIgnore> DockerIgnore::Load(const std::string& context_dir,
                                              const std::string& dockerfile_path) {
  std::vector<std::string> candidates;
  if (!dockerfile_path.empty()) {
    candidates.push_back((dockerfile_path.front() == '/'
                              ? dockerfile_path
                              : core::JoinPath(context_dir, dockerfile_path)) +
                         ".dockerignore");
  }
  candidates.push_back(core::JoinPath(context_dir, ".dockerignore"));
  for (const std::string& path : candidates) {
    core::Result<std::string> text = core::ReadFile(path, kMaxIgnoreFileSize);
    if (!text.ok()) {
      if (text.error().code() == core::Code::kNotFound) continue;
      return std::move(text).error().Context("read ignore file");
    }
    return Parse(*text).Context(path);
  }
  return DockerIgnore();
}

// moby's Pattern.compile, producing the pieces of its regexp instead of the regexp text.
core::Result<DockerIgnore::Pattern> DockerIgnore::Compile(std::string_view text, bool exclusion) {
  if (!ValidGlob(text)) {
    return core::Error(core::Code::kInvalidArgument,
                       "syntax error in pattern \"" + std::string(text) + "\"");
  }
  Pattern p;
  p.text = std::string(text);
  p.exclusion = exclusion;
  MatchType type = MatchType::kExact;
  for (size_t i = 0, iter = 0; i < text.size(); ++iter) {
    auto [ch, width] = DecodeRune(text, i);
    i += width;
    if (ch == '*') {
      if (i < text.size() && text[i] == '*') {
        ++i;
        if (i < text.size() && text[i] == '/') ++i;  // "**/" is "**"
        if (i == text.size()) {
          if (type == MatchType::kExact) {
            type = MatchType::kPrefix;
          } else {
            p.tokens.push_back({.kind = Token::kAnyRest});
            type = MatchType::kRegexp;
          }
        } else {
          p.tokens.push_back({.kind = Token::kAnyDirs});
          type = MatchType::kRegexp;
        }
        if (iter == 0) type = MatchType::kSuffix;
      } else {
        p.tokens.push_back({.kind = Token::kStar});
        type = MatchType::kRegexp;
      }
    } else if (ch == '?') {
      p.tokens.push_back({.kind = Token::kOne});
      type = MatchType::kRegexp;
    } else if (ch == '\\' && i < text.size()) {
      auto [escaped, n] = DecodeRune(text, i);
      i += n;
      p.tokens.push_back({.kind = Token::kLiteral, .rune = escaped});
      type = MatchType::kRegexp;
    } else if (ch == '[') {
      Token tok{.kind = Token::kClass};
      tok.first = static_cast<unsigned>(p.ranges.size());
      ParseClass(text, &i, &tok.negated, &p.ranges);  // ValidGlob accepted it
      tok.count = static_cast<unsigned>(p.ranges.size()) - tok.first;
      p.tokens.push_back(tok);
      type = MatchType::kRegexp;
    } else {
      if (ch == ']') type = MatchType::kRegexp;
      p.tokens.push_back({.kind = Token::kLiteral, .rune = ch});
    }
  }
  p.type = type;
  return p;
}

bool DockerIgnore::Matches(const Pattern& p, std::string_view path) {
  switch (p.type) {
    case MatchType::kExact:
      return path == p.text;
    case MatchType::kPrefix:  // "a/**": anything starting with "a/"
      return path.starts_with(std::string_view(p.text).substr(0, p.text.size() - 2));
    case MatchType::kSuffix: {  // "**/a": "a" or anything ending in "/a"
      const std::string_view suffix = std::string_view(p.text).substr(2);
      if (path.ends_with(suffix)) return true;
      return !suffix.empty() && suffix.front() == '/' && path == suffix.substr(1);
    }
    case MatchType::kRegexp:
      return MatchesTokens(p, path);
  }
  return false;
}

// A full match of the token sequence, simulated as an NFA over the path's runes. State k means
// "before token k"; inside[k] means "within the `(.*/)?` of kAnyDirs token k".
bool DockerIgnore::MatchesTokens(const Pattern& p, std::string_view path) {
  const std::vector<Token>& toks = p.tokens;
  const size_t end = toks.size();
  std::vector<char> at(end + 1), inside(end + 1), next_at(end + 1), next_inside(end + 1);

  // Adds state k and everything reachable from it without consuming input.
  auto add = [&](std::vector<char>& states, std::vector<char>& in_group, size_t k) {
    while (!states[k]) {
      states[k] = 1;
      if (k == end) return;
      const Token::Kind kind = toks[k].kind;
      if (kind == Token::kAnyDirs) in_group[k] = 1;
      if (kind != Token::kStar && kind != Token::kAnyRest && kind != Token::kAnyDirs) return;
      ++k;
    }
  };
  auto in_class = [&](const Token& t, char32_t r) {
    bool hit = false;
    for (unsigned j = t.first; j < t.first + t.count && !hit; ++j) {
      hit = p.ranges[j].first <= r && r <= p.ranges[j].second;
    }
    return hit != t.negated;
  };

  add(at, inside, 0);
  for (size_t i = 0; i < path.size();) {
    auto [r, n] = DecodeRune(path, i);
    i += n;
    std::fill(next_at.begin(), next_at.end(), 0);
    std::fill(next_inside.begin(), next_inside.end(), 0);
    bool any = false;
    auto go_to = [&](size_t k) {
      add(next_at, next_inside, k);
      any = true;
    };
    for (size_t k = 0; k < end; ++k) {
      if (inside[k]) {
        if (r != '\n') {
          next_inside[k] = 1;
          any = true;
        }
        if (r == '/') go_to(k + 1);
      }
      if (!at[k]) continue;
      const Token& t = toks[k];
      switch (t.kind) {
        case Token::kLiteral:
          if (r == t.rune) go_to(k + 1);
          break;
        case Token::kStar:  // [^/]* (a Go class: it does match '\n')
          if (r != '/') go_to(k);
          break;
        case Token::kOne:
          if (r != '/') go_to(k + 1);
          break;
        case Token::kAnyRest:  // .* (Go's '.' does not match '\n')
          if (r != '\n') go_to(k);
          break;
        case Token::kClass:
          if (in_class(t, r)) go_to(k + 1);
          break;
        case Token::kAnyDirs:  // consumed through inside[k]
          break;
      }
    }
    if (!any) return false;
    std::swap(at, next_at);
    std::swap(inside, next_inside);
  }
  return at[end] != 0;
}

bool DockerIgnore::Excluded(std::string_view rel_path) const {
  if (compiled_.empty()) return false;
  const std::string file = core::CleanPath(rel_path);
  if (file == ".") return false;
  // The parent directories of `file`, outermost first, as prefixes of it.
  std::vector<std::string_view> parents;
  for (size_t slash = file.find('/'); slash != std::string::npos;
       slash = file.find('/', slash + 1)) {
    parents.push_back(std::string_view(file).substr(0, slash));
  }
  bool matched = false;
  for (const Pattern& p : compiled_) {
    // An inclusion cannot change an already excluded path, nor an exception an included one.
    if (p.exclusion != matched) continue;
    bool match = Matches(p, file);
    for (size_t i = 0; !match && i < parents.size(); ++i) match = Matches(p, parents[i]);
    if (match) matched = !p.exclusion;
  }
  return matched;
}

bool DockerIgnore::MayHaveExceptionsUnder(std::string_view rel_dir) const {
  if (!has_exceptions_) return false;
  const std::string dir = core::CleanPath(rel_dir);
  std::vector<std::vector<char32_t>> dir_parts;
  if (dir != ".") {
    for (std::string_view part : SplitSlash(dir)) dir_parts.push_back(DecodeAll(part));
  }
  for (const Pattern& p : compiled_) {
    if (!p.exclusion) continue;
    // `**` and classes (which may match '/') can reach any depth: assume they do.
    if (p.text.find("**") != std::string::npos || p.text.find('[') != std::string::npos) {
      return true;
    }
    // Otherwise each pattern component matches exactly one path component. A pattern no longer
    // than `dir` matches only `dir` or an ancestor, which Excluded(dir) already weighed.
    std::vector<std::string_view> parts = SplitSlash(p.text);
    if (parts.size() <= dir_parts.size()) continue;
    bool prefix_matches = true;
    for (size_t i = 0; i < dir_parts.size() && prefix_matches; ++i) {
      prefix_matches = MatchComponent(DecodeAll(parts[i]), dir_parts[i]);
    }
    if (prefix_matches) return true;
  }
  return false;
}

}  // namespace xbuild::frontend
