// xbuild system df [-v]: Docker's disk usage table (images, containers, local volumes, build
// cache), with -v one table per type.
// xbuild system prune [-a] [-f] [--filter until=...]: stopped containers, dangling images (every
// unused one with -a), dangling build cache (all of it with -a), then the blobs nothing
// references; with --volumes, unused volumes too (anonymous ones; every unused one with -a).
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "cli/container_format.h"
#include "cli/prune.h"
#include "cli/table.h"
#include "core/fs.h"
#include "exec/volume.h"
#include "solver/ops/build_cache.h"

namespace xbuild::cli {

namespace {

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string Ago(int64_t t) { return t > 0 ? HumanDuration(Now() - t) + " ago" : ""; }

// "1.2MB (70%)", as Docker's df shows a reclaimable share.
std::string WithPercent(int64_t reclaimable, int64_t total) {
  std::string s = HumanSize(static_cast<double>(reclaimable));
  if (total > 0) s += " (" + std::to_string(reclaimable * 100 / total) + "%)";
  return s;
}

// The blobs an image is made of (manifest, config, layers) with their sizes.
std::map<std::string, int64_t> ImageBlobs(const cache::ResolvedImage& img) {
  std::map<std::string, int64_t> out;
  out[img.record.digest.String()] = img.record.size;
  out[img.manifest.config.digest.String()] = img.manifest.config.size;
  for (const auto& l : img.manifest.layers) out[l.digest.String()] = l.size;
  return out;
}

struct Usage {
  std::vector<cache::ResolvedImage> images;
  std::vector<exec::ContainerRecord> containers;
  std::map<std::string, int64_t> container_size;  // id -> writable layer bytes
  std::vector<solver::ops::CacheEntry> cache;
  std::vector<exec::VolumeUsage> volumes;
};

core::Result<Usage> Measure(Cli& cli) {
  Usage u;
  XB_ASSIGN(cache::ImageStore * store, cli.Store());
  XB_ASSIGN(exec::Containers * containers, cli.Containers());
  XB_ASSIGN(u.images, store->List());
  XB_ASSIGN(u.containers, containers->List());
  exec::Snapshotter snaps(*store);
  for (const auto& c : u.containers) {
    u.container_size[c.id] = c.snapshot.empty() ? 0 : static_cast<int64_t>(core::DiskUsage(snaps.FsDir(c.snapshot)));
  }
  XB_ASSIGN(u.cache, solver::ops::ListBuildCache(*store, snaps));
  XB_ASSIGN(u.volumes, exec::Volumes(cli.ctx().root).Usage());
  return u;
}

void PrintVerbose(const Usage& u, const std::map<std::string, int>& containers_of, const std::map<std::string, int>& blob_users) {
  std::printf("Images space usage:\n\n");
  Table images;
  images.Header({"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"});
  for (const auto& img : u.images) {
    int64_t size = 0, shared = 0;
    for (const auto& [d, n] : ImageBlobs(img)) {
      size += n;
      if (blob_users.at(d) > 1) shared += n;
    }
    auto it = containers_of.find(img.record.config.String());
    std::vector<std::string> cells = {"<none>", "<none>", img.record.config.Short(), Ago(ParseTime(img.config.created)),
                                      HumanSize(static_cast<double>(size)), HumanSize(static_cast<double>(shared)),
                                      HumanSize(static_cast<double>(size - shared)),
                                      std::to_string(it == containers_of.end() ? 0 : it->second)};
    if (img.tags.empty()) images.Row(cells);
    for (const auto& t : img.tags) {
      auto ref = image::ParseReference(t);
      if (!ref.ok()) continue;
      cells[0] = ref->FamiliarRepository();
      cells[1] = ref->tag;
      images.Row(cells);
    }
  }
  images.Print(stdout);

  std::printf("\nContainers space usage:\n\n");
  Table containers;
  containers.Header({"CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"});
  for (const auto& c : u.containers) {
    containers.Row({c.id.substr(0, 12), c.image, ContainerCommand(c, true), "0",
                    HumanSize(static_cast<double>(u.container_size.at(c.id))), Ago(ParseTime(c.created)),
                    ContainerStatus(c, Now()), c.name});
  }
  containers.Print(stdout);

  std::printf("\nLocal Volumes space usage:\n\n");
  Table volumes;
  volumes.Header({"VOLUME NAME", "LINKS", "SIZE"});
  for (const auto& v : u.volumes) {
    volumes.Row({v.name, std::to_string(v.ref_count), HumanSize(static_cast<double>(v.size))});
  }
  volumes.Print(stdout);

  int64_t cache_size = 0;
  for (const auto& e : u.cache) cache_size += e.shared ? 0 : e.size;
  std::printf("\nBuild cache usage: %s\n\n", HumanSize(static_cast<double>(cache_size)).c_str());
  Table cache;
  cache.Header({"CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"});
  for (const auto& e : u.cache) {
    cache.Row({e.id, e.type, HumanSize(static_cast<double>(e.size)), Ago(e.created_unix), Ago(e.last_used_unix),
               std::to_string(e.usage_count), e.shared ? "true" : "false"});
  }
  cache.Print(stdout);
}

}  // namespace

int RunSystemDf(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("verbose", 'v', "Show detailed information on space usage");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "system df", "system df [OPTIONS]", args, pos, code, 0, 0)) return code;
  auto u = Measure(cli);
  if (!u.ok()) return cli.Fail(u.error());

  std::map<std::string, int> containers_of;  // image ID -> containers made from it
  for (const auto& c : u->containers) containers_of[c.image_id]++;
  std::map<std::string, int> blob_users;      // blob -> images made of it
  std::map<std::string, int64_t> all_blobs, active_blobs;
  for (const auto& img : u->images) {
    bool active = containers_of.count(img.record.config.String()) > 0;
    for (const auto& [d, n] : ImageBlobs(img)) {
      blob_users[d]++;
      all_blobs[d] = n;
      if (active) active_blobs[d] = n;
    }
  }
  if (f.GetBool("verbose")) {
    PrintVerbose(*u, containers_of, blob_users);
    return kExitOk;
  }

  int64_t images_size = 0, images_active_size = 0;
  for (const auto& [d, n] : all_blobs) images_size += n;
  for (const auto& [d, n] : active_blobs) images_active_size += n;
  size_t active_images = 0;
  for (const auto& img : u->images) active_images += containers_of.count(img.record.config.String()) ? 1 : 0;

  int64_t containers_size = 0, containers_reclaimable = 0;
  size_t running = 0;
  for (const auto& c : u->containers) {
    int64_t n = u->container_size.at(c.id);
    containers_size += n;
    if (c.status == exec::kStatusRunning) {
      ++running;
    } else {
      containers_reclaimable += n;
    }
  }

  int64_t cache_size = 0, cache_in_use = 0;
  size_t cache_active = 0;
  for (const auto& e : u->cache) {
    cache_active += e.in_use ? 1 : 0;
    if (e.shared) continue;
    cache_size += e.size;
    if (e.in_use) cache_in_use += e.size;
  }

  Table t;
  t.Header({"TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"});
  t.Row({"Images", std::to_string(u->images.size()), std::to_string(active_images),
         HumanSize(static_cast<double>(images_size)), WithPercent(images_size - images_active_size, images_size)});
  t.Row({"Containers", std::to_string(u->containers.size()), std::to_string(running),
         HumanSize(static_cast<double>(containers_size)), WithPercent(containers_reclaimable, containers_size)});
  int64_t volumes_size = 0, volumes_unused = 0;
  size_t volumes_active = 0;
  for (const auto& v : u->volumes) {
    volumes_size += static_cast<int64_t>(v.size);
    if (v.ref_count > 0) {
      ++volumes_active;
    } else {
      volumes_unused += static_cast<int64_t>(v.size);
    }
  }
  t.Row({"Local Volumes", std::to_string(u->volumes.size()), std::to_string(volumes_active),
         HumanSize(static_cast<double>(volumes_size)), WithPercent(volumes_unused, volumes_size)});
  t.Row({"Build Cache", std::to_string(u->cache.size()), std::to_string(cache_active),
         HumanSize(static_cast<double>(cache_size)), HumanSize(static_cast<double>(cache_size - cache_in_use))});
  t.Print(stdout);
  return kExitOk;
}

