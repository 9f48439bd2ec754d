#include "cache/metadata_db.h"

#include <sqlite3.h>
#include <sys/random.h>

#include <cerrno>
#include <ctime>
#include <thread>

#include "core/fd.h"
#include "core/fs.h"

namespace xbuild::cache {

using core::Code;
using core::Digest;
using core::Error;
using core::Result;
using core::Status;

namespace {

// Ordered migrations: entry i takes the schema from version i to i + 1. Append only.
constexpr const char* kMigrations[] = {
    // 1: images, tags, blob refs, leases.
    R"sql(
CREATE TABLE images (
  digest       TEXT PRIMARY KEY NOT NULL,
  media_type   TEXT NOT NULL,
  size         INTEGER NOT NULL,
  config       TEXT NOT NULL,
  created_unix INTEGER NOT NULL
);
CREATE TABLE tags (
  name         TEXT PRIMARY KEY NOT NULL,
  image        TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
  updated_unix INTEGER NOT NULL
);
CREATE INDEX tags_by_image ON tags(image);
CREATE TABLE blob_refs (
  parent TEXT NOT NULL,
  child  TEXT NOT NULL,
  PRIMARY KEY (parent, child)
);
CREATE INDEX blob_refs_by_child ON blob_refs(child);
CREATE TABLE leases (
  id           TEXT PRIMARY KEY NOT NULL,
  created_unix INTEGER NOT NULL,
  expires_unix INTEGER NOT NULL
);
CREATE TABLE lease_resources (
  lease TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
  kind  TEXT NOT NULL,
  key   TEXT NOT NULL,
  PRIMARY KEY (lease, kind, key)
);
CREATE INDEX lease_resources_by_key ON lease_resources(kind, key);
)sql",
    // 2: where blobs were pulled from (cross-repository mounts on push).
    R"sql(
CREATE TABLE blob_sources (
  digest     TEXT NOT NULL,
  registry   TEXT NOT NULL,
  repository TEXT NOT NULL,
  PRIMARY KEY (digest, registry, repository)
);
)sql",
    // 3: snapshots and build-cache records.
    R"sql(
CREATE TABLE snapshots (
  id           TEXT PRIMARY KEY NOT NULL,
  parent       TEXT NOT NULL,
  kind         TEXT NOT NULL,
  key          TEXT NOT NULL,
  created_unix INTEGER NOT NULL
);
CREATE INDEX snapshots_by_key ON snapshots(key);
CREATE INDEX snapshots_by_parent ON snapshots(parent);
CREATE TABLE cache_records (
  key            TEXT PRIMARY KEY NOT NULL,
  result         TEXT NOT NULL,
  created_unix   INTEGER NOT NULL,
  last_used_unix INTEGER NOT NULL
);
)sql",
    // 4: compressed variants of uncompressed layer blobs, made when an image is pushed or
    // exported (a blob_refs edge source -> digest keeps each variant alive with its source).
    R"sql(
CREATE TABLE blob_variants (
  source      TEXT NOT NULL,
  compression TEXT NOT NULL,
  digest      TEXT NOT NULL,
  size        INTEGER NOT NULL,
  PRIMARY KEY (source, compression)
);
CREATE INDEX blob_variants_by_digest ON blob_variants(digest);
)sql",
};
constexpr int kLatestVersion = static_cast<int>(std::size(kMigrations));

constexpr int kBusyTimeoutMs = 10000;
constexpr int kBusyRetries = 6;  // on top of busy_timeout: ~1 minute of waiting in all

Code CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Code::kUnavailable;
    case SQLITE_CONSTRAINT:
      return Code::kFailedPrecondition;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Code::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return Code::kResourceExhausted;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return Code::kPermissionDenied;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return Code::kIo;
    default:
      return Code::kInternal;
  }
}

Error SqlError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = "sqlite: " + std::string(what) + ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error(CodeFor(rc), std::move(msg));
}

void BusyBackoff(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(10 << std::min(attempt, 6)));
}

