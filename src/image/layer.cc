#include "image/layer.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "core/fs.h"
#include "image/layer_stream.h"

namespace xbuild::image {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "unknown";
}

Result<Compression> DetectCompression(int fd) {
  uint8_t magic[4];
  ssize_t n;
  do {
    n = ::pread(fd, magic, sizeof magic, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return core::SysError("detect compression: pread");
  return internal::DetectMagic(magic, static_cast<size_t>(n));
}

Result<core::Digest> ComputeDiffId(int fd) {
  XB_ASSIGN(auto src, internal::DecompressSource::Open(fd, UINT64_MAX));
  XB_TRY_CTX(src->Drain(), "compute diff_id");
  return src->Finish();
}

namespace internal {

namespace {
constexpr size_t kBufSize = 256 * 1024;
}  // namespace

Compression DetectMagic(const uint8_t* p, size_t n) {
  if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) return Compression::kGzip;
  if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

Result<std::vector<std::string>> ListDir(int dirfd, const std::string& path) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::SysError("open " + path);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int err = errno;
    ::close(fd);
    return core::SysError("opendir " + path, err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* de = ::readdir(d)) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return core::SysError("readdir " + path, err);
  return names;
}

// ---- Utf8Locale ----

Utf8Locale::Utf8Locale() {
  // Created once and never freed: immutable, shared by all threads.
  static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  if (utf8) old_ = uselocale(utf8);
}

Utf8Locale::~Utf8Locale() {
  if (old_) uselocale(old_);
}

// ---- CompressSink ----

CompressSink::CompressSink(Compression c, int out_fd) : c_(c), out_fd_(out_fd), out_(kBufSize) {}

CompressSink::~CompressSink() {
  if (z_init_) deflateEnd(&z_);
  if (zc_) ZSTD_freeCCtx(zc_);
}

Result<std::unique_ptr<CompressSink>> CompressSink::New(Compression c, int level, int out_fd, int threads) {
  std::unique_ptr<CompressSink> s(new CompressSink(c, out_fd));
  if (c == Compression::kGzip) {
    int lvl = level < 0 ? Z_DEFAULT_COMPRESSION : level;
    if (lvl > 9) return Error(Code::kInvalidArgument, "gzip level must be 0..9");
    // windowBits 15 + 16: a gzip wrapper whose header has mtime 0 and no file name.
    if (deflateInit2(&s->z_, lvl, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return Error(Code::kInternal, "deflateInit2 failed");
    }
    s->z_init_ = true;
  } else if (c == Compression::kZstd) {
    s->zc_ = ZSTD_createCCtx();
    if (!s->zc_) return Error(Code::kInternal, "ZSTD_createCCtx failed");
    int lvl = level < 0 ? ZSTD_CLEVEL_DEFAULT : level;
    if (lvl > ZSTD_maxCLevel()) return Error(Code::kInvalidArgument, "zstd level too high");
    if (ZSTD_isError(ZSTD_CCtx_setParameter(s->zc_, ZSTD_c_compressionLevel, lvl)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(s->zc_, ZSTD_c_checksumFlag, 1))) {
      return Error(Code::kInternal, "zstd: set parameters failed");
    }
    // Ignored when libzstd was built without threads: the frame is then made in this thread.
    (void)ZSTD_CCtx_setParameter(s->zc_, ZSTD_c_nbWorkers, std::max(threads, 1));
  }
  return s;
}

Status CompressSink::Emit(const uint8_t* data, size_t len) {
  if (len == 0) return core::Ok();
  out_hash_.Update(data, len);
  size_ += static_cast<int64_t>(len);
  return core::WriteAll(out_fd_, std::string_view(reinterpret_cast<const char*>(data), len))
      .Context("write layer");
}

Status CompressSink::Pump(int flush) {
  if (c_ == Compression::kGzip) {
    for (;;) {
      z_.next_out = out_.data();
      z_.avail_out = static_cast<uInt>(out_.size());
      int rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) return Error(Code::kInternal, "deflate failed");
      XB_TRY(Emit(out_.data(), out_.size() - z_.avail_out));
      if (flush == Z_FINISH ? rc == Z_STREAM_END : (z_.avail_in == 0 && z_.avail_out != 0)) break;
    }
  }
  return core::Ok();
}

Status CompressSink::Write(const void* data, size_t len) {
  in_hash_.Update(data, len);
  switch (c_) {
    case Compression::kNone:
      return Emit(static_cast<const uint8_t*>(data), len);
    case Compression::kGzip:
      z_.next_in = static_cast<Bytef*>(const_cast<void*>(data));
      z_.avail_in = static_cast<uInt>(len);
      return Pump(Z_NO_FLUSH);
    case Compression::kZstd: {
      ZSTD_inBuffer in{data, len, 0};
      while (in.pos < in.size) {
        ZSTD_outBuffer out{out_.data(), out_.size(), 0};
        size_t rc = ZSTD_compressStream2(zc_, &out, &in, ZSTD_e_continue);
        if (ZSTD_isError(rc)) return Error(Code::kInternal, std::string("zstd: ") + ZSTD_getErrorName(rc));
        XB_TRY(Emit(out_.data(), out.pos));
      }
      return core::Ok();
    }
  }
  return core::Ok();
}

Result<LayerResult> CompressSink::Finish() {
  if (c_ == Compression::kGzip) {
    z_.next_in = nullptr;
    z_.avail_in = 0;
    XB_TRY(Pump(Z_FINISH));
  } else if (c_ == Compression::kZstd) {
    ZSTD_inBuffer in{nullptr, 0, 0};
    size_t remaining;
    do {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      remaining = ZSTD_compressStream2(zc_, &out, &in, ZSTD_e_end);
      if (ZSTD_isError(remaining)) {
        return Error(Code::kInternal, std::string("zstd: ") + ZSTD_getErrorName(remaining));
      }
      XB_TRY(Emit(out_.data(), out.pos));
    } while (remaining != 0);
  }
  LayerResult r;
  r.diff_id = in_hash_.Finish();
  r.digest = out_hash_.Finish();
  r.size = size_;
  return r;
}

// ---- DecompressSource ----

DecompressSource::~DecompressSource() {
  if (z_init_) inflateEnd(&z_);
  if (zd_) ZSTD_freeDCtx(zd_);
}

Result<std::unique_ptr<DecompressSource>> DecompressSource::Open(int fd, uint64_t max_bytes) {
  std::unique_ptr<DecompressSource> s(new DecompressSource(fd, max_bytes));
  s->in_.resize(kBufSize);
  // Read at least the magic (or up to EOF) so the codec can be picked without seeking.
  while (s->in_len_ < 4 && !s->eof_) {
    XB_TRY(s->Refill());
  }
  s->c_ = DetectMagic(s->in_.data(), s->in_len_);
  if (s->c_ == Compression::kGzip) {
    // 15 + 32: zlib or gzip header, detected.
    if (inflateInit2(&s->z_, 15 + 32) != Z_OK) return Error(Code::kInternal, "inflateInit2 failed");
    s->z_init_ = true;
    s->frame_done_ = false;
  } else if (s->c_ == Compression::kZstd) {
    s->zd_ = ZSTD_createDCtx();
    if (!s->zd_) return Error(Code::kInternal, "ZSTD_createDCtx failed");
    s->frame_done_ = false;
  }
  return s;
}

// Appends to the input buffer (compacting it first); false at EOF.
Result<bool> DecompressSource::Refill() {
  if (eof_) return false;
  if (in_pos_ > 0) {
    std::copy(in_.begin() + static_cast<ptrdiff_t>(in_pos_),
              in_.begin() + static_cast<ptrdiff_t>(in_len_), in_.begin());
    in_len_ -= in_pos_;
    in_pos_ = 0;
  }
  if (in_len_ == in_.size()) return true;
  for (;;) {
    ssize_t n = ::read(fd_, in_.data() + in_len_, in_.size() - in_len_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::SysError("read layer");
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    in_len_ += static_cast<size_t>(n);
    return true;
  }
}

Result<size_t> DecompressSource::ReadRaw(void* buf, size_t cap) {
  for (;;) {
    size_t avail = in_len_ - in_pos_;
    if (avail == 0 && !eof_) {
      XB_TRY(Refill());
      avail = in_len_ - in_pos_;
    }
    switch (c_) {
      case Compression::kNone: {
        if (avail == 0) return size_t{0};
        size_t n = std::min(avail, cap);
        std::copy_n(in_.data() + in_pos_, n, static_cast<uint8_t*>(buf));
        in_pos_ += n;
        return n;
      }
      case Compression::kGzip: {
        if (avail == 0) {
          if (!frame_done_) return Error(Code::kDataLoss, "truncated tar: gzip stream ends early");
          return size_t{0};
        }
        if (frame_done_) {  // another gzip member follows
          if (inflateReset(&z_) != Z_OK) return Error(Code::kInternal, "inflateReset failed");
          frame_done_ = false;
        }
        z_.next_in = in_.data() + in_pos_;
        z_.avail_in = static_cast<uInt>(avail);
        z_.next_out = static_cast<Bytef*>(buf);
        z_.avail_out = static_cast<uInt>(cap);
        int rc = inflate(&z_, Z_NO_FLUSH);
        in_pos_ = in_len_ - z_.avail_in;
        size_t produced = cap - z_.avail_out;
        if (rc == Z_STREAM_END) {
          frame_done_ = true;
        } else if (rc == Z_BUF_ERROR) {
          if (produced == 0 && eof_) return Error(Code::kDataLoss, "truncated tar: gzip stream ends early");
        } else if (rc != Z_OK) {
          return Error(Code::kDataLoss,
                       std::string("bad gzip data: ") + (z_.msg ? z_.msg : "inflate failed"));
        }
        if (produced > 0) return produced;
        if (!frame_done_ && z_.avail_in == 0 && !eof_) XB_TRY(Refill());
        continue;
      }
      case Compression::kZstd: {
        if (avail == 0 && eof_) {
          if (!frame_done_) return Error(Code::kDataLoss, "truncated tar: zstd stream ends early");
          return size_t{0};
        }
        ZSTD_inBuffer in{in_.data() + in_pos_, avail, 0};
        ZSTD_outBuffer out{buf, cap, 0};
        size_t rc = ZSTD_decompressStream(zd_, &out, &in);
        in_pos_ += in.pos;
        if (ZSTD_isError(rc)) {
          return Error(Code::kDataLoss, std::string("bad zstd data: ") + ZSTD_getErrorName(rc));
        }
        frame_done_ = rc == 0;
        if (out.pos > 0) return out.pos;
        continue;
      }
    }
    return size_t{0};
  }
}

Result<size_t> DecompressSource::Read(void* buf, size_t cap) {
  XB_ASSIGN(size_t n, ReadRaw(buf, cap));
  bytes_ += n;
  if (bytes_ > max_) {
    return Error(Code::kResourceExhausted, "uncompressed layer larger than the limit of " +
                                               std::to_string(max_) + " bytes");
  }
  hash_.Update(buf, n);
  return n;
}

Status DecompressSource::Drain() {
  std::vector<uint8_t> buf(kBufSize);
  for (;;) {
    XB_ASSIGN(size_t n, Read(buf.data(), buf.size()));
    if (n == 0) return core::Ok();
  }
}

}  // namespace internal
}  // namespace xbuild::image
