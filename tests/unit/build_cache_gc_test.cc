// Sizes and durations as Docker spells them, the config file's builder.gc policy, and the
// metadata DB's cache-record use times and lease owners (what build-cache GC reads).
#include <gtest/gtest.h>

#include <unistd.h>

#include "cache/metadata_db.h"
#include "core/units.h"
#include "solver/ops/build_cache.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

TEST(UnitsTest, ByteSizesAreBinaryAndCaseInsensitive) {
  EXPECT_EQ(*core::ParseByteSize("512"), 512);
  EXPECT_EQ(*core::ParseByteSize("512b"), 512);
  EXPECT_EQ(*core::ParseByteSize("2kb"), 2048);
  EXPECT_EQ(*core::ParseByteSize("512MB"), 512LL << 20);
  EXPECT_EQ(*core::ParseByteSize("10GB"), 10LL << 30);
  EXPECT_EQ(*core::ParseByteSize("1.5g"), 3LL << 29);
  EXPECT_EQ(*core::ParseByteSize("64 MiB"), 64LL << 20);
  for (const char* bad : {"", "GB", "12XB", "-1", "1..5g", "10 GB x"}) {
    auto r = core::ParseByteSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("'" + std::string(bad) + "'"), std::string::npos) << r.error().message();
  }
}

TEST(UnitsTest, GoDurations) {
  constexpr int64_t kS = 1000000000;
  EXPECT_EQ(*core::ParseGoDuration("90s"), 90 * kS);
  EXPECT_EQ(*core::ParseGoDuration("10m"), 600 * kS);
  EXPECT_EQ(*core::ParseGoDuration("1h30m"), 5400 * kS);
  EXPECT_EQ(*core::ParseGoDuration("1.5h"), 5400 * kS);
  EXPECT_EQ(*core::ParseGoDuration("168h"), 168 * 3600 * kS);
  EXPECT_EQ(*core::ParseGoDuration("250ms"), kS / 4);
  EXPECT_EQ(*core::ParseGoDuration("0"), 0);
  for (const char* bad : {"", "24", "1d", "h", "1h30", "abc"}) {
    auto r = core::ParseGoDuration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("'" + std::string(bad) + "'"), std::string::npos) << r.error().message();
  }
}

TEST(GcConfigTest, DockerDaemonJsonPolicy) {
  auto raw = core::Json::parse(R"({"builder":{"gc":{"enabled":true,"defaultKeepStorage":"10GB",
      "policy":[{"keepStorage":"512MB","filter":["unused-for=168h"]},{"keepStorage":"10GB","all":true}]}}})");
  auto gc = solver::ops::ParseGcConfig(raw);
  ASSERT_TRUE(gc.ok()) << gc.error().ToString();
  EXPECT_TRUE(gc->enabled);
  ASSERT_EQ(gc->rules.size(), 2u);
  EXPECT_FALSE(gc->rules[0].all);
  EXPECT_EQ(gc->rules[0].keep_storage, 512LL << 20);
  EXPECT_EQ(gc->rules[0].unused_for_seconds, 168 * 3600);
  EXPECT_TRUE(gc->rules[1].all);
  EXPECT_EQ(gc->rules[1].keep_storage, 10LL << 30);
  EXPECT_EQ(gc->rules[1].unused_for_seconds, 0);
}

TEST(GcConfigTest, DefaultsAndDisabled) {
  auto none = solver::ops::ParseGcConfig(core::Json::parse(R"({"data-root":"/x"})"));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->enabled);
  auto only_default = solver::ops::ParseGcConfig(core::Json::parse(R"({"builder":{"gc":{"defaultKeepStorage":"1g"}}})"));
  ASSERT_TRUE(only_default.ok());
  EXPECT_TRUE(only_default->enabled);
  ASSERT_EQ(only_default->rules.size(), 2u);
  EXPECT_EQ(only_default->rules[1].keep_storage, 1LL << 30);
  EXPECT_TRUE(only_default->rules[1].all);
  // A rule without keepStorage keeps defaultKeepStorage.
  auto inherit = solver::ops::ParseGcConfig(
      core::Json::parse(R"({"builder":{"gc":{"defaultKeepStorage":"2MB","policy":[{"all":true}]}}})"));
  ASSERT_TRUE(inherit.ok());
  EXPECT_EQ(inherit->rules[0].keep_storage, 2LL << 20);
  auto off = solver::ops::ParseGcConfig(core::Json::parse(R"({"builder":{"gc":{"enabled":false,"defaultKeepStorage":"1g"}}})"));
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->enabled);
}

TEST(GcConfigTest, BadValuesAreNamed) {
  struct Case {
    const char* json;
    const char* want;
  } cases[] = {
      {R"({"builder":{"gc":{"defaultKeepStorage":"lots"}}})", "builder.gc.defaultKeepStorage: invalid size: 'lots'"},
      {R"({"builder":{"gc":{"policy":[{"keepStorage":"1QB"}]}}})", "builder.gc.policy[0].keepStorage"},
      {R"({"builder":{"gc":{"policy":[{"filter":["unused-for=7d"]}]}}})", "'7d'"},
      {R"({"builder":{"gc":{"policy":[{"filter":["label=x"]}]}}})", "unsupported filter 'label=x'"},
      {R"({"builder":{"gc":{"enabled":"yes"}}})", "builder.gc.enabled"},
      {R"({"builder":{"gc":{"polcy":[]}}})", "unknown field \"polcy\""},
  };
  for (const auto& c : cases) {
    auto r = solver::ops::ParseGcConfig(core::Json::parse(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.error().ToString().find(c.want), std::string::npos) << r.error().ToString();
  }
}

TEST(MetadataDbGcTest, CacheRecordUseTimesAndLeaseOwners) {
  testing::TempDir tmp;
  auto db = cache::MetadataDb::Open(tmp.Sub("metadata.db"));
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  ASSERT_TRUE((*db)->PutCacheRecord("sha256:aa", R"({"outputs":["s1"]})").ok());
  auto list = (*db)->ListCacheRecords();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].created_unix, (*list)[0].last_used_unix);
  ASSERT_TRUE((*db)->TouchCacheRecord("sha256:aa", (*list)[0].created_unix + 100).ok());
  list = (*db)->ListCacheRecords();
  EXPECT_EQ((*list)[0].last_used_unix, (*list)[0].created_unix + 100);

  ASSERT_TRUE((*db)->PutSnapshot(cache::SnapshotRecord{"p", "", "committed", "", 0}).ok());
  EXPECT_FALSE(*(*db)->SnapshotHasChildren("p"));
  ASSERT_TRUE((*db)->PutSnapshot(cache::SnapshotRecord{"c", "p", "active", "", 0}).ok());
  EXPECT_TRUE(*(*db)->SnapshotHasChildren("p"));

  auto lease = (*db)->CreateLease(std::chrono::hours(1));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE((*db)->AddLeaseResource(lease->id, "process", "123").ok());
  auto owners = (*db)->LeaseResources("process");
  ASSERT_TRUE(owners.ok());
  ASSERT_EQ(owners->size(), 1u);
  EXPECT_EQ((*owners)[0].first, lease->id);
  EXPECT_EQ((*owners)[0].second, "123");
}

}  // namespace
}  // namespace xbuild
