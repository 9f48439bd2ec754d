// frontend/shell_lex: BuildKit's conformance data (read in place) and our own cases for what
// that data leaves out (#, %, /, ?, the backtick escape, the option flags, error messages).
#include "frontend/shell_lex.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace xbuild::frontend {
namespace {

// -------------------------------------------------------------------------------------------
// Conformance data: ${XBUILD_CONFORMANCE_DIR}/buildkit-shell, else the shared checkout.

std::string ConformanceFile(const std::string& name) {
  std::string dir;
  if (const char* env = std::getenv("XBUILD_CONFORMANCE_DIR"); env != nullptr && *env != '\0') {
    dir = env;
  } else {
#ifdef XBUILD_SOURCE_DIR
    dir = std::string(XBUILD_SOURCE_DIR) + "/../shared/conformance";
#endif
  }
  return dir.empty() ? "" : dir + "/buildkit-shell/" + name;
}

bool ReadLines(const std::string& path, std::vector<std::string>* lines) {
  std::ifstream in(path);
  if (!in) return false;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines->push_back(line);
  }
  return true;
}

std::string Trim(std::string_view s) {
  const char* ws = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  for (;;) {
    const size_t i = s.find(sep);
    out.emplace_back(s.substr(0, i));
    if (i == std::string_view::npos) return out;
    s.remove_prefix(i + 1);
  }
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out;
}

TEST(ShellLexConformance, EnvVarTest) {
  const std::string path = ConformanceFile("envVarTest");
  std::vector<std::string> lines;
  if (path.empty() || !ReadLines(path, &lines)) {
    GTEST_SKIP() << "conformance data not found (" << path
                 << "); set XBUILD_CONFORMANCE_DIR to the folder holding buildkit-shell/";
  }
  const MapEnv env({"PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="});
  const ShellLex lex('\\');
  int run = 0, passed = 0, skipped = 0;
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::string& line = lines[n];
    if (line.starts_with("#") || Trim(line).empty()) continue;
    const std::string where = "envVarTest:" + std::to_string(n + 1) + ": " + line;
    std::vector<std::string> fields = Split(line, '|');
    ASSERT_EQ(fields.size(), 3u) << where;
    const std::string platform = Trim(fields[0]);
    const std::string source = Trim(fields[1]);
    const std::string expected = Trim(fields[2]);
    ASSERT_TRUE(platform == "A" || platform == "U" || platform == "W") << where;
    if (platform == "W") {
      ++skipped;
      continue;
    }
    ++run;
    core::Result<ExpandResult> r = lex.ProcessWord(source, env);
    if (expected == "error") {
      EXPECT_FALSE(r.ok()) << where << "\n  got: " << (r.ok() ? r->result : "");
      passed += !r.ok();
    } else {
      EXPECT_TRUE(r.ok() && r->result == expected)
          << where << "\n  want: [" << expected << "]\n  got:  ["
          << (r.ok() ? r->result : "error: " + r.error().message()) << "]";
      passed += r.ok() && r->result == expected;
    }
  }
  std::cout << "envVarTest: " << passed << "/" << run << " lines passed, " << skipped
            << " skipped (Windows-only)\n";
  RecordProperty("passed", passed);
  RecordProperty("skipped", skipped);
  EXPECT_GT(run, 0);
}

