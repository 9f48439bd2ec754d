// libFuzzer target for frontend/shell_lex: ProcessWord and ProcessWords with both escape
// characters and every option flag, over a small fixed environment. Build and run: see
// fuzz/README.md. Besides crashes, hangs and sanitizer reports it checks that the two entry
// points agree and that expansion is deterministic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "frontend/shell_lex.h"

namespace {

const xbuild::frontend::MapEnv& FuzzEnv() {
  static const xbuild::frontend::MapEnv env({
      "PWD=/home",
      "EMPTY=",
      "SP=a  b c ",
      "GLOB=x*y?z\\w",
      "PATH=/usr/local/bin:/usr/bin:/bin",
      "KOREAN=한국어",
      "BAD=a\xff\xfe"
      "b",
      "NL=line1\nline2",
      "DOLLAR=$0 $$ ${0}",
      "_=underscore",
  });
  return env;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte: options; the rest: the word.
  const uint8_t flags = data[0];
  const std::string_view word(reinterpret_cast<const char*>(data + 1), size - 1);
  for (char escape : {'\\', '`'}) {
    xbuild::frontend::ShellLex lex(escape);
    lex.set_raw_quotes(flags & 1);
    lex.set_raw_escapes(flags & 2);
    lex.set_skip_unset_env(flags & 4);
    lex.set_skip_process_quotes(flags & 8);
    auto one = lex.ProcessWord(word, FuzzEnv());
    auto many = lex.ProcessWords(word, FuzzEnv());
    if (one.ok() != many.ok()) std::abort();
    if (one.ok()) {
      if (one->result != many->result || one->words != many->words) std::abort();
      if (one->matched != many->matched || one->unmatched != many->unmatched) std::abort();
      for (const std::string& name : one->matched) {
        if (one->unmatched.count(name) != 0) std::abort();
      }
    } else if (one.error().message() != many.error().message()) {
      std::abort();
    }
  }
  return 0;
}
