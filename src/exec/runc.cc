#include "exec/runc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <utility>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "exec/pty.h"

extern char** environ;

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Result;
using core::Status;
using core::UniqueFd;

namespace {

constexpr int kPollMs = 100;
// On cancel, `runc kill` is retried once a poll (the container may not exist yet); after this
// many tries runc itself is killed.
constexpr int kKillTries = 50;
constexpr size_t kMaxLogSize = 1 << 20;

// A started runtime process with its stdout and stderr pipes. A child that is dropped
// without having been waited for is killed and reaped.
class Child {
 public:
  // discard_output: stdout and stderr go to /dev/null (a detached exec's process keeps them
  // after runc exits, and must not die of SIGPIPE once nobody reads a pipe).
  // stdin_fd >= 0: the child's stdin (else /dev/null).
  // own_group: the child leads a process group of its own (see Runc::Run).
  static Result<Child> Spawn(const std::vector<std::string>& argv, bool discard_output = false,
                             int stdin_fd = -1, bool own_group = false);

  Child(Child&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), out_(std::move(o.out_)), err_(std::move(o.err_)) {}
  Child& operator=(Child&&) = delete;
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }

  pid_t pid() const { return pid_; }
  // Streams output until the process has exited and its pipes are drained; `tick` runs about
  // every kPollMs. Returns the wait status.
  Result<int> Pump(const OutputFn& output, const std::function<void()>& tick);

 private:
  Child(pid_t pid, UniqueFd out, UniqueFd err)
      : pid_(pid), out_(std::move(out)), err_(std::move(err)) {}
  void Drain(UniqueFd& fd, int stream, const OutputFn& output);

  pid_t pid_;
  UniqueFd out_, err_;
};

Status MakePipe(UniqueFd& read_end, UniqueFd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return core::SysError("pipe");
  read_end.Reset(p[0]);
  write_end.Reset(p[1]);
  if (::fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) return core::SysError("fcntl O_NONBLOCK");
  return core::Ok();
}

// posix_spawn with stdin from /dev/null, stdout/stderr to the pipes, and the signals a
// runtime relies on back at their defaults.
Result<pid_t> SpawnWithPipes(const std::string& exe, const std::vector<std::string>& argv,
                             int out_fd, int err_fd, int in_fd = -1, bool own_group = false) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  core::ScopeGuard free_all([&] {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  });
  if (in_fd >= 0) {
    ::posix_spawn_file_actions_adddup2(&actions, in_fd, 0);  // -i
  } else {
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  ::posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  ::posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&defaults, sig);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &defaults);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (own_group) {
    ::posix_spawnattr_setpgroup(&attr, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  ::posix_spawnattr_setflags(&attr, flags);
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, cargv.data(), environ);
  if (rc != 0) return core::SysError("start " + exe, rc);
  return pid;
}

Result<Child> Child::Spawn(const std::vector<std::string>& argv, bool discard_output, int stdin_fd,
                          bool own_group) {
  std::string exe = core::LookPath(argv[0]);
  if (exe.empty()) {
    return Error(Code::kNotFound, "OCI runtime " + argv[0] +
                                      " not found in PATH: install runc (scripts/setup-deps.sh)");
  }
  UniqueFd out_r, out_w, err_r, err_w;
  if (discard_output) {
    XB_ASSIGN(out_w, core::Open("/dev/null", O_WRONLY | O_CLOEXEC));
    XB_ASSIGN(pid_t pid, SpawnWithPipes(exe, argv, out_w.get(), out_w.get(), stdin_fd));
    return Child(pid, UniqueFd(), UniqueFd());
  }
  XB_TRY(MakePipe(out_r, out_w));
  XB_TRY(MakePipe(err_r, err_w));
  XB_ASSIGN(pid_t pid, SpawnWithPipes(exe, argv, out_w.get(), err_w.get(), stdin_fd, own_group));
  return Child(pid, std::move(out_r), std::move(err_r));
}

void Child::Drain(UniqueFd& fd, int stream, const OutputFn& output) {
  char buf[65536];
  while (fd.valid()) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      if (output) output(stream, std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    fd.Reset();  // EOF or a read error
  }
}

Result<int> Child::Pump(const OutputFn& output, const std::function<void()>& tick) {
  // Wakes at the runtime's exit. Without it, a process that had already closed its pipes was
  // seen gone only at the next poll timeout: up to kPollMs added to every `run` (its pipes reach
  // EOF a moment before waitpid can reap it).
  UniqueFd exited = core::ExitFd(pid_);
  int status = 0;
  for (;;) {
    struct pollfd fds[3];
    nfds_t n = 0;
    if (out_.valid()) fds[n++] = {out_.get(), POLLIN, 0};
    if (err_.valid()) fds[n++] = {err_.get(), POLLIN, 0};
    if (exited.valid()) fds[n++] = {exited.get(), POLLIN, 0};
    if (::poll(fds, n, kPollMs) < 0 && errno != EINTR) return core::SysError("poll");
    Drain(out_, 1, output);
    Drain(err_, 2, output);
    tick();
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) return core::SysError("waitpid");
  }
  pid_ = -1;
  // The runtime is gone; what its container wrote before it died is still in the pipes.
  Drain(out_, 1, output);
  Drain(err_, 2, output);
  return status;
}