TEST(ShellLexConformance, WordsTest) {
  const std::string path = ConformanceFile("wordsTest");
  std::vector<std::string> lines;
  if (path.empty() || !ReadLines(path, &lines)) {
    GTEST_SKIP() << "conformance data not found (" << path
                 << "); set XBUILD_CONFORMANCE_DIR to the folder holding buildkit-shell/";
  }
  std::vector<std::string> envs;
  const ShellLex lex('\\');
  int run = 0, passed = 0;
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::string& line = lines[n];
    if (line.starts_with("#") || line.empty()) continue;
    if (line.starts_with("ENV ")) {
      std::string_view kv = std::string_view(line).substr(3);
      kv.remove_prefix(std::min(kv.find_first_not_of(' '), kv.size()));
      envs.emplace_back(kv);
      continue;
    }
    const std::string where = "wordsTest:" + std::to_string(n + 1) + ": " + line;
    std::vector<std::string> fields = Split(line, '|');
    ASSERT_EQ(fields.size(), 2u) << where;
    const std::string input = Trim(fields[0]);
    std::string_view want_text = fields[1];
    want_text.remove_prefix(std::min(want_text.find_first_not_of(' '), want_text.size()));
    const std::vector<std::string> want = Split(want_text, ',');
    ++run;
    core::Result<ExpandResult> r = lex.ProcessWords(input, MapEnv(envs));
    const std::vector<std::string> got = r.ok() ? r->words : std::vector<std::string>{"error"};
    EXPECT_EQ(got, want) << where << "\n  want: [" << Join(want) << "]\n  got:  [" << Join(got)
                         << "]";
    passed += got == want;
  }
  std::cout << "wordsTest: " << passed << "/" << run << " lines passed\n";
  RecordProperty("passed", passed);
  EXPECT_GT(run, 0);
}

// -------------------------------------------------------------------------------------------
// Our own cases.

struct Case {
  std::string input;
  std::string want;  // the expansion, or the error message when `error` is set
  bool error = false;
};

void RunCases(const ShellLex& lex, const Env& env, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    core::Result<ExpandResult> r = lex.ProcessWord(c.input, env);
    if (c.error) {
      ASSERT_FALSE(r.ok()) << c.input << " gave " << r->result;
      EXPECT_EQ(r.error().message(), c.want) << c.input;
      EXPECT_EQ(r.error().code(), core::Code::kInvalidArgument) << c.input;
    } else {
      ASSERT_TRUE(r.ok()) << c.input << ": " << r.error().message();
      EXPECT_EQ(r->result, c.want) << c.input;
    }
  }
}

std::string Expand(std::string_view word, const MapEnv& env, char escape = '\\') {
  core::Result<ExpandResult> r = ShellLex(escape).ProcessWord(word, env);
  return r.ok() ? r->result : "ERROR: " + r.error().message();
}

TEST(ShellLex, PrefixAndSuffixRemoval) {
  const MapEnv env(
      {"P=/usr/local/lib/libfoo.so.1", "X=xxyy", "E=", "S=a***yy*", "K=한국어한국어", "NL=a\nb"});
  RunCases(ShellLex(), env,
           {
               {"${P#*/}", "usr/local/lib/libfoo.so.1"},
               {"${P##*/}", "libfoo.so.1"},
               {"${P%.*}", "/usr/local/lib/libfoo.so"},
               {"${P%%.*}", "/usr/local/lib/libfoo"},
               {"${P#/usr}", "/local/lib/libfoo.so.1"},
               {"${P#usr}", "/usr/local/lib/libfoo.so.1"},  // anchored at the start
               {"${P%1}", "/usr/local/lib/libfoo.so."},
               {"${P%so}", "/usr/local/lib/libfoo.so.1"},  // anchored at the end
               {"${P#/?\?\?/}", "local/lib/libfoo.so.1"},
               {"${X#x}", "xyy"},
               {"${X##x}", "xyy"},
               {"${X#*x}", "xyy"},
               {"${X##*x}", "yy"},
               {"${X#*x*y}", "y"},
               {"${X##*x*y}", ""},
               {"${X#*}", "xxyy"},
               {"${X##*}", ""},
               {"${X%y*}", "xxy"},
               {"${X%%y*}", "xx"},
               {"${X#}", "xxyy"},
               {"${X##}", "xxyy"},
               {"${X%}", "xxyy"},
               {"${X%%}", "xxyy"},
               {"${X#zz}", "xxyy"},
               {"${X#$E}", "xxyy"},
               {"${X#${Q:-x}}", "xyy"},
               {"${S%%\\**\\*}", "a"},
               {"${S%\\*}", "a***yy"},
               {"${S#a\\*}", "**yy*"},
               {"${UNSET#x}", ""},
               {"${E%%*}", ""},
               {"${K#한}", "국어한국어"},
               {"${K%국어}", "한국어한"},
               {"${K%%국*}", "한"},
               {"${K#??}", "어한국어"},
               {"${NL#*}", "a\nb"},  // `*` does not cross a newline...
               {"${NL##*}", "\nb"},  // ...so the longest match stops before it
               {"${NL#a?b}", "a\nb"},
               // `[` is a literal in BuildKit's patterns, not a class.
               {"${P#[/]}", "/usr/local/lib/libfoo.so.1"},
           });
}

