#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

#include "cli/cli.h"

namespace xbuild::cli {

using Kind = registry::ProgressEvent::Kind;
using Clock = std::chrono::steady_clock;

namespace {

std::string Rate(int64_t bytes, Clock::duration d) {
  double secs = std::chrono::duration<double>(d).count();
  if (secs <= 0.001) secs = 0.001;
  return HumanSize(static_cast<double>(bytes) / secs) + "/s";
}

std::string Seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

TransferProgress::TransferProgress(Mode mode, bool quiet)
    : mode_(mode), quiet_(quiet), tty_(!quiet && ::isatty(STDOUT_FILENO) == 1) {}

TransferProgress::Blob& TransferProgress::Get(const registry::ProgressEvent& ev) {
  std::string id = ev.blob.digest.Short();
  auto it = index_.find(id);
  if (it != index_.end()) return blobs_[it->second];
  index_[id] = blobs_.size();
  Blob b;
  b.id = id;
  b.total = ev.blob.size;
  b.status = mode_ == Mode::kPull ? "Waiting" : "Preparing";
  blobs_.push_back(b);
  return blobs_.back();
}

std::string TransferProgress::Line(const Blob& b) const {
  std::string s = b.id + ": " + b.status;
  if (b.status == "Downloading" || b.status == "Pushing") {
    s += "  " + HumanSize(static_cast<double>(b.current)) + "/" + HumanSize(static_cast<double>(b.total));
    if (b.started) s += "  " + Rate(b.current - b.start_current, Clock::now() - b.start);
  }
  return s;
}

void TransferProgress::Handle(const registry::ProgressEvent& ev) {
  if (quiet_ || ev.is_config || ev.kind == Kind::kPulling || ev.kind == Kind::kMirror) return;
  std::lock_guard<std::mutex> l(mu_);
  Blob& b = Get(ev);
  switch (ev.kind) {
    case Kind::kProgress:
      if (!b.started) {
        b.started = true;
        b.start = Clock::now();
        b.start_current = ev.current;
      }
      b.current = ev.current;
      b.status = mode_ == Mode::kPull ? "Downloading" : "Pushing";
      Redraw(false);
      return;
    case Kind::kExists:
      b.status = mode_ == Mode::kPull ? "Already exists" : "Layer already exists";
      break;
    case Kind::kMounted:
      b.status = "Mounted from " + ev.from;
      break;
    case Kind::kDone: {
      b.status = mode_ == Mode::kPull ? "Pull complete" : "Pushed";
      if (b.started) {
        auto d = Clock::now() - b.start;
        b.status += " " + HumanSize(static_cast<double>(b.total)) + " in " + Seconds(d) + " (" +
                    Rate(b.total - b.start_current, d) + ")";
      }
      break;
    }
    default:
      return;
  }
  if (tty_) {
    Redraw(true);
  } else {
    std::printf("%s\n", Line(b).c_str());
    std::fflush(stdout);
  }
}

void TransferProgress::Redraw(bool force) {
  if (!tty_) return;
  auto now = Clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::string out;
  if (drawn_ > 0) out += "\x1b[" + std::to_string(drawn_) + "A";
  for (const auto& b : blobs_) out += "\r" + Line(b) + "\x1b[K\n";
  drawn_ = blobs_.size();
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

void TransferProgress::Finish() {
  std::lock_guard<std::mutex> l(mu_);
  Redraw(true);
}

}  // namespace xbuild::cli
