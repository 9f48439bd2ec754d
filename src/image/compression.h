// Stream decompression of layer blobs (gzip, zstd or none, from the magic bytes), over the
// same codec code that applies layers (layer_stream.h).
#pragma once

#include <cstdint>

#include "core/digest.h"
#include "core/result.h"
#include "image/layer.h"

namespace xbuild::image {

struct DecompressResult {
  uint64_t bytes = 0;   // uncompressed bytes written
  core::Digest digest;  // sha256 of the uncompressed stream (a layer's diff_id)
};

// Reads a (possibly compressed) stream from in_fd and writes it uncompressed to out_fd.
// Refuses to produce more than max_bytes (kResourceExhausted). For the digest alone, use
// ComputeDiffId (layer.h).
core::Result<DecompressResult> Decompress(int in_fd, int out_fd, uint64_t max_bytes = UINT64_MAX);

struct CompressOptions {
  Compression compression = Compression::kGzip;
  int level = -1;   // the codec's default
  int threads = 1;  // cores to use
};

// Compresses in_fd (from its offset to its end; pipes work) into out_fd: digest and size of
// what was written, diff_id of what was read.
//
// gzip is written as a series of gzip members of 16 MiB of input each (RFC 1952 allows any
// number; zlib, Go's compress/gzip and therefore containerd, Docker and skopeo read them as one
// stream), so `threads` members are deflated at once; the member boundaries do not depend on
// `threads`, so neither do the bytes. zstd uses its own worker threads.
core::Result<LayerResult> Compress(int in_fd, int out_fd, const CompressOptions& opts);

}  // namespace xbuild::image
