#include "cache/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <vector>

#include "core/fs.h"

namespace xbuild::cache {

using core::Code;
using core::Digest;
using core::Error;
using core::Result;
using core::Status;
using core::SysError;
using core::UniqueFd;

namespace {

constexpr const char* kRefFile = "ref";
constexpr const char* kDataFile = "data";
constexpr const char* kLockFile = "lock";
constexpr const char* kStartedAtFile = "startedat";
constexpr size_t kCopyChunk = 1 << 20;
constexpr int kLockAttempts = 1000;

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Takes the ingest dir's lock, creating dir and lock file as needed. The lock file may be
// unlinked by whoever held it before us (commit, abort, clean); we then hold a lock on a dead
// inode, so the path is re-checked after locking and the whole thing retried.
Result<UniqueFd> LockIngest(const std::string& dir, bool create, bool wait) {
  const std::string lock_path = core::JoinPath(dir, kLockFile);
  for (int attempt = 0; attempt < kLockAttempts; ++attempt) {
    if (create) XB_TRY(core::MkdirAll(dir, 0700));
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      if (errno == ENOENT) {
        if (!create) return Error(Code::kNotFound, "ingest " + dir + " is gone");
        continue;  // the dir was removed under us: make it again
      }
      return SysError("open " + lock_path);
    }
    UniqueFd lock(fd);
    int rc;
    do {
      rc = ::flock(lock.get(), LOCK_EX | (wait ? 0 : LOCK_NB));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      if (errno == EWOULDBLOCK) {
        return Error(Code::kUnavailable, "ingest " + dir + " is locked by another writer");
      }
      return SysError("flock " + lock_path);
    }
    struct stat held, now;
    if (::fstat(lock.get(), &held) != 0) return SysError("stat " + lock_path);
    if (::lstat(lock_path.c_str(), &now) != 0) {
      if (errno == ENOENT) {
        if (!create) return Error(Code::kNotFound, "ingest " + dir + " is gone");
        continue;
      }
      return SysError("stat " + lock_path);
    }
    if (SameFile(held, now)) return lock;
  }
  return Error(Code::kUnavailable, "lock " + lock_path + ": gave up after repeated races");
}

// Removes the known ingest files, then the dir. Call with the lock held. The lock file goes
// last, so that anyone who opened it before sees a dead inode once we release it. rmdir may fail
// with ENOTEMPTY when a newcomer already made a fresh lock file there; the dir is then theirs.
Status RemoveIngestFiles(const std::string& dir) {
  for (const char* name : {kDataFile, kRefFile, kStartedAtFile, kLockFile}) {
    std::string p = core::JoinPath(dir, name);
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return SysError("remove " + p);
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST) {
    return SysError("remove " + dir);
  }
  return core::Ok();
}

// Newest mtime among the ingest's content files; the dir's own mtime when there are none.
Result<time_t> IngestMtime(const std::string& dir) {
  time_t newest = 0;
  bool any = false;
  for (const char* name : {kDataFile, kRefFile, kStartedAtFile}) {
    struct stat st;
    std::string p = core::JoinPath(dir, name);
    if (::lstat(p.c_str(), &st) == 0) {
      newest = std::max(newest, st.st_mtim.tv_sec);
      any = true;
    } else if (errno != ENOENT) {
      return SysError("stat " + p);
    }
  }
  if (!any) {
    struct stat st;
    if (::lstat(dir.c_str(), &st) != 0) return SysError("stat " + dir);
    newest = st.st_mtim.tv_sec;
  }
  return newest;
}

// rename(2) that never replaces an existing target: EEXIST means someone else won. Falls back to
// a check-then-rename where the filesystem lacks RENAME_NOREPLACE; a lost race there replaces the
// blob with identical (digest-checked) bytes, which is harmless.
Result<bool> RenameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EEXIST) return false;
  if (errno != EINVAL && errno != ENOSYS) return SysError("rename " + from + " to " + to);
  if (core::Exists(to)) return false;
  if (::rename(from.c_str(), to.c_str()) != 0) return SysError("rename " + from + " to " + to);
  return true;
}

