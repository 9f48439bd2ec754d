#include "solver/ops/result_cache.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <ctime>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "solver/ops/remote_cache.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;

namespace {

class FlockKeyLock : public ResultCache::KeyLock {
 public:
  explicit FlockKeyLock(core::UniqueFd fd) : fd_(std::move(fd)) {}
  ~FlockKeyLock() override { ::flock(fd_.get(), LOCK_UN); }

 private:
  core::UniqueFd fd_;
};

// "sha256:<hex>" -> "<hex>"; keys are made by solver::CacheKey, but check before using as a name.
Result<std::string> KeyFileName(const std::string& key) {
  auto d = core::Digest::Parse(key);
  if (!d.ok()) return Error(Code::kInvalidArgument, "cache key " + key + ": not a digest");
  return d->Hex();
}

}  // namespace

DbResultCache::DbResultCache(cache::ImageStore& store)
    : store_(store), locks_(core::JoinPath(store.root(), "locks/cache")) {}

namespace {
constexpr std::string_view kRemote = "remote:";
}  // namespace

bool DbResultCache::IsLazy(const Ref& r) const { return r.id.starts_with(kRemote); }

Result<Ref> DbResultCache::Realize(const std::string& key, const Ref& r) {
  if (!IsLazy(r)) return r;
  if (!imported_) return Error(Code::kInternal, "a lazy result with no imported cache");
  XB_ASSIGN(std::string id, imported_->Realize(r.id.substr(kRemote.size()), *this));
  (void)key;
  return Ref{id};
}

Result<std::optional<VertexResult>> DbResultCache::Lookup(const std::string& key) {
  std::optional<VertexResult> hit;
  bool invalid = false;
  XB_TRY(store_.db().Transaction([&]() -> Status {
    XB_ASSIGN(auto text, store_.db().GetCacheRecord(key));
    if (!text) return core::Ok();
    auto j = core::Json::parse(*text, nullptr, false);
    VertexResult r;
    invalid = !(j.is_object() && j.contains("outputs") && j["outputs"].is_array());
    std::vector<std::string> snapshots;
    for (const auto& o : invalid ? core::Json::array() : j["outputs"]) {
      if (!o.is_string()) {
        invalid = true;
        break;
      }
      std::string id = o.get<std::string>();
      // Snapshot outputs must still exist and be committed; other refs (context dirs) are kept.
      if (!id.empty() && id.find(':') == std::string::npos) {
        XB_ASSIGN(auto snap, store_.db().GetSnapshot(id));
        if (!snap || snap->kind != "committed") invalid = true;
        snapshots.push_back(id);
      }
      r.outputs.push_back(Ref{id});
    }
    if (invalid) return store_.db().DeleteCacheRecord(key);
    for (const auto& id : snapshots) {
      if (!lease_.empty()) XB_TRY(store_.db().AddLeaseResource(lease_, "snapshot", id));
    }
    XB_TRY(store_.db().TouchCacheRecord(key, static_cast<int64_t>(std::time(nullptr))));
    hit = std::move(r);
    return core::Ok();
  }));
  if (!hit && !invalid && imported_ && imported_->Has(key)) {
    return std::optional<VertexResult>(VertexResult{{Ref{std::string(kRemote) + key}}});
  }
  return hit;
}

Status DbResultCache::Store(const std::string& key, const VertexResult& result) {
  core::Json outputs = core::Json::array();
  for (const auto& o : result.outputs) outputs.push_back(o.id);
  core::Json j = {{"outputs", outputs}};
  return store_.db().PutCacheRecord(key, j.dump());
}

Result<std::unique_ptr<ResultCache::KeyLock>> DbResultCache::Lock(const std::string& key) {
  XB_ASSIGN(std::string name, KeyFileName(key));
  XB_TRY(core::MkdirAll(locks_, 0700));
  XB_ASSIGN(core::UniqueFd fd, core::Open(core::JoinPath(locks_, name), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return core::SysError("lock cache key " + key);
  }
  return std::unique_ptr<KeyLock>(new FlockKeyLock(std::move(fd)));
}

}  // namespace xbuild::solver::ops
