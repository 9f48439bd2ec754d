// .dockerignore: which paths of a build context are left out, as moby/patternmatcher (the
// matcher BuildKit and Docker use) decides.
//
// File format (moby/patternmatcher/ignorefile): one pattern per line; a line whose first
// character is '#' is a comment (a '#' after leading spaces is not); surrounding whitespace is
// trimmed; a leading '!' marks an exception (re-include); each pattern is cleaned like Go's
// path.Clean and a leading '/' is dropped, so "/a", "./a" and "b/../a" all mean "a".
//
// Pattern syntax: `*` any run of non-'/' characters, `?` one non-'/' character, `[...]` a
// character class (`[^...]` negated, ranges `a-z`, `\` escapes), `\x` the literal x, `**` any
// number of directories including none ("**/a", "a/**", "a/**/b"). A pattern matches a path
// when it matches the whole path or any of its parent directories ("a" excludes "a/b/c").
// Patterns apply in order and the last one that matches decides.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::frontend {

class DockerIgnore {
 public:
  DockerIgnore() = default;  // excludes nothing

  // Parses .dockerignore text. Fails on a malformed pattern (an unclosed '[', a trailing '\',
  // a lone "!"), like Docker does.
  static core::Result<DockerIgnore> Parse(std::string_view text);

  // Reads the ignore file for a build: `<dockerfile_path>.dockerignore` if present (it wins),
  // else `<context_dir>/.dockerignore`, else none (an empty DockerIgnore). A relative
  // dockerfile_path is taken relative to context_dir; an empty one skips the first candidate.
  // The file's path is named in any error.
  static core::Result<DockerIgnore> Load(const std::string& context_dir,
                                         const std::string& dockerfile_path);

  // True if the path (relative to the context, '/'-separated) is excluded. The path is cleaned
  // first; the context root itself (".") is never excluded.
  bool Excluded(std::string_view rel_path) const;

  // For an excluded directory: true if an exception pattern could re-include something below
  // it, so a walker must still descend. Conservative: it may say true when nothing below is
  // re-included, never false when something is. False when there are no exceptions.
  bool MayHaveExceptionsUnder(std::string_view rel_dir) const;

  // The normalised patterns, in order; exceptions keep their leading '!'.
  const std::vector<std::string>& patterns() const { return patterns_; }
  bool empty() const { return patterns_.empty(); }
  bool has_exceptions() const { return has_exceptions_; }

 private:
  // One element of a compiled pattern (moby compiles to a Go regexp; these are its pieces).
  struct Token {
    enum Kind : unsigned char {
      kLiteral,  // one rune
      kStar,     // `*`: [^/]*
      kOne,      // `?`: [^/]
      kAnyDirs,  // `**` before more pattern: (.*/)?
      kAnyRest,  // `**` at the end: .*
      kClass,    // `[...]`: ranges[first, first+count)
    };
    Kind kind;
    bool negated = false;
    char32_t rune = 0;
    unsigned first = 0;
    unsigned count = 0;
  };
  enum class MatchType : unsigned char { kExact, kPrefix, kSuffix, kRegexp };
  struct Pattern {
    std::string text;  // cleaned, without '!'
    bool exclusion = false;
    MatchType type = MatchType::kExact;
    std::vector<Token> tokens;
    std::vector<std::pair<char32_t, char32_t>> ranges;  // for kClass tokens
  };

  static core::Result<Pattern> Compile(std::string_view text, bool exclusion);
  static bool Matches(const Pattern& p, std::string_view path);
  static bool MatchesTokens(const Pattern& p, std::string_view path);

  std::vector<std::string> patterns_;
  std::vector<Pattern> compiled_;
  bool has_exceptions_ = false;
};

}  // namespace xbuild::frontend
