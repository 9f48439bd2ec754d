// The inline cache format (solver/ops/remote_cache.h): records embedded in an image config name
// their layers by position among the image's own, and read back over the manifest's layers.
#include <gtest/gtest.h>

#include "image/media_types.h"
#include "solver/ops/remote_cache.h"

namespace xbuild::solver::ops {
namespace {

using core::Digest;

image::Descriptor Layer(const std::string& name) {
  image::Descriptor d;
  d.media_type = std::string(image::media::kOciLayerGzip);
  d.digest = Digest::Of(name);
  d.size = static_cast<int64_t>(name.size());
  return d;
}

// Two step records over layers "a" and "b" (the collected, uncompressed form).
CacheConfig TwoSteps() {
  CacheConfig c;
  c.layers.push_back(CacheLayerInfo{Digest::Of("b"), Digest::Of("diff-b"), "", 1});
  c.layers.push_back(CacheLayerInfo{Digest::Of("a"), Digest::Of("diff-a"), "", 1});
  c.records.push_back(CacheRecordInfo{"sha256:k2", 0, "sha256:k1", ""});
  c.records.push_back(CacheRecordInfo{"sha256:k1", 1, "", "sha256:chain"});
  return c;
}

TEST(InlineCacheTest, RecordsNameLayersByPositionInLayerOrder) {
  auto j = InlineCache(TwoSteps(), {Layer("base"), Layer("a"), Layer("b")});
  ASSERT_TRUE(j.ok()) << j.error().ToString();
  const core::Json& rs = (*j)["records"];
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0]["key"], "sha256:k1");
  EXPECT_EQ(rs[0]["layer"], 1);
  EXPECT_EQ(rs[0]["base"], "sha256:chain");
  EXPECT_FALSE(rs[0].contains("parent"));
  EXPECT_EQ(rs[1]["key"], "sha256:k2");
  EXPECT_EQ(rs[1]["layer"], 2);
  EXPECT_EQ(rs[1]["parent"], "sha256:k1");

  auto missing = InlineCache(TwoSteps(), {Layer("base"), Layer("a")});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find(Digest::Of("b").String()), std::string::npos);
}

TEST(InlineCacheTest, ReadBackOverTheManifestsLayers) {
  image::Manifest m;
  m.layers = {Layer("base"), Layer("a"), Layer("b")};
  image::ImageConfig cfg;
  cfg.diff_ids = {Digest::Of("diff-base"), Digest::Of("diff-a"), Digest::Of("diff-b")};
  auto none = ParseInlineCache(cfg, m);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), core::Code::kNotFound);

  auto j = InlineCache(TwoSteps(), m.layers);
  ASSERT_TRUE(j.ok());
  cfg.extra[std::string(kInlineCacheKey)] = *j;
  auto c = ParseInlineCache(cfg, m);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_EQ(c->layers.size(), 3u);
  EXPECT_EQ(c->layers[2].digest, Digest::Of("b"));
  EXPECT_EQ(c->layers[2].diff_id, Digest::Of("diff-b"));
  EXPECT_EQ(c->layers[2].media_type, image::media::kOciLayerGzip);
  ASSERT_EQ(c->records.size(), 2u);
  EXPECT_EQ(c->records[1].key, "sha256:k2");
  EXPECT_EQ(c->records[1].layer, 2);

  // A record past the image's layers, or diff_ids that do not match the layers: refused.
  m.layers.pop_back();
  cfg.diff_ids.pop_back();
  auto past = ParseInlineCache(cfg, m);
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.error().message().find("record sha256:k2 names no layer"), std::string::npos) << past.error().message();
  cfg.diff_ids.pop_back();
  EXPECT_FALSE(ParseInlineCache(cfg, m).ok());
}

TEST(InlineCacheTest, InlineLocations) {
  auto to = ParseCacheLocation("type=inline", true);
  ASSERT_TRUE(to.ok());
  EXPECT_EQ(to->type, "inline");
  auto max = ParseCacheLocation("type=inline,mode=max", true);
  ASSERT_FALSE(max.ok());
  EXPECT_NE(max.error().message().find("mode=min"), std::string::npos);
  auto from = ParseCacheLocation("type=inline", false);
  ASSERT_FALSE(from.ok());
  EXPECT_NE(from.error().message().find("type=registry,ref=IMAGE"), std::string::npos);
  auto bare = ParseCacheLocation("registry.example/app:1", false);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->type, "registry");
  EXPECT_EQ(bare->ref, "registry.example/app:1");
}

}  // namespace
}  // namespace xbuild::solver::ops
