#include "image/compression.h"

#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "image/layer_stream.h"

namespace xbuild::image {

core::Result<DecompressResult> Decompress(int in_fd, int out_fd, uint64_t max_bytes) {
  XB_ASSIGN(auto src, internal::DecompressSource::Open(in_fd, max_bytes));
  std::vector<char> buf(1 << 18);
  for (;;) {
    XB_ASSIGN_CTX(size_t n, src->Read(buf.data(), buf.size()), "decompress");
    if (n == 0) break;
    XB_TRY_CTX(core::WriteAll(out_fd, std::string_view(buf.data(), n)), "decompress");
  }
  DecompressResult res;
  res.bytes = src->bytes();
  res.digest = src->Finish();
  return res;
}

namespace {

constexpr size_t kGzipMember = 16 << 20;

// Reads up to cap bytes (fewer only at the end of the input).
core::Result<size_t> ReadFull(int fd, char* buf, size_t cap) {
  size_t got = 0;
  while (got < cap) {
    ssize_t n = ::read(fd, buf + got, cap - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::SysError("read blob");
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

// One complete gzip member (header with mtime 0 and no name, as CompressSink writes).
core::Status DeflateMember(const std::string& in, int level, std::string& out) {
  z_stream z{};
  if (deflateInit2(&z, level < 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return core::Error(core::Code::kInternal, "deflateInit2 failed");
  }
  out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 64);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return core::Error(core::Code::kInternal, "deflate failed");
  return core::Ok();
}

core::Result<LayerResult> ParallelGzip(int in_fd, int out_fd, const CompressOptions& opts) {
  if (opts.level > 9) return core::Error(core::Code::kInvalidArgument, "gzip level must be 0..9");
  size_t lanes = static_cast<size_t>(std::max(opts.threads, 1));
  std::vector<std::string> in(lanes), out(lanes);
  std::vector<core::Status> status(lanes);
  core::Sha256 in_hash, out_hash;
  LayerResult r;
  bool first = true;
  for (bool more = true; more;) {
    size_t used = 0;
    for (; used < lanes && more; ++used) {
      in[used].resize(kGzipMember);
      XB_ASSIGN(size_t n, ReadFull(in_fd, in[used].data(), kGzipMember));
      in[used].resize(n);
      more = n == kGzipMember;
      if (n == 0 && !first) break;  // an empty input still gets one (empty) member
      first = false;
      in_hash.Update(in[used]);
    }
    std::vector<std::thread> workers;
    for (size_t i = 1; i < used; ++i) {
      workers.emplace_back([&, i] { status[i] = DeflateMember(in[i], opts.level, out[i]); });
    }
    if (used > 0) status[0] = DeflateMember(in[0], opts.level, out[0]);
    for (auto& w : workers) w.join();
    for (size_t i = 0; i < used; ++i) {
      XB_TRY(status[i]);
      out_hash.Update(out[i]);
      r.size += static_cast<int64_t>(out[i].size());
      XB_TRY_CTX(core::WriteAll(out_fd, out[i]), "write compressed blob");
    }
  }
  r.diff_id = in_hash.Finish();
  r.digest = out_hash.Finish();
  return r;
}

}  // namespace

core::Result<LayerResult> Compress(int in_fd, int out_fd, const CompressOptions& opts) {
  if (opts.compression == Compression::kGzip) return ParallelGzip(in_fd, out_fd, opts);
  XB_ASSIGN(auto sink, internal::CompressSink::New(opts.compression, opts.level, out_fd, opts.threads));
  std::vector<char> buf(1 << 20);
  for (;;) {
    XB_ASSIGN(size_t n, ReadFull(in_fd, buf.data(), buf.size()));
    if (n == 0) break;
    XB_TRY(sink->Write(buf.data(), n));
  }
  return sink->Finish();
}

}  // namespace xbuild::image
