#include "cli/sig_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace xbuild::cli {

namespace {

constexpr int kPollMs = 100;

// The write end of the live proxy's pipe (-1: none); a handler has no other way to reach it.
std::atomic<int> g_signal_pipe{-1};

void OnSignal(int sig) {
  int saved = errno;
  int fd = g_signal_pipe.load();
  unsigned char b = static_cast<unsigned char>(sig);
  if (fd >= 0) (void)!::write(fd, &b, 1);
  errno = saved;
}

}  // namespace

SignalProxy::SignalProxy(exec::Containers& containers, std::string id)
    : containers_(containers), id_(std::move(id)) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return;  // no proxy: the signals keep their handlers
  read_.Reset(p[0]);
  write_.Reset(p[1]);
  g_signal_pipe.store(write_.get());
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  thread_ = std::thread([this] { Forward(); });
}

SignalProxy::~SignalProxy() {
  if (!thread_.joinable()) return;
  for (size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
  g_signal_pipe.store(-1);
  stop_.store(true);
  // Wakes the thread now rather than at its next poll timeout (every foreground run ends here:
  // up to kPollMs on each). A 0 byte is no signal: Forward drops it.
  unsigned char wake = 0;
  (void)!::write(write_.get(), &wake, 1);
  thread_.join();
}

void SignalProxy::Forward() {
  std::string pending;  // signal numbers, in the order they came
  while (!stop_.load()) {
    struct pollfd p = {read_.get(), POLLIN, 0};
    (void)::poll(&p, 1, kPollMs);
    char buf[64];
    ssize_t n;
    while ((n = ::read(read_.get(), buf, sizeof buf)) > 0) {
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != 0) pending.push_back(buf[i]);
      }
    }
    if (!pending.empty()) (void)Deliver(pending);
  }
}

bool SignalProxy::Deliver(std::string& pending) {
  auto r = containers_.Get(id_);
  if (r.ok() && r->status == exec::kStatusCreated) return false;  // it starts: they wait
  if (r.ok() && r->status == exec::kStatusRunning) {
    for (char sig : pending) {
      // A process that has just ended cannot take it: nothing to do, as in Docker.
      (void)containers_.Signal(*r, std::to_string(static_cast<unsigned char>(sig)));
    }
  }
  pending.clear();
  return true;
}

}  // namespace xbuild::cli
