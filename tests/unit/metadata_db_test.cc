#include "cache/metadata_db.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "unit/test_util.h"

namespace xbuild::cache {
namespace {

using core::Code;
using core::Digest;
using core::Status;
using testing::TempDir;

constexpr const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";

ImageRecord Img(std::string_view seed, int64_t created = 1700000000) {
  ImageRecord r;
  r.digest = Digest::Of(std::string("manifest ") + std::string(seed));
  r.media_type = kManifestType;
  r.size = static_cast<int64_t>(seed.size()) + 100;
  r.config = Digest::Of(std::string("config ") + std::string(seed));
  r.created_unix = created;
  return r;
}

void ExpectSame(const ImageRecord& a, const ImageRecord& b) {
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.media_type, b.media_type);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.created_unix, b.created_unix);
}

std::string QueryText(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) return "<prepare failed>";
  std::string out;
  if (sqlite3_step(s) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(s, 0);
    out = t ? reinterpret_cast<const char*>(t) : "";
  }
  sqlite3_finalize(s);
  return out;
}

class MetadataDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = MetadataDb::Open(Path());
    ASSERT_TRUE(db.ok()) << db.error().ToString();
    db_ = std::move(db).value();
  }
  std::string Path() const { return tmp_.Sub("state/metadata.db"); }

  TempDir tmp_;
  std::unique_ptr<MetadataDb> db_;
};

TEST_F(MetadataDbTest, OpenCreatesSchema) {
  EXPECT_GE(MetadataDb::LatestSchemaVersion(), 1);
  EXPECT_EQ(db_->SchemaVersion(), MetadataDb::LatestSchemaVersion());
  sqlite3* h = db_->handle();
  EXPECT_EQ(QueryText(h, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryText(h, "PRAGMA foreign_keys"), "1");
  EXPECT_EQ(QueryText(h, "PRAGMA synchronous"), "1");  // NORMAL
  EXPECT_EQ(QueryText(h, "PRAGMA busy_timeout"), "10000");
  EXPECT_EQ(QueryText(h, "PRAGMA user_version"), std::to_string(MetadataDb::LatestSchemaVersion()));
  for (const char* table : {"images", "tags", "blob_refs", "leases", "lease_resources"}) {
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT name FROM sqlite_master WHERE type='table' AND name=?",
                                 -1, &s, nullptr),
              SQLITE_OK);
    sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
    EXPECT_EQ(sqlite3_step(s), SQLITE_ROW) << table;
    sqlite3_finalize(s);
  }
}

TEST_F(MetadataDbTest, ReopenIsNoop) {
  ASSERT_TRUE(db_->PutImage(Img("a")).ok());
  db_.reset();
  auto again = MetadataDb::Open(Path());
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ((*again)->SchemaVersion(), MetadataDb::LatestSchemaVersion());
  auto got = (*again)->GetImage(Img("a").digest);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  ExpectSame(**got, Img("a"));
}

// A command's writes reach the database file at its close (checkpoint, WAL emptied); `run --rm`
// skips that, and its writes wait in the WAL, where the next process still finds them.
TEST_F(MetadataDbTest, CloseCheckpointsUnlessSkipped) {
  auto wal_size = [&] {
    struct stat st {};
    return ::stat((Path() + "-wal").c_str(), &st) == 0 ? st.st_size : -1;
  };
  ASSERT_TRUE(db_->PutImage(Img("kept")).ok());
  db_.reset();
  EXPECT_EQ(wal_size(), 0);

  auto db = MetadataDb::Open(Path());
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  (*db)->SkipCheckpointAtClose();
  ASSERT_TRUE((*db)->PutImage(Img("in wal")).ok());
  db = core::Error(Code::kInternal, "closed");
  EXPECT_GT(wal_size(), 0);

  auto again = MetadataDb::Open(Path());
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  for (const char* seed : {"kept", "in wal"}) {
    auto got = (*again)->GetImage(Img(seed).digest);
    ASSERT_TRUE(got.ok() && got->has_value()) << seed;
    ExpectSame(**got, Img(seed));
  }
  again = core::Error(Code::kInternal, "closed");
  EXPECT_EQ(wal_size(), 0);  // this close checkpointed both
}

