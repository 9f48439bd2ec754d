#include "cli/prune.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>

#include "core/fs.h"
#include "core/units.h"
#include "exec/network.h"

namespace xbuild::cli {

core::Result<int64_t> ParsePruneFilters(const std::vector<std::string>& filters, bool unused_for) {
  int64_t cutoff = 0;
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const std::string& f : filters) {
    size_t eq = f.find('=');
    std::string key = f.substr(0, eq), value = eq == std::string::npos ? "" : f.substr(eq + 1);
    if (eq == std::string::npos || (key != "until" && !(unused_for && key == "unused-for"))) {
      return core::Error(core::Code::kInvalidArgument,
                         "invalid filter '" + f + "': want until=DURATION" + (unused_for ? " or unused-for=DURATION" : ""));
    }
    int64_t t = 0;
    char* end = nullptr;
    long long unix_time = std::strtoll(value.c_str(), &end, 10);
    bool is_unix = !value.empty() && *end == '\0';
    if (auto d = core::ParseGoDuration(value); d.ok()) {
      t = now - *d / 1000000000;
    } else if (key == "until" && is_unix) {
      t = unix_time;
    } else if (key == "until" && ParseTime(value) > 0) {
      t = ParseTime(value);
    } else {
      return core::Error(core::Code::kInvalidArgument,
                         "invalid filter '" + f + "': " + value + " is not a duration (e.g. 24h, 1h30m, 90s)" +
                             (key == "until" ? " or a timestamp" : ""));
    }
    cutoff = cutoff == 0 ? t : std::min(cutoff, t);
  }
  return cutoff;
}

void PrintPruned(const char* heading, const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::printf("%s\n", heading);
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  std::printf("\n");
}

core::Result<Pruned> PruneContainers(Cli& cli, int64_t until_unix) {
  XB_ASSIGN(cache::ImageStore * store, cli.Store());
  XB_ASSIGN(exec::Containers * containers, cli.Containers());
  XB_ASSIGN(auto list, containers->List());
  exec::Snapshotter snaps(*store);
  Pruned out;
  for (const exec::ContainerRecord& r : list) {
    if (r.status == exec::kStatusRunning || containers->MonitorAlive(r.id)) continue;
    if (until_unix != 0 && ParseTime(r.created) >= until_unix) continue;
    uint64_t size = core::DiskUsage(snaps.FsDir(r.snapshot));
    if (auto s = containers->Remove(r); !s.ok()) {  // the others still go
      cli.log().Warn("remove container " + r.id + ": " + s.error().ToString());
      continue;
    }
    out.lines.push_back(r.id);
    out.reclaimed += static_cast<int64_t>(size);
  }
  return out;
}

core::Result<Pruned> PruneNetworks(Cli& cli, int64_t until_unix) {
  XB_ASSIGN(exec::Containers * containers, cli.Containers());
  XB_ASSIGN(auto list, containers->List());
  exec::Networks networks(cli.ctx().root);
  XB_ASSIGN(auto nets, networks.List());
  Pruned out;
  for (const exec::NetworkInfo& n : nets) {
    if (n.name == exec::kDefaultNetwork) continue;
    if (until_unix != 0 && ParseTime(n.created) >= until_unix) continue;
    bool used = std::any_of(list.begin(), list.end(),
                            [&](const exec::ContainerRecord& r) { return r.net.mode == n.name; });
    if (used) continue;
    if (auto s = networks.Remove(n, {}); !s.ok()) {  // the others still go
      cli.log().Warn("remove network " + n.name + ": " + s.error().ToString());
      continue;
    }
    out.lines.push_back(n.name);
  }
  return out;
}

namespace {

// Bytes in the content store (blobs freed by a removal are collected inside it).
core::Result<int64_t> ContentBytes(cache::ImageStore& store) {
  XB_ASSIGN(auto blobs, store.content().List());
  int64_t total = 0;
  for (const auto& d : blobs) {
    auto size = store.content().Size(d);
    if (size.ok()) total += *size;
  }
  return total;
}

}  // namespace

core::Result<Pruned> PruneImages(Cli& cli, bool all, int64_t until_unix) {
  XB_ASSIGN(cache::ImageStore * store, cli.Store());
  XB_ASSIGN(exec::Containers * containers, cli.Containers());
  XB_ASSIGN(auto records, containers->List());
  std::set<std::string> used;  // config digests of images containers were made from
  for (const auto& r : records) used.insert(r.image_id);
  XB_ASSIGN(auto images, store->List());
  XB_ASSIGN(int64_t before, ContentBytes(*store));
  Pruned out;
  for (const auto& img : images) {
    if (used.count(img.record.config.String())) continue;
    if (!all && !img.tags.empty()) continue;
    if (until_unix != 0 && img.record.created_unix >= until_unix) continue;
    for (const auto& tag : img.tags) {
      auto r = store->Remove(tag, false);
      if (!r.ok()) continue;
      for (const auto& u : r->untagged) out.lines.push_back("untagged: " + u);
    }
    auto still = store->Resolve(img.record.digest.String());
    if (!still.ok()) {
      out.lines.push_back("deleted: " + img.record.config.String());
      continue;
    }
    auto r = store->Remove(img.record.digest.String(), false);  // a leased image is skipped
    if (!r.ok()) continue;
    for (const auto& d : r->deleted) out.lines.push_back("deleted: " + d.config.String());
  }
  XB_TRY(store->CollectGarbage());
  XB_ASSIGN(int64_t after, ContentBytes(*store));
  out.reclaimed = std::max<int64_t>(0, before - after);
  return out;
}

}  // namespace xbuild::cli