// A prepared statement; finalized on destruction. Parameters are 1-based, columns 0-based.
class Stmt {
 public:
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
    if (rc != SQLITE_OK) return SqlError(db, rc, "prepare \"" + std::string(sql) + "\"");
    return Stmt(db, s);
  }

  Stmt& Bind(int i, std::string_view v) {
    Check(sqlite3_bind_text(s_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& Bind(int i, const Digest& d) { return Bind(i, d.String()); }
  Stmt& Bind(int i, int64_t v) {
    Check(sqlite3_bind_int64(s_.get(), i, v));
    return *this;
  }

  // true: a row is ready; false: done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqlError(db_, bind_rc_, "bind " + Sql());
    int rc = sqlite3_step(s_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(db_, rc, Sql());
  }
  // Steps to completion, ignoring rows.
  Status Run() {
    for (;;) {
      XB_ASSIGN(bool row, Step());
      if (!row) return core::Ok();
    }
  }
  void Reset() {
    sqlite3_reset(s_.get());
    sqlite3_clear_bindings(s_.get());
    bind_rc_ = SQLITE_OK;
  }

  std::string Text(int col) const {
    const unsigned char* t = sqlite3_column_text(s_.get(), col);
    if (!t) return {};
    return std::string(reinterpret_cast<const char*>(t),
                       static_cast<size_t>(sqlite3_column_bytes(s_.get(), col)));
  }
  int64_t Int(int col) const { return sqlite3_column_int64(s_.get(), col); }
  Result<Digest> DigestCol(int col, std::string_view what) const {
    auto d = Digest::Parse(Text(col));
    if (!d.ok()) {
      return Error(Code::kDataLoss, "metadata db: corrupt " + std::string(what) + ": " +
                                        d.error().message());
    }
    return *d;
  }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  std::string Sql() const {
    const char* sql = sqlite3_sql(s_.get());
    return sql ? "\"" + std::string(sql) + "\"" : "statement";
  }

  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Finalizer> s_;
  int bind_rc_ = SQLITE_OK;
};

// Digest columns are re-parsed on the way out; the data-loss error names the row.
Result<ImageRecord> ReadImageRow(const Stmt& s) {
  ImageRecord r;
  XB_ASSIGN(r.digest, s.DigestCol(0, "images.digest"));
  r.media_type = s.Text(1);
  r.size = s.Int(2);
  XB_ASSIGN(r.config, s.DigestCol(3, "images.config of " + r.digest.String()));
  r.created_unix = s.Int(4);
  return r;
}


int64_t NowUnix() { return static_cast<int64_t>(::time(nullptr)); }

}  // namespace

void MetadataDb::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

int MetadataDb::LatestSchemaVersion() { return kLatestVersion; }

Result<std::unique_ptr<MetadataDb>> MetadataDb::Open(const std::string& path) {
  const std::string ctx = "open metadata db " + path;
  std::string parent = core::Dirname(path);
  if (!parent.empty() && parent != path) XB_TRY_CTX(core::MkdirAll(parent, 0700), ctx);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<MetadataDb> db(new MetadataDb(path, raw));  // owns raw even when rc != OK
  if (rc != SQLITE_OK) return SqlError(raw, rc, ctx);
  XB_TRY_CTX(db->Configure(), ctx);
  XB_TRY_CTX(db->Migrate(), ctx);
  return db;
}

void MetadataDb::SkipCheckpointAtClose() {
  sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
}

Status MetadataDb::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return core::Ok();
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Error(CodeFor(rc), "sqlite: " + std::string(sql).substr(0, 60) + ": " + msg);
}

