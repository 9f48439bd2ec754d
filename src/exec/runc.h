// The OCI runtime invoker: `runc` (or a runtime with its command line) against a private
// state directory (`runc --root DIR`), so xbuild's containers never mix with Docker's.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::exec {

// Receives a container's output as it comes: stream 1 is stdout, 2 is stderr.
using OutputFn = std::function<void(int stream, std::string_view chunk)>;

class Runc {
 public:
  // binary: a path or a name looked up in PATH.
  // runtime_args: given before runc's own (a configured runtime's "runtimeArgs").
  Runc(std::string binary, std::string state_dir, std::vector<std::string> runtime_args = {})
      : binary_(std::move(binary)), state_dir_(std::move(state_dir)), runtime_args_(std::move(runtime_args)) {}

  const std::string& state_dir() const { return state_dir_; }

  // `runc run` in the foreground, stdin from /dev/null, stdout and stderr streamed to `output`
  // (which may be empty). Returns the process's exit code, 128+N when signal N ended it. A
  // runtime failure (bad config, command not found) is an error with runc's message, taken
  // from its log (bundle/runc.log). When *cancel turns true the container is killed and the
  // result is kCancelled.
  // With `on_start`, runc writes the container's host pid to bundle/pid and on_start gets it
  // once it is there (a container that ends within one poll may never be seen started).
  // `stdin_fd` >= 0 (-i): the process reads it instead of /dev/null.
  core::Result<int> Run(const std::string& bundle, const std::string& id, const OutputFn& output,
                        const std::atomic<bool>* cancel,
                        const std::function<void(int pid)>& on_start = {}, int stdin_fd = -1) const;

  // -t (pty.h): Run of a bundle whose process has a terminal. `runc run -d --console-socket`
  // from inside the bundle, the pty master received, then attached to it until the process
  // exits (stdin_fd, when >= 0, is copied to it); output is stream 1.
  core::Result<int> RunTerminal(const std::string& bundle, const std::string& id, int stdin_fd,
                                const OutputFn& output, const std::atomic<bool>* cancel,
                                const std::function<void(int pid)>& on_start) const;

  // `runc exec` of one more process in running container `id`: args, "K=V" env, cwd and
  // "uid:gid" with extra gids. In the foreground its output is streamed and its exit code
  // returned, as Run's; `detached` returns 0 once runc has started it, its output dropped
  // (with tty: read from the pty and dropped by a process of its own, pty.h).
  // `log` is runc's log file (the error of a failed start is read from it).
  struct ExecProcess {
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd;
    std::string user;  // "uid:gid"
    std::vector<uint32_t> additional_gids;
    bool detached = false;
    // -i / -t (pty.h): stdin_fd >= 0 is the process's stdin (copied to its pty with tty).
    int stdin_fd = -1;
    bool tty = false;
    // With tty: the container's config.json, whose process (capabilities, rlimits...) the
    // exec's --process file is made from.
    std::string bundle_config;
  };
  core::Result<int> Exec(const std::string& id, const ExecProcess& process, const std::string& log,
                         const OutputFn& output) const;

  core::Status Kill(const std::string& id, std::string_view signal = "KILL") const;
  // `runc delete --force`: kills the container if it still runs and removes its state and
  // cgroup. A container the runtime does not know is fine.
  core::Status Delete(const std::string& id) const;

 private:
  std::vector<std::string> Command(std::vector<std::string> args) const;
  // Exec with p.tty (pty.h); `args` are the exec flags so far.
  core::Result<int> ExecTerminal(const std::string& id, const ExecProcess& p, const std::string& log,
                                 const OutputFn& output) const;

  std::string binary_;
  std::string state_dir_;
  std::vector<std::string> runtime_args_;
};

}  // namespace xbuild::exec
