// xbuild image prune [-a] [-f]
// Docker's image prune: dangling images (no tag), or with -a every image no container uses,
// are removed, then the blobs nothing references are collected. An image any container (running
// or stopped) was made from is kept, and so is one a running operation holds (its lease makes
// the removal fail, and that image is skipped).
#include <cstdio>

#include "cli/prune.h"

namespace xbuild::cli {

int RunImagePrune(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("all", 'a', "Remove all unused images, not just dangling ones");
  f.Bool("force", 'f', "Do not prompt for confirmation");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "image prune", "image prune [OPTIONS]", args, pos, code, 0, 0)) return code;
  bool all = f.GetBool("all");
  if (!f.GetBool("force") &&
      !Confirm(all ? "WARNING! This will remove all images without at least one container associated to them."
                   : "WARNING! This will remove all dangling images.")) {
    return kExitOk;
  }
  auto pruned = PruneImages(cli, all, 0);
  if (!pruned.ok()) return cli.Fail(pruned.error());
  PrintPruned("Deleted Images:", pruned->lines);
  std::printf("Total reclaimed space: %s\n", HumanSize(static_cast<double>(pruned->reclaimed)).c_str());
  return kExitOk;
}

}  // namespace xbuild::cli
