// Stream decompression of layer blobs (gzip, zstd or none, from the magic bytes), over the
// same codec code that applies layers (layer_stream.h).
#pragma once

#include <cstdint>

#include "core/digest.h"
#include "core/result.h"

namespace xbuild::image {

struct DecompressResult {
  uint64_t bytes = 0;   // uncompressed bytes written
  core::Digest digest;  // sha256 of the uncompressed stream (a layer's diff_id)
};

// Reads a (possibly compressed) stream from in_fd and writes it uncompressed to out_fd.
// Refuses to produce more than max_bytes (kResourceExhausted). For the digest alone, use
// ComputeDiffId (layer.h).
core::Result<DecompressResult> Decompress(int in_fd, int out_fd, uint64_t max_bytes = UINT64_MAX);

}  // namespace xbuild::image
