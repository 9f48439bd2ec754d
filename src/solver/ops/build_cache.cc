#include "solver/ops/build_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include "core/fd.h"
#include "core/fs.h"
#include "core/units.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

namespace {

constexpr std::string_view kImageKey = "image:";

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string CacheMountsDir(const cache::ImageStore& store) { return core::JoinPath(store.root(), "cache-mounts"); }

// The snapshot ids a cache record's result names ({"outputs": [ids]}, result_cache.cc); refs
// that are not snapshots ("", "remote:...") are left out.
std::vector<std::string> RecordSnapshots(const std::string& result) {
  std::vector<std::string> out;
  auto j = core::Json::parse(result, nullptr, false);
  if (!j.is_object() || !j.contains("outputs") || !j["outputs"].is_array()) return out;
  for (const auto& o : j["outputs"]) {
    if (!o.is_string()) continue;
    std::string id = o.get<std::string>();
    if (!id.empty() && id.find(':') == std::string::npos) out.push_back(id);
  }
  return out;
}

// Layer digests a step snapshot remembers (export.cc's layer-none*.json memos).
std::vector<core::Digest> RememberedLayers(const std::string& snapshot_dir) {
  std::vector<core::Digest> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(snapshot_dir, ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with("layer-") || !name.ends_with(".json")) continue;
    auto text = core::ReadFile(e.path().string(), 4096);
    if (!text.ok()) continue;
    auto j = core::Json::parse(*text, nullptr, false);
    auto it = j.is_object() ? j.find("digest") : j.end();
    if (it == j.end() || !it->is_string()) continue;
    auto d = core::Digest::Parse(it->get_ref<const std::string&>());
    if (d.ok()) out.push_back(*d);
  }
  return out;
}

int64_t MTime(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) : 0;
}

// Takes a cache mount's lock without waiting. `busy` when someone holds it; an invalid fd and
// not busy when it has no lock file (nobody can hold it).
core::UniqueFd TryLockMount(const std::string& dir, bool& busy) {
  busy = false;
  auto fd = core::Open(core::JoinPath(dir, "lock"), O_RDWR | O_CLOEXEC);
  if (!fd.ok()) return core::UniqueFd();
  while (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    busy = true;
    return core::UniqueFd();
  }
  return std::move(*fd);
}

Result<std::vector<CacheEntry>> CacheMountEntries(cache::ImageStore& store) {
  std::vector<CacheEntry> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(CacheMountsDir(store), ec)) {
    std::string dir = e.path().string();
    std::string data = core::JoinPath(dir, "data");
    if (!core::Exists(data)) continue;  // emptied by a prune, or never filled
    CacheEntry c;
    c.id = e.path().filename().string();
    c.type = "exec.cachemount";
    c.description = "cache mount " + c.id;
    c.size = static_cast<int64_t>(core::DiskUsage(data));
    c.created_unix = MTime(data);
    c.last_used_unix = std::max(c.created_unix, MTime(core::JoinPath(dir, "lock")));
    bool busy = false;
    { core::UniqueFd probe = TryLockMount(dir, busy); }
    c.in_use = busy;
    out.push_back(std::move(c));
  }
  return out;
}

// Chain ids of every prefix of every image's layer stack, and every layer digest of an image.
struct ImageContent {
  std::set<std::string> chains;
  std::set<std::string> layers;
};

Result<ImageContent> ImagesContent(cache::ImageStore& store) {
  ImageContent out;
  XB_ASSIGN(auto images, store.List());
  for (const auto& img : images) {
    std::vector<core::Digest> diffs;
    for (const auto& d : img.config.diff_ids) {
      diffs.push_back(d);
      out.chains.insert(std::string(kImageKey) + exec::ChainId(diffs).String());
    }
    for (const auto& l : img.manifest.layers) out.layers.insert(l.digest.String());
  }
  return out;
}

// Whether a layer (or one of its compressed variants) is an image's.
Result<bool> LayerInImage(cache::ImageStore& store, const core::Digest& layer, const ImageContent& images) {
  if (images.layers.count(layer.String())) return true;
  for (const char* c : {"gzip", "zstd"}) {
    XB_ASSIGN(auto v, store.db().GetBlobVariant(layer, c));
    if (v && images.layers.count(v->digest.String())) return true;
  }
  return false;
}

