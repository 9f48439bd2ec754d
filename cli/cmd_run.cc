// xbuild run [OPTIONS] IMAGE [COMMAND] [ARG...]
// A first, foreground `docker run`: the image's filesystem as an overlay snapshot, the process
// run in the same sandbox as RUN steps, its output on our stdout/stderr, its exit code ours.
// The container's writable layer is always removed at the end (as with --rm); detached
// containers and the other container commands come later.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "cli/cli.h"
#include "cli/registry_util.h"
#include "exec/sandbox.h"
#include "exec/snapshot.h"

namespace xbuild::cli {

namespace {

std::atomic<bool> g_run_cancel{false};

void OnRunSignal(int) { g_run_cancel.store(true); }

}  // namespace

int RunRun(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.set_stop_at_positional(true);
  f.Bool("rm", 0, "Automatically remove the container when it exits (always done today)");
  f.List("env", 'e', "Set environment variables");
  f.String("workdir", 'w', "", "Working directory inside the container");
  f.String("user", 'u', "", "Username or UID (format: <name|uid>[:<group|gid>])");
  f.String("entrypoint", 0, "", "Overwrite the default ENTRYPOINT of the image");
  f.String("network", 0, "host", "Connect a container to a network (host, none)");
  f.String("hostname", 'h', "", "Container host name");
  f.Bool("read-only", 0, "Mount the container's root filesystem as read only");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]", args, pos, code, 1, -1)) return code;
  std::string network = f.GetString("network");
  if (network != "host" && network != "none") {
    return cli.UsageError("run", "--network " + network + ": only host and none are available");
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error(), kExitUsage);
  auto img = (*store)->Resolve(pos[0]);
  if (!img.ok() && img.error().code() == core::Code::kNotFound) {
    auto ref = image::ParseReference(pos[0]);
    if (!ref.ok()) return cli.Fail(ref.error(), kExitUsage);
    std::fprintf(stderr, "Unable to find image '%s' locally\n", ref->Familiar().c_str());
    auto reg = OpenRegistry(cli);
    if (!reg.ok()) return cli.Fail(reg.error(), kExitUsage);
    auto pulled = reg->client->Pull(**store, *ref, image::HostPlatform(), nullptr);
    if (!pulled.ok()) return cli.Fail(pulled.error(), kExitUsage);
    img = (*store)->Load(pulled->record);
  }
  if (!img.ok()) return cli.Fail(img.error(), kExitUsage);
  const image::ContainerConfig& cc = img->config.config;

  std::vector<std::string> argv;
  if (f.Changed("entrypoint")) {
    if (!f.GetString("entrypoint").empty()) argv.push_back(f.GetString("entrypoint"));
  } else if (cc.entrypoint) {
    argv = *cc.entrypoint;
  }
  if (pos.size() > 1) {
    argv.insert(argv.end(), pos.begin() + 1, pos.end());
  } else if (cc.cmd && !(f.Changed("entrypoint"))) {
    argv.insert(argv.end(), cc.cmd->begin(), cc.cmd->end());
  }
  if (argv.empty()) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument, "run " + pos[0] + ": no command specified"), kExitUsage);
  }
  exec::RunRequest req;
  req.root = cli.ctx().root;
  req.process.args = argv;
  req.process.env = cc.env;
  for (const auto& e : f.GetList("env")) {
    if (e.find('=') != std::string::npos) {
      req.process.env.push_back(e);
    } else if (const char* v = std::getenv(e.c_str())) {
      req.process.env.push_back(e + "=" + v);
    }
  }
  req.process.cwd = f.Changed("workdir") ? f.GetString("workdir") : (cc.working_dir.empty() ? "/" : cc.working_dir);
  req.process.user = f.Changed("user") ? f.GetString("user") : cc.user;
  req.sandbox.network = network == "none" ? exec::Network::kNone : exec::Network::kHost;
  req.sandbox.hostname = f.GetString("hostname");
  req.sandbox.readonly_rootfs = f.GetBool("read-only");
  req.output = [](int stream, std::string_view data) {
    std::FILE* out = stream == 2 ? stderr : stdout;
    std::fwrite(data.data(), 1, data.size(), out);
    std::fflush(out);
  };
  req.cancel = &g_run_cancel;
  req.log = cli.ctx().log;

  exec::Snapshotter snaps(**store);
  auto base = snaps.FromImage(*img);
  if (!base.ok()) return cli.Fail(base.error(), kExitUsage);
  auto id = snaps.Prepare(*base);
  if (!id.ok()) return cli.Fail(id.error(), kExitUsage);
  auto mount = snaps.Mount(*id);
  core::Result<int> rc = mount.ok() ? core::Result<int>(0) : core::Result<int>(mount.error());
  if (mount.ok()) {
    req.sandbox.rootfs = *mount;
    struct sigaction sa {};
    sa.sa_handler = OnRunSignal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    rc = exec::Run(req);
  }
  (void)snaps.Unmount(*id);
  (void)snaps.Remove(*id);
  if (!rc.ok()) {
    // Docker's codes: 127 when the command is not found, 126 when it cannot be run.
    const std::string& m = rc.error().message();
    int status = m.find("executable file not found") != std::string::npos || m.find("no such file") != std::string::npos
                     ? 127
                 : m.find("permission denied") != std::string::npos ? 126
                                                                     : kExitUsage;
    return cli.Fail(rc.error(), status);
  }
  return *rc;
}

}  // namespace xbuild::cli
