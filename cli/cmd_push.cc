// xbuild push NAME[:TAG]
#include <cstdio>

#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/registry_util.h"

namespace xbuild::cli {

int RunPush(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("quiet", 'q', "Suppress verbose output");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "push", "push [OPTIONS] NAME[:TAG]", args, pos, code, 1, 1)) return code;
  bool quiet = f.GetBool("quiet");
  auto ref = image::ParseReference(pos[0]);
  if (!ref.ok()) return cli.Fail(ref.error());
  if (ref->digest) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument, "push " + pos[0] + ": pushing by digest is not supported; use a tag"));
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto reg = OpenRegistry(cli);
  if (!reg.ok()) return cli.Fail(reg.error());
  if (!quiet) {
    std::printf("The push refers to repository [%s]\n", ref->Repository().c_str());
    std::fflush(stdout);
  }
  TransferProgress shown(TransferProgress::Mode::kPush, quiet);
  auto progress = [&](const registry::ProgressEvent& ev) { shown.Handle(ev); };
  auto r = reg->client->Push(**store, pos[0], *ref, progress);
  shown.Finish();
  if (!r.ok()) return cli.Fail(r.error());
  if (quiet) {
    std::printf("%s\n", ref->String().c_str());
  } else {
    std::printf("%s: digest: %s size: %lld\n", ref->tag.c_str(), r->digest.String().c_str(),
                static_cast<long long>(r->size));
  }
  return kExitOk;
}

}  // namespace xbuild::cli
