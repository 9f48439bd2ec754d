// PtyChild: xbuild run on a pty of the test's, as a terminal emulator runs a program (the pty
// is its controlling terminal; the test holds the master, types into it and reads the screen).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace xbuild::testing {

// xbuild on a pty of ours: we hold the master, it has the slave as its controlling terminal.
class PtyChild {
 public:
  PtyChild(const std::vector<std::string>& args, unsigned short rows, unsigned short cols) {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(master_, 0);
    EXPECT_EQ(::grantpt(master_), 0);
    EXPECT_EQ(::unlockpt(master_), 0);
    std::string slave = ::ptsname(master_);
    struct winsize ws {};
    ws.ws_row = rows;
    ws.ws_col = cols;
    ::ioctl(master_, TIOCSWINSZ, &ws);
    std::vector<std::string> argv = {XBUILD_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setsid();
      int fd = ::open(slave.c_str(), O_RDWR);
      if (fd < 0) ::_exit(120);
      ::ioctl(fd, TIOCSCTTY, 0);
      ::dup2(fd, 0);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(XBUILD_BINARY, cargv.data());
      ::_exit(127);
    }
  }
  ~PtyChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }

  // Reads until `needle` shows up (true) or 60 s pass / the pty closes (false).
  bool ReadUntil(const std::string& needle) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (out_.find(needle) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline || !ReadSome(200)) return out_.find(needle) != std::string::npos;
    }
    return true;
  }
  void Write(const std::string& s) { ASSERT_EQ(::write(master_, s.data(), s.size()), static_cast<ssize_t>(s.size())); }
  void Resize(unsigned short rows, unsigned short cols) {
    struct winsize ws {};
    ws.ws_row = rows;
    ws.ws_col = cols;
    ASSERT_EQ(::ioctl(master_, TIOCSWINSZ, &ws), 0);  // SIGWINCH to xbuild
  }
  // Reads everything until xbuild exits; its exit code.
  int Wait() {
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!ReadSome(100)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        while (ReadSome(50)) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    ADD_FAILURE() << "xbuild did not exit; output so far:\n" << out_;
    return -1;
  }
  bool Canonical() {
    struct termios t {};
    EXPECT_EQ(::tcgetattr(master_, &t), 0);
    return (t.c_lflag & ICANON) && (t.c_lflag & ECHO) && (t.c_lflag & ISIG);
  }
  const std::string& out() const { return out_; }

 private:
  bool ReadSome(int timeout_ms) {
    struct pollfd p = {master_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return p.revents == 0 && pid_ > 0;
    char buf[4096];
    ssize_t n = ::read(master_, buf, sizeof buf);
    if (n <= 0) return false;  // EIO: every slave closed
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int master_ = -1;
  pid_t pid_ = -1;
  std::string out_;
};

// A container command that takes Ctrl-C's SIGINT: prints GOT_INT and exits 3 on it; READY once
// its trap is set.
inline constexpr const char* kCtrlCScript =
    "trap 'echo GOT_INT; exit 3' INT; echo READY; while :; do /bin/busybox sleep 1; done";

// Types Ctrl-C once kCtrlCScript is READY: the process must take it as its SIGINT, and our
// terminal be left as it was (cooked).
inline void ExpectCtrlCIsSigint(PtyChild& c) {
  ASSERT_TRUE(c.ReadUntil("READY")) << c.out();
  c.Write("\x03");
  EXPECT_EQ(c.Wait(), 3) << c.out();
  EXPECT_NE(c.out().find("GOT_INT"), std::string::npos) << c.out();
  EXPECT_TRUE(c.Canonical());
}

}  // namespace xbuild::testing
