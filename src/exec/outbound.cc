#include "exec/outbound.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "exec/netns.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

namespace {

constexpr int kReadyFd = 3;  // --ready-fd: slirp4netns writes "1" there once tap0 is configured
constexpr auto kReadyTimeout = std::chrono::seconds(20);
constexpr auto kStopTimeout = std::chrono::seconds(5);

std::string PidFile(const std::string& dir) { return core::JoinPath(dir, "outbound.pid"); }
std::string LogFile(const std::string& dir) { return core::JoinPath(dir, "outbound.log"); }
// The pid file of one stopped without waiting (Stop(kNoWait)) that may not be gone yet.
std::string StoppingFile(const std::string& dir) { return core::JoinPath(dir, "outbound.stopping"); }
// Which namespace has its forwarding and masquerade rule made (NamespaceIdentity).
std::string MadeFile(const std::string& dir) { return core::JoinPath(dir, "outbound.made"); }

// This boot's namespace at `netns`: the boot id and the namespace's nsfs inode. Empty if unknown.
std::string NamespaceIdentity(const std::string& netns) {
  struct stat st {};
  auto boot = core::ReadFile("/proc/sys/kernel/random/boot_id", 64);
  if (!boot.ok() || ::stat(netns.c_str(), &st) != 0) return "";
  return core::Trim(*boot) + " " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + "\n";
}

// The NUL-separated arguments of a live process; empty when it is gone (or a zombie).
std::vector<std::string> Cmdline(int pid) {
  auto text = core::ReadFile("/proc/" + std::to_string(pid) + "/cmdline", 1 << 16);
  if (!text.ok() || text->empty()) return {};
  return core::Split(std::string_view(*text).substr(0, text->size() - 1), '\0');
}

// Whether `pid` is (still) a slirp4netns serving `netns` (pids are reused).
bool Serves(int pid, const std::string& netns) {
  if (pid <= 0) return false;
  std::vector<std::string> args = Cmdline(pid);
  if (args.empty() || core::Basename(args[0]) != "slirp4netns") return false;
  return std::find(args.begin(), args.end(), netns) != args.end();
}

// The process named in `file` when it still is a slirp4netns serving `netns`; else 0.
int ServingPid(const std::string& file, const std::string& netns) {
  auto text = core::ReadFile(file, 64);
  if (!text.ok()) return 0;
  int pid = std::atoi(text->c_str());
  return Serves(pid, netns) ? pid : 0;
}

// The bridge plugin forwards between xbr0 and tap0 only with forwarding on in the namespace.
Status EnableForwarding(const std::string& netns) {
  return RunInNetns(netns, []() -> Status {
    XB_ASSIGN(core::UniqueFd fd, core::Open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC));
    return core::WriteAll(fd.get(), "1\n");
  });
}

// One rule for the whole namespace, made before its slirp4netns starts: what leaves through
// tap0 is masqueraded. (The bridge plugin's ipMasq made a chain per container instead: several
// iptables runs on every CNI ADD and DEL, about 60 ms of each `run` on a bridge network.)
Status MasqueradeOutOfTap(const std::string& netns) {
  std::string iptables = IptablesBinary();
  return RunInNetns(netns, [&]() -> Status {
    auto rule = [&](const char* op) {
      return std::vector<std::string>{iptables, "-w", "-t", "nat", op, "POSTROUTING",
                                      "-o", "tap0", "-j", "MASQUERADE"};
    };
    XB_ASSIGN(core::RunResult present, core::RunProcess(rule("-C")));
    if (present.success()) return core::Ok();  // made before, and outbound.made was lost
    auto added = core::RunChecked(rule("-A"));
    if (!added.ok()) return std::move(added).error();
    return core::Ok();
  });
}

// Starts argv detached from us (a session of its own, reparented away: it outlives the run
// that started it), output to `log_path`, with the write end of `ready` as fd 3. Returns its pid.
Result<int> SpawnDetached(const std::vector<std::string>& argv, const std::string& log_path, int ready) {
  XB_ASSIGN(core::UniqueFd log_fd, core::Open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return core::SysError("pipe");
  core::UniqueFd pid_r(p[0]), pid_w(p[1]);
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  // Everything the child needs is made before fork: it only calls async-signal-safe functions.
  pid_t child = ::fork();
  if (child < 0) return core::SysError("fork");
  if (child == 0) {
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild != 0) {
      (void)!::write(pid_w.get(), &grandchild, sizeof grandchild);
      ::_exit(grandchild < 0 ? 1 : 0);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log_fd.get(), 1);
    ::dup2(log_fd.get(), 2);
    ::dup2(ready, kReadyFd);  // dup2 clears O_CLOEXEC on the copy
    ::syscall(SYS_close_range, kReadyFd + 1, ~0U, 0);
    if (::chdir("/") != 0) ::_exit(127);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  pid_w.Reset();
  while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_t pid = -1;
  if (::read(pid_r.get(), &pid, sizeof pid) != sizeof pid || pid <= 0) return Error(Code::kInternal, "fork " + argv[0] + " failed");
  return static_cast<int>(pid);
}

// Waits for slirp4netns's "1" on `ready`; false when it closed it without (it exited) or never wrote.
bool WaitReady(int ready) {
  auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    struct pollfd pfd = {ready, POLLIN, 0};
    if (::poll(&pfd, 1, 100) < 0 && errno != EINTR) return false;
    if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char c = 0;
    return ::read(ready, &c, 1) == 1 && c == '1';
  }
  return false;
}

