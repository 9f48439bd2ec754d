// xbuild tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]
#include "cli/cli.h"

namespace xbuild::cli {

int RunTag(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "tag", "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", args, pos, code, 2, 2)) return code;
  auto target = image::ParseReference(pos[1]);
  if (!target.ok()) return cli.Fail(target.error());
  if (target->digest) return cli.Fail(core::Error(core::Code::kInvalidArgument, "refusing to create a tag with a digest reference"));
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto img = (*store)->Resolve(pos[0]);
  if (!img.ok()) return cli.Fail(img.error());
  if (auto s = (*store)->Tag(*target, img->record.digest); !s.ok()) return cli.Fail(s.error());
  return kExitOk;
}

}  // namespace xbuild::cli