// Keys of the cache records naming each snapshot.
Result<std::map<std::string, std::vector<std::string>>> RecordsBySnapshot(cache::ImageStore& store) {
  std::map<std::string, std::vector<std::string>> out;
  XB_ASSIGN(auto records, store.db().ListCacheRecords());
  for (const auto& r : records) {
    for (const auto& id : RecordSnapshots(r.result)) out[id].push_back(r.key);
  }
  return out;
}

// Deletes a committed snapshot that nothing holds and nothing stands on, with the records that
// name it; false when it may not go (any more).
Result<bool> DeleteSnapshotIfFree(cache::ImageStore& store, exec::Snapshotter& snaps, const std::string& id,
                                  const std::vector<std::string>& records) {
  bool free = false;
  XB_TRY(store.db().Transaction([&]() -> Status {
    XB_ASSIGN(auto rec, store.db().GetSnapshot(id));
    if (!rec || rec->kind != "committed") return core::Ok();
    XB_ASSIGN(bool children, store.db().SnapshotHasChildren(id));
    if (children) return core::Ok();
    XB_ASSIGN(auto leased, store.db().LeasedKeys("snapshot"));
    if (std::binary_search(leased.begin(), leased.end(), id)) return core::Ok();
    for (const auto& key : records) XB_TRY(store.db().DeleteCacheRecord(key));
    XB_TRY(store.db().DeleteSnapshot(id));
    free = true;
    return core::Ok();
  }));
  if (free) XB_TRY(snaps.Remove(id).Context("remove snapshot " + id));
  return free;
}

// Empties a cache mount nobody holds: its data goes (moved aside first, under its lock, so a
// build waiting for the lock finds no data and starts a fresh one).
Result<bool> DeleteCacheMount(cache::ImageStore& store, const std::string& name) {
  std::string dir = core::JoinPath(CacheMountsDir(store), name);
  bool busy = false;
  core::UniqueFd lock = TryLockMount(dir, busy);
  if (busy) return false;
  XB_ASSIGN(std::string trash, store.TempDir("prune-"));
  core::ScopeGuard cleanup([&] { (void)core::RemoveAll(trash); });
  std::string data = core::JoinPath(dir, "data");
  if (::rename(data.c_str(), core::JoinPath(trash, "data").c_str()) != 0) {
    if (errno == ENOENT) return false;
    return core::SysError("remove cache mount " + data);
  }
  return true;
}

// Drops records none of whose snapshots exist any more, and records that name no snapshot at
// all (an empty result) when last used before `before` (0: any).
Status DropStaleRecords(cache::ImageStore& store, int64_t before) {
  return store.db().Transaction([&]() -> Status {
    XB_ASSIGN(auto records, store.db().ListCacheRecords());
    for (const auto& r : records) {
      auto ids = RecordSnapshots(r.result);
      bool drop = ids.empty() && (before == 0 || r.last_used_unix < before);
      for (const auto& id : ids) {
        XB_ASSIGN(auto snap, store.db().GetSnapshot(id));
        if (!snap) drop = true;
      }
      if (drop) XB_TRY(store.db().DeleteCacheRecord(r.key));
    }
    return core::Ok();
  });
}

Result<core::UniqueFd> LockPrune(const cache::ImageStore& store) {
  std::string dir = core::JoinPath(store.root(), "locks");
  XB_TRY(core::MkdirAll(dir, 0700));
  XB_ASSIGN(core::UniqueFd fd, core::Open(core::JoinPath(dir, "build-cache-prune"), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return core::SysError("lock build cache prune");
  }
  return fd;
}

}  // namespace

