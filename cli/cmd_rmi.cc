// xbuild rmi [-f] IMAGE [IMAGE...]
#include <cstdio>

#include "cli/cli.h"

namespace xbuild::cli {

int RunRmi(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("force", 'f', "Force removal of the image");
  f.Bool("no-prune", 0, "Do not delete untagged parents");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", args, pos, code, 1)) return code;
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  int rc = kExitOk;
  for (auto& name : pos) {
    auto r = (*store)->Remove(name, f.GetBool("force"));
    if (!r.ok()) {
      cli.Fail(r.error());
      rc = kExitError;
      continue;
    }
    for (auto& t : r->untagged) {
      auto ref = image::ParseReference(t);
      std::printf("Untagged: %s\n", ref.ok() ? ref->Familiar().c_str() : t.c_str());
    }
    // Docker prints the image ID (the config digest).
    for (auto& d : r->deleted) std::printf("Deleted: %s\n", d.config.String().c_str());
  }
  return rc;
}

}  // namespace xbuild::cli