TEST_F(MetadataDbTest, NewerSchemaIsRefused) {
  std::string bump = "PRAGMA user_version=" + std::to_string(MetadataDb::LatestSchemaVersion() + 1);
  ASSERT_EQ(sqlite3_exec(db_->handle(), bump.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  db_.reset();
  auto again = MetadataDb::Open(Path());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(again.error().message().find("newer"), std::string::npos) << again.error().message();
}

TEST(MetadataDbMigration, OldDatabaseIsMigrated) {
  TempDir tmp;
  std::string path = tmp.Sub("old.db");
  {  // a version-0 database that already holds something unrelated
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE unrelated(x); INSERT INTO unrelated VALUES(1);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  auto db = MetadataDb::Open(path);
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  EXPECT_EQ((*db)->SchemaVersion(), MetadataDb::LatestSchemaVersion());
  EXPECT_EQ(QueryText((*db)->handle(), "SELECT x FROM unrelated"), "1");
  EXPECT_TRUE((*db)->PutImage(Img("x")).ok());
}

TEST_F(MetadataDbTest, ImagesCrud) {
  auto missing = db_->GetImage(Img("a").digest);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(db_->PutImage(Img("a")).ok());
  ASSERT_TRUE(db_->PutImage(Img("b")).ok());
  ImageRecord changed = Img("a");
  changed.media_type = "application/vnd.docker.distribution.manifest.v2+json";
  changed.size = 999;
  ASSERT_TRUE(db_->PutImage(changed).ok());  // upsert

  auto got = db_->GetImage(changed.digest);
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSame(**got, changed);

  auto all = db_->ListImages();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_LT((*all)[0].digest, (*all)[1].digest);

  ASSERT_TRUE(db_->DeleteImage(Img("b").digest).ok());
  EXPECT_EQ(db_->DeleteImage(Img("b").digest).error().code(), Code::kNotFound);
  all = db_->ListImages();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  ExpectSame((*all)[0], changed);
}

TEST_F(MetadataDbTest, Tags) {
  ASSERT_TRUE(db_->PutImage(Img("a")).ok());
  ASSERT_TRUE(db_->PutImage(Img("b")).ok());
  const std::string busybox = "docker.io/library/busybox:latest";
  const std::string alpine = "docker.io/library/alpine:3.19";

  auto none = db_->GetTag(busybox);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(db_->SetTag(busybox, Img("a").digest).ok());
  ASSERT_TRUE(db_->SetTag(alpine, Img("a").digest).ok());
  auto t = db_->GetTag(busybox);
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ(**t, Img("a").digest);

  ASSERT_TRUE(db_->SetTag(busybox, Img("b").digest).ok());  // replaces
  t = db_->GetTag(busybox);
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ(**t, Img("b").digest);

  auto list = db_->ListTags();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first, alpine);  // sorted by name
  EXPECT_EQ((*list)[0].second, Img("a").digest);
  EXPECT_EQ((*list)[1].first, busybox);
  EXPECT_EQ((*list)[1].second, Img("b").digest);

  auto for_a = db_->TagsFor(Img("a").digest);
  ASSERT_TRUE(for_a.ok());
  EXPECT_EQ(*for_a, std::vector<std::string>{alpine});

  auto unknown = db_->SetTag("docker.io/library/x:1", Img("nope").digest);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);

  ASSERT_TRUE(db_->DeleteTag(alpine).ok());
  EXPECT_EQ(db_->DeleteTag(alpine).error().code(), Code::kNotFound);
  t = db_->GetTag(alpine);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->has_value());
}

TEST_F(MetadataDbTest, DeleteImageCascades) {
  ImageRecord a = Img("a"), b = Img("b");
  Digest layer = Digest::Of("layer"), other = Digest::Of("other layer");
  ASSERT_TRUE(db_->PutImage(a).ok());
  ASSERT_TRUE(db_->PutImage(b).ok());
  ASSERT_TRUE(db_->SetTag("r/a:1", a.digest).ok());
  ASSERT_TRUE(db_->SetTag("r/a:2", a.digest).ok());
  ASSERT_TRUE(db_->SetTag("r/b:1", b.digest).ok());
  ASSERT_TRUE(db_->AddBlobRefs(a.digest, {a.config, layer, other}).ok());
  ASSERT_TRUE(db_->AddBlobRefs(b.digest, {b.config, layer}).ok());
  EXPECT_EQ(*db_->RefCount(layer), 2);

  ASSERT_TRUE(db_->DeleteImage(a.digest).ok());
  auto tags = db_->ListTags();
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->size(), 1u);
  EXPECT_EQ((*tags)[0].first, "r/b:1");
  EXPECT_TRUE(db_->ChildrenOf(a.digest)->empty());
  EXPECT_EQ(*db_->RefCount(layer), 1);
  EXPECT_EQ(*db_->RefCount(other), 0);
  EXPECT_EQ(*db_->RefCount(a.config), 0);
  EXPECT_EQ(db_->ChildrenOf(b.digest)->size(), 2u);
}

