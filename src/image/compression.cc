#include "image/compression.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "core/fs.h"

namespace xbuild::image {

using core::Code;
using core::Error;

core::Result<DecompressResult> Decompress(int in_fd, int out_fd, uint64_t max_bytes) {
  std::unique_ptr<struct archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_fd(a.get(), in_fd, 1 << 16) != ARCHIVE_OK) {
    return Error(Code::kInvalidArgument, std::string("decompress: ") + archive_error_string(a.get()));
  }
  struct archive_entry* entry = nullptr;
  int r = archive_read_next_header(a.get(), &entry);
  DecompressResult res;
  core::Sha256 h;
  if (r == ARCHIVE_EOF) {  // empty input
    res.digest = h.Finish();
    return res;
  }
  if (r != ARCHIVE_OK) {
    return Error(Code::kInvalidArgument, std::string("decompress: ") + archive_error_string(a.get()));
  }
  char buf[1 << 16];
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buf, sizeof buf);
    if (n < 0) return Error(Code::kDataLoss, std::string("decompress: ") + archive_error_string(a.get()));
    if (n == 0) break;
    res.bytes += static_cast<uint64_t>(n);
    if (res.bytes > max_bytes) {
      return Error(Code::kResourceExhausted,
                   "decompress: output exceeds the limit of " + std::to_string(max_bytes) + " bytes");
    }
    h.Update(buf, static_cast<size_t>(n));
    if (out_fd >= 0) XB_TRY_CTX(core::WriteAll(out_fd, std::string_view(buf, static_cast<size_t>(n))), "decompress");
  }
  res.digest = h.Finish();
  return res;
}

}  // namespace xbuild::image