Status MetadataDb::Configure() {
  sqlite3_extended_result_codes(db_.get(), 1);
  sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);
  // Switching to WAL needs a brief exclusive lock; another process opening at once can make it
  // busy past the timeout only in pathological cases, so retry a few times.
  for (int attempt = 0;; ++attempt) {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "PRAGMA journal_mode=WAL"));
    auto row = s.Step();
    if (!row.ok()) {
      if (row.error().code() == Code::kUnavailable && attempt < kBusyRetries) {
        BusyBackoff(attempt);
        continue;
      }
      return std::move(row).error();
    }
    std::string mode = *row ? s.Text(0) : "";
    if (mode != "wal") {
      return Error(Code::kFailedPrecondition,
                   "cannot use WAL journal mode (got \"" + mode + "\"); is the filesystem local?");
    }
    break;
  }
  // Every xbuild command is a short process: without this, the last one to close the database
  // deletes the WAL, and the next one's first write makes it again and fsyncs the directory.
  // The size limit 0 empties the kept WAL at that close, after its checkpoint: frames left in
  // it would be read back (the whole file) by the next process to open the database.
  int persist = 1;
  sqlite3_file_control(db_.get(), "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  XB_TRY(Exec("PRAGMA journal_size_limit=0"));
  // A WAL left unchecked at close (SkipCheckpointAtClose) is read whole by the next process
  // that opens the database (~0.3 ms a MiB): checkpoint at 1 MiB rather than sqlite's 4 MiB.
  XB_TRY(Exec("PRAGMA wal_autocheckpoint=256"));
  XB_TRY(Exec("PRAGMA synchronous=NORMAL"));
  XB_TRY(Exec("PRAGMA foreign_keys=ON"));
  return core::Ok();
}

namespace {
Result<int> ReadUserVersion(sqlite3* db) {
  XB_ASSIGN(Stmt s, Stmt::Prepare(db, "PRAGMA user_version"));
  XB_ASSIGN(bool row, s.Step());
  if (!row) return Error(Code::kInternal, "sqlite: PRAGMA user_version returned no row");
  return static_cast<int>(s.Int(0));
}

Error TooNew(int version) {
  return Error(Code::kFailedPrecondition,
               "database schema version " + std::to_string(version) +
                   " is newer than this xbuild supports (" + std::to_string(kLatestVersion) +
                   "); it was written by a newer xbuild");
}
}  // namespace

Status MetadataDb::Migrate() {
  XB_ASSIGN(int version, ReadUserVersion(db_.get()));
  if (version > kLatestVersion) return TooNew(version);
  if (version < kLatestVersion) {
    // (A Status variable, not XB_TRY: the lambda's own XB_TRYs would shadow the macro's local.)
    Status st = Transaction([&]() -> Status {
      // Re-read under the write lock: another process may have migrated meanwhile.
      XB_ASSIGN(int v, ReadUserVersion(db_.get()));
      if (v > kLatestVersion) return TooNew(v);
      for (int i = v; i < kLatestVersion; ++i) {
        XB_TRY_CTX(Exec(kMigrations[i]), "migration " + std::to_string(i + 1));
      }
      // PRAGMA takes no bound parameters; the value is our own constant, not input.
      std::string set = "PRAGMA user_version=" + std::to_string(kLatestVersion);
      return Exec(set.c_str());
    });
    if (!st.ok()) return st;
  }
  schema_version_ = kLatestVersion;
  return core::Ok();
}

Status MetadataDb::Transaction(const std::function<Status()>& fn) {
  std::lock_guard lock(mu_);
  if (tx_depth_ > 0) {
    // Nested: join the outer transaction; a savepoint lets a failure undo only this part.
    XB_TRY(Exec("SAVEPOINT xb_nested"));
    ++tx_depth_;
    Status st = fn();
    --tx_depth_;
    if (!st.ok()) {
      if (!sqlite3_get_autocommit(db_.get())) {
        (void)Exec("ROLLBACK TO xb_nested");
        (void)Exec("RELEASE xb_nested");
      }
      return st;
    }
    return Exec("RELEASE xb_nested");
  }

  for (int attempt = 0;; ++attempt) {
    Status begin = Exec("BEGIN IMMEDIATE");
    if (begin.ok()) break;
    if (begin.error().code() != Code::kUnavailable || attempt >= kBusyRetries) {
      return std::move(begin).Context("begin transaction");
    }
    BusyBackoff(attempt);
  }
  tx_depth_ = 1;
  core::ScopeGuard end([&] {
    tx_depth_ = 0;
    if (!sqlite3_get_autocommit(db_.get())) (void)Exec("ROLLBACK");
  });
  XB_TRY(fn());
  for (int attempt = 0;; ++attempt) {
    Status commit = Exec("COMMIT");
    if (commit.ok()) return core::Ok();
    // A busy COMMIT leaves the transaction open and can be retried; anything else rolls back.
    if (commit.error().code() != Code::kUnavailable || attempt >= kBusyRetries) {
      return std::move(commit).Context("commit transaction");
    }
    BusyBackoff(attempt);
  }
}

