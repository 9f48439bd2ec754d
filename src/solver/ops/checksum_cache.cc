#include "solver/ops/checksum_cache.h"

#include <cstring>
#include <vector>

#include "core/fs.h"

namespace xbuild::solver::ops {

namespace {

constexpr std::string_view kMagic = "xbuild-checksums 1\n";
// A bound on what is worth loading: ~100 bytes a file, so this is millions of files.
constexpr size_t kMaxFileSize = size_t{1} << 30;
constexpr size_t kMaxPath = 64 * 1024;

template <typename T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void PutBytes(std::string& out, std::string_view s) {
  Put(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Reads fixed-size values and length-prefixed strings; any read past the end fails the
// whole parse.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <typename T>
  bool Get(T& v) {
    if (data_.size() - pos_ < sizeof v) return false;
    std::memcpy(&v, data_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return true;
  }
  bool GetBytes(std::string& s) {
    uint32_t n = 0;
    if (!Get(n) || n > kMaxPath || data_.size() - pos_ < n) return false;
    s.assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

FileStat FileStat::Of(const struct stat& st) {
  FileStat f;
  f.size = static_cast<uint64_t>(st.st_size);
  f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  f.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  f.ino = static_cast<uint64_t>(st.st_ino);
  f.dev = static_cast<uint64_t>(st.st_dev);
  f.mode = static_cast<uint32_t>(st.st_mode);
  return f;
}

std::string ChecksumCache::FileFor(const std::string& dir, const std::string& context_dir) {
  return core::JoinPath(dir, core::Digest::Of(context_dir).Hex());
}

std::unique_ptr<ChecksumCache> ChecksumCache::Open(const std::string& dir,
                                                   const std::string& context_dir) {
  auto c = std::make_unique<ChecksumCache>();
  c->file_ = FileFor(dir, context_dir);
  c->context_ = context_dir;
  auto data = core::ReadFile(c->file_, kMaxFileSize);
  if (data.ok() && !c->Parse(*data)) c->entries_.clear();
  return c;
}

bool ChecksumCache::Parse(std::string_view data) {
  if (data.size() < kMagic.size() + core::Digest::kSize || !data.starts_with(kMagic)) return false;
  std::string_view body = data.substr(0, data.size() - core::Digest::kSize);
  std::string_view trailer = data.substr(body.size());
  core::Digest sum = core::Digest::Of(body);
  if (std::memcmp(sum.bytes().data(), trailer.data(), core::Digest::kSize) != 0) return false;
  Reader r(body.substr(kMagic.size()));
  std::string context;
  if (!r.GetBytes(context) || context != context_) return false;
  while (!r.done()) {
    std::string path;
    Entry e;
    std::array<uint8_t, core::Digest::kSize> digest{};
    if (!r.GetBytes(path) || !r.Get(e.st.size) || !r.Get(e.st.mtime_ns) || !r.Get(e.st.ctime_ns) ||
        !r.Get(e.st.ino) || !r.Get(e.st.dev) || !r.Get(e.st.mode) || !r.Get(e.age) ||
        !r.Get(digest)) {
      return false;
    }
    e.digest = core::Digest(digest);
    entries_.insert_or_assign(std::move(path), e);
  }
  loaded_ = true;
  return true;
}

std::string ChecksumCache::Serialize() const {
  std::string out;
  out.reserve(kMagic.size() + context_.size() + entries_.size() * 100 + core::Digest::kSize);
  out.append(kMagic);
  PutBytes(out, context_);
  for (const auto& [path, e] : entries_) {
    uint8_t age = e.used ? 0 : static_cast<uint8_t>(e.age + 1);
    if (age > kMaxAge) continue;
    PutBytes(out, path);
    Put(out, e.st.size);
    Put(out, e.st.mtime_ns);
    Put(out, e.st.ctime_ns);
    Put(out, e.st.ino);
    Put(out, e.st.dev);
    Put(out, e.st.mode);
    Put(out, age);
    Put(out, e.digest.bytes());
  }
  Put(out, core::Digest::Of(out).bytes());
  return out;
}

std::optional<core::Digest> ChecksumCache::Lookup(const std::string& rel, const FileStat& st) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(rel);
  if (it == entries_.end() || !(it->second.st == st)) return std::nullopt;
  it->second.used = true;
  return it->second.digest;
}

void ChecksumCache::Record(const std::string& rel, const FileStat& st, const core::Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  entries_.insert_or_assign(rel, Entry{st, digest, 0, true});
  dirty_ = true;
}

void ChecksumCache::Forget(const std::string& rel) {
  std::lock_guard<std::mutex> l(mu_);
  if (entries_.erase(rel) > 0) dirty_ = true;
}

core::Status ChecksumCache::Save() {
  std::lock_guard<std::mutex> l(mu_);
  if (file_.empty() || !dirty_) return core::Ok();
  XB_TRY(core::MkdirAll(core::Dirname(file_), 0700));
  XB_TRY_CTX(core::WriteFileAtomic(file_, Serialize(), 0600), "save context checksums");
  dirty_ = false;
  return core::Ok();
}

size_t ChecksumCache::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return entries_.size();
}

}  // namespace xbuild::solver::ops