int RunSystemPrune(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("all", 'a', "Remove all unused images not just dangling ones");
  f.Bool("force", 'f', "Do not prompt for confirmation");
  f.List("filter", 0, "Provide filter values (e.g. \"until=<timestamp>\")");
  f.Bool("volumes", 0, "Prune anonymous volumes");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "system prune", "system prune [OPTIONS]", args, pos, code, 0, 0)) return code;
  bool all = f.GetBool("all");
  auto until = ParsePruneFilters(f.GetList("filter"), false);
  if (!until.ok()) return cli.Fail(until.error(), kExitUsage);
  bool volumes = f.GetBool("volumes");
  std::string warning =
      "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n";
  if (volumes) warning += all ? "  - all volumes not used by at least one container\n" : "  - all anonymous volumes not used by at least one container\n";
  warning += all ? "  - all images without at least one container associated to them\n  - all build cache\n"
                 : "  - all dangling images\n  - unused build cache\n";
  if (!f.GetBool("force") && !Confirm(warning)) return kExitOk;

  auto containers = PruneContainers(cli, *until);
  if (!containers.ok()) return cli.Fail(containers.error());
  PrintPruned("Deleted Containers:", containers->lines);
  auto networks = PruneNetworks(cli, *until);  // after the containers, as Docker does
  if (!networks.ok()) return cli.Fail(networks.error());
  PrintPruned("Deleted Networks:", networks->lines);
  int64_t volume_bytes = 0;
  if (volumes) {  // after the containers, so the volumes only they used are unused now
    auto pruned = exec::Volumes(cli.ctx().root).Prune(all);
    if (!pruned.ok()) return cli.Fail(pruned.error());
    std::vector<std::string> names;
    for (const auto& v : *pruned) {
      names.push_back(v.name);
      volume_bytes += static_cast<int64_t>(v.bytes);
    }
    PrintPruned("Deleted Volumes:", names);
  }
  auto images = PruneImages(cli, all, *until);
  if (!images.ok()) return cli.Fail(images.error());
  PrintPruned("Deleted Images:", images->lines);
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  exec::Snapshotter snaps(**store);
  solver::ops::PruneOptions po;
  po.all = all;
  po.unused_before_unix = *until;
  auto cache = solver::ops::PruneBuildCache(**store, snaps, po);
  if (!cache.ok()) return cli.Fail(cache.error());
  std::vector<std::string> ids;
  for (const auto& e : cache->deleted) ids.push_back(e.id);
  PrintPruned("Deleted build cache objects:", ids);
  int64_t total = containers->reclaimed + volume_bytes + images->reclaimed + cache->reclaimed;
  std::printf("Total reclaimed space: %s\n", HumanSize(static_cast<double>(total)).c_str());
  return kExitOk;
}

