#include "cli/run_net.h"

#include <cstdio>

#include "exec/etc_files.h"

namespace xbuild::cli {

core::Status RunNetworkFlags(Cli& cli, const Flags& f, const image::ContainerConfig& image,
                             exec::ContainerRecord& rec) {
  std::string mode = f.GetString("network");
  if (mode == "default") mode = exec::kDefaultNetwork;
  std::vector<exec::PortMapping> ports;
  for (const std::string& spec : f.GetList("publish")) {
    XB_ASSIGN(exec::PortMapping p, exec::ParsePublish(spec));
    ports.push_back(p);
  }
  if (f.GetBool("publish-all")) {
    for (const std::string& exposed : image.exposed_ports) {
      XB_ASSIGN(exec::PortMapping p, exec::ParseExposed(exposed));
      bool taken = false;
      for (const exec::PortMapping& q : ports) taken = taken || exec::PortKey(q) == exec::PortKey(p);
      if (!taken) ports.push_back(p);
    }
  }
  XB_TRY(exec::MakeHostsFile("", f.GetList("add-host")));  // the same check the run makes
  if (mode == "none" && !ports.empty()) {
    return core::Error(core::Code::kInvalidArgument, "conflicting options: port publishing and the container type network mode");
  }
  if (mode == "host" && !ports.empty()) {
    std::fprintf(stderr, "WARNING: Published ports are discarded when using host network mode\n");
    ports.clear();
  }
  if (exec::IsNetworkMode(mode)) {
    exec::Networks networks(cli.ctx().root);
    XB_ASSIGN(exec::NetworkInfo net, networks.Get(mode));
    mode = net.name;  // an id prefix names it too
    rec.network = exec::Network::kBridge;
  } else {
    rec.network = mode == "none" ? exec::Network::kNone : exec::Network::kHost;
  }
  rec.net.mode = mode;
  rec.net.ports = std::move(ports);
  rec.net.extra_hosts = f.GetList("add-host");
  return core::Ok();
}

}  // namespace xbuild::cli
