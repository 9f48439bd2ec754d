// ContentStore: a content-addressed blob store on the local filesystem, shaped like containerd's.
//
// On-disk layout (under `dir`, normally <state root>/content):
//
//   blobs/sha256/<hex>          committed blobs, mode 0444, named by the sha256 of their bytes.
//                               A file appears here only by rename(2) from an ingest dir on the
//                               same filesystem, after its bytes were fsynced and its digest (and
//                               size, when known) checked; the directory is fsynced after.
//                               Names that are not 64 lowercase hex characters are ignored.
//   ingest/                     mode 0700; one directory per in-flight (or interrupted) writer.
//   ingest/<hex>/               <hex> = sha256 of the writer's ref string (any text, e.g.
//                               "pull-sha256:..."), so a ref never becomes a path by itself.
//     ref                       the ref string, verbatim (no newline).
//     startedat                 decimal unix seconds when the ingest was first started.
//     data                      the bytes written so far. A new writer for the same ref resumes
//                               at the end of this file after re-hashing it.
//     lock                      empty; a live writer holds flock(LOCK_EX) on it for its whole
//                               life. A lock that can be taken means the writer is gone.
//
// Concurrency: several threads and processes may share one store. Two writers of the same ref
// exclude each other through the lock file (the second gets kUnavailable, or blocks when asked to
// wait). Writers of different refs that produce the same digest both succeed; the first rename
// wins and the other's data is dropped, so exactly one blob file exists. The lock is an
// open-file-description lock (flock), so a forked child that inherits a writer's fds shares its
// lock: do not fork while holding a writer you mean to keep using in the parent.
//
// Crash safety: a killed writer leaves only its ingest dir; nothing in blobs/ is partial. The next
// writer of the same ref resumes from the bytes on disk (they are re-hashed, so the final digest
// check still covers them), or CleanIngests() removes the leftovers.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/digest.h"
#include "core/fd.h"
#include "core/result.h"

namespace xbuild::cache {

class ContentWriter;

class ContentStore {
 public:
  // dir = <state root>/content; creates blobs/sha256/ and ingest/ (0700) when missing.
  static core::Result<std::unique_ptr<ContentStore>> Open(const std::string& dir);

  ContentStore(const ContentStore&) = delete;
  ContentStore& operator=(const ContentStore&) = delete;

  std::string BlobPath(const core::Digest& d) const;  // <dir>/blobs/sha256/<hex>
  bool Has(const core::Digest& d) const;
  core::Result<int64_t> Size(const core::Digest& d) const;  // kNotFound if absent
  core::Result<core::UniqueFd> OpenBlob(const core::Digest& d) const;  // kNotFound if absent
  // Reads a whole blob, refusing blobs over max_size (kResourceExhausted), and re-verifies the
  // digest (kDataLoss on mismatch).
  core::Result<std::string> ReadBlob(const core::Digest& d, size_t max_size) const;

  // Writes bytes. When `expected` is set a mismatch is kDataLoss and nothing becomes visible.
  // An already present blob is not rewritten.
  core::Result<core::Digest> WriteBlob(std::string_view data,
                                       std::optional<core::Digest> expected = std::nullopt);
  // Streams from `fd` until EOF into the store. expected_size >= 0 is checked (kDataLoss).
  core::Result<core::Digest> WriteBlobFromFd(int fd,
                                             std::optional<core::Digest> expected = std::nullopt,
                                             int64_t expected_size = -1);

  // A resumable writer for `ref` (see the layout above). If an interrupted writer left data, the
  // new writer resumes at its end (Offset() > 0); data longer than expected_size is discarded.
  // A second live writer of the same ref: kUnavailable when !wait, else blocks until the first
  // one is gone (then resumes from whatever it left, or starts fresh if it committed/aborted).
  core::Result<std::unique_ptr<ContentWriter>> NewWriter(
      const std::string& ref, std::optional<core::Digest> expected = std::nullopt,
      int64_t expected_size = -1, bool wait = false);

  core::Status Delete(const core::Digest& d);  // kNotFound if absent
  // Every committed blob, sorted; junk file names and non-regular files are skipped.
  core::Result<std::vector<core::Digest>> List() const;
  // Removes ingest dirs whose writer is gone (lock free) and whose files were last modified more
  // than `age` ago. Files other than ref/data/lock/startedat are never removed (their dir stays).
  core::Status CleanIngests(std::chrono::seconds age);

  const std::string& dir() const { return dir_; }

 private:
  explicit ContentStore(std::string dir);
  std::string IngestDir(const std::string& ref) const;  // <dir>/ingest/<sha256(ref)>

  std::string dir_;
  std::string blobs_dir_;   // <dir>/blobs/sha256
  std::string ingest_dir_;  // <dir>/ingest
  std::atomic<uint64_t> temp_counter_{0};

  friend class ContentWriter;
};

// A writer into one ingest dir. RAII: destroying it without Commit() keeps the partial data for a
// later resume (it only releases the lock); Abort() deletes it. Not thread-safe.
class ContentWriter {
 public:
  ~ContentWriter();
  ContentWriter(const ContentWriter&) = delete;
  ContentWriter& operator=(const ContentWriter&) = delete;

  const std::string& ref() const { return ref_; }
  int64_t Offset() const { return offset_; }
  // Appends bytes. Writing past expected_size is kDataLoss (nothing is written).
  core::Status Write(const void* data, size_t len);
  core::Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  // fsyncs the data, checks the size (if expected_size >= 0) and digest (if expected), renames it
  // to blobs/sha256/<hex> and fsyncs that dir. If the blob already exists (another writer won)
  // this succeeds without a second copy. On mismatch: kDataLoss, the ingest is removed and no
  // blob is visible. Either way the writer is finished afterwards.
  core::Result<core::Digest> Commit();
  // Removes the ingest dir. The writer is finished afterwards.
  core::Status Abort();

 private:
  friend class ContentStore;
  ContentWriter(ContentStore* store, std::string ref, std::string dir,
                std::optional<core::Digest> expected, int64_t expected_size);
  core::Status Resume();        // hashes existing data, or starts a fresh ingest
  core::Status RemoveIngest();  // removes the ingest files while holding the lock
  core::Status CheckLive() const;

  ContentStore* store_;
  std::string ref_;
  std::string dir_;  // the ingest dir
  std::optional<core::Digest> expected_;
  int64_t expected_size_;
  core::UniqueFd lock_fd_;
  core::UniqueFd data_fd_;
  core::Sha256 hash_;
  int64_t offset_ = 0;
  bool finished_ = false;
};

}  // namespace xbuild::cache