TEST(ShellLex, Replacement) {
  const MapEnv env({"F=/tmp/tmp/bar.txt", "N=/tmp", "W=/foo*/*/*.txt", "WN=\\*/",
                    "A=/a/foo/b/c.txt", "Q=/?/", "R=/", "U=http://google.de", "X=xxyy",
                    "E=", "D=a$1b", "DD=<$$>"});
  RunCases(ShellLex(), env,
           {
               {"${F/$N/}", "/tmp/bar.txt"},
               {"${F//$N/}", "/bar.txt"},
               {"${F/tmp/TMP}", "/TMP/tmp/bar.txt"},
               {"${F//tmp/TMP}", "/TMP/TMP/bar.txt"},
               {"${W/$WN/.}", "/foo.*/*.txt"},
               {"${W//$WN/.}", "/foo..*.txt"},
               {"${A/$Q/$R}", "/foo/b/c.txt"},
               {"${A//$Q/$R}", "/foo/c.txt"},
               {"${U/http:\\/\\//https:\\/\\/}", "https:\\/\\/google.de"},  // escapes stay in r
               {"${F//\\//\\/}", "\\/tmp\\/tmp\\/bar.txt"},
               {"${F/*\\//}", "bar.txt"},  // `*` is greedy in / and //
               {"${F/t*p/X}", "/X/bar.txt"},
               {"${X/$E/ww}", "wwxxyy"},
               {"${X//$E/-}", "-x-x-y-y-"},
               {"${X///}", "xxyy"},
               {"${X//y/}", "xx"},
               {"${X//x*/z}", "z"},
               {"${X/?/_}", "_xyy"},
               {"${X//?/_}", "____"},
               {"${X/zz/_}", "xxyy"},
               {"${UNSET/a/b}", ""},
               // In // the replacement is a Go regexp template: $0 is the match, $$ a dollar.
               {"${X//y/<\\$0>}", "xx<\\y><\\y>"},
               {"${X//y/${D}}", "xxaa"},    // "$1b" names group "1b": empty
               {"${X/y/${D}}", "xxa$1by"},  // a single / inserts it literally
               {"${X//y*/$DD}", "xx<$>"},
               {"${X//y*/$$}", "xx"},  // the shell expands $$ (unset) first
           });
}

TEST(ShellLex, RequiredVariables) {
  const MapEnv env({"VAR=plain", "EMPTY=", "ARG=x"});
  RunCases(
      ShellLex(), env,
      {
          {"${VAR:?message here$ARG}", "plain"},
          {"${VAR?message here$ARG}", "plain"},
          {"${EMPTY?message}", ""},
          {"${EMPTY:?message here$ARG}",
           "failed to process \"${EMPTY:?message here$ARG}\": EMPTY: message herex", true},
          {"${UNSET:?message here$ARG}",
           "failed to process \"${UNSET:?message here$ARG}\": UNSET: message herex", true},
          {"${UNSET?m}", "failed to process \"${UNSET?m}\": UNSET: m", true},
          {"${UNSET?}", "failed to process \"${UNSET?}\": UNSET: is not allowed to be unset", true},
          {"${UNSET:?}", "failed to process \"${UNSET:?}\": UNSET: is not allowed to be unset",
           true},
          {"${EMPTY:?}", "failed to process \"${EMPTY:?}\": EMPTY: is not allowed to be empty",
           true},
      });
}

