#include "image/compression.h"

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

}  // namespace xbuild::image
