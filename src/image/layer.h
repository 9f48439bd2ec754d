// Layers: a directory tree (or an overlayfs upper dir, or the difference between two trees) to a
// tar stream, gzip or zstd compressed; and the reverse, applying a layer onto a directory.
//
// Tar format written (the conventions of Docker and BuildKit, so that digests are comparable):
//  - POSIX pax (libarchive's pax_restricted: plain ustar headers unless a field needs a pax
//    record), closed by the two 512-byte zero blocks and no further padding.
//  - Entries in depth-first order, the children of every directory sorted by name (byte order),
//    parents before children. This is the order of Go's filepath.Walk; it differs from a plain
//    byte sort of the full paths where a name holds a byte below '/' ("a-b" comes after "a/x").
//  - Names relative, no leading "./" or "/"; directories end with "/". The root itself is not
//    an entry.
//  - uid/gid and the full mode (setuid/setgid/sticky) are kept; uname/gname are empty; mtime is
//    whole seconds (clamped to SOURCE_DATE_EPOCH when set); atime and ctime are not written.
//  - xattrs security.capability and user.* are kept as SCHILY.xattr.<name> records.
//  - A file with several links inside the tree: the first one in walk order holds the data, the
//    later ones are hardlink entries naming it. Symlinks are stored, never followed. Char/block
//    devices and fifos are kept; sockets are skipped.
//  - Whiteouts (AUFS style, as in the OCI image spec): `.wh.<name>` deletes <name> from lower
//    layers, `<dir>/.wh..wh..opq` hides all of <dir>'s lower content. They are empty regular files.
//  - gzip has a fixed header (mtime 0, no name), so the same tree gives the same bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/digest.h"
#include "core/result.h"

namespace xbuild::image {

enum class Compression { kNone, kGzip, kZstd };
std::string_view CompressionName(Compression c);  // "none", "gzip", "zstd"

struct LayerOptions {
  Compression compression = Compression::kGzip;
  // When set, every mtime later than this is clamped down to it (never raised).
  std::optional<int64_t> source_date_epoch;
  int level = -1;  // compression level, -1 = the codec's default (gzip 6, zstd 3)
};

struct LayerResult {
  core::Digest diff_id;  // sha256 of the uncompressed tar
  core::Digest digest;   // sha256 of the bytes written to out_fd
  int64_t size = 0;      // bytes written to out_fd
};

enum class DirKind {
  kPlain,  // every entry as it is
  // An overlayfs upper dir: a char device 0:0 becomes a `.wh.<name>` entry, a directory with
  // xattr trusted.overlay.opaque=y (or user.overlay.opaque=y) gets a `.wh..wh..opq` entry right
  // after it, and overlay's own xattrs (trusted.overlay.*, user.overlay.*) are not recorded.
  kOverlayUpper,
};

// Writes the tar of the tree under `dir` to out_fd, compressed as asked, hashing as it streams
// (no temporary file). The root directory's own metadata is not recorded.
core::Result<LayerResult> CreateLayer(const std::string& dir, DirKind kind, int out_fd,
                                      const LayerOptions& opts);

// The changes that turn the tree `lower` into the tree `upper`: entries added, or changed in
// type, mode, uid/gid, size, mtime, symlink target, device number or xattrs (the content is
// compared only when all of that is equal and both mtimes have no sub-second part, i.e. when the
// mtime cannot be trusted), and a `.wh.<name>` whiteout for each name gone (one per deleted
// subtree). The parent directories of every entry are written too (as containerd does), so the
// layer also applies onto an empty tree. Neither tree may be an overlay mount's upper dir.
core::Result<LayerResult> CreateDiffLayer(const std::string& lower, const std::string& upper,
                                          int out_fd, const LayerOptions& opts);

struct ApplyOptions {
  // Bound on the uncompressed tar stream and on the sum of the file sizes it declares
  // (decompression bombs, sparse-file bombs): over it -> kResourceExhausted.
  uint64_t max_uncompressed_bytes = 64ull << 30;
  uint64_t max_entries = 10'000'000;  // over it -> kResourceExhausted
  bool preserve_owner = true;         // lchown to the tar's uid/gid (only when running as root)
};

struct ApplyStats {
  uint64_t bytes = 0;     // size of the uncompressed tar stream
  uint64_t entries = 0;   // tar entries seen (whiteouts included)
  core::Digest diff_id;   // sha256 of the uncompressed tar stream
};

// Applies a layer (tar, tar+gzip or tar+zstd, told apart by magic bytes) read from fd, from its
// current offset (pipes work), onto target_dir, which must exist.
//
// Never writes outside target_dir: every entry's parent is resolved with core::MkdirAllInRoot
// (symlinks in the tree resolve as if target_dir were "/"), the entry is made with *at() calls
// on that parent's fd and the final component is never followed. A name or hardlink target
// climbing above the root ("../x", "a/../../x") is refused with kPermissionDenied naming the
// entry; an absolute name `/a` is taken as `a`. Whiteouts resolve the same way (a whiteout
// inside a symlinked directory acts on the symlink's in-root target) and never follow symlinks
// when removing. `.wh..wh..opq` removes the directory's content except what this same layer
// has already written. An existing entry is replaced unless both are directories (then the
// metadata is updated). xattrs that the filesystem or our privileges refuse (EPERM, ENOTSUP)
// are skipped, as Docker does; overlay's own xattrs (trusted.overlay.*, user.overlay.*) are
// never set. Directory mtimes are set once the whole layer is written. On error the target is
// left partly written.
core::Result<ApplyStats> ApplyLayer(int fd, const std::string& target_dir,
                                    const ApplyOptions& opts);

// Reads the magic bytes with pread at offset 0; the file offset is unchanged. Unknown magic
// (including a plain tar) is kNone. Fails on a non-seekable fd.
core::Result<Compression> DetectCompression(int fd);

// sha256 of the uncompressed stream of a possibly compressed layer blob, read from fd's current
// offset to its end.
core::Result<core::Digest> ComputeDiffId(int fd);

}  // namespace xbuild::image
