#include "cli/container_monitor.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"

namespace xbuild::cli {

namespace {

constexpr int kReportFd = 3;

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

void Report(int fd, const core::Json& j) {
  if (fd < 0) return;
  (void)core::WriteAll(fd, j.dump(-1, ' ', false, core::Json::error_handler_t::replace) + "\n");
  ::close(fd);
}

}  // namespace

core::Status StartMonitor(Cli& cli, const std::string& id, int& exit_code) {
  exit_code = kExitUsage;
  std::string exe = SelfExe();
  if (exe.empty()) return core::SysError("readlink /proc/self/exe");
  std::vector<std::string> argv = {exe, "--root", cli.ctx().root};
  if (!cli.config_flag.empty()) argv.insert(argv.end(), {"--config", cli.config_flag});
  argv.insert(argv.end(), {"__monitor", id});
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return core::SysError("pipe");
  core::UniqueFd report_r(p[0]), report_w(p[1]);
  // Everything the child needs is made before fork: it only calls async-signal-safe functions.
  pid_t pid = ::fork();
  if (pid < 0) return core::SysError("fork");
  if (pid == 0) {
    // A session of its own, and not our child: the monitor outlives us and our terminal.
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::dup2(report_w.get(), kReportFd);  // dup2 clears O_CLOEXEC on the copy
    ::syscall(SYS_close_range, kReportFd + 1, ~0U, 0);
    if (::chdir("/") != 0) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(exe.c_str(), cargv.data());
    ::_exit(127);
  }
  report_w.Reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // The monitor closes its end once it has reported (or when it dies).
  auto text = core::ReadFd(report_r.get(), 1 << 20);
  if (!text.ok()) return std::move(text).error().Context("read the monitor's report");
  core::Json j = core::Json::parse(*text, nullptr, false);
  if (!j.is_object()) {
    return core::Error(core::Code::kInternal, "the monitor of container " + id + " exited without reporting its start");
  }
  if (j.value("ok", false)) {
    exit_code = kExitOk;
    return core::Ok();
  }
  exit_code = j.value("code", kExitUsage);
  return core::Error(core::Code::kFailedPrecondition, core::GetOptString(j, "error").value_or("start failed"));
}

// xbuild __monitor ID: see container_monitor.h. Never run by hand.
int RunMonitor(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "__monitor", "__monitor ID", args, pos, code, 1, 1)) return code;
  int report_fd = ::fcntl(kReportFd, F_GETFD) >= 0 ? kReportFd : -1;
  ::fcntl(report_fd, F_SETFD, FD_CLOEXEC);  // runc and the container must not hold it open
  auto containers = cli.Containers();
  if (!containers.ok()) {
    Report(report_fd, {{"ok", false}, {"code", kExitUsage}, {"error", containers.error().ToString()}});
    return kExitUsage;
  }
  bool reported = false;
  auto rc = (*containers)->Run(
      pos[0], {}, nullptr,
      [&] {
        Report(report_fd, {{"ok", true}});
        reported = true;
      },
      cli.ctx().log);
  if (!reported) {
    // It ended before it was seen running (or never started).
    if (rc.ok()) {
      Report(report_fd, {{"ok", true}});
    } else {
      Report(report_fd,
             {{"ok", false}, {"code", exec::StartFailureCode(rc.error())}, {"error", rc.error().ToString()}});
    }
  }
  return rc.ok() ? *rc : kExitUsage;
}

}  // namespace xbuild::cli
