// The build cache over metadata.db: records round-trip, a record whose snapshot is gone reads as
// a miss, and the per-key lock serialises holders (flock, so also across processes).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "cache/image_store.h"
#include "core/context.h"
#include "solver/ops/result_cache.h"
#include "unit/test_util.h"

namespace xbuild::solver::ops {
namespace {

class ResultCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.root = tmp_.Sub("root");
    auto s = cache::ImageStore::Open(ctx_);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    store_ = std::move(*s);
  }
  testing::TempDir tmp_;
  core::Context ctx_;
  std::unique_ptr<cache::ImageStore> store_;
};

TEST_F(ResultCacheTest, RoundTripsAndDropsRecordsOfMissingSnapshots) {
  DbResultCache c(*store_);
  std::string key = core::Digest::Of("k").String();
  auto miss = c.Lookup(key);
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());

  ASSERT_TRUE(store_->db().PutSnapshot(cache::SnapshotRecord{"abc", "", "committed", "", 0}).ok());
  ASSERT_TRUE(c.Store(key, VertexResult{{Ref{"abc"}, Ref{"dir:/ctx"}}}).ok());
  auto hit = c.Lookup(key);
  ASSERT_TRUE(hit.ok() && hit->has_value());
  ASSERT_EQ((*hit)->outputs.size(), 2u);
  EXPECT_EQ((*hit)->outputs[0].id, "abc");
  EXPECT_EQ((*hit)->outputs[1].id, "dir:/ctx");

  ASSERT_TRUE(store_->db().DeleteSnapshot("abc").ok());
  auto gone = c.Lookup(key);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto row = store_->db().GetCacheRecord(key);
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(row->has_value()) << "the stale record is dropped";
}

TEST_F(ResultCacheTest, LockSerialisesHoldersOfOneKey) {
  DbResultCache c(*store_);
  std::string key = core::Digest::Of("k").String();
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  auto work = [&] {
    for (int i = 0; i < 20; ++i) {
      auto l = c.Lock(key);
      ASSERT_TRUE(l.ok()) << l.error().ToString();
      int now = ++inside;
      max_inside = std::max(max_inside.load(), now);
      std::this_thread::yield();
      --inside;
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(max_inside.load(), 1);
  EXPECT_FALSE(c.Lock("not-a-digest").ok());
}

}  // namespace
}  // namespace xbuild::solver::ops
