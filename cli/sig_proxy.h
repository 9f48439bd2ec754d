// Docker's --sig-proxy (on by default) for a container run in the foreground (`run` without
// -d, `start -a`): the signals a user sends the CLI go to the container's process, with
// `runc kill ID SIG`, instead of ending the CLI, which runs the container (and so would take it
// down). So Ctrl-C at a terminal that is not in raw mode (`run` without -t, or -t without -i)
// is the process's SIGINT, as `kill -TERM` of the CLI is its SIGTERM. With -it the terminal is
// raw and Ctrl-C reaches the process through its pty instead (exec/pty.h).
//
// A signal that comes before the process runs waits until it does; one that comes after it
// ended is dropped. runc runs in a process group of its own (exec/runc.h), so a terminal's
// signal reaches the container once, from here.
#pragma once

#include <signal.h>

#include <atomic>
#include <iterator>
#include <string>
#include <thread>

#include "core/fd.h"
#include "exec/container.h"

namespace xbuild::cli {

class SignalProxy {
 public:
  // Handles the proxied signals from now on (one SignalProxy at a time in a process).
  SignalProxy(exec::Containers& containers, std::string id);
  // Restores the signals' earlier handlers; what was not delivered yet is dropped.
  ~SignalProxy();
  SignalProxy(const SignalProxy&) = delete;
  SignalProxy& operator=(const SignalProxy&) = delete;

 private:
  static constexpr int kSignals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

  void Forward();
  // Sends what waits; false while the container is not running yet.
  bool Deliver(std::string& pending);

  exec::Containers& containers_;
  std::string id_;
  core::UniqueFd read_, write_;  // the handler writes each signal's number, Forward reads it
  struct sigaction old_[std::size(kSignals)] {};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace xbuild::cli