template <typename Fn>
Status ForEachEntry(const std::string& dir, Fn&& fn) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return SysError("open dir " + dir);
  core::ScopeGuard close_dir([d] { ::closedir(d); });
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") XB_TRY(fn(name, e->d_type));
    errno = 0;
  }
  if (errno != 0) return SysError("read dir " + dir);
  return core::Ok();
}

bool IsType(const std::string& path, unsigned char d_type, mode_t want) {
  if (d_type != DT_UNKNOWN) {
    return (want == S_IFREG && d_type == DT_REG) || (want == S_IFDIR && d_type == DT_DIR);
  }
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && (st.st_mode & S_IFMT) == want;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ContentStore

ContentStore::ContentStore(std::string dir)
    : dir_(std::move(dir)),
      blobs_dir_(core::JoinPath(dir_, "blobs/sha256")),
      ingest_dir_(core::JoinPath(dir_, "ingest")) {}

Result<std::unique_ptr<ContentStore>> ContentStore::Open(const std::string& dir) {
  if (dir.empty()) return Error(Code::kInvalidArgument, "content store: empty directory");
  std::unique_ptr<ContentStore> store(new ContentStore(dir));
  XB_TRY_CTX(core::MkdirAll(store->blobs_dir_, 0755), "content store");
  XB_TRY_CTX(core::MkdirAll(store->ingest_dir_, 0700), "content store");
  if (::chmod(store->ingest_dir_.c_str(), 0700) != 0) {
    return SysError("content store: chmod " + store->ingest_dir_);
  }
  return store;
}

std::string ContentStore::BlobPath(const Digest& d) const {
  return core::JoinPath(blobs_dir_, d.Hex());
}

std::string ContentStore::IngestDir(const std::string& ref) const {
  return core::JoinPath(ingest_dir_, Digest::Of(ref).Hex());
}

bool ContentStore::Has(const Digest& d) const {
  struct stat st;
  return ::lstat(BlobPath(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<int64_t> ContentStore::Size(const Digest& d) const {
  struct stat st;
  std::string p = BlobPath(d);
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return Error(Code::kNotFound, "blob " + d.String() + " not found");
    return SysError("stat " + p);
  }
  if (!S_ISREG(st.st_mode)) return Error(Code::kDataLoss, "blob " + p + " is not a regular file");
  return static_cast<int64_t>(st.st_size);
}

Result<UniqueFd> ContentStore::OpenBlob(const Digest& d) const {
  std::string p = BlobPath(d);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Error(Code::kNotFound, "blob " + d.String() + " not found");
    return SysError("open " + p);
  }
  return UniqueFd(fd);
}

Result<std::string> ContentStore::ReadBlob(const Digest& d, size_t max_size) const {
  XB_ASSIGN(UniqueFd fd, OpenBlob(d));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return SysError("stat blob " + d.String());
  if (!S_ISREG(st.st_mode)) return Error(Code::kDataLoss, "blob " + d.String() + " is not a file");
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return Error(Code::kResourceExhausted, "blob " + d.String() + " is " +
                                               std::to_string(st.st_size) + " bytes, over the " +
                                               std::to_string(max_size) + " byte limit");
  }
  XB_ASSIGN_CTX(std::string data, core::ReadFd(fd.get(), max_size), "read blob " + d.String());
  if (Digest::Of(data) != d) {
    return Error(Code::kDataLoss, "blob " + d.String() + " is corrupt: its content hashes to " +
                                      Digest::Of(data).String());
  }
  return data;
}

Result<Digest> ContentStore::WriteBlob(std::string_view data, std::optional<Digest> expected) {
  Digest actual = Digest::Of(data);
  if (expected && *expected != actual) {
    return Error(Code::kDataLoss, "write blob: content hashes to " + actual.String() +
                                      ", expected " + expected->String());
  }
  if (Has(actual)) return actual;
  std::string ref = "tmp-" + std::to_string(::getpid()) + "-" + std::to_string(temp_counter_++) +
                    "-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  XB_ASSIGN(auto writer, NewWriter(ref, actual, static_cast<int64_t>(data.size())));
  core::ScopeGuard abort([&] { (void)writer->Abort(); });
  XB_TRY_CTX(writer->Write(data), "write blob " + actual.String());
  XB_ASSIGN_CTX(Digest d, writer->Commit(), "write blob " + actual.String());
  abort.Dismiss();
  return d;
}

Result<Digest> ContentStore::WriteBlobFromFd(int fd, std::optional<Digest> expected,
                                             int64_t expected_size) {
  std::string ref = "tmp-" + std::to_string(::getpid()) + "-" + std::to_string(temp_counter_++) +
                    "-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  XB_ASSIGN(auto writer, NewWriter(ref, expected, expected_size));
  core::ScopeGuard abort([&] { (void)writer->Abort(); });
  std::vector<char> buf(kCopyChunk);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("write blob: read source");
    }
    if (n == 0) break;
    XB_TRY_CTX(writer->Write(buf.data(), static_cast<size_t>(n)), "write blob");
  }
  XB_ASSIGN_CTX(Digest d, writer->Commit(), "write blob");
  abort.Dismiss();
  return d;
}

