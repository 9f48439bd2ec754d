// Internal to the layer code: streaming (de)compression that hashes both sides as it goes.
#pragma once

#include <locale.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/result.h"
#include "image/layer.h"

namespace xbuild::image::internal {

// Compression picked from the first bytes of a stream (gzip 1f 8b, zstd 28 b5 2f fd).
Compression DetectMagic(const uint8_t* p, size_t n);

// Names in the directory dirfd (not "." or ".."), unsorted; `path` is for errors.
core::Result<std::vector<std::string>> ListDir(int dirfd, const std::string& path);

// Makes the calling thread's locale C.UTF-8 while it lives (uselocale is per thread), so that
// libarchive takes names as UTF-8 and writes/reads pax `path` records unchanged, as Go's
// archive/tar does, instead of failing to convert them from/to the "C" locale's ASCII.
class Utf8Locale {
 public:
  Utf8Locale();
  ~Utf8Locale();
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;

 private:
  locale_t old_ = nullptr;
};

// Uncompressed tar bytes in; compressed bytes out to a fd. diff_id hashes what goes in, digest
// what comes out. No temporary files.
class CompressSink {
 public:
  // threads: zstd's worker threads (its frames are the same for any count >= 1; gzip ignores it).
  static core::Result<std::unique_ptr<CompressSink>> New(Compression c, int level, int out_fd, int threads = 1);
  ~CompressSink();
  CompressSink(const CompressSink&) = delete;
  CompressSink& operator=(const CompressSink&) = delete;

  core::Status Write(const void* data, size_t len);
  core::Result<LayerResult> Finish();  // flushes the codec; call once

 private:
  CompressSink(Compression c, int out_fd);
  core::Status Emit(const uint8_t* data, size_t len);  // to out_fd, hashed
  core::Status Pump(int flush);                        // runs the codec over its input

  Compression c_;
  int out_fd_;
  z_stream z_{};
  bool z_init_ = false;
  ZSTD_CCtx* zc_ = nullptr;
  std::vector<uint8_t> out_;
  core::Sha256 in_hash_;
  core::Sha256 out_hash_;
  int64_t size_ = 0;
};

// Reads a possibly compressed stream from a fd (from its current offset; pipes work) and hands
// out the uncompressed bytes, hashing them and stopping with kResourceExhausted past max_bytes.
class DecompressSource {
 public:
  static core::Result<std::unique_ptr<DecompressSource>> Open(int fd, uint64_t max_bytes);
  ~DecompressSource();
  DecompressSource(const DecompressSource&) = delete;
  DecompressSource& operator=(const DecompressSource&) = delete;

  // Up to cap uncompressed bytes; 0 at the end of the stream.
  core::Result<size_t> Read(void* buf, size_t cap);
  // Reads (and hashes) whatever is left of the stream.
  core::Status Drain();
  Compression compression() const { return c_; }
  uint64_t bytes() const { return bytes_; }
  core::Digest Finish() { return hash_.Finish(); }

 private:
  DecompressSource(int fd, uint64_t max_bytes) : fd_(fd), max_(max_bytes) {}
  core::Result<bool> Refill();  // false at EOF
  core::Result<size_t> ReadRaw(void* buf, size_t cap);

  int fd_;
  uint64_t max_;
  Compression c_ = Compression::kNone;
  std::vector<uint8_t> in_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool eof_ = false;
  bool frame_done_ = true;  // codec at a stream/frame boundary (a clean place to end)
  z_stream z_{};
  bool z_init_ = false;
  ZSTD_DCtx* zd_ = nullptr;
  core::Sha256 hash_;
  uint64_t bytes_ = 0;
};

}  // namespace xbuild::image::internal