// ---------------------------------------------------------------------------------------------
// Images

Status MetadataDb::PutImage(const ImageRecord& rec) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
      INSERT INTO images(digest, media_type, size, config, created_unix) VALUES(?1, ?2, ?3, ?4, ?5)
      ON CONFLICT(digest) DO UPDATE SET media_type = excluded.media_type, size = excluded.size,
        config = excluded.config, created_unix = excluded.created_unix)sql"));
    s.Bind(1, rec.digest).Bind(2, rec.media_type).Bind(3, rec.size).Bind(4, rec.config);
    s.Bind(5, rec.created_unix);
    return s.Run();
  }).Context("put image " + rec.digest.String());
}

Result<std::optional<ImageRecord>> MetadataDb::GetImage(const Digest& digest) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT digest, media_type, size, config, "
                                             "created_unix FROM images WHERE digest = ?1"));
  s.Bind(1, digest);
  XB_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<ImageRecord>();
  XB_ASSIGN(ImageRecord rec, ReadImageRow(s));
  return std::optional<ImageRecord>(std::move(rec));
}

Result<std::vector<ImageRecord>> MetadataDb::ListImages() {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT digest, media_type, size, config, "
                                             "created_unix FROM images ORDER BY digest"));
  std::vector<ImageRecord> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    XB_ASSIGN(ImageRecord rec, ReadImageRow(s));
    out.push_back(std::move(rec));
  }
}

Status MetadataDb::DeleteImage(const Digest& digest) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt del, Stmt::Prepare(db_.get(), "DELETE FROM images WHERE digest = ?1"));
    XB_TRY(del.Bind(1, digest).Run());
    if (sqlite3_changes(db_.get()) == 0) {
      return Error(Code::kNotFound, "image " + digest.String() + " not found");
    }
    // Tags also go by ON DELETE CASCADE; deleting them here does not depend on the PRAGMA.
    XB_ASSIGN(Stmt tags, Stmt::Prepare(db_.get(), "DELETE FROM tags WHERE image = ?1"));
    XB_TRY(tags.Bind(1, digest).Run());
    XB_ASSIGN(Stmt refs, Stmt::Prepare(db_.get(), "DELETE FROM blob_refs WHERE parent = ?1"));
    return refs.Bind(1, digest).Run();
  }).Context("delete image " + digest.String());
}

// ---------------------------------------------------------------------------------------------
// Tags

Status MetadataDb::SetTag(const std::string& name, const Digest& image) {
  if (name.empty()) return Error(Code::kInvalidArgument, "set tag: empty name");
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt exists, Stmt::Prepare(db_.get(), "SELECT 1 FROM images WHERE digest = ?1"));
    XB_ASSIGN(bool found, exists.Bind(1, image).Step());
    if (!found) return Error(Code::kNotFound, "image " + image.String() + " not found");
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
      INSERT INTO tags(name, image, updated_unix) VALUES(?1, ?2, ?3)
      ON CONFLICT(name) DO UPDATE SET image = excluded.image,
        updated_unix = excluded.updated_unix)sql"));
    return s.Bind(1, name).Bind(2, image).Bind(3, NowUnix()).Run();
  }).Context("set tag " + name);
}

Result<std::optional<Digest>> MetadataDb::GetTag(const std::string& name) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT image FROM tags WHERE name = ?1"));
  XB_ASSIGN(bool row, s.Bind(1, name).Step());
  if (!row) return std::optional<Digest>();
  XB_ASSIGN(Digest d, s.DigestCol(0, "tags.image of " + name));
  return std::optional<Digest>(d);
}

Status MetadataDb::DeleteTag(const std::string& name) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM tags WHERE name = ?1"));
    XB_TRY(s.Bind(1, name).Run());
    if (sqlite3_changes(db_.get()) == 0) {
      return Error(Code::kNotFound, "tag " + name + " not found");
    }
    return core::Ok();
  }).Context("delete tag " + name);
}

