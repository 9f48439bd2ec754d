// xbuild volume create|ls|inspect|rm|prune: local volumes (exec/volume.h), as Docker's.
#include <cstdio>

#include "cli/cli.h"
#include "cli/table.h"
#include "core/json.h"
#include "exec/volume.h"

namespace xbuild::cli {

namespace {

int VolumeCreate(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("name", 0, "", "Specify volume name");
  f.String("driver", 'd', "local", "Specify volume driver name");
  f.List("label", 'l', "Set metadata for a volume");
  f.List("opt", 'o', "Set driver specific options (none are supported)");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "volume create", "volume create [OPTIONS] [VOLUME]", args, pos, code, 0, 1)) return code;
  if (auto s = cli.Setup(); !s.ok()) return cli.Fail(s.error());
  std::string name = f.GetString("name");
  if (!pos.empty()) {
    if (!name.empty() && name != pos[0]) {
      return cli.UsageError("volume create", "conflicting options: either specify --name or provide positional arg, not both");
    }
    name = pos[0];
  }
  if (f.GetString("driver") != "local") {
    return cli.Fail(core::Error(core::Code::kInvalidArgument, "plugin \"" + f.GetString("driver") + "\" not found: only the local driver is available"));
  }
  if (!f.GetList("opt").empty()) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument, "invalid option \"" + f.GetList("opt")[0] + "\": the local driver takes no options here"));
  }
  std::map<std::string, std::string> labels;
  for (const std::string& l : f.GetList("label")) {
    size_t eq = l.find('=');
    labels[l.substr(0, eq)] = eq == std::string::npos ? "" : l.substr(eq + 1);
  }
  if (!name.empty()) {
    if (auto s = exec::Volumes::ValidateName(name); !s.ok()) return cli.Fail(s.error());
  }
  auto v = exec::Volumes(cli.ctx().root).Create(name, labels, name.empty());
  if (!v.ok()) return cli.Fail(v.error());
  std::printf("%s\n", v->name.c_str());
  return kExitOk;
}

int VolumeLs(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("quiet", 'q', "Only display volume names");
  f.List("filter", 'f', "Provide filter values (dangling=true|false, name=, label=)");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "volume ls", "volume ls [OPTIONS]", args, pos, code, 0, 0)) return code;
  if (auto s = cli.Setup(); !s.ok()) return cli.Fail(s.error());
  exec::Volumes volumes(cli.ctx().root);
  auto list = volumes.List();
  if (!list.ok()) return cli.Fail(list.error());
  Table table;
  table.Header({"DRIVER", "VOLUME NAME"});
  for (const exec::VolumeInfo& v : *list) {
    bool keep = true;
    for (const std::string& filter : f.GetList("filter")) {
      size_t eq = filter.find('=');
      std::string key = filter.substr(0, eq), val = eq == std::string::npos ? "" : filter.substr(eq + 1);
      if (key == "dangling") {
        bool dangling = volumes.Users(v.name).empty();
        keep = keep && (dangling == (val == "true" || val == "1"));
      } else if (key == "name") {
        keep = keep && v.name.find(val) != std::string::npos;
      } else if (key == "label") {
        size_t leq = val.find('=');
        auto it = v.labels.find(val.substr(0, leq));
        keep = keep && it != v.labels.end() && (leq == std::string::npos || it->second == val.substr(leq + 1));
      } else if (key == "driver") {
        keep = keep && val == v.driver;
      } else {
        return cli.UsageError("volume ls", "invalid filter '" + filter + "'");
      }
    }
    if (!keep) continue;
    if (f.GetBool("quiet")) {
      std::printf("%s\n", v.name.c_str());
    } else {
      table.Row({v.driver, v.name});
    }
  }
  if (!f.GetBool("quiet")) table.Print(stdout);
  return kExitOk;
}

