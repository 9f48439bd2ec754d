// xbuild network ls [-q] | create [--subnet CIDR] [-d bridge] [-o KEY=VALUE] NAME | rm NAME... |
// inspect NAME... | prune [-f] [--filter until=...]: xbuild's bridge networks (exec/network.h),
// plus Docker's pseudo-networks host and none in ls.
#include <cstdio>
#include <map>

#include "cli/cli.h"
#include "cli/network_format.h"
#include "cli/prune.h"
#include "cli/table.h"
#include "core/digest.h"
#include "exec/container_net.h"

namespace xbuild::cli {

namespace {

// host and none are modes, not networks: their ids are fixed digests of their names.
std::string PseudoId(const std::string& name) {
  return core::Digest::Of("xbuild network " + name).Hex();
}

}  // namespace

int RunNetworkLs(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("quiet", 'q', "Only display network IDs");
  f.Bool("no-trunc", 0, "Do not truncate the output");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "network ls", "network ls [OPTIONS]", args, pos, code, 0, 0)) return code;
  auto containers = cli.Containers();  // sets up the state root
  if (!containers.ok()) return cli.Fail(containers.error());
  exec::Networks networks(cli.ctx().root);
  auto list = networks.List();
  if (!list.ok()) return cli.Fail(list.error());
  std::vector<std::vector<std::string>> rows;
  for (const exec::NetworkInfo& n : *list) rows.push_back({n.id, n.name, n.driver});
  rows.push_back({PseudoId("host"), "host", "host"});
  rows.push_back({PseudoId("none"), "none", "null"});
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a[1] < b[1]; });
  Table t;
  t.Header({"NETWORK ID", "NAME", "DRIVER", "SCOPE"});
  for (auto& r : rows) {
    std::string id = f.GetBool("no-trunc") ? r[0] : r[0].substr(0, 12);
    if (f.GetBool("quiet")) {
      std::printf("%s\n", id.c_str());
    } else {
      t.Row({id, r[1], r[2], "local"});
    }
  }
  if (!f.GetBool("quiet")) t.Print(stdout);
  return kExitOk;
}

int RunNetworkCreate(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("driver", 'd', "bridge", "Driver to manage the Network");
  f.List("subnet", 0, "Subnet in CIDR format that represents a network segment");
  f.List("opt", 'o', "Set driver specific options (xbuild.host-loopback=true|false, default false)");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "network create", "network create [OPTIONS] NETWORK", args, pos, code, 1, 1)) return code;
  if (f.GetList("subnet").size() > 1) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument, "only one --subnet is supported"), kExitUsage);
  }
  std::map<std::string, std::string> options;
  for (const std::string& opt : f.GetList("opt")) {
    size_t eq = opt.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return cli.Fail(core::Error(core::Code::kInvalidArgument, "invalid option \"" + opt + "\": want KEY=VALUE"), kExitUsage);
    }
    options[opt.substr(0, eq)] = opt.substr(eq + 1);
  }
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error(), kExitUsage);
  exec::Networks networks(cli.ctx().root);
  std::string subnet = f.GetList("subnet").empty() ? "" : f.GetList("subnet")[0];
  if (pos[0] == exec::kDefaultNetwork) (void)networks.Get(pos[0]);  // it exists, made or not
  auto n = networks.Create(pos[0], subnet, f.GetString("driver"), options);
  if (!n.ok()) return cli.Fail(n.error(), kExitUsage);
  std::printf("%s\n", n->id.c_str());
  return kExitOk;
}

int RunNetworkRm(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("force", 'f', "Do not error if the network does not exist");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "network rm", "network rm NETWORK [NETWORK...]", args, pos, code, 1)) return code;
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  exec::Networks networks(cli.ctx().root);
  int rc = kExitOk;
  for (const std::string& ref : pos) {
    if (ref == "host" || ref == "none") {
      rc = cli.Fail(core::Error(core::Code::kFailedPrecondition, ref + " is a pre-defined network and cannot be removed"));
      continue;
    }
    auto n = networks.Get(ref);
    if (!n.ok() && n.error().code() == core::Code::kNotFound && f.GetBool("force")) continue;
    core::Status s = n.ok() ? core::Ok() : core::Status(n.error());
    std::vector<std::string> attached;
    if (s.ok()) {
      auto names = exec::AttachedContainers(**containers, n->name);
      if (names.ok()) attached = std::move(*names);
      if (!names.ok()) s = names.error();
    }
    if (s.ok()) s = networks.Remove(*n, attached);
    if (!s.ok()) {
      rc = cli.Fail(s.error());
      continue;
    }
    std::printf("%s\n", ref.c_str());
  }
  return rc;
}

int RunNetworkInspect(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "network inspect", "network inspect NETWORK [NETWORK...]", args, pos, code, 1)) return code;
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  exec::Networks networks(cli.ctx().root);
  auto all = (*containers)->List();
  if (!all.ok()) return cli.Fail(all.error());
  core::OrderedJson out = core::OrderedJson::array();
  int rc = kExitOk;
  for (const std::string& ref : pos) {
    auto n = networks.Get(ref);
    if (!n.ok()) {
      rc = cli.Fail(n.error());
      continue;
    }
    std::vector<exec::ContainerRecord> attached;
    for (const exec::ContainerRecord& r : *all) {
      if (r.net.mode == n->name && !r.net.ip.empty()) attached.push_back(r);
    }
    out.push_back(InspectNetworkJson(*n, attached));
  }
  std::printf("%s\n", out.dump(4).c_str());
  return rc;
}

int RunNetworkPrune(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("force", 'f', "Do not prompt for confirmation");
  f.List("filter", 0, "Provide filter values (e.g. \"until=<timestamp>\")");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "network prune", "network prune [OPTIONS]", args, pos, code, 0, 0)) return code;
  auto until = ParsePruneFilters(f.GetList("filter"), false);
  if (!until.ok()) return cli.Fail(until.error(), kExitUsage);
  if (!f.GetBool("force") &&
      !Confirm("WARNING! This will remove all custom networks not used by at least one container.\n")) {
    return kExitOk;
  }
  auto pruned = PruneNetworks(cli, *until);
  if (!pruned.ok()) return cli.Fail(pruned.error());
  PrintPruned("Deleted Networks:", pruned->lines);
  return kExitOk;
}

int RunNetwork(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "network", "network COMMAND", args, pos, code)) return code;
  std::fprintf(pos.empty() ? stdout : stderr,
               "Usage:  xbuild network COMMAND\n\nManage networks\n\nCommands:\n"
               "  create      Create a network\n  inspect     Display detailed information on one or more networks\n"
               "  ls          List networks\n  prune       Remove all unused networks\n"
               "  rm          Remove one or more networks\n");
  if (pos.empty()) return kExitOk;
  std::fprintf(stderr, "\nxbuild: 'network %s' is not an xbuild command.\n", pos[0].c_str());
  return kExitUsage;
}

}  // namespace xbuild::cli
