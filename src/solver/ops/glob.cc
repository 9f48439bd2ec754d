#include "solver/ops/glob.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <string>
#include <utility>
#include <vector>

#include "core/fd.h"
#include "core/path.h"
#include "solver/ops/tree.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;

namespace {

// Decodes UTF-8 into code points. An invalid byte b becomes 0x110000 + b, outside Unicode, so
// that two different invalid bytes never compare equal (Go would see U+FFFD for both).
std::vector<char32_t> Decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80           ? 1
                 : (b >> 5) == 0x6  ? 2
                 : (b >> 4) == 0xE  ? 3
                 : (b >> 3) == 0x1E ? 4
                                    : 0;
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c >> 6) == 0x2;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (!ok) {
      out.push_back(0x110000 + b);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

struct Token {
  enum Kind { kLiteral, kStar, kAny, kClass } kind = kLiteral;
  char32_t rune = 0;
  bool negated = false;
  std::vector<std::pair<char32_t, char32_t>> ranges;

  static Token Of(Kind k, char32_t r = 0) {
    Token t;
    t.kind = k;
    t.rune = r;
    return t;
  }

  bool Matches(char32_t c) const {
    switch (kind) {
      case kLiteral:
        return c == rune;
      case kAny:
        return true;
      case kClass: {
        bool in = false;
        for (auto [lo, hi] : ranges) in = in || (lo <= c && c <= hi);
        return in != negated;
      }
      case kStar:
        break;
    }
    return false;
  }
};

Error BadPattern(std::string_view pattern) {
  return Error(Code::kInvalidArgument, "syntax error in pattern \"" + std::string(pattern) + "\"");
}

// One end of a class range: `\x` is x; an unescaped `-` or `]` here is malformed (as in Go).
bool ClassChar(const std::vector<char32_t>& p, size_t& i, char32_t& out) {
  if (i >= p.size() || p[i] == '-' || p[i] == ']') return false;
  if (p[i] == '\\' && ++i >= p.size()) return false;
  out = p[i++];
  return true;
}

Result<std::vector<Token>> Compile(std::string_view pattern) {
  std::vector<char32_t> p = Decode(pattern);
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < p.size()) {
    char32_t c = p[i++];
    if (c == '*') {
      if (tokens.empty() || tokens.back().kind != Token::kStar)
        tokens.push_back(Token::Of(Token::kStar));
    } else if (c == '?') {
      tokens.push_back(Token::Of(Token::kAny));
    } else if (c == '\\') {
      if (i >= p.size()) return BadPattern(pattern);
      tokens.push_back(Token::Of(Token::kLiteral, p[i++]));
    } else if (c == '[') {
      Token t = Token::Of(Token::kClass);
      if (i < p.size() && p[i] == '^') {
        t.negated = true;
        ++i;
      }
      for (;;) {
        if (i < p.size() && p[i] == ']' && !t.ranges.empty()) {
          ++i;
          break;
        }
        char32_t lo, hi;
        if (!ClassChar(p, i, lo)) return BadPattern(pattern);
        hi = lo;
        if (i < p.size() && p[i] == '-') {
          ++i;
          if (!ClassChar(p, i, hi) || hi < lo) return BadPattern(pattern);
        }
        t.ranges.emplace_back(lo, hi);
      }
      tokens.push_back(std::move(t));
    } else {
      tokens.push_back(Token::Of(Token::kLiteral, c));
    }
  }
  return tokens;
}

}  // namespace

bool HasWildcard(std::string_view component) {
  for (size_t i = 0; i < component.size(); ++i) {
    char c = component[i];
    if (c == '\\') {
      ++i;
    } else if (c == '*' || c == '?' || c == '[') {
      return true;
    }
  }
  return false;
}

Result<bool> GlobMatch(std::string_view pattern, std::string_view name) {
  XB_ASSIGN(std::vector<Token> tokens, Compile(pattern));
  std::vector<char32_t> s = Decode(name);
  // Every token but `*` consumes exactly one character, so the classic greedy walk that
  // backtracks to the last star is exact.
  size_t ti = 0, si = 0;
  size_t star_ti = SIZE_MAX, star_si = 0;
  while (si < s.size()) {
    if (ti < tokens.size() && tokens[ti].kind == Token::kStar) {
      star_ti = ti++;
      star_si = si;
    } else if (ti < tokens.size() && tokens[ti].Matches(s[si])) {
      ++ti;
      ++si;
    } else if (star_ti != SIZE_MAX) {
      ti = star_ti + 1;
      si = ++star_si;
    } else {
      return false;
    }
  }
  while (ti < tokens.size() && tokens[ti].kind == Token::kStar) ++ti;
  return ti == tokens.size();
}

namespace {

std::vector<std::string> Components(std::string_view clean) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < clean.size()) {
    size_t j = clean.find('/', i);
    if (j == std::string_view::npos) j = clean.size();
    if (j > i && clean.substr(i, j - i) != ".") out.emplace_back(clean.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string Join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

struct Walk {
  const std::vector<std::string>& comps;  // pattern components below the base
  std::string base;
  std::vector<WildcardMatch> out;

  core::Status Level(int dirfd, size_t level, const std::string& rel) {
    XB_ASSIGN(std::vector<std::string> names, ListDir(dirfd, "/" + Join(base, rel)));
    bool last = level + 1 == comps.size();
    for (const std::string& name : names) {
      XB_ASSIGN(bool match, GlobMatch(comps[level], name));
      if (!match) continue;
      struct stat st;
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced away
      std::string sub = Join(rel, name);
      if (last) {
        out.push_back({Join(base, sub), sub, S_ISDIR(st.st_mode)});
        continue;
      }
      if (!S_ISDIR(st.st_mode)) continue;
      int fd = ::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) continue;
      core::UniqueFd child(fd);
      XB_TRY(Level(child.get(), level + 1, sub));
    }
    return core::Ok();
  }
};

}  // namespace

Result<std::vector<WildcardMatch>> ResolveWildcards(int root_fd, std::string_view pattern) {
  std::vector<std::string> comps = Components(core::CleanPath(pattern));
  size_t first = 0;
  while (first < comps.size() && !HasWildcard(comps[first])) ++first;
  std::string base;
  for (size_t i = 0; i < first; ++i) base = Join(base, comps[i]);
  std::vector<std::string> rest(comps.begin() + static_cast<std::ptrdiff_t>(first), comps.end());
  if (rest.empty())
    return Error(Code::kInvalidArgument, "no wildcard in \"" + std::string(pattern) + "\"");
  // Check the whole pattern first, so that a malformed one fails even where nothing is listed.
  for (const std::string& c : rest) XB_TRY(GlobMatch(c, ""));
  auto dir = OpenDir(root_fd, base);
  if (!dir.ok()) {
    int err = dir.error().sys_errno();
    if (err == ENOENT || err == ENOTDIR) return std::vector<WildcardMatch>{};
    return std::move(dir).error();
  }
  Walk w{rest, base, {}};
  XB_TRY(w.Level(dir->get(), 0, ""));
  return std::move(w.out);
}

}  // namespace xbuild::solver::ops