// Waits until `pid` no longer serves `netns`: its pidfd (`exited`, core::ExitFd) turns readable
// at its exit; without one (an old kernel), /proc is read every 10 ms.
bool WaitGone(const std::string& netns, int pid, const core::UniqueFd& exited,
              std::chrono::milliseconds timeout) {
  if (exited.valid()) {
    struct pollfd pfd = {exited.get(), POLLIN, 0};
    int rc;
    do {
      rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    } while (rc < 0 && errno == EINTR);
    return rc > 0 || !Serves(pid, netns);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Serves(pid, netns)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// SIGTERM (with `exited` taken before it: this very process), then SIGKILL if it lingers.
Status Terminate(const std::string& netns, int pid) {
  core::UniqueFd exited = core::ExitFd(pid);
  ::kill(pid, SIGTERM);
  if (WaitGone(netns, pid, exited, kStopTimeout)) return core::Ok();
  ::kill(pid, SIGKILL);
  if (WaitGone(netns, pid, exited, kStopTimeout)) return core::Ok();
  return Error(Code::kInternal, "slirp4netns (pid " + std::to_string(pid) + ") did not stop");
}

// Waits for the one a Stop(kNoWait) left going, if it still is.
Status WaitStopping(const std::string& dir, const std::string& netns) {
  int pid = ServingPid(StoppingFile(dir), netns);
  if (pid != 0) XB_TRY(Terminate(netns, pid));
  if (::unlink(StoppingFile(dir).c_str()) != 0 && errno != ENOENT) {
    return core::SysError("remove " + StoppingFile(dir));
  }
  return core::Ok();
}

}  // namespace

std::string SlirpBinary() {
  const char* env = std::getenv("XBUILD_SLIRP4NETNS");
  if (env && *env) return ::access(env, X_OK) == 0 ? std::string(env) : std::string();
  return core::LookPath("slirp4netns");
}

std::string IptablesBinary() {
  for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    std::string path = core::JoinPath(dir, "iptables");
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

Result<Outbound> Outbound::Lock(const std::string& dir, const std::string& netns) {
  std::string path = core::JoinPath(dir, "outbound.lock");
  XB_ASSIGN(core::UniqueFd fd, core::Open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return core::SysError("lock " + path);
  }
  return Outbound(dir, netns, std::move(fd));
}

int Outbound::Pid() const { return ServingPid(PidFile(dir_), netns_); }

Status Outbound::Ensure(bool host_loopback, bool masquerade) {
  if (Pid() != 0) return core::Ok();
  XB_TRY(WaitStopping(dir_, netns_));
  std::string slirp = SlirpBinary();
  if (slirp.empty()) return Error(Code::kNotFound, "slirp4netns not found (install the slirp4netns package)");
  if (masquerade && IptablesBinary().empty()) {
    return Error(Code::kNotFound, "iptables not found (install the iptables package)");
  }
  // Both outlive slirp4netns in the namespace: made once (checking the rule runs iptables, a
  // few ms of every start), again only in a namespace made anew (a reboot, a lost mount).
  std::string identity = masquerade ? NamespaceIdentity(netns_) : "";
  if (masquerade && (identity.empty() || core::ReadFile(MadeFile(dir_), 256).value_or("") != identity)) {
    XB_TRY(EnableForwarding(netns_));
    XB_TRY(MasqueradeOutOfTap(netns_));
    if (!identity.empty()) {
      XB_TRY(core::WriteFileAtomic(MadeFile(dir_), identity, 0600, core::Sync::kNone));
    }
  }
  std::vector<std::string> argv = {slirp, "--configure", "--mtu=65520", "--disable-dns",
                                   "--ready-fd=" + std::to_string(kReadyFd)};
  if (!host_loopback) argv.push_back("--disable-host-loopback");
  argv.insert(argv.end(), {"--netns-type=path", netns_, "tap0"});
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return core::SysError("pipe");
  core::UniqueFd ready_r(p[0]), ready_w(p[1]);
  XB_ASSIGN(int pid, SpawnDetached(argv, LogFile(dir_), ready_w.get()));
  ready_w.Reset();
  if (!WaitReady(ready_r.get())) {
    ::kill(pid, SIGKILL);
    auto log = core::ReadFile(LogFile(dir_), 4096);
    return Error(Code::kInternal, "slirp4netns did not start: " + core::Trim(log.ok() ? *log : ""));
  }
  // Not synced: a pid means nothing after a reboot.
  return core::WriteFileAtomic(PidFile(dir_), std::to_string(pid) + "\n", 0600, core::Sync::kNone);
}

Status Outbound::Stop(StopWait wait) {
  int pid = Pid();
  if (wait == StopWait::kExit || pid != 0) XB_TRY(WaitStopping(dir_, netns_));  // at most one going
  if (pid != 0 && wait == StopWait::kNoWait) {
    // Its pid file becomes the stopping one, for the next Ensure or Stop to wait on.
    if (::rename(PidFile(dir_).c_str(), StoppingFile(dir_).c_str()) != 0) {
      return core::SysError("rename " + PidFile(dir_));
    }
    ::kill(pid, SIGTERM);
    return core::Ok();
  }
  if (pid != 0) XB_TRY(Terminate(netns_, pid));
  if (::unlink(PidFile(dir_).c_str()) != 0 && errno != ENOENT) return core::SysError("remove " + PidFile(dir_));
  return core::Ok();
}

}  // namespace xbuild::exec
