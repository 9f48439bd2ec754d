// xbuild exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND [ARG...]: runs a
// command in a running container (`runc exec`); its output is ours and so is its exit code (126
// when it cannot be run, 127 when it is not found, as Docker). -t gives it a terminal (exec/pty.h),
// with -d too, whose output then goes nowhere, as Docker's does.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cli/cli.h"

namespace xbuild::cli {

int RunExec(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.set_stop_at_positional(true);
  f.Bool("detach", 'd', "Detached mode: run command in the background");
  f.List("env", 'e', "Set environment variables");
  f.String("workdir", 'w', "", "Working directory inside the container");
  f.String("user", 'u', "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")");
  // -i/-t (exec/pty.h)
  f.Bool("interactive", 'i', "Keep STDIN open even if not attached");
  f.Bool("tty", 't', "Allocate a pseudo-TTY");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]", args, pos, code, 2)) return code;
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  auto r = (*containers)->Find(pos[0]);
  if (!r.ok()) return cli.Fail(r.error());
  exec::ProcessSpec p;
  p.args.assign(pos.begin() + 1, pos.end());
  for (const std::string& e : f.GetList("env")) {
    if (e.find('=') != std::string::npos) {
      p.env.push_back(e);
    } else if (const char* v = std::getenv(e.c_str())) {
      p.env.push_back(e + "=" + v);
    }
  }
  p.cwd = f.GetString("workdir");
  p.user = f.GetString("user");
  p.terminal = f.GetBool("tty");
  bool attach_stdin = f.GetBool("interactive") && !f.GetBool("detach");
  if (attach_stdin && p.terminal && !::isatty(STDIN_FILENO)) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument, "the input device is not a TTY"));
  }
  auto rc = (*containers)->Exec(*r, p, f.GetBool("detach"), WriteToStdio, attach_stdin ? STDIN_FILENO : -1);
  if (!rc.ok() && rc.error().code() == core::Code::kFailedPrecondition && r->status != exec::kStatusRunning) {
    return cli.Fail(rc.error());
  }
  if (!rc.ok()) return cli.Fail(rc.error(), exec::StartFailureCode(rc.error()));
  return *rc;
}

}  // namespace xbuild::cli
