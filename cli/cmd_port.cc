// xbuild port CONTAINER [PRIVATE_PORT[/PROTO]]: the published ports of a running container,
// as Docker prints them ("80/tcp -> 127.0.0.1:8080"; with a port given, only "127.0.0.1:8080").
#include <cstdio>

#include "cli/cli.h"

namespace xbuild::cli {

int RunPort(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "port", "port CONTAINER [PRIVATE_PORT[/PROTO]]", args, pos, code, 1, 2)) return code;
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  auto r = (*containers)->Find(pos[0]);
  if (!r.ok()) return cli.Fail(r.error());
  if (pos.size() == 1) {
    for (const exec::PortMapping& p : r->net.published) std::printf("%s\n", exec::PortLine(p).c_str());
    return kExitOk;
  }
  auto want = exec::ParseExposed(pos[1]);
  if (!want.ok()) return cli.Fail(want.error());
  bool found = false;
  for (const exec::PortMapping& p : r->net.published) {
    if (exec::PortKey(p) != exec::PortKey(*want)) continue;
    std::string line = exec::PortLine(p);
    std::printf("%s\n", line.substr(line.find(" -> ") + 4).c_str());
    found = true;
  }
  if (found) return kExitOk;
  return cli.Fail(core::Error(core::Code::kNotFound,
                              "No public port '" + exec::PortKey(*want) + "' published for " + pos[0]));
}

}  // namespace xbuild::cli