Result<std::vector<std::pair<std::string, Digest>>> MetadataDb::ListTags() {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT name, image FROM tags ORDER BY name"));
  std::vector<std::pair<std::string, Digest>> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    std::string name = s.Text(0);
    XB_ASSIGN(Digest d, s.DigestCol(1, "tags.image of " + name));
    out.emplace_back(std::move(name), d);
  }
}

Result<std::vector<std::string>> MetadataDb::TagsFor(const Digest& image) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s,
            Stmt::Prepare(db_.get(), "SELECT name FROM tags WHERE image = ?1 ORDER BY name"));
  s.Bind(1, image);
  std::vector<std::string> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    out.push_back(s.Text(0));
  }
}

// ---------------------------------------------------------------------------------------------
// Snapshots and cache records

namespace {

SnapshotRecord ReadSnapshotRow(const Stmt& s) {
  return SnapshotRecord{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4)};
}

constexpr const char* kSnapshotColumns = "SELECT id, parent, kind, key, created_unix FROM snapshots ";

}  // namespace

Status MetadataDb::PutSnapshot(const SnapshotRecord& r) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "INSERT OR REPLACE INTO snapshots(id, parent, kind, key, created_unix) "
                                               "VALUES(?1, ?2, ?3, ?4, ?5)"));
    return s.Bind(1, r.id).Bind(2, r.parent).Bind(3, r.kind).Bind(4, r.key).Bind(5, r.created_unix ? r.created_unix : NowUnix()).Run();
  }).Context("record snapshot " + r.id);
}

Result<std::optional<SnapshotRecord>> MetadataDb::GetSnapshot(const std::string& id) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), std::string(kSnapshotColumns) + "WHERE id = ?1"));
  s.Bind(1, id);
  XB_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(ReadSnapshotRow(s));
}

Result<std::optional<SnapshotRecord>> MetadataDb::FindSnapshot(const std::string& key) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), std::string(kSnapshotColumns) +
                                                 "WHERE key = ?1 AND kind = 'committed' ORDER BY created_unix LIMIT 1"));
  s.Bind(1, key);
  XB_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(ReadSnapshotRow(s));
}

Result<std::vector<SnapshotRecord>> MetadataDb::ListSnapshots() {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), std::string(kSnapshotColumns) + "ORDER BY id"));
  std::vector<SnapshotRecord> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    out.push_back(ReadSnapshotRow(s));
  }
}

Status MetadataDb::DeleteSnapshot(const std::string& id) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM snapshots WHERE id = ?1"));
    return s.Bind(1, id).Run();
  }).Context("delete snapshot " + id);
}

Result<bool> MetadataDb::SnapshotHasChildren(const std::string& id) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT 1 FROM snapshots WHERE parent = ?1 LIMIT 1"));
  return s.Bind(1, id).Step();
}

Status MetadataDb::PutCacheRecord(const std::string& key, const std::string& result) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "INSERT OR REPLACE INTO cache_records(key, result, created_unix, "
                                               "last_used_unix) VALUES(?1, ?2, ?3, ?3)"));
    return s.Bind(1, key).Bind(2, result).Bind(3, NowUnix()).Run();
  }).Context("record cache " + key);
}

Result<std::optional<std::string>> MetadataDb::GetCacheRecord(const std::string& key) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT result FROM cache_records WHERE key = ?1"));
  s.Bind(1, key);
  XB_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Status MetadataDb::DeleteCacheRecord(const std::string& key) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM cache_records WHERE key = ?1"));
    return s.Bind(1, key).Run();
  }).Context("delete cache record " + key);
}

Status MetadataDb::TouchCacheRecord(const std::string& key, int64_t now_unix) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "UPDATE cache_records SET last_used_unix = ?2 WHERE key = ?1"));
    return s.Bind(1, key).Bind(2, now_unix).Run();
  }).Context("touch cache record " + key);
}

