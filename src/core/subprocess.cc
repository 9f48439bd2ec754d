#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/fd.h"
#include "core/fs.h"

extern char** environ;

namespace xbuild::core {

std::string LookPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find(':', i);
    if (j == std::string::npos) j = p.size();
    std::string cand = JoinPath(j > i ? p.substr(i, j - i) : ".", name);
    struct stat st;
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) {
      return cand;
    }
    i = j + 1;
  }
  return "";
}

namespace {
Status MakePipe(UniqueFd& r, UniqueFd& w) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return SysError("pipe");
  r.Reset(p[0]);
  w.Reset(p[1]);
  return Ok();
}
}  // namespace

Result<RunResult> RunProcess(const std::vector<std::string>& argv, const RunOptions& opts) {
  if (argv.empty()) return Error(Code::kInvalidArgument, "run: empty command");
  std::string exe = LookPath(argv[0]);
  if (exe.empty()) return Error(Code::kNotFound, "run " + argv[0] + ": executable not found in PATH");

  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  if (opts.stdin_data) XB_TRY(MakePipe(in_r, in_w));
  if (opts.capture_stdout) XB_TRY(MakePipe(out_r, out_w));
  if (opts.capture_stderr) XB_TRY(MakePipe(err_r, err_w));

  // Everything the child needs is prepared before fork: the child only calls
  // async-signal-safe functions.
  std::vector<std::string> envs;
  if (opts.env) {
    envs = *opts.env;
  } else {
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  }
  for (auto& [k, v] : opts.extra_env) {
    std::erase_if(envs, [&](const std::string& s) { return s.starts_with(k + "="); });
    envs.push_back(k + "=" + v);
  }
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  const char* cwd = opts.cwd ? opts.cwd->c_str() : nullptr;

  pid_t pid = ::fork();
  if (pid < 0) return SysError("fork");
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(opts.stdin_data ? in_r.get() : devnull, 0);
    if (opts.capture_stdout) ::dup2(out_w.get(), 1);
    if (opts.capture_stderr) ::dup2(err_w.get(), 2);
    if (cwd && ::chdir(cwd) != 0) _exit(127);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(exe.c_str(), cargv.data(), cenv.data());
    _exit(127);
  }
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();

  RunResult res;
  std::string_view to_write = opts.stdin_data ? std::string_view(*opts.stdin_data) : "";
  if (in_w.valid() && to_write.empty()) in_w.Reset();
  if (in_w.valid()) ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  while (out_r.valid() || err_r.valid() || in_w.valid()) {
    struct pollfd pfds[3];
    int n = 0;
    int idx_out = -1, idx_err = -1, idx_in = -1;
    if (out_r.valid()) { idx_out = n; pfds[n++] = {out_r.get(), POLLIN, 0}; }
    if (err_r.valid()) { idx_err = n; pfds[n++] = {err_r.get(), POLLIN, 0}; }
    if (in_w.valid()) { idx_in = n; pfds[n++] = {in_w.get(), POLLOUT, 0}; }
    if (::poll(pfds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    char buf[65536];
    auto drain = [&](int idx, UniqueFd& fd, std::string& sink) {
      if (idx < 0 || !(pfds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t r = ::read(fd.get(), buf, sizeof buf);
      if (r > 0) sink.append(buf, static_cast<size_t>(r));
      else if (r == 0 || errno != EINTR) fd.Reset();
    };
    drain(idx_out, out_r, res.out);
    drain(idx_err, err_r, res.err);
    if (idx_in >= 0 && (pfds[idx_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in_w.get(), to_write.data(), to_write.size());
      if (w > 0) to_write.remove_prefix(static_cast<size_t>(w));
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || to_write.empty()) in_w.Reset();
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return SysError("waitpid");
  }
  if (WIFEXITED(status)) {
    res.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    res.term_signal = WTERMSIG(status);
  }
  return res;
}

Result<RunResult> RunChecked(const std::vector<std::string>& argv, const RunOptions& opts) {
  XB_ASSIGN(RunResult r, RunProcess(argv, opts));
  if (r.success()) return r;
  std::string cmd;
  for (auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  std::string why = r.term_signal ? "killed by signal " + std::to_string(r.term_signal)
                                  : "exit status " + std::to_string(r.exit_code);
  std::string tail = r.err.size() > 2000 ? r.err.substr(r.err.size() - 2000) : r.err;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  return Error(Code::kInternal, cmd + ": " + why + (tail.empty() ? "" : ": " + tail));
}

UniqueFd ExitFd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

}  // namespace xbuild::core
