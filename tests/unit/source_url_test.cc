// frontend/source_url: which ADD sources and build contexts are git or http URLs, how a git
// URL's #ref:subdir splits, which refs and subdirs are refused, and the file name a download
// gets.
#include "frontend/source_url.h"

#include <gtest/gtest.h>

namespace xbuild::frontend {
namespace {

TEST(SourceUrlTest, TellsGitFromHttp) {
  for (const char* git : {"https://example.com/a/repo.git", "http://127.0.0.1:5/r.git#v1:sub",
                          "git://example.com/repo", "ssh://git@example.com/repo",
                          "git@github.com:moby/buildkit.git", "file:///srv/repo.git#main"}) {
    EXPECT_TRUE(IsGitUrl(git)) << git;
  }
  for (const char* other : {"https://example.com/file.tgz", "https://example.com/repo.git/x",
                            "./repo.git", "/srv/repo.git", "dir/a@b:c", "user@:x"}) {
    EXPECT_FALSE(IsGitUrl(other)) << other;
  }
  EXPECT_TRUE(IsHttpUrl("https://example.com/file.tgz"));
  EXPECT_FALSE(IsHttpUrl("git://example.com/repo"));
}

TEST(SourceUrlTest, SplitsRefAndSubdir) {
  auto g = ParseGitRef("https://example.com/repo.git#v1.2:/docs/./api/");
  ASSERT_TRUE(g.ok()) << g.error().message();
  EXPECT_EQ(g->remote, "https://example.com/repo.git");
  EXPECT_EQ(g->ref, "v1.2");
  EXPECT_EQ(g->subdir, "docs/api");
  EXPECT_FALSE(g->local);

  auto bare = ParseGitRef("file:///srv/repo.git");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->ref, "");
  EXPECT_EQ(bare->subdir, "");
  EXPECT_TRUE(bare->local);

  auto sub_only = ParseGitRef("git://h/r#:a/b");
  ASSERT_TRUE(sub_only.ok());
  EXPECT_EQ(sub_only->ref, "");
  EXPECT_EQ(sub_only->subdir, "a/b");
}

TEST(SourceUrlTest, RefusesEscapingSubdirsAndRevisionExpressions) {
  for (const char* bad :
       {"git://h/r#v1:../../etc", "git://h/r#v1:a/../../x", "git://h/r#main~1",
        "git://h/r#HEAD@{1}", "git://h/r#a..b", "git://h/r#-x", "git://h/r#a b"}) {
    EXPECT_FALSE(ParseGitRef(bad).ok()) << bad;
  }
  // ".." that stays inside is only a path.
  auto inside = ParseGitRef("git://h/r#v1:a/../b");
  ASSERT_TRUE(inside.ok());
  EXPECT_EQ(inside->subdir, "b");
}

TEST(SourceUrlTest, DownloadsAreNamedByTheLastPathComponent) {
  EXPECT_EQ(UrlFilename("https://example.com/dl/app-1.0.tar.gz?sig=x#frag"), "app-1.0.tar.gz");
  EXPECT_EQ(UrlFilename("https://example.com/a%20b.txt"), "a b.txt");
  EXPECT_EQ(UrlFilename("https://example.com/x/%2e%2e"), "__unnamed__");
  EXPECT_EQ(UrlFilename("https://example.com/"), "__unnamed__");
  EXPECT_EQ(UrlFilename("https://example.com"), "__unnamed__");
}

}  // namespace
}  // namespace xbuild::frontend