int VolumeInspect(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("format", 0, "", "Format output using a custom template (only json is supported)");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "volume inspect", "volume inspect [OPTIONS] VOLUME [VOLUME...]", args, pos, code, 1)) return code;
  if (auto s = cli.Setup(); !s.ok()) return cli.Fail(s.error());
  exec::Volumes volumes(cli.ctx().root);
  core::OrderedJson all = core::OrderedJson::array();
  int rc = kExitOk;
  for (const std::string& name : pos) {
    auto v = volumes.Get(name);
    if (!v.ok()) {
      std::fprintf(stderr, "Error: No such volume: %s\n", name.c_str());
      rc = kExitError;
      continue;
    }
    core::OrderedJson j;
    j["CreatedAt"] = v->created;
    j["Driver"] = v->driver;
    j["Labels"] = v->labels;
    j["Mountpoint"] = v->mountpoint;
    j["Name"] = v->name;
    j["Options"] = core::OrderedJson::object();
    j["Scope"] = "local";
    all.push_back(j);
  }
  std::printf("%s\n", all.dump(4).c_str());
  return rc;
}

int VolumeRm(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("force", 'f', "Force the removal of one or more volumes");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "volume rm", "volume rm [OPTIONS] VOLUME [VOLUME...]", args, pos, code, 1)) return code;
  if (auto s = cli.Setup(); !s.ok()) return cli.Fail(s.error());
  exec::Volumes volumes(cli.ctx().root);
  int rc = kExitOk;
  for (const std::string& name : pos) {
    if (auto s = volumes.Remove(name, f.GetBool("force")); !s.ok()) {
      rc = cli.Fail(s.error());
      continue;
    }
    std::printf("%s\n", name.c_str());
  }
  return rc;
}

int VolumePrune(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("all", 'a', "Remove all unused volumes, not just anonymous ones");
  f.Bool("force", 'f', "Do not prompt for confirmation");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "volume prune", "volume prune [OPTIONS]", args, pos, code, 0, 0)) return code;
  if (auto s = cli.Setup(); !s.ok()) return cli.Fail(s.error());
  bool all = f.GetBool("all");
  if (!f.GetBool("force") && !Confirm(all ? "WARNING! This will remove all local volumes not used by at least one container."
                                          : "WARNING! This will remove anonymous local volumes not used by at least one container.")) {
    return kExitOk;
  }
  auto pruned = exec::Volumes(cli.ctx().root).Prune(all);
  if (!pruned.ok()) return cli.Fail(pruned.error());
  uint64_t reclaimed = 0;
  if (!pruned->empty()) std::printf("Deleted Volumes:\n");
  for (const exec::PrunedVolume& p : *pruned) {
    std::printf("%s\n", p.name.c_str());
    reclaimed += p.bytes;
  }
  if (!pruned->empty()) std::printf("\n");
  std::printf("Total reclaimed space: %s\n", HumanSize(static_cast<double>(reclaimed)).c_str());
  return kExitOk;
}

}  // namespace

int RunVolume(Cli& cli, const std::vector<std::string>& args) {
  static const std::pair<const char*, int (*)(Cli&, const std::vector<std::string>&)> kSub[] = {
      {"create", VolumeCreate}, {"ls", VolumeLs},  {"list", VolumeLs},     {"inspect", VolumeInspect},
      {"rm", VolumeRm},         {"remove", VolumeRm}, {"prune", VolumePrune},
  };
  // Global flags (--root ...) come first, moved there by main; the subcommand is the first
  // argument that is not one of them.
  for (size_t i = 0; i < args.size(); ++i) {
    for (const auto& [name, run] : kSub) {
      if (args[i] != name) continue;
      std::vector<std::string> rest(args.begin(), args.begin() + static_cast<long>(i));
      rest.insert(rest.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      return run(cli, rest);
    }
  }
  std::fprintf(stderr,
               "Usage:  xbuild volume COMMAND\n\nManage volumes\n\nCommands:\n"
               "  create      Create a volume\n  inspect     Display detailed information on one or more volumes\n"
               "  ls          List volumes\n  prune       Remove unused local volumes\n"
               "  rm          Remove one or more volumes\n");
  return kExitUsage;
}

}  // namespace xbuild::cli