Result<std::vector<CacheRecord>> MetadataDb::ListCacheRecords() {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT key, result, created_unix, last_used_unix FROM cache_records "
                                             "ORDER BY key"));
  std::vector<CacheRecord> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    out.push_back(CacheRecord{s.Text(0), s.Text(1), s.Int(2), s.Int(3)});
  }
}

// ---------------------------------------------------------------------------------------------
// Blob sources

Status MetadataDb::AddBlobSource(const Digest& blob, const std::string& registry, const std::string& repository) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "INSERT OR IGNORE INTO blob_sources(digest, registry, repository) "
                                               "VALUES(?1, ?2, ?3)"));
    return s.Bind(1, blob).Bind(2, registry).Bind(3, repository).Run();
  }).Context("record source of " + blob.String());
}

Result<std::vector<std::string>> MetadataDb::BlobSources(const Digest& blob, const std::string& registry) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT repository FROM blob_sources WHERE digest = ?1 AND "
                                             "registry = ?2 ORDER BY repository"));
  s.Bind(1, blob).Bind(2, registry);
  std::vector<std::string> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    out.push_back(s.Text(0));
  }
}

// ---------------------------------------------------------------------------------------------
// Blob variants

Status MetadataDb::PutBlobVariant(const BlobVariant& v) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "INSERT OR REPLACE INTO blob_variants(source, compression, digest, size) "
                                               "VALUES(?1, ?2, ?3, ?4)"));
    XB_TRY(s.Bind(1, v.source).Bind(2, v.compression).Bind(3, v.digest).Bind(4, v.size).Run());
    XB_ASSIGN(Stmt r, Stmt::Prepare(db_.get(), "INSERT OR IGNORE INTO blob_refs(parent, child) VALUES(?1, ?2)"));
    return r.Bind(1, v.source).Bind(2, v.digest).Run();
  }).Context("record " + v.compression + " variant of " + v.source.String());
}

Result<std::optional<BlobVariant>> MetadataDb::GetBlobVariant(const Digest& source, const std::string& compression) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT digest, size FROM blob_variants WHERE source = ?1 AND "
                                             "compression = ?2"));
  s.Bind(1, source).Bind(2, compression);
  XB_ASSIGN(bool row, s.Step());
  if (!row) return std::optional<BlobVariant>();
  BlobVariant v;
  v.source = source;
  v.compression = compression;
  XB_ASSIGN(v.digest, s.DigestCol(0, "blob_variants.digest of " + source.String()));
  v.size = s.Int(1);
  return std::optional<BlobVariant>(v);
}

Status MetadataDb::ForgetBlob(const Digest& blob) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt refs, Stmt::Prepare(db_.get(), "DELETE FROM blob_refs WHERE parent = ?1"));
    XB_TRY(refs.Bind(1, blob).Run());
    XB_ASSIGN(Stmt vars, Stmt::Prepare(db_.get(), "DELETE FROM blob_variants WHERE source = ?1 OR digest = ?1"));
    XB_TRY(vars.Bind(1, blob).Run());
    XB_ASSIGN(Stmt sources, Stmt::Prepare(db_.get(), "DELETE FROM blob_sources WHERE digest = ?1"));
    return sources.Bind(1, blob).Run();
  }).Context("forget blob " + blob.String());
}

// ---------------------------------------------------------------------------------------------
// Blob references

Status MetadataDb::AddBlobRefs(const Digest& parent, const std::vector<Digest>& children) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "INSERT OR IGNORE INTO blob_refs(parent, child) "
                                               "VALUES(?1, ?2)"));
    for (const Digest& child : children) {
      s.Reset();
      XB_TRY(s.Bind(1, parent).Bind(2, child).Run());
    }
    return core::Ok();
  }).Context("add blob refs of " + parent.String());
}

Status MetadataDb::DeleteBlobRefs(const Digest& parent) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM blob_refs WHERE parent = ?1"));
    return s.Bind(1, parent).Run();
  }).Context("delete blob refs of " + parent.String());
}

Result<std::vector<Digest>> MetadataDb::ChildrenOf(const Digest& parent) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT child FROM blob_refs WHERE parent = ?1 "
                                             "ORDER BY child"));
  s.Bind(1, parent);
  std::vector<Digest> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    XB_ASSIGN(Digest d, s.DigestCol(0, "blob_refs.child of " + parent.String()));
    out.push_back(d);
  }
}

