// Shell-word expansion for Dockerfile instructions, matching BuildKit's
// frontend/dockerfile/shell Lex (ProcessWord / ProcessWords) byte for byte.
//
// Supported syntax: $V, ${V}, ${V:-w} ${V-w}, ${V:+w} ${V+w}, ${V:?m} ${V?m}, ${V#p} ${V##p},
// ${V%p} ${V%%p}, ${V/p/r} ${V//p/r}; single quotes (literal), double quotes (expansion
// inside; the escape character only escapes `"`, `$` and itself), the escape character ('\\'
// or '`') outside quotes. Positional and special parameters ($1, $@, $#, ...) are looked up
// like any name and so expand to empty. `$` before a non-name character stays literal.
//
// Invariants inherited from BuildKit, kept on purpose:
//  - The input is read as UTF-8 runes; an invalid byte reads as U+FFFD, and a leading BOM is
//    dropped. Variable values are copied as bytes.
//  - Patterns (#, %, /) know `*`, `?` and `\` escapes only; `[` is a literal. `*` and `?` do
//    not match a newline. `#`/`%` take the shortest match, `##`/`%%` and `/` the longest.
//  - In ${V//p/r}, `$0` in r stands for the matched text and `$$` for `$` (Go's
//    Regexp.ReplaceAllString template); ${V/p/r} inserts r literally.
//  - Every error reads `failed to process "WORD": REASON`.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::frontend {

// An environment lookup; names are case-sensitive (Unix).
class Env {
 public:
  virtual ~Env() = default;
  virtual std::optional<std::string> Get(std::string_view name) const = 0;
};

// An Env over a fixed set of variables.
class MapEnv : public Env {
 public:
  MapEnv() = default;
  // "K=V" entries; a later entry for K wins; an entry without '=' sets K to "".
  explicit MapEnv(const std::vector<std::string>& entries);
  MapEnv(std::initializer_list<std::string> entries) : MapEnv(std::vector<std::string>(entries)) {}
  explicit MapEnv(std::map<std::string, std::string, std::less<>> vars) : vars_(std::move(vars)) {}

  void Set(std::string name, std::string value) { vars_[std::move(name)] = std::move(value); }
  std::optional<std::string> Get(std::string_view name) const override;

 private:
  std::map<std::string, std::string, std::less<>> vars_;
};

struct ExpandResult {
  std::string result;               // the expanded word, quotes removed
  std::vector<std::string> words;   // `result` split on unquoted whitespace
  std::set<std::string> matched;    // names looked up and found
  std::set<std::string> unmatched;  // names looked up and not found (UndefinedVar lint)
};

class ShellLex {
 public:
  explicit ShellLex(char escape = '\\') : escape_(escape) {}

  // Keep quote characters in the output (BuildKit RawQuotes).
  void set_raw_quotes(bool v) { raw_quotes_ = v; }
  // Keep escape characters in the output (BuildKit RawEscapes).
  void set_raw_escapes(bool v) { raw_escapes_ = v; }
  // Leave `$V` / `${V...}` text in place when V is unset (BuildKit SkipUnsetEnv).
  void set_skip_unset_env(bool v) { skip_unset_env_ = v; }
  // Treat quote characters as ordinary characters (BuildKit SkipProcessQuotes).
  void set_skip_process_quotes(bool v) { skip_process_quotes_ = v; }

  char escape() const { return escape_; }
  bool raw_quotes() const { return raw_quotes_; }
  bool raw_escapes() const { return raw_escapes_; }
  bool skip_unset_env() const { return skip_unset_env_; }
  bool skip_process_quotes() const { return skip_process_quotes_; }

  // Expands one word. Both calls fill every field of ExpandResult; they differ only in
  // which field a caller is expected to read (`result` vs `words`).
  core::Result<ExpandResult> ProcessWord(std::string_view word, const Env& env) const;
  core::Result<ExpandResult> ProcessWords(std::string_view word, const Env& env) const;

 private:
  char escape_;
  bool raw_quotes_ = false;
  bool raw_escapes_ = false;
  bool skip_unset_env_ = false;
  bool skip_process_quotes_ = false;
};

}  // namespace xbuild::frontend
