// xbuild manifest inspect NAME[:TAG|@DIGEST]: the registry's manifest or index, indented.
#include <cstdio>

#include "cli/cli.h"
#include "cli/registry_util.h"
#include "core/json.h"

namespace xbuild::cli {

int RunManifest(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "manifest", "manifest inspect NAME[:TAG|@DIGEST]", args, pos, code, 2, 2)) {
    return code;
  }
  if (pos[0] != "inspect") return cli.UsageError("manifest", "unknown subcommand " + pos[0] + " (only inspect)");
  auto ref = image::ParseReference(pos[1]);
  if (!ref.ok()) return cli.Fail(ref.error());
  auto reg = OpenRegistry(cli);
  if (!reg.ok()) return cli.Fail(reg.error());
  auto m = reg->client->GetManifest(*ref);
  if (!m.ok()) return cli.Fail(m.error());
  auto j = core::OrderedJson::parse(m->bytes, nullptr, false);
  if (j.is_discarded()) {
    std::fwrite(m->bytes.data(), 1, m->bytes.size(), stdout);
    std::printf("\n");
  } else {
    std::printf("%s\n", j.dump(3).c_str());
  }
  return kExitOk;
}

}  // namespace xbuild::cli
