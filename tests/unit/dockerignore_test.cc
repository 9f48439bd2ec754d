// frontend/dockerignore: moby/patternmatcher semantics (patterns, parent-directory matches,
// exceptions), the ignore-file format, and which file Load picks.
#include "frontend/dockerignore.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unit/test_util.h"

namespace xbuild::frontend {
namespace {

DockerIgnore MustParse(std::string_view text) {
  core::Result<DockerIgnore> r = DockerIgnore::Parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.error().message();
  return r.ok() ? std::move(r).value() : DockerIgnore();
}

struct MatchCase {
  const char* pattern;
  const char* path;
  bool excluded;
};

// One pattern at a time, against a path (parent directories count, like
// PatternMatcher.MatchesOrParentMatches).
TEST(DockerIgnore, SinglePatterns) {
  const std::vector<MatchCase> cases = {
      {"**", "file", true},
      {"**", "file/", true},
      {"**/", "file", true},
      {"**/", "file/", true},
      {"**", "/", true},
      {"**/", "/", true},
      {"**", "dir/file", true},
      {"**/", "dir/file", true},
      {"**", "dir/file/", true},
      {"**/**", "dir/file", true},
      {"**/**", "dir/file/", true},
      {"dir/**", "dir/file", true},
      {"dir/**", "dir/file/", true},
      {"dir/**", "dir/dir2/file", true},
      {"dir/**", "dir", false},
      {"dir/**", "dirx/file", false},
      {"**/dir", "dir", true},
      {"**/dir", "dir/file", true},
      {"**/dir", "a/b/dir/file", true},
      {"**/dir", "a/xdir", false},
      {"**/dir2/*", "dir/dir2/file", true},
      {"**/dir2/*", "dir/dir2/file/", true},
      {"**/dir2/**", "dir/dir2/dir3/file", true},
      {"**file", "file", true},
      {"**file", "dir/file", true},
      {"**file", "dir/dir/file", true},
      {"**/file", "dir/file", true},
      {"**/file", "dir/dir/file", true},
      {"**/file*", "dir/dir/file", true},
      {"**/file*", "dir/dir/file.txt", true},
      {"**/file*txt", "dir/dir/file.txt", true},
      {"**/file*.txt", "dir/dir/file.txt", true},
      {"**/file*.txt*", "dir/dir/file.txt", true},
      {"**/**/*.txt", "dir/dir/file.txt", true},
      {"**/**/*.txt2", "dir/dir/file.txt", false},
      {"**/*.txt", "file.txt", true},
      {"**/**/*.txt", "file.txt", true},
      {"a**/*.txt", "a/file.txt", true},
      {"a**/*.txt", "a/dir/file.txt", true},
      {"a**/*.txt", "a/dir/dir/file.txt", true},
      {"a/**/b", "a/b", true},
      {"a/**/b", "a/x/y/b", true},
      {"a/**/b", "a/x/y/b/c", true},
      {"a/**/b", "a/xb", false},
      {"a/*.txt", "a/dir/file.txt", false},
      {"a/*.txt", "a/file.txt", true},
      {"a/*.txt**", "a/file.txt", true},
      {"a/*", "a/b/c", true},  // via the parent "a/b"
      {"*", "a/b", true},
      {"*/b", "a/b/c", true},
      {"*/c", "a/b/c", false},
      {"a[b-d]e", "ae", false},
      {"a[b-d]e", "ace", true},
      {"a[b-d]e", "aae", false},
      {"a[^b-d]e", "aze", true},
      {"a[^b-d]e", "ace", false},
      {"a[\\]]e", "a]e", true},
      {"a[]x-]e", "a]e", false},  // malformed: see MalformedPatterns
      {".*", ".foo", true},
      {".*", "foo", false},
      {"abc.def", "abcdef", false},
      {"abc.def", "abc.def", true},
      {"abc.def", "abcZdef", false},
      {"abc?def", "abcZdef", true},
      {"abc?def", "abcdef", false},
      {"abc?def", "abc/def", false},
      {"a\\\\", "a\\", true},
      {"a\\*b", "a*b", true},
      {"a\\*b", "axb", false},
      {"**/foo/bar", "foo/bar", true},
      {"**/foo/bar", "dir/foo/bar", true},
      {"**/foo/bar", "dir/dir2/foo/bar", true},
      {"abc/**", "abc", false},
      {"abc/**", "abc/def", true},
      {"abc/**", "abc/def/ghi", true},
      {"**/.foo", ".foo", true},
      {"**/.foo", "bar.foo", false},
      {"a(b)c/def", "a(b)c/def", true},
      {"a(b)c/def", "a(b)c/xyz", false},
      {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
      {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
      {"foo", "foo/bar/baz", true},
      {"foo", "foobar", false},
      {"foo/bar", "foo", false},
      {"/foo", "foo", true},
      {"./foo", "foo", true},
      {"a/../foo", "foo", true},
      {"foo/", "foo/x", true},
      {"foo", "./foo/../foo/x", true},  // paths are cleaned too
      {"한국*", "한국어/x", true},
      {"?어", "한어", true},  // `?` is one rune, not one byte
      {"*", "a\nb", true},    // `*` maps to [^/]*, which matches '\n'
      {"**/b", "a\n/b", true},
  };
  for (const MatchCase& c : cases) {
    core::Result<DockerIgnore> ig = DockerIgnore::Parse(c.pattern);
    if (std::string_view(c.pattern) == "a[]x-]e") {
      EXPECT_FALSE(ig.ok());
      continue;
    }
    ASSERT_TRUE(ig.ok()) << c.pattern << ": " << ig.error().message();
    EXPECT_EQ(ig->Excluded(c.path), c.excluded) << "pattern " << c.pattern << ", path " << c.path;
  }
}

TEST(DockerIgnore, ContextRootIsNeverExcluded) {
  DockerIgnore ig = MustParse("**\n*\n.\n");
  EXPECT_FALSE(ig.Excluded("."));
  EXPECT_FALSE(ig.Excluded(""));
  EXPECT_FALSE(ig.Excluded("./"));
  EXPECT_TRUE(ig.Excluded("x"));
}

TEST(DockerIgnore, ExceptionsLastMatchWins) {
  DockerIgnore ig = MustParse("docs\n!docs/README.md\n");
  EXPECT_TRUE(ig.Excluded("docs"));
  EXPECT_TRUE(ig.Excluded("docs/a.md"));
  EXPECT_FALSE(ig.Excluded("docs/README.md"));
  EXPECT_FALSE(ig.Excluded("README.md"));

  // Order matters: an exception before the exclusion is overridden.
  ig = MustParse("!docs/README.md\ndocs\n");
  EXPECT_TRUE(ig.Excluded("docs/README.md"));

  // Re-exclude after re-include.
  ig = MustParse("*.md\n!README*.md\nREADME-secret.md\n");
  EXPECT_TRUE(ig.Excluded("a.md"));
  EXPECT_FALSE(ig.Excluded("README.md"));
  EXPECT_FALSE(ig.Excluded("README-public.md"));
  EXPECT_TRUE(ig.Excluded("README-secret.md"));

  // Everything but a few files.
  ig = MustParse("*\n!src\n!go.mod\nsrc/**/*_test.go\n");
  EXPECT_TRUE(ig.Excluded("Dockerfile"));
  EXPECT_FALSE(ig.Excluded("go.mod"));
  EXPECT_FALSE(ig.Excluded("src"));
  EXPECT_FALSE(ig.Excluded("src/main.go"));
  EXPECT_FALSE(ig.Excluded("src/pkg/x.go"));
  EXPECT_TRUE(ig.Excluded("src/pkg/x_test.go"));
  EXPECT_TRUE(ig.Excluded("src/x_test.go"));

  // An exception that names a parent re-includes what is below it.
  ig = MustParse("a/b\n!a\n");
  EXPECT_FALSE(ig.Excluded("a/b/c"));

  // Exceptions with wildcards.
  ig = MustParse("**/*.log\n!keep/**\n");
  EXPECT_TRUE(ig.Excluded("x/y.log"));
  EXPECT_FALSE(ig.Excluded("keep/y.log"));
  EXPECT_FALSE(ig.Excluded("keep/deep/y.log"));
}

TEST(DockerIgnore, FileFormat) {
  DockerIgnore ig = MustParse(
      "\xEF\xBB\xBF"
      "test1\n"
      "/test2\r\n"
      "/a/file/here\n"
      "\n"
      "lastfile\n"
      "# this is a comment\n"
      "  # not a comment: only column 0 starts one\n"
      "! /inverted/abs/path\n"
      "   spaced out   \t\n"
      "./dot/../x/\n"
      "/\n"
      "!./y\n"
      "noeol");
  EXPECT_EQ(ig.patterns(), (std::vector<std::string>{"test1", "test2", "a/file/here", "lastfile",
                                                     "# not a comment: only column 0 starts one",
                                                     "!inverted/abs/path", "spaced out", "x", "/",
                                                     "!y", "noeol"}));
  EXPECT_TRUE(ig.has_exceptions());
  EXPECT_TRUE(ig.Excluded("test2"));
  EXPECT_TRUE(ig.Excluded("a/file/here/too"));
  EXPECT_TRUE(ig.Excluded("spaced out"));
  EXPECT_TRUE(ig.Excluded("# not a comment: only column 0 starts one"));
  EXPECT_TRUE(ig.Excluded("x/z"));
  EXPECT_FALSE(ig.Excluded("dot"));

  EXPECT_TRUE(MustParse("").empty());
  EXPECT_TRUE(MustParse("# only\n\n   \n").empty());
  EXPECT_FALSE(MustParse("").Excluded("anything"));
}

TEST(DockerIgnore, MalformedPatterns) {
  for (const char* text : {"[", "a[", "[a-", "[a-z", "[]", "[]a]", "[-a]", "[a-]", "a\\", "!", "! ",
                           "!/", "[\\", "[^]", "[\xff]"}) {
    core::Result<DockerIgnore> r = DockerIgnore::Parse(text);
    EXPECT_FALSE(r.ok()) << "pattern " << text;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), core::Code::kInvalidArgument);
    }
  }
  core::Result<DockerIgnore> r = DockerIgnore::Parse("ok\n[bad\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "syntax error in pattern \"[bad\"");
  r = DockerIgnore::Parse("!\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "illegal exclusion pattern: \"!\"");
  // Well-formed oddities are fine.
  for (const char* text : {"[*]", "[\\]]", "a]", "[a-z0-9_]x", "\\[", "**/**"}) {
    EXPECT_TRUE(DockerIgnore::Parse(text).ok()) << text;
  }
}

TEST(DockerIgnore, ClassesAndEscapes) {
  DockerIgnore ig = MustParse("[*]\n\\[x\\]\nfile[0-9].txt\n");
  EXPECT_TRUE(ig.Excluded("*"));
  EXPECT_FALSE(ig.Excluded("a"));
  EXPECT_TRUE(ig.Excluded("[x]"));
  EXPECT_TRUE(ig.Excluded("file7.txt"));
  EXPECT_FALSE(ig.Excluded("fileA.txt"));
  EXPECT_FALSE(ig.Excluded("file10.txt"));
}

TEST(DockerIgnore, MayHaveExceptionsUnder) {
  DockerIgnore none = MustParse("a\nb/**\n");
  EXPECT_FALSE(none.has_exceptions());
  EXPECT_FALSE(none.MayHaveExceptionsUnder("a"));

  DockerIgnore ig = MustParse("docs\n!docs/keep/README.md\nbuild\n!build/*/out\n");
  EXPECT_TRUE(ig.MayHaveExceptionsUnder("docs"));
  EXPECT_TRUE(ig.MayHaveExceptionsUnder("docs/keep"));
  EXPECT_FALSE(ig.MayHaveExceptionsUnder("docs/other"));
  EXPECT_FALSE(ig.MayHaveExceptionsUnder("docs/keep/README.md"));
  EXPECT_TRUE(ig.MayHaveExceptionsUnder("build"));
  EXPECT_TRUE(ig.MayHaveExceptionsUnder("build/x"));
  EXPECT_FALSE(ig.MayHaveExceptionsUnder("build/x/out"));
  EXPECT_FALSE(ig.MayHaveExceptionsUnder("other"));
  EXPECT_TRUE(ig.MayHaveExceptionsUnder("."));

  // `**` and classes: assume yes.
  EXPECT_TRUE(MustParse("x\n!**/keep\n").MayHaveExceptionsUnder("x/y/z"));
  EXPECT_TRUE(MustParse("x\n![k]eep\n").MayHaveExceptionsUnder("x"));
  // Escapes in components.
  EXPECT_TRUE(MustParse("*\n!a\\*b/c\n").MayHaveExceptionsUnder("a*b"));
  EXPECT_FALSE(MustParse("*\n!a\\*b/c\n").MayHaveExceptionsUnder("axb"));

  // What a walker does with it: every file the exceptions re-include is reachable.
  ig = MustParse("*\n!src/app/main.go\n");
  EXPECT_TRUE(ig.Excluded("src"));
  EXPECT_TRUE(ig.MayHaveExceptionsUnder("src"));
  EXPECT_TRUE(ig.Excluded("src/app"));
  EXPECT_TRUE(ig.MayHaveExceptionsUnder("src/app"));
  EXPECT_FALSE(ig.Excluded("src/app/main.go"));
  EXPECT_FALSE(ig.MayHaveExceptionsUnder("vendor"));
}

TEST(DockerIgnore, Load) {
  testing::TempDir dir;
  const std::string ctx = dir.path();

  // No ignore file at all.
  core::Result<DockerIgnore> r = DockerIgnore::Load(ctx, "Dockerfile");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->empty());

  testing::WriteTestFile(ctx, ".dockerignore", "from-root\n");
  r = DockerIgnore::Load(ctx, "Dockerfile");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->patterns(), std::vector<std::string>{"from-root"});

  // <dockerfile>.dockerignore wins, next to the Dockerfile.
  testing::WriteTestFile(ctx, "sub/app.Dockerfile.dockerignore", "from-specific\n");
  r = DockerIgnore::Load(ctx, "sub/app.Dockerfile");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->patterns(), std::vector<std::string>{"from-specific"});
  r = DockerIgnore::Load(ctx, ctx + "/sub/app.Dockerfile");  // absolute
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->patterns(), std::vector<std::string>{"from-specific"});
  r = DockerIgnore::Load(ctx, "");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->patterns(), std::vector<std::string>{"from-root"});

  // A bad pattern names the file.
  testing::WriteTestFile(ctx, ".dockerignore", "ok\n[\n");
  r = DockerIgnore::Load(ctx, "Dockerfile");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(ctx + "/.dockerignore: "), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace xbuild::frontend
