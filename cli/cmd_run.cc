// xbuild run [OPTIONS] IMAGE [COMMAND] [ARG...]: a kept container (exec/container.h) made from
// the image, run in the foreground (this process is its monitor: output on our stdout/stderr
// and in its log, its exit code ours) or, with -d, by a detached monitor (container_monitor.h),
// printing its id. --rm removes it when it ends. In the foreground the signals we get go to
// the container's process (--sig-proxy, cli/sig_proxy.h).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "cli/cli.h"
#include "cli/container_monitor.h"
#include "cli/run_net.h"
#include "cli/registry_util.h"
#include "cli/run_options.h"
#include "cli/sig_proxy.h"
#include "core/fs.h"
#include "core/strings.h"
#include "exec/cdi.h"
#include "exec/container.h"
#include "exec/runtimes.h"
#include "exec/snapshot.h"

namespace xbuild::cli {

namespace {

// --sig-proxy=false: a signal stops the container (this process runs it, so it cannot leave it
// running as Docker's CLI does).
std::atomic<bool> g_run_cancel{false};

void OnRunSignal(int) { g_run_cancel.store(true); }

// Sets K=V in env, replacing an earlier value of K (Docker's precedence: image ENV, then
// --env-file, then -e). A bare K takes its value from our environment, or is dropped.
void SetEnv(std::vector<std::string>& env, const std::string& entry) {
  std::string kv = entry;
  if (kv.find('=') == std::string::npos) {
    const char* v = std::getenv(kv.c_str());
    if (!v) return;
    kv += std::string("=") + v;
  }
  std::string key = kv.substr(0, kv.find('=') + 1);
  std::erase_if(env, [&](const std::string& e) { return e.starts_with(key); });
  env.push_back(kv);
}

core::Status ReadEnvFile(const std::string& path, std::vector<std::string>& env) {
  XB_ASSIGN(std::string text, core::ReadFile(path, 1 << 20));
  for (const std::string& raw : core::Split(text, '\n')) {
    std::string line = core::Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    SetEnv(env, line);
  }
  return core::Ok();
}

// pulled: set when the image was not local and has been pulled.
core::Result<cache::ResolvedImage> ResolveOrPull(Cli& cli, cache::ImageStore& store, const std::string& name,
                                                 bool& pulled) {
  auto img = store.Resolve(name);
  if (img.ok() || img.error().code() != core::Code::kNotFound) return img;
  pulled = true;
  XB_ASSIGN(image::Reference ref, image::ParseReference(name));
  std::fprintf(stderr, "Unable to find image '%s' locally\n", ref.Familiar().c_str());
  XB_ASSIGN(auto reg, OpenRegistry(cli));
  XB_ASSIGN(auto got, reg.client->Pull(store, ref, image::HostPlatform(), nullptr));
  return store.Load(got.record);
}

}  // namespace

int RunRun(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.set_stop_at_positional(true);
  f.Bool("detach", 'd', "Run container in background and print container ID");
  f.String("name", 0, "", "Assign a name to the container");
  f.Bool("rm", 0, "Automatically remove the container when it exits");
  f.List("env", 'e', "Set environment variables");
  f.List("env-file", 0, "Read in a file of environment variables");
  f.String("workdir", 'w', "", "Working directory inside the container");
  f.String("user", 'u', "", "Username or UID (format: <name|uid>[:<group|gid>])");
  f.String("entrypoint", 0, "", "Overwrite the default ENTRYPOINT of the image");
  f.String("stop-signal", 0, "", "Signal to stop the container");
  f.String("stop-timeout", 0, "", "Timeout (in seconds) to stop a container");
  f.String("network", 0, exec::kDefaultNetwork, "Connect a container to a network (bridge, host, none, a network)");
  f.String("hostname", 'h', "", "Container host name");
  f.Bool("read-only", 0, "Mount the container's root filesystem as read only");
  // Networks (cmd_run_net.cc).
  f.List("publish", 'p', "Publish a container's port(s) to the host");
  f.Bool("publish-all", 'P', "Publish all exposed ports to random ports");
  f.List("add-host", 0, "Add a custom host-to-IP mapping (host:ip)");
  // -i/-t (exec/pty.h), --device CDI names and --gpus (exec/cdi.h), --runtime (exec/runtimes.h)
  f.Bool("interactive", 'i', "Keep STDIN open even if not attached");
  f.Bool("tty", 't', "Allocate a pseudo-TTY");
  f.Bool("sig-proxy", 0, "Proxy received signals to the process (default true)");  // sig_proxy.h
  f.String("gpus", 0, "", "GPU devices to add to the container ('all' to pass all GPUs)");
  f.String("runtime", 0, "", "Runtime to use for this container");
  AddRunOptionFlags(f);  // volumes, limits, privileges (run_options.h)
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]", args, pos, code, 1, -1)) return code;
  exec::ContainerRecord rec;
  if (f.Changed("stop-timeout")) {
    char* end = nullptr;
    long t = std::strtol(f.GetString("stop-timeout").c_str(), &end, 10);
    if (*end != '\0' || f.GetString("stop-timeout").empty()) {
      return cli.UsageError("run", "invalid argument \"" + f.GetString("stop-timeout") + "\" for \"--stop-timeout\" flag");
    }
    rec.stop_timeout = static_cast<int>(t);
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error(), kExitUsage);
  bool pulled = false;
  auto img = ResolveOrPull(cli, **store, pos[0], pulled);
  if (!img.ok()) return cli.Fail(img.error(), kExitUsage);
  const image::ContainerConfig& cc = img->config.config;

