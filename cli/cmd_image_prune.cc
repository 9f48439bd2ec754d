// xbuild image prune [-a] [-f]
// Docker's image prune: dangling images (no tag), or with -a every image no container uses,
// are removed, then the blobs nothing references are collected. An image any container (running
// or stopped) was made from is kept, and so is one a running operation holds (its lease makes
// the removal fail, and that image is skipped).
#include <cstdio>
#include <set>

#include "cli/cli.h"

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
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  auto records = (*containers)->List();
  if (!records.ok()) return cli.Fail(records.error());
  std::set<std::string> used;  // config digests of images containers were made from
  for (const auto& r : *records) used.insert(r.image_id);
  auto images = (*store)->List();
  if (!images.ok()) return cli.Fail(images.error());
  int64_t reclaimed = 0;
  std::vector<std::string> lines;
  for (const auto& img : *images) {
    if (used.count(img.record.config.String())) continue;
    if (!all && !img.tags.empty()) continue;
    for (const auto& tag : img.tags) {
      auto r = (*store)->Remove(tag, false);
      if (!r.ok()) continue;
      for (const auto& u : r->untagged) lines.push_back("untagged: " + u);
    }
    auto still = (*store)->Resolve(img.record.digest.String());
    if (!still.ok()) {
      lines.push_back("deleted: " + img.record.config.String());
      continue;
    }
    auto r = (*store)->Remove(img.record.digest.String(), false);  // a leased image is skipped
    if (!r.ok()) continue;
    for (const auto& d : r->deleted) lines.push_back("deleted: " + d.config.String());
  }
  auto freed = (*store)->CollectGarbage();
  if (freed.ok()) reclaimed = *freed;
  if (!lines.empty()) {
    std::printf("Deleted Images:\n");
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
    std::printf("\n");
  }
  std::printf("Total reclaimed space: %s\n", HumanSize(static_cast<double>(reclaimed)).c_str());
  return kExitOk;
}

}  // namespace xbuild::cli
