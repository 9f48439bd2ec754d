// Terminals for `run -t`, `exec -t` and `start -a` of a -t container.
//
// A process with OCI process.terminal=true gets a pty made by the runtime, which hands the
// master over a unix socket (`runc --console-socket`, SCM_RIGHTS). runc accepts a console
// socket only when it detaches (`run -d`, `exec -d`), so the process is then no child of
// runc's caller: the caller becomes a child subreaper (PR_SET_CHILD_SUBREAPER) before it
// starts runc, the process is reparented to it when runc exits, and it waits for it itself.
//
// While attached (PumpTerminal): the pty's output goes to the OutputFn as stream 1 (stdout:
// a pty has one stream); our stdin, when given, is copied to the master, and when it is a
// terminal it is in raw mode (so Ctrl-C reaches the process as its SIGINT through the pty) and
// restored on every way out; the window size is copied at the start and on each SIGWINCH.
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <atomic>
#include <functional>
#include <string>

#include "core/fd.h"
#include "core/result.h"

namespace xbuild::exec {

using PtyOutputFn = std::function<void(int stream, std::string_view chunk)>;

// A listening unix socket in `dir` for the runtime's --console-socket. It is bound through
// /proc/self/fd/<dir fd>/NAME, so a long state root still fits sun_path; the runtime is given
// NAME, relative to its working directory `dir`. Removed with the object.
class ConsoleSocket {
 public:
  static core::Result<ConsoleSocket> Listen(const std::string& dir, const std::string& name);
  ConsoleSocket(ConsoleSocket&&) noexcept = default;
  ConsoleSocket& operator=(ConsoleSocket&&) = delete;
  ~ConsoleSocket();

  const std::string& name() const { return name_; }
  // Takes the connection the runtime made (it has exited by then) and the master it sent.
  core::Result<core::UniqueFd> ReceiveMaster();

 private:
  ConsoleSocket(core::UniqueFd dir, core::UniqueFd sock, std::string name)
      : dir_(std::move(dir)), sock_(std::move(sock)), name_(std::move(name)) {}
  core::UniqueFd dir_, sock_;
  std::string name_;
};

// Raw mode on a terminal for the object's life (nothing when `fd` is not a terminal).
class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_ = -1;
  bool saved_ = false;
  struct termios saved_mode_ {};
};

// The window size a terminal process starts with (OCI process.consoleSize, so it is right from
// its first instruction): stdin_fd's when a terminal, else our stdout's, else 24x80.
struct TerminalSize {
  unsigned short rows = 24, cols = 80;
};
TerminalSize CurrentTerminalSize(int stdin_fd);

// Makes this process a child subreaper, so a detached runtime's process is reparented to it.
core::Status BecomeSubreaper();

struct TerminalSession {
  int master = -1;
  pid_t pid = 0;      // the process, a child of ours once the runtime exited
  int stdin_fd = -1;  // copied to the master; -1: nothing
  PtyOutputFn output;
  const std::atomic<bool>* cancel = nullptr;
  std::function<void()> kill;  // called once when *cancel turns true
};

// Copies between the terminal and the pty until the process exits; returns its wait status.
// The window size comes from stdin_fd, else our stdout, when a terminal (80x24 otherwise).
core::Result<int> PumpTerminal(const TerminalSession& s);

// A detached -t exec (`exec -dt`): as in Docker, its output goes nowhere, but somebody has to
// hold the master and read it. Closing it would hang the terminal up (SIGHUP, EIO on every
// write) and leaving it unread would block the process once the pty's buffer is full. A
// process of its own (forked twice, in a session of its own, stdio on /dev/null, no other fd
// of ours) reads and drops the output until every slave is closed, then exits.
core::Status DiscardTerminalOutput(core::UniqueFd master);

}  // namespace xbuild::exec