  if (f.Changed("entrypoint")) {
    if (!f.GetString("entrypoint").empty()) rec.entrypoint = {f.GetString("entrypoint")};
  } else if (cc.entrypoint) {
    rec.entrypoint = *cc.entrypoint;
  }
  if (pos.size() > 1) {
    rec.cmd.assign(pos.begin() + 1, pos.end());
  } else if (cc.cmd && !f.Changed("entrypoint")) {
    rec.cmd = *cc.cmd;  // --entrypoint drops the image's CMD, as in Docker
  }
  rec.process.args = rec.entrypoint;
  rec.process.args.insert(rec.process.args.end(), rec.cmd.begin(), rec.cmd.end());
  if (rec.process.args.empty()) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument, "run " + pos[0] + ": no command specified"), kExitUsage);
  }
  rec.process.env = cc.env;
  for (const auto& file : f.GetList("env-file")) {
    if (auto s = ReadEnvFile(file, rec.process.env); !s.ok()) return cli.Fail(s.error(), kExitUsage);
  }
  for (const auto& e : f.GetList("env")) SetEnv(rec.process.env, e);
  rec.process.cwd = f.Changed("workdir") ? f.GetString("workdir") : (cc.working_dir.empty() ? "/" : cc.working_dir);
  rec.process.user = f.Changed("user") ? f.GetString("user") : cc.user;
  rec.image = pos[0];
  rec.image_id = img->record.config.String();
  rec.name = f.GetString("name");
  // Networks (cmd_run_net.cc): --network, -p, -P, --add-host.
  if (auto s = RunNetworkFlags(cli, f, img->config.config, rec); !s.ok()) return cli.Fail(s.error(), kExitUsage);
  rec.hostname = f.GetString("hostname");
  rec.read_only = f.GetBool("read-only");
  rec.auto_remove = f.GetBool("rm");
  // --rm keeps nothing of what it writes to the database; a pulled image is kept.
  if (rec.auto_remove && !pulled) (*store)->db().SkipCheckpointAtClose();
  if (f.Changed("stop-signal")) {
    rec.stop_signal = f.GetString("stop-signal");
  } else if (!cc.stop_signal.empty()) {
    rec.stop_signal = cc.stop_signal;
  }
  // Volumes, limits, privileges (run_options.h).
  if (auto s = ApplyRunOptionFlags(f, cc.volumes, rec); !s.ok()) return cli.Fail(s.error(), kExitUsage);

  // -i/-t, --device, --gpus, --runtime: checked before anything is made.
  rec.open_stdin = f.GetBool("interactive");
  rec.process.terminal = f.GetBool("tty");
  if (rec.open_stdin && rec.process.terminal && !f.GetBool("detach") && !::isatty(STDIN_FILENO)) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument, "the input device is not a TTY"));
  }
  for (const std::string& d : f.GetList("device")) {
    if (exec::IsCdiName(d)) rec.devices.push_back(d);  // host paths: run_options.h
  }
  if (f.Changed("gpus")) {
    auto gpus = exec::GpusToCdiNames(f.GetString("gpus"));
    if (!gpus.ok()) return cli.Fail(gpus.error(), kExitUsage);
    rec.devices.insert(rec.devices.end(), gpus->begin(), gpus->end());
  }
  rec.runtime = f.GetString("runtime");
  if (auto rt = exec::SelectRuntime(cli.ctx().config, rec.runtime); !rt.ok()) return cli.Fail(rt.error(), kExitUsage);
  if (auto cdi = exec::ResolveCdiDevices(exec::CdiSpecDirs(cli.ctx().config), rec.devices); !cdi.ok()) {
    return cli.Fail(cdi.error(), kExitUsage);
  }

  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error(), kExitUsage);
  exec::Snapshotter snaps(**store);
  auto base = snaps.FromImage(*img);
  if (!base.ok()) return cli.Fail(base.error(), kExitUsage);
  if (auto s = (*containers)->Create(rec, *base); !s.ok()) return cli.Fail(s.error(), kExitUsage);

  if (f.GetBool("detach")) {
    int exit_code = kExitOk;
    core::Status started = StartMonitor(cli, rec.id, exit_code);
    if (!started.ok()) return cli.Fail(started.error(), exit_code);
    std::printf("%s\n", rec.id.c_str());
    return kExitOk;
  }
  bool sig_proxy = !f.Changed("sig-proxy") || f.GetBool("sig-proxy");
  std::optional<SignalProxy> proxy;
  if (sig_proxy) {
    proxy.emplace(**containers, rec.id);
  } else {
    struct sigaction sa {};
    sa.sa_handler = OnRunSignal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  auto rc = (*containers)->Run(rec.id, WriteToStdio, sig_proxy ? nullptr : &g_run_cancel, {}, cli.ctx().log,
                               rec.open_stdin ? STDIN_FILENO : -1);  // -i
  if (!rc.ok()) return cli.Fail(rc.error(), exec::StartFailureCode(rc.error()));
  return *rc;
}

}  // namespace xbuild::cli
