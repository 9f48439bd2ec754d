// Dockerfile parser: BuildKit's parser conformance data (read in place), the real-world corpus,
// and our own cases for errors, heredocs, escapes, directives, ranges and ONBUILD.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/parser/parser.h"

namespace xbuild::frontend {
namespace {

namespace fs = std::filesystem;

std::string ConformanceDir() {
  if (const char* env = std::getenv("XBUILD_CONFORMANCE_DIR"); env != nullptr && *env != '\0') return env;
  return XBUILD_SOURCE_DIR "/../shared/conformance";
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Subdirectories of ConformanceDir()/sub holding a Dockerfile; {"missing"} when absent, so that
// the parameterized suites still instantiate and skip.
std::vector<std::string> Cases(const std::string& sub) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(ConformanceDir()) / sub, ec)) {
    if (fs::exists(e.path() / "Dockerfile")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) out.emplace_back("missing");
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (auto& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

fs::path CaseDir(const std::string& sub, const std::string& name) {
  fs::path dir = fs::path(ConformanceDir()) / sub / name;
  return dir;
}

#define SKIP_IF_MISSING(dir) \
  if (!fs::exists((dir) / "Dockerfile")) GTEST_SKIP() << "conformance data not found at " << (dir)

class BuildkitPositive : public ::testing::TestWithParam<std::string> {};
TEST_P(BuildkitPositive, DumpMatchesResult) {
  fs::path dir = CaseDir("buildkit-parser/testfiles", GetParam());
  SKIP_IF_MISSING(dir);
  auto r = Parse(Slurp(dir / "Dockerfile"));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(Dump(*r), Slurp(dir / "result"));
}
INSTANTIATE_TEST_SUITE_P(Conformance, BuildkitPositive, ::testing::ValuesIn(Cases("buildkit-parser/testfiles")),
                         CaseName);

class BuildkitNegative : public ::testing::TestWithParam<std::string> {};
TEST_P(BuildkitNegative, Fails) {
  fs::path dir = CaseDir("buildkit-parser/testfiles-negative", GetParam());
  SKIP_IF_MISSING(dir);
  auto r = Parse(Slurp(dir / "Dockerfile"));
  EXPECT_FALSE(r.ok()) << Dump(*r);
}
INSTANTIATE_TEST_SUITE_P(Conformance, BuildkitNegative,
                         ::testing::ValuesIn(Cases("buildkit-parser/testfiles-negative")), CaseName);

class RealWorld : public ::testing::TestWithParam<std::string> {};
TEST_P(RealWorld, Parses) {
  fs::path dir = CaseDir("real-world", GetParam());
  SKIP_IF_MISSING(dir);
  auto r = Parse(Slurp(dir / "Dockerfile"));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(r->children.empty());
}
INSTANTIATE_TEST_SUITE_P(Conformance, RealWorld, ::testing::ValuesIn(Cases("real-world")), CaseName);

TEST(ParserConformance, LineRanges) {
  fs::path dir = fs::path(ConformanceDir()) / "buildkit-parser/testfile-line";
  SKIP_IF_MISSING(dir);
  auto r = Parse(Slurp(dir / "Dockerfile"));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->start_line, 5);
  EXPECT_EQ(r->end_line, 31);
  ASSERT_EQ(r->children.size(), 3u);
  int want[3][2] = {{5, 5}, {11, 12}, {17, 31}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r->children[i].start_line, want[i][0]) << i;
    EXPECT_EQ(r->children[i].end_line, want[i][1]) << i;
  }
}

std::string ErrorOf(std::string_view text) {
  auto r = Parse(text);
  return r.ok() ? "<ok>" : r.error().message();
}

std::string DumpOf(std::string_view text) {
  auto r = Parse(text);
  return r.ok() ? Dump(*r) : "error: " + r.error().message();
}

TEST(Parser, ErrorMessages) {
  EXPECT_EQ(ErrorOf(""), "Dockerfile:1: file with no instructions");
  EXPECT_EQ(ErrorOf("# a\n# b\n"), "Dockerfile:2: file with no instructions");
  EXPECT_EQ(ErrorOf("FROM a\nFOO bar\n"), "Dockerfile:2: unknown instruction: FOO");
  EXPECT_EQ(ErrorOf("FROM a\nENV PATH\n"), "Dockerfile:2: ENV must have two arguments");
  EXPECT_EQ(ErrorOf("FROM a\nENV =x\n"), "Dockerfile:2: ENV names can not be blank");
  EXPECT_EQ(ErrorOf("FROM a\nLABEL a=b c\n"),
            "Dockerfile:2: Syntax error - can't find = in \"c\". Must be of the form: name=value");
  EXPECT_EQ(ErrorOf("FROM a\nCMD [\"a\", [\"b\"]]\n"),
            "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only");
  EXPECT_EQ(ErrorOf("FROM a\nRUN [1]\n"),
            "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only");
  auto heredoc = ErrorOf("FROM a\nRUN <<EOF\necho hi\n");
  EXPECT_NE(heredoc.find("Dockerfile:2: unterminated heredoc"), std::string::npos) << heredoc;
  EXPECT_NE(heredoc.find("EOF"), std::string::npos) << heredoc;
  EXPECT_EQ(ErrorOf("# escape=x\nFROM a\n"), "Dockerfile:1: invalid escape token 'x' does not match ` or \\");
  EXPECT_EQ(ErrorOf("# escape=`\n# escape=\\\nFROM a\n"),
            "Dockerfile:2: only one escape parser directive can be used");
  EXPECT_EQ(Parse("RUNX\n", "sub/Dockerfile.dev").error().message(), "sub/Dockerfile.dev:1: unknown instruction: RUNX");
}

TEST(Parser, Heredocs) {
  auto r = Parse("FROM a\nRUN <<EOF\necho hi\n  EOF\nEOF\nCOPY <<-\"A\" <<'B' /dst/\n\tone\n\tA\ntwo\nB\nRUN x\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->children.size(), 4u);
  const Node& run = r->children[1];
  EXPECT_EQ(Dump(*r), "(from \"a\")\n(run \"<<EOF\")\n(copy \"<<-\\\"A\\\"\" \"<<'B'\" \"/dst/\")\n(run \"x\")\n");
  ASSERT_EQ(run.heredocs.size(), 1u);
  EXPECT_EQ(run.heredocs[0].name, "EOF");
  EXPECT_EQ(run.heredocs[0].content, "echo hi\n  EOF\n");
  EXPECT_TRUE(run.heredocs[0].expand);
  EXPECT_FALSE(run.heredocs[0].chomp);
  EXPECT_EQ(run.start_line, 2);
  EXPECT_EQ(run.end_line, 5);
  const Node& copy = r->children[2];
  ASSERT_EQ(copy.heredocs.size(), 2u);
  EXPECT_EQ(copy.heredocs[0].name, "A");
  EXPECT_TRUE(copy.heredocs[0].chomp);
  EXPECT_FALSE(copy.heredocs[0].expand);
  EXPECT_EQ(copy.heredocs[0].content, "one\n");
  EXPECT_EQ(copy.heredocs[1].name, "B");
  EXPECT_FALSE(copy.heredocs[1].expand);
  EXPECT_EQ(copy.heredocs[1].content, "two\n");
  EXPECT_EQ(copy.start_line, 6);
  EXPECT_EQ(copy.end_line, 10);
  EXPECT_EQ(r->children[3].start_line, 11);
}

TEST(Parser, HeredocEdgeCases) {
  // JSON form and other instructions do not open heredocs; a here-string is not one.
  EXPECT_EQ(DumpOf("FROM a\nCMD <<EOF\nRUN [\"<<EOF\"]\nRUN cat <<<x\n"),
            "(from \"a\")\n(cmd \"<<EOF\")\n(run \"<<EOF\")\n(run \"cat <<<x\")\n");
  // Heredoc body lines are raw: comments, continuations and instructions are content.
  auto r = Parse("FROM a\nRUN cat <<EOF > /f \\\n  && true\n# not a comment \\\nFROM b\nEOF\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->children.size(), 2u);
  EXPECT_EQ(r->children[1].args, std::vector<std::string>{"cat <<EOF > /f   && true"});
  EXPECT_EQ(r->children[1].heredocs[0].content, "# not a comment \\\nFROM b\n");
  // CRLF bodies keep their bytes; the delimiter line matches without its \r.
  auto crlf = Parse("FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\n");
  ASSERT_TRUE(crlf.ok()) << crlf.error().message();
  EXPECT_EQ(crlf->children[1].heredocs[0].content, "x\r\n");
  // ONBUILD's nested RUN may open one too.
  auto ob = Parse("FROM a\nONBUILD RUN <<EOF\nhi\nEOF\n");
  ASSERT_TRUE(ob.ok()) << ob.error().message();
  EXPECT_EQ(ob->children[1].heredocs.size(), 1u);
}

TEST(Parser, BacktickEscape) {
  auto r = Parse("# escape=`\nFROM windows\nRUN dir c:\\ `\n  && echo `\n\n  done\nCOPY a\\ b\\ c:\\\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->escape, '`');
  EXPECT_EQ(Dump(*r), "(from \"windows\")\n(run \"dir c:\\\\   && echo   done\")\n(copy \"a\\\\\" \"b\\\\\" \"c:\\\\\")\n");
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0].rule, "NoEmptyContinuation");
  EXPECT_EQ(r->warnings[0].line, 6);
}

TEST(Parser, Directives) {
  auto r = Parse("# syntax=docker/dockerfile:1\n#Check=skip=A,B;error=true\n# escape = `\nFROM a\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->directives.at("syntax"), "docker/dockerfile:1");
  EXPECT_EQ(r->directives.at("check"), "skip=A,B;error=true");
  EXPECT_EQ(r->escape, '`');
  // After a comment, an empty line or an instruction, directives are plain comments.
  for (const char* text : {"# hello\n# escape=`\nFROM a\n", "\n# escape=`\nFROM a\n", "FROM a\n# escape=`\n"}) {
    auto c = Parse(text);
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->escape, '\\') << text;
    EXPECT_TRUE(c->directives.empty()) << text;
  }
}

TEST(Parser, RangesAndContinuations) {
  auto r = Parse("\n# c\nFROM a \\\n  # comment\n\n  AS b\nRUN x\n\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(Dump(*r), "(from \"a\" \"AS\" \"b\")\n(run \"x\")\n");
  EXPECT_EQ(r->start_line, 3);
  EXPECT_EQ(r->end_line, 7);
  EXPECT_EQ(r->children[0].start_line, 3);
  EXPECT_EQ(r->children[0].end_line, 6);
  EXPECT_EQ(r->children[0].original, "FROM a   AS b");
  EXPECT_EQ(r->children[0].keyword_original, "FROM");
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0].line, 6);
}

TEST(Parser, OnbuildNesting) {
  auto r = Parse("FROM a\nonbuild COPY --from=b x y\nONBUILD\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(Dump(*r), "(from \"a\")\n(onbuild (copy [\"--from=b\"] \"x\" \"y\"))\n(onbuild)\n");
  const Node& ob = r->children[1];
  EXPECT_EQ(ob.keyword, "onbuild");
  EXPECT_EQ(ob.keyword_original, "onbuild");
  ASSERT_NE(ob.next, nullptr);
  EXPECT_EQ(ob.next->keyword, "copy");
  EXPECT_EQ(ob.next->flags, std::vector<std::string>{"--from=b"});
  EXPECT_EQ(ob.next->start_line, 2);
  EXPECT_EQ(ErrorOf("FROM a\nONBUILD BOGUS x\n"), "Dockerfile:2: unknown instruction: BOGUS");
}

TEST(Parser, FlagsAndDoubleDash) {
  EXPECT_EQ(DumpOf("FROM a\nCOPY --chown=\"me\" --link -- --x y\nRUN --mount=type=cache,target=/c -- -- echo\n"),
            "(from \"a\")\n(copy [\"--chown=me\" \"--link\"] \"--x\" \"y\")\n"
            "(run [\"--mount=type=cache,target=/c\"] \"-- echo\")\n");
  // Flags only at the start.
  EXPECT_EQ(DumpOf("FROM --platform=x a AS b --c\n"), "(from [\"--platform=x\"] \"a\" \"AS\" \"b\" \"--c\")\n");
}

TEST(Parser, ExecFormAndFallback) {
  auto r = Parse("FROM a\nENTRYPOINT [\"a\\u00e9\", \"\\ud83d\\ude00\"]\nCMD [\"a\" \"b\"]\nSHELL [\"sh\", \"-c\"]\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->children[1].json);
  EXPECT_EQ(r->children[1].args, (std::vector<std::string>{"a\xc3\xa9", "\xf0\x9f\x98\x80"}));
  EXPECT_FALSE(r->children[2].json);
  EXPECT_EQ(r->children[2].args, std::vector<std::string>{"[\"a\" \"b\"]"});
  EXPECT_TRUE(r->children[3].json);
}

TEST(Parser, OddInputsDoNotCrash) {
  for (std::string_view text : {std::string_view("\\"), std::string_view("\xef\xbb\xbf" "FROM a"),
                                std::string_view("FROM a\n\xff\xfe\n", 9), std::string_view("RUN [[[[[[[[[[[[[[[[["),
                                std::string_view("FROM a\nRUN <<\n"), std::string_view("FROM a\nRUN <<\"EOF\n")}) {
    auto r = Parse(text);
    (void)r;
  }
  EXPECT_EQ(DumpOf("\xef\xbb\xbf" "FROM a"), "(from \"a\")\n");
}

}  // namespace
}  // namespace xbuild::frontend
