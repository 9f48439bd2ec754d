// ADD <http(s) URL>: BuildKit's http source. The frontend gives it the URL (the identifier),
// `http.filename` (the name the file gets; the URL path's last component) and, for --checksum,
// `http.checksum` ("sha256:<hex>").
//
//  - Downloads go through a registry::Transport (libcurl: redirects followed, at most 10 and
//    only to http/https, retries on 5xx), streamed into a private directory under the state
//    root (a ContextDir, so a killed build's download is removed like an extracted context),
//    hashed as they arrive and bounded at kMaxHttpSource bytes. A non-2xx answer fails naming
//    the URL and the status.
//  - Content key: the --checksum when given (nothing is fetched until the step runs, and a
//    cached step fetches nothing); otherwise the sha256 of the content, so a file that changed
//    reruns the step and an unchanged one is CACHED though it was fetched again. The download
//    is kept for Snapshot, so a step that runs does not fetch twice.
//  - http/<sha256(url)>.json remembers each URL's last ETag and digest
//    ({"url": ..., "etag": ..., "digest": "sha256:..."}): the next key asks with If-None-Match,
//    and a 304 gives the remembered digest without a body. A Snapshot after that (the step was
//    not cached) downloads again and fails if the content no longer has that digest.
//  - The snapshot holds one file: named by `http.filename` (else Content-Disposition's
//    filename, else the URL's), mode 0600, mtime = Last-Modified when the server sends one.
//    A --checksum that does not match fails: "<url>: checksum mismatch: expected sha256:…,
//    got sha256:…".
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/digest.h"
#include "core/result.h"
#include "registry/http.h"
#include "solver/definition.h"
#include "solver/ops/fetched.h"

namespace xbuild::solver::ops {

inline constexpr int64_t kMaxHttpSource = int64_t{8} << 30;

bool IsHttpSource(const SourceOp& src);

class HttpSource {
 public:
  HttpSource(registry::Transport& http, std::string state_root)
      : http_(http), state_root_(std::move(state_root)) {}

  core::Result<std::string> Key(const core::Digest& vertex, const SourceOp& src,
                                const std::atomic<bool>* cancel);
  // Writes the source's file into `dir`, an empty snapshot.
  core::Status Snapshot(const core::Digest& vertex, const SourceOp& src, const std::string& dir,
                        const std::atomic<bool>* cancel);

  struct Download;  // a fetched file (http_source.cc)

 private:
  struct Keyed {
    std::string key;
    std::shared_ptr<Download> file;  // null: keyed by --checksum or by a 304
  };
  core::Result<std::shared_ptr<Download>> Fetch(const std::string& url, const std::string& etag,
                                                const std::atomic<bool>* cancel);

  registry::Transport& http_;
  std::string state_root_;
  Fetched<Keyed> keyed_;
};

}  // namespace xbuild::solver::ops
