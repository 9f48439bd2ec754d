// xbuild stop [-t N] [-s SIG] CONTAINER...: the stop signal, then SIGKILL after the timeout.
// xbuild kill [-s SIG] CONTAINER...: one signal (default KILL).
// xbuild start [-a] CONTAINER...: runs an exited container's command again on its kept
// writable layer, under a new monitor (-a: in the foreground, as `run` without -d).
// xbuild restart [-t N] CONTAINER...: stop, then start.
// Each prints the container as it was named on success, as Docker does.
#include <cstdio>
#include <cstdlib>

#include "cli/cli.h"
#include "cli/container_monitor.h"
#include "cli/sig_proxy.h"

namespace xbuild::cli {

namespace {

// -t: the seconds to wait; unset: the container's own --stop-timeout.
core::Result<int> TimeoutFlag(const Flags& f, const exec::ContainerRecord& r) {
  if (!f.Changed("time")) return r.stop_timeout;
  char* end = nullptr;
  long t = std::strtol(f.GetString("time").c_str(), &end, 10);
  if (*end != '\0' || f.GetString("time").empty()) {
    return core::Error(core::Code::kInvalidArgument, "invalid argument \"" + f.GetString("time") + "\" for \"-t, --time\" flag");
  }
  return static_cast<int>(t);
}

core::Status StopOne(exec::Containers& containers, const Flags& f, const exec::ContainerRecord& r) {
  XB_ASSIGN(int timeout, TimeoutFlag(f, r));
  std::string signal = f.Changed("signal") ? f.GetString("signal") : r.stop_signal;
  return containers.Stop(r, signal, timeout);
}

core::Status StartOne(Cli& cli, exec::Containers& containers, const exec::ContainerRecord& r, int& exit_code) {
  exit_code = kExitError;
  XB_ASSIGN(exec::ContainerRecord now, containers.Get(r.id));  // `restart` has just stopped it
  if (now.status == exec::kStatusRunning || containers.MonitorAlive(now.id)) return core::Ok();  // as Docker: no-op
  return StartMonitor(cli, now.id, exit_code);
}

// Runs `fn` on each named container; errors are printed and make the exit code 1.
template <typename Fn>
int ForEach(Cli& cli, const std::vector<std::string>& refs, Fn fn) {
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  int rc = kExitOk;
  for (const std::string& ref : refs) {
    auto r = (*containers)->Find(ref);
    core::Status s = r.ok() ? fn(**containers, *r) : core::Status(r.error());
    if (s.ok()) {
      std::printf("%s\n", ref.c_str());
    } else {
      rc = cli.Fail(s.error());
    }
  }
  return rc;
}

}  // namespace

int RunStop(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("time", 't', "", "Seconds to wait before killing the container");
  f.String("signal", 's', "", "Signal to send to the container");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "stop", "stop [OPTIONS] CONTAINER [CONTAINER...]", args, pos, code, 1)) return code;
  return ForEach(cli, pos, [&](exec::Containers& c, const exec::ContainerRecord& r) { return StopOne(c, f, r); });
}

int RunKill(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("signal", 's', "KILL", "Signal to send to the container");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "kill", "kill [OPTIONS] CONTAINER [CONTAINER...]", args, pos, code, 1)) return code;
  return ForEach(cli, pos, [&](exec::Containers& c, const exec::ContainerRecord& r) {
    return c.Signal(r, f.GetString("signal")).Context("cannot kill container " + r.id);
  });
}

int RunStart(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("attach", 'a', "Attach STDOUT/STDERR and forward signals");
  f.Bool("interactive", 'i', "Attach container's STDIN");  // exec/pty.h
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "start", "start [OPTIONS] CONTAINER [CONTAINER...]", args, pos, code, 1)) return code;
  if (!f.GetBool("attach") && !f.GetBool("interactive")) {  // -i attaches too, as in Docker
    int last = kExitOk;
    int rc = ForEach(cli, pos, [&](exec::Containers& c, const exec::ContainerRecord& r) { return StartOne(cli, c, r, last); });
    return rc == kExitOk ? kExitOk : (last != kExitOk ? last : rc);
  }
  if (pos.size() != 1) return cli.UsageError("start", "you cannot start and attach multiple containers at once");
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  auto r = (*containers)->Find(pos[0]);
  if (!r.ok()) return cli.Fail(r.error());
  if (r->status == exec::kStatusRunning || (*containers)->MonitorAlive(r->id)) {
    return cli.Fail(core::Error(core::Code::kFailedPrecondition, "container " + r->id + " is already running"));
  }
  SignalProxy proxy(**containers, r->id);  // we run it: signals go to its process
  auto rc = (*containers)->Run(r->id, WriteToStdio, nullptr, {}, cli.ctx().log,
                               f.GetBool("interactive") ? 0 : -1);  // -i
  if (!rc.ok()) return cli.Fail(rc.error(), exec::StartFailureCode(rc.error()));
  return *rc;
}

int RunRestart(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("time", 't', "", "Seconds to wait before killing the container");
  f.String("signal", 's', "", "Signal to send to the container");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "restart", "restart [OPTIONS] CONTAINER [CONTAINER...]", args, pos, code, 1)) return code;
  return ForEach(cli, pos, [&](exec::Containers& c, const exec::ContainerRecord& r) -> core::Status {
    XB_TRY(StopOne(c, f, r));
    int exit_code = 0;
    return StartOne(cli, c, r, exit_code);
  });
}

}  // namespace xbuild::cli
