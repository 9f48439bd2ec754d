#include "cli/container_format.h"

#include <algorithm>
#include <ctime>

#include "cli/cli.h"
#include "cli/network_format.h"

namespace xbuild::cli {

namespace {

constexpr size_t kCommandWidth = 20;
constexpr const char* kZeroTime = "0001-01-01T00:00:00Z";

// Go's strconv.Quote for the printable ASCII that commands are made of.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Cuts to `width` characters (UTF-8 aware), the last one "…".
std::string Ellipsis(const std::string& s, size_t width) {
  size_t chars = 0, cut = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (chars == width - 1) cut = i;
    ++chars;
  }
  return chars <= width ? s : s.substr(0, cut) + "…";
}

std::string TimeOrZero(const std::string& t) { return t.empty() ? kZeroTime : t; }

// ps's LocalVolumes and Mounts (volume names, bind sources), as Docker's.
size_t LocalVolumes(const exec::ContainerRecord& r) {
  return static_cast<size_t>(std::count_if(r.mounts.begin(), r.mounts.end(), [](const exec::MountSpec& m) { return m.type == "volume"; }));
}

std::string MountNames(const exec::ContainerRecord& r) {
  std::string out;
  for (const exec::MountSpec& m : r.mounts) {
    if (m.type != "tmpfs") out += (out.empty() ? "" : ",") + m.source;
  }
  return out;
}

}  // namespace

std::string ContainerCommand(const exec::ContainerRecord& r, bool trunc) {
  std::string cmd;
  for (const std::string& a : r.process.args) cmd += (cmd.empty() ? "" : " ") + a;
  return Quote(trunc ? Ellipsis(cmd, kCommandWidth) : cmd);
}

std::string ContainerStatus(const exec::ContainerRecord& r, int64_t now) {
  if (r.status == exec::kStatusRunning) return "Up " + HumanDuration(now - ParseTime(r.started_at));
  if (r.status == exec::kStatusExited) {
    return "Exited (" + std::to_string(r.exit_code) + ") " + HumanDuration(now - ParseTime(r.finished_at)) + " ago";
  }
  return "Created";
}

core::Json PsJson(const exec::ContainerRecord& r, int64_t now, bool trunc) {
  time_t created = static_cast<time_t>(ParseTime(r.created));
  struct tm tm;
  ::gmtime_r(&created, &tm);
  char created_at[64];
  std::strftime(created_at, sizeof created_at, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
  return core::Json{{"Command", ContainerCommand(r, trunc)},
                    {"CreatedAt", created_at},
                    {"ID", trunc ? r.id.substr(0, 12) : r.id},
                    {"Image", r.image},
                    {"Labels", ""},
                    {"LocalVolumes", std::to_string(LocalVolumes(r))},
                    {"Mounts", MountNames(r)},
                    {"Names", r.name},
                    {"Networks", r.net.mode},
                    {"Ports", PortsColumn(r)},
                    {"RunningFor", HumanDuration(now - ParseTime(r.created)) + " ago"},
                    {"Size", "0B"},
                    {"State", r.status},
                    {"Status", ContainerStatus(r, now)}};
}

core::OrderedJson InspectContainerJson(const exec::ContainerRecord& r) {
  core::OrderedJson state;
  state["Status"] = r.status;
  state["Running"] = r.status == exec::kStatusRunning;
  state["Paused"] = false;
  state["Restarting"] = false;
  state["OOMKilled"] = r.oom_killed;
  state["Dead"] = false;
  state["Pid"] = r.pid;
  state["ExitCode"] = r.exit_code;
  state["Error"] = r.error;
  state["StartedAt"] = TimeOrZero(r.started_at);
  state["FinishedAt"] = TimeOrZero(r.finished_at);
  core::OrderedJson config;
  config["Hostname"] = r.hostname.empty() ? r.id.substr(0, 12) : r.hostname;
  config["User"] = r.process.user;
  config["Env"] = r.process.env;
  config["Cmd"] = r.cmd.empty() ? core::OrderedJson(nullptr) : core::OrderedJson(r.cmd);
  config["Image"] = r.image;
  config["WorkingDir"] = r.process.cwd == "/" ? "" : r.process.cwd;
  config["Entrypoint"] = r.entrypoint.empty() ? core::OrderedJson(nullptr) : core::OrderedJson(r.entrypoint);
  config["StopSignal"] = r.stop_signal;
  config["StopTimeout"] = r.stop_timeout;
  // -i/-t
  config["Tty"] = r.process.terminal;
  config["OpenStdin"] = r.open_stdin;
  core::OrderedJson host;
  host["NetworkMode"] = r.net.mode;
  host["AutoRemove"] = r.auto_remove;
  host["ReadonlyRootfs"] = r.read_only;
  // --runtime, --device CDI names and --gpus (Docker records both as a "cdi" device request)
  host["Runtime"] = r.runtime.empty() ? "runc" : r.runtime;
  host["DeviceRequests"] = r.devices.empty() ? core::OrderedJson(nullptr)
                                             : core::OrderedJson::array({{{"Driver", "cdi"}, {"DeviceIDs", r.devices}}});
  // Volumes, limits and privileges (run_options.h).
  const exec::HostOptions& ho = r.host;
  host["Privileged"] = ho.privileged;
  host["CapAdd"] = ho.cap_add.empty() ? core::OrderedJson(nullptr) : core::OrderedJson(ho.cap_add);
  host["CapDrop"] = ho.cap_drop.empty() ? core::OrderedJson(nullptr) : core::OrderedJson(ho.cap_drop);
  host["Init"] = ho.init;
  host["Memory"] = ho.resources.memory;
  host["MemorySwap"] = ho.resources.memory_swap;
  host["NanoCpus"] = ho.resources.nano_cpus;
  host["CpuShares"] = ho.resources.cpu_shares;
  host["PidsLimit"] = ho.resources.pids_limit == 0 ? core::OrderedJson(nullptr) : core::OrderedJson(ho.resources.pids_limit);
  core::OrderedJson j;
  j["Id"] = r.id;
  j["Created"] = r.created;
  j["Path"] = r.process.args.empty() ? "" : r.process.args[0];
  j["Args"] = r.process.args.size() > 1 ? std::vector<std::string>(r.process.args.begin() + 1, r.process.args.end())
                                        : std::vector<std::string>();
  j["State"] = state;
  j["Image"] = r.image_id;
  j["Name"] = "/" + r.name;
  j["Driver"] = "overlay";
  j["HostConfig"] = host;
  j["Config"] = config;
  // Networks: HostConfig.PortBindings/ExtraHosts and NetworkSettings.
  AddNetworkSettings(r, j);
  return j;
}

}  // namespace xbuild::cli
