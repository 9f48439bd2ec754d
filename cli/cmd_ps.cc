// xbuild ps [-a] [-q] [--no-trunc] [--filter KEY=VALUE] [--format table|json|TEMPLATE]: the kept
// containers, in Docker's columns and words ("Up 3 seconds", "Exited (0) 5 seconds ago").
#include <cstdio>
#include <ctime>
#include <map>

#include "cli/cli.h"
#include "cli/container_format.h"
#include "cli/network_format.h"
#include "cli/table.h"
#include "cli/template.h"

namespace xbuild::cli {

namespace {

// Docker's filters: values of one key are alternatives, different keys must all match.
core::Result<std::multimap<std::string, std::string>> ParseFilters(const std::vector<std::string>& specs) {
  std::multimap<std::string, std::string> out;
  for (const std::string& s : specs) {
    size_t eq = s.find('=');
    std::string key = s.substr(0, eq);
    if (eq == std::string::npos || (key != "status" && key != "name" && key != "id")) {
      return core::Error(core::Code::kInvalidArgument, "invalid filter '" + s + "': want status=, name= or id=");
    }
    out.emplace(key, s.substr(eq + 1));
  }
  return out;
}

bool Matches(const exec::ContainerRecord& r, const std::multimap<std::string, std::string>& filters) {
  for (const char* key : {"status", "name", "id"}) {
    auto [b, e] = filters.equal_range(key);
    if (b == e) continue;
    bool any = false;
    for (auto it = b; it != e; ++it) {
      const std::string& v = it->second;
      any |= std::string(key) == "status" ? r.status == v
             : std::string(key) == "name" ? r.name.find(v) != std::string::npos
                                          : r.id.starts_with(v);
    }
    if (!any) return false;
  }
  return true;
}

}  // namespace

int RunPs(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("all", 'a', "Show all containers (default shows just running)");
  f.Bool("quiet", 'q', "Only display container IDs");
  f.Bool("no-trunc", 0, "Don't truncate output");
  f.List("filter", 'f', "Filter output based on conditions provided (status=, name=, id=)");
  f.String("format", 0, "table", "Format output: table, json, or a Go template");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "ps", "ps [OPTIONS]", args, pos, code, 0, 0)) return code;
  auto filters = ParseFilters(f.GetList("filter"));
  if (!filters.ok()) return cli.UsageError("ps", filters.error().message());
  const std::string& format = f.GetString("format");
  Template tmpl;
  if (format != "table" && format != "json") {
    auto t = Template::Parse(format);
    if (!t.ok()) return cli.UsageError("ps", t.error().message());
    tmpl = std::move(t).value();
  }
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  auto list = (*containers)->List();
  if (!list.ok()) return cli.Fail(list.error());
  bool trunc = !f.GetBool("no-trunc");
  bool all = f.GetBool("all") || filters->count("status") > 0;
  int64_t now = std::time(nullptr);
  Table table;
  table.Header({"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"});
  for (const exec::ContainerRecord& r : *list) {
    if ((!all && r.status != exec::kStatusRunning) || !Matches(r, *filters)) continue;
    std::string id = trunc ? r.id.substr(0, 12) : r.id;
    if (f.GetBool("quiet")) {
      std::printf("%s\n", id.c_str());
      continue;
    }
    if (format == "table") {
      table.Row({id, r.image, ContainerCommand(r, trunc), HumanDuration(now - ParseTime(r.created)) + " ago",
                 ContainerStatus(r, now), PortsColumn(r), r.name});
      continue;
    }
    core::Json j = PsJson(r, now, trunc);
    if (format == "json") {
      std::printf("%s\n", j.dump().c_str());
      continue;
    }
    auto out = tmpl.Execute(j);
    if (!out.ok()) return cli.Fail(out.error());
    std::printf("%s\n", out->c_str());
  }
  if (format == "table" && !f.GetBool("quiet")) table.Print(stdout);
  return kExitOk;
}

}  // namespace xbuild::cli