TEST(ShellLex, DefaultsAndAlternatives) {
  const MapEnv env({"FOO=xxx", "BAR="});
  RunCases(ShellLex(), env,
           {
               {"${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", "xxx  ccc"},
               {"${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", "xxx bbb ccc"},
               {"${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", "aaa bbb "},
               {"${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", "aaa  "},
               {"${BAZ:-\"a  b\"}", "a  b"},
               {"${BAZ:-'$FOO'}", "$FOO"},
               {"${BAZ:-a\\}b}", "a}b"},
               {"${FOO:+${BAR:-${FOO}}}", "xxx"},
           });
}

TEST(ShellLex, Errors) {
  const MapEnv env({"FOO=xxx"});
  RunCases(
      ShellLex(), env,
      {
          {"${}", "failed to process \"${}\": syntax error: bad substitution", true},
          {"${:-x}", "failed to process \"${:-x}\": syntax error: bad substitution", true},
          {"${", "failed to process \"${\": syntax error: missing '}'", true},
          {"${FOO", "failed to process \"${FOO\": syntax error: missing '}'", true},
          {"${FOO:-x", "failed to process \"${FOO:-x\": syntax error: missing '}'", true},
          {"${FOO:", "failed to process \"${FOO:\": syntax error: missing '}'", true},
          {"${FOO/a", "failed to process \"${FOO/a\": syntax error: missing '/' in ${}", true},
          {"${FOO/a/b", "failed to process \"${FOO/a/b\": syntax error: missing '}'", true},
          {"${FOO=x}", "failed to process \"${FOO=x}\": unsupported modifier (=) in substitution",
           true},
          {"${FOO:=x}",
           "failed to process \"${FOO:=x}\": unsupported modifier (:=) in substitution", true},
          {"${FOO.}", "failed to process \"${FOO.}\": unsupported modifier (.) in substitution",
           true},
          // ${#V} (length) is not supported by BuildKit: `#` reads as the special parameter.
          {"${#FOO}", "failed to process \"${#FOO}\": unsupported modifier (F) in substitution",
           true},
          {"'abc",
           "failed to process \"'abc\": unexpected end of statement while looking for "
           "matching single-quote",
           true},
          {"\"abc",
           "failed to process \"\\\"abc\": unexpected end of statement while looking "
           "for matching double-quote",
           true},
          {"${FOO#\\x}",
           "failed to process \"${FOO#\\\\x}\": invalid pattern (\\x) in substitution: "
           "invalid escape '\\x'",
           true},
          {"${FOO/\\x/y}",
           "failed to process \"${FOO/\\\\x/y}\": invalid pattern (\\x) in substitution: "
           "invalid escape '\\x'",
           true},
          {"a\tb${}", "failed to process \"a\\tb${}\": syntax error: bad substitution", true},
          // An error inside ${...} reached at the end of input reads as the missing brace.
          {"${FOO:-${X?m}", "failed to process \"${FOO:-${X?m}\": syntax error: missing '}'", true},
          {"${FOO:-${X?m}}", "failed to process \"${FOO:-${X?m}}\": X: m", true},
      });
}

TEST(ShellLex, Parameters) {
  const MapEnv env({"A=1", "A_B2=2", "É=e"});
  RunCases(ShellLex(), env,
           {
               {"$A_B2", "2"},
               {"$A-$A_B2.", "1-2."},
               {"$1$@$*$#$?$$$!$-$0", ""},
               {"$12x", "x"},
               {"$ x", "$ x"},
               {"$", "$"},
               {"a$", "a$"},
               {"$É", "e"},  // names are Unicode letters, as in Go
               {"$A١", ""},  // and Unicode digits
               {"${A}${A_B2}", "12"},
               {"$A'b'", "1b"},
               {"$'x'", "$x"},
           });
}

