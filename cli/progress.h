// Per-blob progress for pull and push, shaped like Docker's output.
//
// On a terminal: one line per blob, redrawn at most 10 times a second:
//   "a3ed95caeb02: Downloading  12.3MB/45.6MB  38.2MB/s".
// Otherwise (logs, CI): one line per blob when it finishes, with its size and average rate:
//   "a3ed95caeb02: Pull complete 45.6MB in 1.2s (38.0MB/s)".
// Events may arrive from several transfer threads at once.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "registry/client.h"

namespace xbuild::cli {

class TransferProgress {
 public:
  enum class Mode { kPull, kPush };
  TransferProgress(Mode mode, bool quiet);
  void Handle(const registry::ProgressEvent& ev);
  // Final redraw on a terminal.
  void Finish();

 private:
  struct Blob {
    std::string id;  // short digest
    std::string status;
    int64_t total = 0;
    int64_t current = 0;
    int64_t start_current = 0;  // bytes present when the transfer started (resumed)
    std::chrono::steady_clock::time_point start;
    bool started = false;
  };
  Blob& Get(const registry::ProgressEvent& ev);  // mu_ held
  std::string Line(const Blob& b) const;
  void Redraw(bool force);  // mu_ held

  Mode mode_;
  bool quiet_;
  bool tty_;
  std::mutex mu_;
  std::vector<Blob> blobs_;                // guarded by mu_, in first-seen order
  std::map<std::string, size_t> index_;    // guarded by mu_
  size_t drawn_ = 0;                       // lines on screen from the last redraw
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace xbuild::cli