TEST_F(MetadataDbTest, BlobRefs) {
  Digest m1 = Digest::Of("m1"), m2 = Digest::Of("m2"), idx = Digest::Of("index");
  Digest c = Digest::Of("c"), l1 = Digest::Of("l1"), l2 = Digest::Of("l2");
  ASSERT_TRUE(db_->AddBlobRefs(m1, {c, l1, l2}).ok());
  ASSERT_TRUE(db_->AddBlobRefs(m2, {c, l1}).ok());
  ASSERT_TRUE(db_->AddBlobRefs(m2, {c}).ok());  // duplicate edge: no-op
  ASSERT_TRUE(db_->AddBlobRefs(idx, {m1, m2}).ok());
  EXPECT_EQ(*db_->RefCount(c), 2);
  EXPECT_EQ(*db_->RefCount(l1), 2);
  EXPECT_EQ(*db_->RefCount(l2), 1);
  EXPECT_EQ(*db_->RefCount(m1), 1);
  EXPECT_EQ(*db_->RefCount(Digest::Of("nothing")), 0);

  auto kids = db_->ChildrenOf(m1);
  ASSERT_TRUE(kids.ok());
  std::vector<Digest> want{c, l1, l2};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*kids, want);

  ASSERT_TRUE(db_->DeleteBlobRefs(m1).ok());
  ASSERT_TRUE(db_->DeleteBlobRefs(m1).ok());  // absent is fine
  EXPECT_EQ(*db_->RefCount(c), 1);
  EXPECT_EQ(*db_->RefCount(l2), 0);
  EXPECT_TRUE(db_->ChildrenOf(m1)->empty());
}

TEST_F(MetadataDbTest, Leases) {
  auto forever = db_->CreateLease(std::chrono::seconds(0));
  ASSERT_TRUE(forever.ok()) << forever.error().ToString();
  EXPECT_EQ(forever->id.size(), 32u);
  EXPECT_EQ(forever->expires_unix, 0);
  auto short_lived = db_->CreateLease(std::chrono::seconds(60));
  ASSERT_TRUE(short_lived.ok());
  EXPECT_NE(short_lived->id, forever->id);
  EXPECT_EQ(short_lived->expires_unix, short_lived->created_unix + 60);

  const std::string k1 = Digest::Of("k1").String(), k2 = Digest::Of("k2").String();
  ASSERT_TRUE(db_->AddLeaseResource(forever->id, "content", k1).ok());
  ASSERT_TRUE(db_->AddLeaseResource(short_lived->id, "content", k1).ok());
  ASSERT_TRUE(db_->AddLeaseResource(short_lived->id, "content", k2).ok());
  ASSERT_TRUE(db_->AddLeaseResource(short_lived->id, "snapshot", "snap-1").ok());
  EXPECT_EQ(db_->AddLeaseResource("no-such-lease", "content", k1).error().code(), Code::kNotFound);

  std::vector<std::string> both{k1, k2};
  std::sort(both.begin(), both.end());
  EXPECT_EQ(*db_->LeasedKeys("content"), both);  // deduplicated, sorted
  EXPECT_EQ(*db_->LeasedKeys("snapshot"), std::vector<std::string>{"snap-1"});

  // Not yet expired.
  EXPECT_EQ(*db_->ExpireLeases(short_lived->created_unix + 59), 0);
  // Expired: the short lease and its resources go; the no-expiry lease stays.
  EXPECT_EQ(*db_->ExpireLeases(short_lived->created_unix + 61), 1);
  EXPECT_EQ(*db_->LeasedKeys("content"), std::vector<std::string>{k1});
  EXPECT_TRUE(db_->LeasedKeys("snapshot")->empty());
  EXPECT_EQ(*db_->ExpireLeases(INT64_MAX / 2), 0);

  ASSERT_TRUE(db_->DeleteLease(forever->id).ok());
  ASSERT_TRUE(db_->DeleteLease(forever->id).ok());  // already gone: fine
  EXPECT_TRUE(db_->LeasedKeys("content")->empty());
  EXPECT_EQ(QueryText(db_->handle(), "SELECT COUNT(*) FROM lease_resources"), "0");
}