Result<std::vector<CacheEntry>> ListBuildCache(cache::ImageStore& store, exec::Snapshotter& snaps) {
  XB_ASSIGN(auto all, store.db().ListSnapshots());
  XB_ASSIGN(auto records, store.db().ListCacheRecords());
  XB_ASSIGN(auto leased_list, store.db().LeasedKeys("snapshot"));
  std::set<std::string> leased(leased_list.begin(), leased_list.end());
  XB_ASSIGN(ImageContent images, ImagesContent(store));

  std::map<std::string, cache::SnapshotRecord> by_id;
  for (const auto& s : all) by_id[s.id] = s;
  std::map<std::string, CacheEntry> entries;
  for (const auto& s : all) {
    if (s.kind != "committed") continue;
    CacheEntry c;
    c.id = s.id;
    c.parent = s.parent;
    c.created_unix = s.created_unix;
    c.last_used_unix = s.created_unix;
    c.in_use = leased.count(s.id) > 0;
    if (s.key.starts_with(kImageKey)) {
      c.type = "regular";
      c.description = "unpacked image layers " + s.key.substr(kImageKey.size(), 7 + 12);
      c.shared = images.chains.count(s.key) > 0;
    } else {
      c.type = s.parent.empty() ? "source.local" : "regular";
      for (const auto& layer : RememberedLayers(core::Dirname(snaps.FsDir(s.id)))) {
        XB_ASSIGN(bool in_image, LayerInImage(store, layer, images));
        c.shared |= in_image;
      }
    }
    c.size = static_cast<int64_t>(core::DiskUsage(core::Dirname(snaps.FsDir(s.id))));
    entries[s.id] = std::move(c);
  }
  for (const auto& r : records) {
    for (const auto& id : RecordSnapshots(r.result)) {
      auto it = entries.find(id);
      if (it == entries.end()) continue;
      // A record's last use (stored or hit) is the truth; the snapshot's creation only stands in
      // for an entry no record names.
      it->second.last_used_unix =
          it->second.usage_count == 0 ? r.last_used_unix : std::max(it->second.last_used_unix, r.last_used_unix);
      it->second.usage_count++;
    }
  }
  // What holds a snapshot holds its parents: in use (a lease, or an active snapshot above it),
  // shared, last used. Walk each chain down from every snapshot (chains are short).
  for (const auto& s : all) {
    bool in_use = s.kind != "committed" || entries[s.id].in_use;
    bool shared = s.kind == "committed" && entries[s.id].shared;
    int64_t used = s.kind == "committed" ? entries[s.id].last_used_unix : 0;
    int depth = 0;
    for (std::string p = s.parent; !p.empty() && depth < 1000; ++depth) {
      auto it = entries.find(p);
      if (it == entries.end()) break;
      it->second.in_use |= in_use;
      it->second.shared |= shared;
      it->second.last_used_unix = std::max(it->second.last_used_unix, used);
      p = it->second.parent;
    }
    if (s.kind == "committed") entries[s.id].depth = depth;
  }
  std::vector<CacheEntry> out;
  for (auto& [id, c] : entries) {
    out.push_back(std::move(c));
  }
  XB_ASSIGN(auto mounts, CacheMountEntries(store));
  for (auto& m : mounts) out.push_back(std::move(m));
  std::sort(out.begin(), out.end(), [](const CacheEntry& a, const CacheEntry& b) { return a.id < b.id; });
  return out;
}

Result<PruneResult> PruneBuildCache(cache::ImageStore& store, exec::Snapshotter& snaps, const PruneOptions& opts) {
  XB_ASSIGN(core::UniqueFd lock, LockPrune(store));
  XB_TRY(store.ReleaseDeadLeases());
  XB_ASSIGN(auto entries, ListBuildCache(store, snaps));
  XB_ASSIGN(auto records, RecordsBySnapshot(store));
  int64_t total = 0;
  for (const auto& e : entries) total += e.size;
  std::vector<const CacheEntry*> candidates;
  for (const auto& e : entries) {
    if (e.in_use || (e.shared && !opts.all)) continue;
    if (opts.unused_before_unix != 0 && e.last_used_unix >= opts.unused_before_unix) continue;
    candidates.push_back(&e);
  }
  // Least recently used first; above a snapshot before the snapshot itself.
  std::sort(candidates.begin(), candidates.end(), [](const CacheEntry* a, const CacheEntry* b) {
    if (a->last_used_unix != b->last_used_unix) return a->last_used_unix < b->last_used_unix;
    return a->depth > b->depth;
  });
  PruneResult out;
  for (const CacheEntry* e : candidates) {
    if (opts.keep_storage > 0 && total <= opts.keep_storage) break;
    bool deleted = false;
    if (e->type == "exec.cachemount") {
      XB_ASSIGN(deleted, DeleteCacheMount(store, e->id));
    } else {
      XB_ASSIGN(deleted, DeleteSnapshotIfFree(store, snaps, e->id, records[e->id]));
    }
    if (!deleted) continue;
    total -= e->size;
    out.reclaimed += e->size;
    out.deleted.push_back(*e);
  }
  XB_TRY(DropStaleRecords(store, opts.unused_before_unix));
  XB_ASSIGN(int64_t freed, store.CollectGarbage());
  out.reclaimed += freed;
  return out;
}

