// xbuild builder prune [-a] [-f] [--keep-storage SIZE] [--filter until=DURATION]
// xbuild buildx prune  (the same, with buildx's output: a table of what went and "Total:")
// Docker's builder prune over the build cache (solver/ops/build_cache.h): without -a only
// dangling cache (no image shares it); never what a build, pull or container in flight holds;
// least recently used first, down to --keep-storage when given.
#include <cstdio>
#include <ctime>

#include "cli/prune.h"
#include "cli/table.h"
#include "core/units.h"
#include "solver/ops/build_cache.h"

namespace xbuild::cli {

namespace {

std::string Ago(int64_t t) {
  if (t <= 0) return "";
  return HumanDuration(static_cast<int64_t>(std::time(nullptr)) - t) + " ago";
}

int Prune(Cli& cli, const std::vector<std::string>& args, bool buildx) {
  std::string command = buildx ? "buildx prune" : "builder prune";
  Flags f;
  f.Bool("all", 'a', "Remove all unused build cache, not just dangling ones");
  f.Bool("force", 'f', "Do not prompt for confirmation");
  f.String("keep-storage", 0, "", "Amount of disk space to keep for cache");
  f.List("filter", 0, "Provide filter values (e.g. \"until=24h\")");
  if (buildx) f.Bool("verbose", 0, "Provide a more verbose output");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, command, command + " [OPTIONS]", args, pos, code, 0, 0)) return code;
  solver::ops::PruneOptions opts;
  opts.all = f.GetBool("all");
  if (!f.GetString("keep-storage").empty()) {
    auto keep = core::ParseByteSize(f.GetString("keep-storage"));
    if (!keep.ok()) return cli.Fail(std::move(keep).error().Context("--keep-storage"), kExitUsage);
    opts.keep_storage = *keep;
  }
  auto until = ParsePruneFilters(f.GetList("filter"), true);
  if (!until.ok()) return cli.Fail(until.error(), kExitUsage);
  opts.unused_before_unix = *until;
  if (!f.GetBool("force") && !Confirm(opts.all ? "WARNING! This will remove all build cache."
                                               : "WARNING! This will remove all dangling build cache.")) {
    return kExitOk;
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  exec::Snapshotter snaps(**store);
  auto r = solver::ops::PruneBuildCache(**store, snaps, opts);
  if (!r.ok()) return cli.Fail(r.error());
  if (buildx) {
    if (!r->deleted.empty()) {
      Table t;
      t.Header({"ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED"});
      for (const auto& e : r->deleted) {
        t.Row({e.id, "true", HumanSize(static_cast<double>(e.size)), Ago(e.last_used_unix)});
      }
      t.Print(stdout);
    }
    std::printf("Total:\t%s\n", HumanSize(static_cast<double>(r->reclaimed)).c_str());
    return kExitOk;
  }
  std::vector<std::string> ids;
  for (const auto& e : r->deleted) ids.push_back(e.id);
  PrintPruned("Deleted build cache objects:", ids);
  std::printf("Total reclaimed space: %s\n", HumanSize(static_cast<double>(r->reclaimed)).c_str());
  return kExitOk;
}

}  // namespace

int RunBuilderPrune(Cli& cli, const std::vector<std::string>& args) { return Prune(cli, args, false); }
int RunBuildxPrune(Cli& cli, const std::vector<std::string>& args) { return Prune(cli, args, true); }

}  // namespace xbuild::cli