TEST(ShellLex, BacktickEscape) {
  const MapEnv env({"PWD=/home"});
  const ShellLex lex('`');
  RunCases(lex, env,
           {
               {"C:\\Windows", "C:\\Windows"},  // '\' is an ordinary character
               {"a`$PWD", "a$PWD"},
               {"a``$PWD", "a`/home"},
               {"`\"x`\"", "\"x\""},
               {"\"a`\"b\"", "a\"b"},
               {"\"a``b\"", "a`b"},
               {"\"a`$PWD\"", "a$PWD"},
               {"\"a`tb\"", "a`tb"},  // not escapable inside quotes: kept
               {"\"a\\\"", "a\\"},
               {"he`'llo", "he'llo"},
               {"abc`", "abc"},
               {"${X:-`}}", "}"},
               {"${PWD#`*}", "/home"},  // a raw ` stays in the pattern as a literal
           });
  EXPECT_EQ(Expand("a` b", env, '`'), "a b");
}

TEST(ShellLex, WordsSplitting) {
  const MapEnv env({"SP=a  b", "LEAD= x", "EMPTY="});
  const ShellLex lex;
  auto words = [&](std::string_view in) {
    core::Result<ExpandResult> r = lex.ProcessWords(in, env);
    return r.ok() ? r->words : std::vector<std::string>{"error"};
  };
  EXPECT_EQ(words("a b\tc\n d"), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(words("$SP"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(words("\"$SP\""), (std::vector<std::string>{"a  b"}));
  EXPECT_EQ(words("x$LEAD"), (std::vector<std::string>{"x", "x"}));
  EXPECT_EQ(words("a\\ b"), (std::vector<std::string>{"a b"}));
  EXPECT_EQ(words("'' a \"\""), (std::vector<std::string>{"a"}));  // empty quotes emit nothing
  EXPECT_EQ(words("$EMPTY"), (std::vector<std::string>{}));
  EXPECT_EQ(words("a\u00a0b"), (std::vector<std::string>{"a", "b"}));  // Unicode spaces split
  EXPECT_EQ(words("'a"), (std::vector<std::string>{"error"}));
}

TEST(ShellLex, MatchedAndUnmatched) {
  const MapEnv env({"FOO=xxx", "BAR="});
  core::Result<ExpandResult> r =
      ShellLex().ProcessWord("${FOO:-$A} $BAR ${BAZ:+$Q} $1 ${X#$Y}", env);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->result, "xxx    ");
  EXPECT_EQ(r->matched, (std::set<std::string>{"BAR", "FOO"}));
  EXPECT_EQ(r->unmatched, (std::set<std::string>{"1", "A", "BAZ", "Q", "X", "Y"}));

  r = ShellLex().ProcessWord("'$NOPE' \\$NOPE", env);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->matched.empty());
  EXPECT_TRUE(r->unmatched.empty());
}

TEST(ShellLex, RawQuotesAndSkipUnset) {
  const MapEnv env({"SET=v", "SP=a b"});
  ShellLex lex;
  lex.set_raw_quotes(true);
  lex.set_skip_unset_env(true);
  RunCases(lex, env,
           {
               {"'a b' \"c $SET\"", "'a b' \"c v\""},
               {"$NOPE ${NOPE} $SET", "$NOPE ${NOPE} v"},
               {"${NOPE:-x$SET} ${NOPE#p} ${NOPE/a/b}", "${NOPE:-xv} ${NOPE#p} ${NOPE/a/b}"},
               {"${NOPE:}x}", "${NOPE:}x}"},  // no error when the name is unset
               {"${SET:}x}",
                "failed to process \"${SET:}x}\": unsupported modifier (:}) in substitution", true},
               {"$1", "$1"},
           });
  core::Result<ExpandResult> r = lex.ProcessWords("a \"$SP\" '$SP'", env);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->words, (std::vector<std::string>{"a", "\"a b\"", "'$SP'"}));
}