int ExitCode(int status) {
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// The last error runc logged (its log is JSON lines: {"level":"error","msg":...}).
std::string LoggedError(const std::string& log_path) {
  auto text = core::ReadFile(log_path, kMaxLogSize);
  if (!text.ok()) return "";
  std::string last;
  for (const std::string& line : core::Split(*text, '\n')) {
    core::Json j = core::Json::parse(line, nullptr, false);
    if (core::GetOptString(j, "level") != "error") continue;
    last = core::GetOptString(j, "msg").value_or("");
  }
  return last;
}

}  // namespace

std::vector<std::string> Runc::Command(std::vector<std::string> args) const {
  std::vector<std::string> argv = {binary_};
  argv.insert(argv.end(), runtime_args_.begin(), runtime_args_.end());
  argv.insert(argv.end(), {"--root", state_dir_});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<int> Runc::Run(const std::string& bundle, const std::string& id, const OutputFn& output,
                      const std::atomic<bool>* cancel,
                      const std::function<void(int pid)>& on_start, int stdin_fd) const {
  std::string log = core::JoinPath(bundle, "runc.log");
  std::string pid_file = core::JoinPath(bundle, "pid");
  std::vector<std::string> args = {"--log", log, "--log-format", "json", "run", "--bundle", bundle};
  if (on_start) args.insert(args.end(), {"--pid-file", pid_file});
  args.push_back(id);
  // In a process group of its own: `runc run` passes on the signals it gets, and a terminal's
  // Ctrl-C (sent to its whole foreground group) must reach the container once, through the
  // caller (Docker's sig-proxy, cli/sig_proxy.h), not twice.
  XB_ASSIGN(Child child, Child::Spawn(Command(std::move(args)), false, stdin_fd, true));
  bool cancelled = false;
  bool killed = false;
  bool started = false;
  int tries = 0;
  auto on_tick = [&] {
    if (on_start && !started) {
      // runc writes the pid file by rename once the process is created, so it is never seen
      // half written.
      auto text = core::ReadFile(pid_file, 64);
      if (text.ok() && !text->empty()) {
        started = true;
        on_start(std::atoi(text->c_str()));
      }
    }
    if (!cancel || !cancel->load() || killed) return;
    cancelled = true;
    if (Kill(id).ok()) {
      killed = true;
    } else if (++tries >= kKillTries) {
      ::kill(child.pid(), SIGKILL);
      killed = true;
    }
  };
  XB_ASSIGN(int status, child.Pump(output, on_tick));
  if (cancelled) return Error(Code::kCancelled, "cancelled");
  int code = ExitCode(status);
  if (code != 0) {
    std::string err = LoggedError(log);
    if (!err.empty()) return Error(Code::kFailedPrecondition, err);
  }
  return code;
}

Result<int> Runc::Exec(const std::string& id, const ExecProcess& p, const std::string& log,
                       const OutputFn& output) const {
  ::unlink(log.c_str());  // an earlier exec's error must not be taken for this one's
  std::vector<std::string> args = {"--log", log, "--log-format", "json", "exec"};
  if (p.detached) args.push_back("--detach");
  if (!p.cwd.empty()) args.insert(args.end(), {"--cwd", p.cwd});
  if (!p.user.empty()) args.insert(args.end(), {"--user", p.user});
  for (uint32_t gid : p.additional_gids) args.insert(args.end(), {"--additional-gids", std::to_string(gid)});
  for (const std::string& e : p.env) args.insert(args.end(), {"--env", e});
  // -t (pty.h): a detached exec with a console socket beside the log, then attached here (or,
  // with -d, its output dropped by a reader of its own).
  if (p.tty) return ExecTerminal(id, p, log, output);
  args.push_back(id);
  args.insert(args.end(), p.args.begin(), p.args.end());
  XB_ASSIGN(Child child, Child::Spawn(Command(std::move(args)), p.detached, p.stdin_fd));
  XB_ASSIGN(int status, child.Pump(output, [] {}));
  int code = ExitCode(status);
  if (code != 0) {
    std::string err = LoggedError(log);
    if (!err.empty()) return Error(Code::kFailedPrecondition, err);
  }
  return code;
}

// ---- -t: the process's terminal through a console socket (pty.h) ----

namespace {

// `argv` run to its end with `dir` as its working directory; an error with the runtime's
// logged message (or its stderr) when it fails.
Status RunInDir(const std::vector<std::string>& argv, const std::string& dir, const std::string& log) {
  core::RunOptions opts;
  opts.cwd = dir;
  XB_ASSIGN(core::RunResult r, core::RunProcess(argv, opts));
  if (r.success()) return core::Ok();
  std::string err = LoggedError(log);
  return Error(Code::kFailedPrecondition, err.empty() ? core::Trim(r.err) : err);
}

Result<int> ReadPid(const std::string& pid_file) {
  XB_ASSIGN(std::string text, core::ReadFile(pid_file, 64));
  int pid = std::atoi(text.c_str());
  if (pid <= 0) return Error(Code::kInternal, "bad pid in " + pid_file);
  return pid;
}

}  // namespace

Result<int> Runc::RunTerminal(const std::string& bundle, const std::string& id, int stdin_fd,
                              const OutputFn& output, const std::atomic<bool>* cancel,
                              const std::function<void(int pid)>& on_start) const {
  std::string log = core::JoinPath(bundle, "runc.log");
  std::string pid_file = core::JoinPath(bundle, "pid");
  XB_ASSIGN(ConsoleSocket sock, ConsoleSocket::Listen(bundle, "console.sock"));
  XB_TRY(BecomeSubreaper());
  XB_TRY(RunInDir(Command({"--log", log, "--log-format", "json", "run", "--detach", "--bundle", bundle,
                           "--console-socket", sock.name(), "--pid-file", pid_file, id}),
                  bundle, log));
  XB_ASSIGN(core::UniqueFd master, sock.ReceiveMaster());
  XB_ASSIGN(int pid, ReadPid(pid_file));
  if (on_start) on_start(pid);
  TerminalSession s;
  s.master = master.get();
  s.pid = pid;
  s.stdin_fd = stdin_fd;
  s.output = output;
  s.cancel = cancel;
  bool cancelled = false;
  s.kill = [&] {
    cancelled = true;
    (void)Kill(id);
  };
  XB_ASSIGN(int status, PumpTerminal(s));
  if (cancelled) return Error(Code::kCancelled, "cancelled");
  return ExitCode(status);
}

Result<int> Runc::ExecTerminal(const std::string& id, const ExecProcess& p, const std::string& log,
                               const OutputFn& output) const {
  std::string dir = core::Dirname(log);
  std::string base = log.substr(dir.size() + 1);
  std::string pid_file = log + ".pid", process_file = log + ".process.json";
  core::ScopeGuard drop_files([&] {
    ::unlink(pid_file.c_str());
    ::unlink(process_file.c_str());
  });
  // The process as a whole (runc has no flag for the console size): the container's, with
  // this exec's command, env, cwd, user and the terminal's size.
  XB_ASSIGN(std::string config_text, core::ReadFile(p.bundle_config, kMaxLogSize));
  XB_ASSIGN(core::Json config, core::ParseJson(config_text, p.bundle_config));
  core::Json proc = config.value("process", core::Json::object());
  proc["terminal"] = true;
  proc["args"] = p.args;
  proc["env"] = p.env;
  if (!p.cwd.empty()) proc["cwd"] = p.cwd;
  size_t colon = p.user.find(':');
  if (colon != std::string::npos) {
    proc["user"] = {{"uid", std::stoul(p.user.substr(0, colon))}, {"gid", std::stoul(p.user.substr(colon + 1))}};
    if (!p.additional_gids.empty()) proc["user"]["additionalGids"] = p.additional_gids;
  }
  TerminalSize size = CurrentTerminalSize(p.stdin_fd);
  proc["consoleSize"] = {{"height", size.rows}, {"width", size.cols}};
  // Not synced: runc reads it once, and it is removed when this exec has started.
  XB_TRY(core::WriteFileAtomic(process_file, proc.dump(), 0600, core::Sync::kNone));
  XB_ASSIGN(ConsoleSocket sock, ConsoleSocket::Listen(dir, base + ".sock"));
  if (!p.detached) {
    XB_TRY(BecomeSubreaper());
  }
  XB_TRY(RunInDir(Command({"--log", log, "--log-format", "json", "exec", "--process", process_file, "--detach",
                           "--console-socket", sock.name(), "--pid-file", pid_file, id}),
                  dir, log));
  XB_ASSIGN(core::UniqueFd master, sock.ReceiveMaster());
  if (p.detached) {
    XB_TRY(DiscardTerminalOutput(std::move(master)));
    return 0;
  }
  XB_ASSIGN(int pid, ReadPid(pid_file));
  TerminalSession s;
  s.master = master.get();
  s.pid = pid;
  s.stdin_fd = p.stdin_fd;
  s.output = output;
  XB_ASSIGN(int status, PumpTerminal(s));
  return ExitCode(status);
}

Status Runc::Kill(const std::string& id, std::string_view signal) const {
  XB_TRY_CTX(core::RunChecked(Command({"kill", id, std::string(signal)})), "kill container " + id);
  return core::Ok();
}

Status Runc::Delete(const std::string& id) const {
  std::string state = core::JoinPath(state_dir_, id);
  if (!core::Exists(state)) return core::Ok();
  auto r = core::RunChecked(Command({"delete", "--force", id}));
  if (!r.ok() && core::Exists(state)) return std::move(r).error().Context("delete container " + id);
  return core::Ok();
}

}  // namespace xbuild::exec