namespace {

Result<int64_t> SizeField(const core::Json& j, const std::string& what) {
  if (j.is_number_integer()) return j.get<int64_t>();
  if (!j.is_string()) return Error(Code::kInvalidArgument, what + ": want a size such as \"10GB\"");
  auto n = core::ParseByteSize(j.get<std::string>());
  if (!n.ok()) return std::move(n).error().Context(what);
  return *n;
}

Result<GcRule> ParseRule(const core::Json& p, const std::string& what, int64_t default_keep) {
  if (!p.is_object()) return Error(Code::kInvalidArgument, what + ": want an object");
  GcRule r;
  r.keep_storage = default_keep;
  for (const auto& [k, v] : p.items()) {
    if (k == "keepStorage") {
      XB_ASSIGN(r.keep_storage, SizeField(v, what + ".keepStorage"));
    } else if (k == "all") {
      if (!v.is_boolean()) return Error(Code::kInvalidArgument, what + ".all: want true or false");
      r.all = v.get<bool>();
    } else if (k == "filter") {
      if (!v.is_array()) return Error(Code::kInvalidArgument, what + ".filter: want a list such as [\"unused-for=168h\"]");
      for (const auto& f : v) {
        std::string s = f.is_string() ? f.get<std::string>() : f.dump();
        size_t eq = s.find('=');
        std::string key = s.substr(0, eq);
        if (eq == std::string::npos || (key != "unused-for" && key != "until")) {
          return Error(Code::kInvalidArgument, what + ".filter: unsupported filter '" + s + "' (want unused-for=DURATION)");
        }
        XB_ASSIGN_CTX(int64_t ns, core::ParseGoDuration(s.substr(eq + 1)), what + ".filter");
        r.unused_for_seconds = ns / 1000000000;
      }
    } else {
      return Error(Code::kInvalidArgument, what + ": unknown field \"" + k + "\"");
    }
  }
  return r;
}

}  // namespace

Result<GcConfig> ParseGcConfig(const core::Json& raw) {
  GcConfig out;
  if (!raw.is_object() || !raw.contains("builder")) return out;
  const core::Json& builder = raw["builder"];
  if (!builder.is_object() || !builder.contains("gc")) return out;
  const core::Json& gc = builder["gc"];
  const std::string what = "config: builder.gc";
  if (!gc.is_object()) return Error(Code::kInvalidArgument, what + ": want an object");
  out.enabled = true;
  if (gc.contains("enabled")) {
    if (!gc["enabled"].is_boolean()) return Error(Code::kInvalidArgument, what + ".enabled: want true or false");
    out.enabled = gc["enabled"].get<bool>();
  }
  int64_t default_keep = 0;
  if (gc.contains("defaultKeepStorage")) {
    XB_ASSIGN(default_keep, SizeField(gc["defaultKeepStorage"], what + ".defaultKeepStorage"));
  }
  if (gc.contains("policy")) {
    if (!gc["policy"].is_array()) return Error(Code::kInvalidArgument, what + ".policy: want a list of rules");
    for (size_t i = 0; i < gc["policy"].size(); ++i) {
      XB_ASSIGN(GcRule r, ParseRule(gc["policy"][i], what + ".policy[" + std::to_string(i) + "]", default_keep));
      out.rules.push_back(r);
    }
  } else if (default_keep > 0) {
    out.rules.push_back(GcRule{false, default_keep, 0});
    out.rules.push_back(GcRule{true, default_keep, 0});
  }
  for (const auto& [k, v] : gc.items()) {
    if (k != "enabled" && k != "defaultKeepStorage" && k != "policy") {
      return Error(Code::kInvalidArgument, what + ": unknown field \"" + k + "\"");
    }
  }
  return out;
}

Result<PruneResult> RunGc(cache::ImageStore& store, exec::Snapshotter& snaps, const GcConfig& gc) {
  PruneResult out;
  if (!gc.enabled) return out;
  for (const auto& rule : gc.rules) {
    PruneOptions o;
    o.all = rule.all;
    o.keep_storage = rule.keep_storage;
    o.unused_before_unix = rule.unused_for_seconds > 0 ? Now() - rule.unused_for_seconds : 0;
    XB_ASSIGN(PruneResult r, PruneBuildCache(store, snaps, o));
    out.reclaimed += r.reclaimed;
    for (auto& d : r.deleted) out.deleted.push_back(std::move(d));
  }
  return out;
}

}  // namespace xbuild::solver::ops
