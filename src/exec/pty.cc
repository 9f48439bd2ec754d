#include "exec/pty.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "core/fs.h"
#include "core/subprocess.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using core::UniqueFd;

namespace {

constexpr int kPollMs = 100;
constexpr unsigned short kDefaultRows = 24, kDefaultCols = 80;

std::atomic<bool> g_winch{false};
void OnWinch(int) { g_winch.store(true); }

// SIGWINCH sets g_winch while the object lives; the previous handler comes back after.
class WinchHandler {
 public:
  WinchHandler() {
    struct sigaction sa {};
    sa.sa_handler = OnWinch;
    sigemptyset(&sa.sa_mask);
    installed_ = ::sigaction(SIGWINCH, &sa, &old_) == 0;
  }
  ~WinchHandler() {
    if (installed_) ::sigaction(SIGWINCH, &old_, nullptr);
  }
  WinchHandler(const WinchHandler&) = delete;
  WinchHandler& operator=(const WinchHandler&) = delete;

 private:
  struct sigaction old_ {};
  bool installed_ = false;
};

struct winsize SizeOf(int from) {
  struct winsize ws {};
  if (from < 0 || ::ioctl(from, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) {
    ws.ws_row = kDefaultRows;
    ws.ws_col = kDefaultCols;
  }
  return ws;
}

void CopyWindowSize(int from, int master) {
  struct winsize ws = SizeOf(from);
  ::ioctl(master, TIOCSWINSZ, &ws);
}

int SizeSource(int stdin_fd) {
  if (stdin_fd >= 0 && ::isatty(stdin_fd)) return stdin_fd;
  return ::isatty(STDOUT_FILENO) ? STDOUT_FILENO : -1;
}

// Reads what the master has now (a bounded amount, so a chatty process cannot starve the
// loop); false once it reports EOF or EIO (every slave closed).
bool DrainMaster(int master, const PtyOutputFn& output) {
  constexpr int kMaxReads = 16;
  char buf[65536];
  for (int i = 0; i < kMaxReads; ++i) {
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n > 0) {
      if (output) output(1, std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
  return true;
}

// The drainer's whole life (DiscardTerminalOutput), after fork: async-signal-safe calls only.
[[noreturn]] void DrainAndExit(int master, int devnull) {
  constexpr int kMasterFd = 3;
  ::setsid();  // no terminal of ours, and no signal sent to our process group
  if (::fork() != 0) ::_exit(0);  // the grandchild is reparented to init, nobody's child to reap
  ::dup2(devnull, 0);
  ::dup2(devnull, 1);
  ::dup2(devnull, 2);
  if (master != kMasterFd && ::dup2(master, kMasterFd) < 0) ::_exit(1);
  ::syscall(SYS_close_range, kMasterFd + 1, ~0U, 0);
  ::fcntl(kMasterFd, F_SETFL, 0);  // blocking reads
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(kMasterFd, buf, sizeof buf);
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    ::_exit(0);  // EOF or EIO: every slave is closed
  }
}

}  // namespace

Result<ConsoleSocket> ConsoleSocket::Listen(const std::string& dir, const std::string& name) {
  XB_ASSIGN(UniqueFd dir_fd, core::Open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return core::SysError("console socket");
  UniqueFd sock(s);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string path = "/proc/self/fd/" + std::to_string(dir_fd.get()) + "/" + name;
  if (path.size() >= sizeof addr.sun_path) return Error(Code::kInvalidArgument, "console socket name " + name + " is too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlinkat(dir_fd.get(), name.c_str(), 0);
  if (::bind(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    return core::SysError("bind console socket " + core::JoinPath(dir, name));
  }
  if (::listen(sock.get(), 1) != 0) return core::SysError("listen on console socket");
  return ConsoleSocket(std::move(dir_fd), std::move(sock), name);
}

ConsoleSocket::~ConsoleSocket() {
  if (dir_.valid()) ::unlinkat(dir_.get(), name_.c_str(), 0);
}

Result<UniqueFd> ConsoleSocket::ReceiveMaster() {
  // The runtime connected and sent before it exited: both are queued, nothing blocks.
  struct pollfd p = {sock_.get(), POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return Error(Code::kInternal, "the runtime did not send the container's terminal");
  int c = ::accept4(sock_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return core::SysError("accept on the console socket");
  UniqueFd conn(c);
  char name[4096];
  struct iovec iov = {name, sizeof name};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return core::SysError("receive the container's terminal");
  struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int))) {
    return Error(Code::kInternal, "the runtime sent no terminal over the console socket");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  UniqueFd master(fd);
  if (::fcntl(master.get(), F_SETFL, O_NONBLOCK) != 0) return core::SysError("fcntl O_NONBLOCK");
  return master;
}

RawTerminal::RawTerminal(int fd) {
  if (fd < 0 || !::isatty(fd) || ::tcgetattr(fd, &saved_mode_) != 0) return;
  struct termios raw = saved_mode_;
  ::cfmakeraw(&raw);
  if (::tcsetattr(fd, TCSADRAIN, &raw) != 0) return;
  fd_ = fd;
  saved_ = true;
}

RawTerminal::~RawTerminal() {
  if (saved_) ::tcsetattr(fd_, TCSADRAIN, &saved_mode_);
}

TerminalSize CurrentTerminalSize(int stdin_fd) {
  struct winsize ws = SizeOf(SizeSource(stdin_fd));
  return TerminalSize{ws.ws_row, ws.ws_col};
}

Status BecomeSubreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return core::SysError("prctl PR_SET_CHILD_SUBREAPER");
  return core::Ok();
}

Result<int> PumpTerminal(const TerminalSession& s) {
  int size_from = SizeSource(s.stdin_fd);
  WinchHandler winch;
  RawTerminal raw(s.stdin_fd);
  CopyWindowSize(size_from, s.master);
  bool stdin_open = s.stdin_fd >= 0;
  bool master_open = true;
  bool killed = false;
  std::string pending;  // stdin bytes the master has not taken yet
  core::UniqueFd exited = core::ExitFd(s.pid);  // wakes the poll at the exit (core/subprocess.h)
  int status = 0;
  for (;;) {
    struct pollfd fds[3];
    nfds_t n = 0;
    if (exited.valid()) fds[n++] = {exited.get(), POLLIN, 0};
    if (master_open) fds[n++] = {s.master, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0};
    int in_index = -1;
    if (stdin_open && pending.empty()) {
      in_index = static_cast<int>(n);
      fds[n++] = {s.stdin_fd, POLLIN, 0};
    }
    if (::poll(fds, n, kPollMs) < 0 && errno != EINTR) return core::SysError("poll");
    if (g_winch.exchange(false)) CopyWindowSize(size_from, s.master);
    if (master_open) master_open = DrainMaster(s.master, s.output);
    if (in_index >= 0 && (fds[in_index].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[4096];
      ssize_t r = ::read(s.stdin_fd, buf, sizeof buf);
      if (r > 0) {
        pending.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;  // EOF: a terminal process keeps running, as in Docker
      }
    }
    if (!pending.empty() && master_open) {
      ssize_t w = ::write(s.master, pending.data(), pending.size());
      if (w > 0) pending.erase(0, static_cast<size_t>(w));
      if (w < 0 && errno != EAGAIN && errno != EINTR) pending.clear();
    }
    if (s.cancel && s.cancel->load() && !killed && s.kill) {
      killed = true;
      s.kill();
    }
    pid_t r = ::waitpid(s.pid, &status, WNOHANG);
    if (r == s.pid) break;
    if (r < 0 && errno == ECHILD) {
      return Error(Code::kInternal, "lost the container process " + std::to_string(s.pid) + " (not a child of xbuild)");
    }
  }
  // It has exited; what it wrote before is still in the pty.
  if (master_open) DrainMaster(s.master, s.output);
  return status;
}

Status DiscardTerminalOutput(UniqueFd master) {
  XB_ASSIGN(UniqueFd devnull, core::Open("/dev/null", O_RDWR | O_CLOEXEC));
  pid_t pid = ::fork();
  if (pid < 0) return core::SysError("fork the terminal's reader");
  if (pid == 0) DrainAndExit(master.get(), devnull.get());
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error(Code::kInternal, "could not start the reader of a detached exec's terminal");
  }
  return core::Ok();
}

}  // namespace xbuild::exec