Result<std::unique_ptr<ContentWriter>> ContentStore::NewWriter(const std::string& ref,
                                                               std::optional<Digest> expected,
                                                               int64_t expected_size, bool wait) {
  std::string dir = IngestDir(ref);
  XB_ASSIGN_CTX(UniqueFd lock, LockIngest(dir, /*create=*/true, wait), "new writer " + ref);
  std::unique_ptr<ContentWriter> w(new ContentWriter(this, ref, dir, expected, expected_size));
  w->lock_fd_ = std::move(lock);
  XB_TRY_CTX(w->Resume(), "new writer " + ref);
  return w;
}

Status ContentStore::Delete(const Digest& d) {
  std::string p = BlobPath(d);
  if (::unlink(p.c_str()) != 0) {
    if (errno == ENOENT) return Error(Code::kNotFound, "blob " + d.String() + " not found");
    return SysError("delete " + p);
  }
  return core::Ok();
}

Result<std::vector<Digest>> ContentStore::List() const {
  std::vector<Digest> out;
  XB_TRY(ForEachEntry(blobs_dir_, [&](std::string_view name, unsigned char type) -> Status {
    auto d = Digest::FromHex(name);
    if (d.ok() && IsType(core::JoinPath(blobs_dir_, name), type, S_IFREG)) out.push_back(*d);
    return core::Ok();
  }));
  std::sort(out.begin(), out.end());
  return out;
}

Status ContentStore::CleanIngests(std::chrono::seconds age) {
  const time_t cutoff = ::time(nullptr) - static_cast<time_t>(age.count());
  std::vector<std::string> candidates;
  XB_TRY(ForEachEntry(ingest_dir_, [&](std::string_view name, unsigned char type) -> Status {
    std::string p = core::JoinPath(ingest_dir_, name);
    if (Digest::FromHex(name).ok() && IsType(p, type, S_IFDIR)) candidates.push_back(p);
    return core::Ok();
  }));
  for (const std::string& dir : candidates) {
    // Check the age before locking, so a fresh ingest's lock is never touched by a cleaner.
    auto mtime = IngestMtime(dir);
    if (!mtime.ok() || *mtime > cutoff) continue;
    auto lock = LockIngest(dir, /*create=*/false, /*wait=*/false);
    if (!lock.ok()) {
      if (lock.error().code() == Code::kUnavailable || lock.error().code() == Code::kNotFound) {
        continue;  // a live writer, or already gone
      }
      return std::move(lock).error().Context("clean ingests");
    }
    mtime = IngestMtime(dir);  // a writer may have resumed and finished in between
    if (!mtime.ok() || *mtime > cutoff) continue;
    XB_TRY_CTX(RemoveIngestFiles(dir), "clean ingests");
  }
  return core::Ok();
}

// ---------------------------------------------------------------------------------------------
// ContentWriter

ContentWriter::ContentWriter(ContentStore* store, std::string ref, std::string dir,
                             std::optional<Digest> expected, int64_t expected_size)
    : store_(store),
      ref_(std::move(ref)),
      dir_(std::move(dir)),
      expected_(expected),
      expected_size_(expected_size) {}

// Closing the fds releases the lock; the data stays for a later writer of the same ref.
ContentWriter::~ContentWriter() = default;