Result<int64_t> MetadataDb::RefCount(const Digest& child) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT COUNT(*) FROM blob_refs WHERE child = ?1"));
  XB_ASSIGN(bool row, s.Bind(1, child).Step());
  return row ? s.Int(0) : int64_t{0};
}

// ---------------------------------------------------------------------------------------------
// Leases

Result<Lease> MetadataDb::CreateLease(std::chrono::seconds ttl) {
  if (ttl.count() < 0) return Error(Code::kInvalidArgument, "create lease: negative ttl");
  Lease lease;
  XB_ASSIGN_CTX(lease.id, core::RandomHex(16), "create lease");
  lease.created_unix = NowUnix();
  lease.expires_unix = ttl.count() == 0 ? 0 : lease.created_unix + ttl.count();
  Status st = Transaction([&]() -> Status {
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "INSERT INTO leases(id, created_unix, "
                                               "expires_unix) VALUES(?1, ?2, ?3)"));
    return s.Bind(1, lease.id).Bind(2, lease.created_unix).Bind(3, lease.expires_unix).Run();
  });
  if (!st.ok()) return std::move(st).error().Context("create lease");
  return lease;
}

Status MetadataDb::AddLeaseResource(const std::string& lease, const std::string& kind,
                                    const std::string& key) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt exists, Stmt::Prepare(db_.get(), "SELECT 1 FROM leases WHERE id = ?1"));
    XB_ASSIGN(bool found, exists.Bind(1, lease).Step());
    if (!found) return Error(Code::kNotFound, "lease not found");
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "INSERT OR IGNORE INTO lease_resources(lease, "
                                               "kind, key) VALUES(?1, ?2, ?3)"));
    return s.Bind(1, lease).Bind(2, kind).Bind(3, key).Run();
  }).Context("lease " + lease + ": add " + kind + " " + key);
}

Status MetadataDb::DeleteLease(const std::string& lease) {
  return Transaction([&]() -> Status {
    XB_ASSIGN(Stmt res, Stmt::Prepare(db_.get(), "DELETE FROM lease_resources WHERE lease = ?1"));
    XB_TRY(res.Bind(1, lease).Run());
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM leases WHERE id = ?1"));
    return s.Bind(1, lease).Run();
  }).Context("delete lease " + lease);
}

Result<int64_t> MetadataDb::ExpireLeases(int64_t now_unix) {
  int64_t count = 0;
  Status st = Transaction([&]() -> Status {
    XB_ASSIGN(Stmt res, Stmt::Prepare(db_.get(), R"sql(
      DELETE FROM lease_resources WHERE lease IN
        (SELECT id FROM leases WHERE expires_unix != 0 AND expires_unix <= ?1))sql"));
    XB_TRY(res.Bind(1, now_unix).Run());
    XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM leases WHERE expires_unix != 0 "
                                               "AND expires_unix <= ?1"));
    XB_TRY(s.Bind(1, now_unix).Run());
    count = sqlite3_changes(db_.get());
    return core::Ok();
  });
  if (!st.ok()) return std::move(st).error().Context("expire leases");
  return count;
}

Result<std::vector<std::string>> MetadataDb::LeasedKeys(const std::string& kind) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT DISTINCT key FROM lease_resources "
                                             "WHERE kind = ?1 ORDER BY key"));
  s.Bind(1, kind);
  std::vector<std::string> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    out.push_back(s.Text(0));
  }
}

Result<std::vector<std::pair<std::string, std::string>>> MetadataDb::LeaseResources(const std::string& kind) {
  std::lock_guard lock(mu_);
  XB_ASSIGN(Stmt s, Stmt::Prepare(db_.get(), "SELECT lease, key FROM lease_resources WHERE kind = ?1 "
                                             "ORDER BY lease, key"));
  s.Bind(1, kind);
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    XB_ASSIGN(bool row, s.Step());
    if (!row) return out;
    out.emplace_back(s.Text(0), s.Text(1));
  }
}

}  // namespace xbuild::cache