TEST(ShellLex, RawEscapes) {
  const MapEnv env({"V=abc"});
  ShellLex lex;
  lex.set_raw_escapes(true);
  RunCases(lex, env,
           {
               {"a\\ b", "a\\ b"},
               {"\\$V", "\\$V"},
               {"\"\\$V\"", "\\$V"},
               {"\"\\t\"", "\\\\t"},  // BuildKit writes the escape twice here; kept as is
               {"${X:-\\}}", "}"},    // raw escapes are off inside ${V:-...}
               {"a\\", "a\\"},
           });
}

TEST(ShellLex, SkipProcessQuotes) {
  const MapEnv env({"V=abc"});
  ShellLex lex;
  lex.set_skip_process_quotes(true);
  RunCases(lex, env,
           {
               {"'$V' \"$V\"", "'abc' \"abc\""},
               {"'unterminated", "'unterminated"},
               {"a\\'b", "a'b"},
           });
}

TEST(ShellLex, Utf8) {
  const MapEnv env(
      {"BAD=a\xff"
       "b",
       "K=한국어"});
  const ShellLex lex;
  // Input is read as runes: an invalid byte becomes U+FFFD; a leading BOM is dropped.
  EXPECT_EQ(Expand("x\xffy", env), "x\xEF\xBF\xBDy");
  EXPECT_EQ(Expand("\xEF\xBB\xBFhi", env), "hi");
  // Values are copied as bytes...
  EXPECT_EQ(Expand("$BAD", env),
            "a\xff"
            "b");
  EXPECT_EQ(Expand("${BAD#a}", env),
            "\xff"
            "b");
  // ...except through %, which reverses runes the way BuildKit does.
  EXPECT_EQ(Expand("${BAD%b}", env), "a\xEF\xBF\xBD");
  EXPECT_EQ(Expand("${BAD#a?}", env), "b");  // `?` matches the invalid byte
  EXPECT_EQ(Expand("${K/국/-}", env), "한-어");
  core::Result<ExpandResult> r = lex.ProcessWord("\xff${", env);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "failed to process \"\\xff${\": syntax error: missing '}'");
}

TEST(ShellLex, DeepNestingIsAnErrorNotACrash) {
  const MapEnv env;
  std::string word;
  for (int i = 0; i < 100000; ++i) word += "${a:-";
  EXPECT_FALSE(ShellLex().ProcessWord(word, env).ok());
  std::string ok_word;
  for (int i = 0; i < 100; ++i) ok_word += "${a:-";
  ok_word += "x" + std::string(100, '}');
  EXPECT_EQ(Expand(ok_word, env), "x");
}

TEST(ShellLex, MapEnv) {
  const MapEnv env({"foo=bar", "car=hat", "car=bike", "empty", "eq=a=b"});
  EXPECT_EQ(env.Get("foo"), "bar");
  EXPECT_EQ(env.Get("car"), "bike");  // the last one wins
  EXPECT_EQ(env.Get("empty"), "");
  EXPECT_EQ(env.Get("eq"), "a=b");
  EXPECT_EQ(env.Get("FOO"), std::nullopt);  // case-sensitive
}

TEST(ShellLex, ReleaseFilenameIdiom) {
  const MapEnv env({"VERSION=v1.2.3", "TARGETOS=linux", "TARGETARCH=arm", "TARGETVARIANT=v7"});
  EXPECT_EQ(Expand("something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${"
                   "TARGETVARIANT}}.tar.gz",
                   env),
            "something-v1.2.3.linux-arm-v7.tar.gz");
  EXPECT_EQ(Expand("${VERSION#v}", env), "1.2.3");
}

}  // namespace
}  // namespace xbuild::frontend
