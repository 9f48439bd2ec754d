// xbuild load [-i FILE] [-q]
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "cache/archive.h"
#include "cli/cli.h"
#include "core/fs.h"

namespace xbuild::cli {

int RunLoad(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("input", 'i', "", "Read from tar archive file, instead of STDIN");
  f.Bool("quiet", 'q', "Suppress the load output");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "load", "load [OPTIONS]", args, pos, code, 0, 0)) return code;
  core::UniqueFd owned;
  int fd = 0;
  if (!f.GetString("input").empty()) {
    auto r = core::Open(f.GetString("input"), O_RDONLY);
    if (!r.ok()) return cli.Fail(r.error());
    owned = std::move(r).value();
    fd = owned.get();
  } else if (::isatty(0)) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument,
                                "requested load from stdin, but stdin is empty (use -i FILE)"));
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto loaded = cache::LoadImages(**store, fd);
  if (!loaded.ok()) {
    std::string src = f.GetString("input").empty() ? "stdin" : f.GetString("input");
    return cli.Fail(std::move(loaded).error().Context("load " + src));
  }
  if (f.GetBool("quiet")) return kExitOk;
  for (auto& li : *loaded) {
    if (li.tags.empty()) std::printf("Loaded image ID: %s\n", li.config.String().c_str());
    for (auto& t : li.tags) {
      auto ref = image::ParseReference(t);
      std::printf("Loaded image: %s\n", ref.ok() ? ref->Familiar().c_str() : t.c_str());
    }
  }
  return kExitOk;
}

}  // namespace xbuild::cli