Status ContentWriter::Resume() {
  const std::string data_path = core::JoinPath(dir_, kDataFile);
  const std::string ref_path = core::JoinPath(dir_, kRefFile);
  int fd = ::open(data_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    data_fd_.Reset(fd);
    auto stored_ref = core::ReadFile(ref_path, ref_.size() + 1);
    struct stat st;
    if (::fstat(data_fd_.get(), &st) != 0) return SysError("stat " + data_path);
    bool usable = stored_ref.ok() && *stored_ref == ref_ && S_ISREG(st.st_mode) &&
                  (expected_size_ < 0 || st.st_size <= expected_size_);
    if (usable) {
      std::vector<char> buf(kCopyChunk);
      int64_t off = 0;
      while (off < st.st_size) {
        ssize_t n = ::pread(data_fd_.get(), buf.data(), buf.size(), off);
        if (n < 0) {
          if (errno == EINTR) continue;
          return SysError("read " + data_path);
        }
        if (n == 0) break;
        hash_.Update(buf.data(), static_cast<size_t>(n));
        off += n;
      }
      offset_ = off;
      return core::Ok();
    }
    // Unusable leftovers (foreign ref, or longer than expected): start over.
    data_fd_.Reset();
    if (::unlink(data_path.c_str()) != 0 && errno != ENOENT) return SysError("remove " + data_path);
  } else if (errno != ENOENT) {
    return SysError("open " + data_path);
  }
  // Fresh ingest: ref and startedat first, so that any data file always has its ref beside it.
  XB_TRY(core::WriteFileAtomic(ref_path, ref_, 0600));
  XB_TRY(core::WriteFileAtomic(core::JoinPath(dir_, kStartedAtFile),
                               std::to_string(::time(nullptr)), 0600));
  fd = ::open(data_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return SysError("create " + data_path);
  data_fd_.Reset(fd);
  offset_ = 0;
  return core::Ok();
}

Status ContentWriter::CheckLive() const {
  if (finished_) {
    return Error(Code::kFailedPrecondition, "writer " + ref_ + " already committed or aborted");
  }
  return core::Ok();
}

Status ContentWriter::Write(const void* data, size_t len) {
  XB_TRY(CheckLive());
  if (expected_size_ >= 0 && static_cast<uint64_t>(offset_) + len >
                                 static_cast<uint64_t>(expected_size_)) {
    return Error(Code::kDataLoss, "writer " + ref_ + ": " + std::to_string(offset_ + len) +
                                      " bytes is more than the expected " +
                                      std::to_string(expected_size_));
  }
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::pwrite(data_fd_.get(), p, len, offset_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("writer " + ref_ + ": write " + core::JoinPath(dir_, kDataFile));
    }
    hash_.Update(p, static_cast<size_t>(n));  // hash exactly what reached the file
    p += n;
    len -= static_cast<size_t>(n);
    offset_ += n;
  }
  return core::Ok();
}

Status ContentWriter::RemoveIngest() {
  Status st = RemoveIngestFiles(dir_);
  data_fd_.Reset();
  lock_fd_.Reset();  // released last: the files are gone before anyone else can lock
  finished_ = true;
  return st;
}

Result<Digest> ContentWriter::Commit() {
  XB_TRY(CheckLive());
  const std::string ctx = "commit " + ref_;
  if (::fsync(data_fd_.get()) != 0) return SysError(ctx + ": fsync");
  if (expected_size_ >= 0 && offset_ != expected_size_) {
    (void)RemoveIngest();
    return Error(Code::kDataLoss, ctx + ": size " + std::to_string(offset_) + ", expected " +
                                      std::to_string(expected_size_));
  }
  Digest actual = hash_.Finish();
  if (expected_ && *expected_ != actual) {
    (void)RemoveIngest();
    return Error(Code::kDataLoss, ctx + ": content hashes to " + actual.String() + ", expected " +
                                      expected_->String());
  }
  if (::fchmod(data_fd_.get(), 0444) != 0) return SysError(ctx + ": chmod");
  XB_ASSIGN_CTX(bool renamed,
                RenameNoReplace(core::JoinPath(dir_, kDataFile), store_->BlobPath(actual)), ctx);
  if (renamed) XB_TRY_CTX(core::FsyncPath(store_->blobs_dir_), ctx);
  XB_TRY_CTX(RemoveIngest(), ctx);
  return actual;
}

Status ContentWriter::Abort() {
  if (finished_) return core::Ok();
  return std::move(RemoveIngest()).Context("abort " + ref_);
}

}  // namespace xbuild::cache