TEST_F(MetadataDbTest, TransactionRollsBackOnError) {
  Status st = db_->Transaction([&]() -> Status {
    XB_TRY(db_->PutImage(Img("a")));
    XB_TRY(db_->SetTag("r/a:1", Img("a").digest));
    return core::Error(Code::kInternal, "boom");
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kInternal);
  EXPECT_FALSE(db_->GetImage(Img("a").digest)->has_value());
  EXPECT_FALSE(db_->GetTag("r/a:1")->has_value());
  // The connection is usable afterwards.
  EXPECT_TRUE(db_->PutImage(Img("a")).ok());
  EXPECT_TRUE(db_->GetImage(Img("a").digest)->has_value());
}

TEST_F(MetadataDbTest, NestedTransactions) {
  // A failed inner transaction undoes only itself; the outer one commits the rest.
  Status st = db_->Transaction([&]() -> Status {
    XB_TRY(db_->PutImage(Img("a")));
    Status inner = db_->Transaction([&]() -> Status {
      XB_TRY(db_->PutImage(Img("b")));
      return core::Error(Code::kInternal, "inner fails");
    });
    EXPECT_FALSE(inner.ok());
    EXPECT_FALSE(db_->GetImage(Img("b").digest)->has_value());
    return db_->Transaction([&]() -> Status { return db_->PutImage(Img("c")); });
  });
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_TRUE(db_->GetImage(Img("a").digest)->has_value());
  EXPECT_FALSE(db_->GetImage(Img("b").digest)->has_value());
  EXPECT_TRUE(db_->GetImage(Img("c").digest)->has_value());

  // An inner failure passed up rolls back everything.
  st = db_->Transaction([&]() -> Status {
    XB_TRY(db_->PutImage(Img("d")));
    return db_->Transaction([&]() -> Status {
      XB_TRY(db_->PutImage(Img("e")));
      return core::Error(Code::kInternal, "inner fails");
    });
  });
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(db_->GetImage(Img("d").digest)->has_value());
  EXPECT_FALSE(db_->GetImage(Img("e").digest)->has_value());
}

TEST_F(MetadataDbTest, ConcurrentProcesses) {
  constexpr int kProcs = 4, kEach = 200;
  db_.reset();  // children open their own connections
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto db = MetadataDb::Open(Path());
      if (!db.ok()) ::_exit(1);
      for (int i = 0; i < kEach; ++i) {
        std::string id = std::to_string(p) + "-" + std::to_string(i);
        ImageRecord r = Img(id);
        if (!(*db)->PutImage(r).ok()) ::_exit(2);
        if (!(*db)->SetTag("example.com/p" + id + ":latest", r.digest).ok()) ::_exit(3);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  auto db = MetadataDb::Open(Path());
  ASSERT_TRUE(db.ok());
  auto tags = (*db)->ListTags();
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(tags->size(), static_cast<size_t>(kProcs * kEach));
  auto images = (*db)->ListImages();
  ASSERT_TRUE(images.ok());
  EXPECT_EQ(images->size(), static_cast<size_t>(kProcs * kEach));
  auto t = (*db)->GetTag("example.com/p3-199:latest");
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ(**t, Img("3-199").digest);
}

TEST_F(MetadataDbTest, ConcurrentThreadsShareOneDb) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        ImageRecord r = Img("t" + std::to_string(t) + "-" + std::to_string(i));
        Status st = db_->Transaction([&]() -> Status {
          XB_TRY(db_->PutImage(r));
          return db_->SetTag("t/" + std::to_string(t) + ":" + std::to_string(i), r.digest);
        });
        if (!st.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(db_->ListTags()->size(), 200u);
}

TEST_F(MetadataDbTest, CorruptDigestIsAnErrorNotACrash) {
  ASSERT_EQ(sqlite3_exec(db_->handle(),
                         "INSERT INTO images VALUES('sha256:../../etc', 'x', 1, 'sha256:zz', 0);"
                         "INSERT INTO tags VALUES('bad', 'sha256:../../etc', 0);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto t = db_->GetTag("bad");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code(), Code::kDataLoss);
  EXPECT_NE(t.error().message().find("tags.image"), std::string::npos) << t.error().message();
  auto list = db_->ListTags();
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code(), Code::kDataLoss);
  auto images = db_->ListImages();
  ASSERT_FALSE(images.ok());
  EXPECT_EQ(images.error().code(), Code::kDataLoss);
}

}  // namespace
}  // namespace xbuild::cache
