// Dockerfile parser: source text -> BuildKit-compatible raw parse tree (one Node per instruction),
// before any instruction is checked or variable expanded. ANTLR4 does the lexing and parsing; no
// ANTLR type leaves src/frontend/parser/.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::frontend {

struct Heredoc {
  std::string name;     // delimiter word without quotes, e.g. "EOF"
  std::string content;  // body, newline-terminated lines; leading tabs stripped for <<-
  bool expand = true;   // false when the delimiter was quoted ('EOF' or "EOF")
  bool chomp = false;   // <<-
};

struct Node {
  std::string keyword;              // lowercased: "from", "run", "onbuild", ...
  std::string keyword_original;     // as written ("From", "RUN")
  std::vector<std::string> flags;   // "--from=build" (a bare "--" ends flags and is dropped)
  std::vector<std::string> args;    // the words of BuildKit's dump (ENV/LABEL as key,value,sep triples;
                                    // HEALTHCHECK sub-keyword first; exec form split)
  bool json = false;                // exec (JSON) form
  std::string original;             // the logical line, continuations joined as BuildKit's Node.Original
  std::vector<Heredoc> heredocs;    // RUN/COPY/ADD heredocs, in order
  std::unique_ptr<Node> next;       // ONBUILD: the nested instruction
  int start_line = 0;               // 1-based source range, including continuation comments/blank
  int end_line = 0;                 // lines and heredoc bodies
};

struct ParseWarning {
  int line;
  std::string message;
  std::string rule;  // e.g. "NoEmptyContinuation"
};

struct ParseResult {
  std::vector<Node> children;
  int start_line = 0, end_line = 0;
  char escape = '\\';
  std::map<std::string, std::string> directives;  // "syntax", "escape", "check" (lowercased keys)
  std::vector<ParseWarning> warnings;
};

// Errors read "<filename>:<line>: <message>", with BuildKit's messages where it has one.
core::Result<ParseResult> Parse(std::string_view text, std::string_view filename = "Dockerfile");

// BuildKit's dump format: one "(keyword [flags] "arg" ...)" line per instruction, trailing newline.
std::string Dump(const ParseResult&);

}  // namespace xbuild::frontend