namespace {

// `xbuild <group>` alone: the group's usage, as Docker prints a management command's.
int GroupUsage(Cli& cli, const std::vector<std::string>& args, const std::string& group, const char* summary,
               const std::vector<std::pair<const char*, const char*>>& commands) {
  Flags f;
  f.set_stop_at_positional(true);
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, group, group + " COMMAND", args, pos, code)) return code;
  if (!pos.empty()) return cli.UsageError(group, "'" + pos[0] + "' is not an xbuild " + group + " command");
  std::printf("Usage:  xbuild %s COMMAND\n\n%s\n\nCommands:\n", group.c_str(), summary);
  for (const auto& [name, what] : commands) std::printf("  %-11s %s\n", name, what);
  std::printf("\nRun 'xbuild %s COMMAND --help' for more information on a command.\n", group.c_str());
  return kExitOk;
}

}  // namespace

int RunSystem(Cli& cli, const std::vector<std::string>& args) {
  return GroupUsage(cli, args, "system", "Manage xbuild", {{"df", "Show xbuild disk usage"}, {"prune", "Remove unused data"}});
}

int RunBuilder(Cli& cli, const std::vector<std::string>& args) {
  return GroupUsage(cli, args, "builder", "Manage builds", {{"prune", "Remove build cache"}});
}

}  // namespace xbuild::cli
