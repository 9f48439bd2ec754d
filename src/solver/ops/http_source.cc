#include "solver/ops/http_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <optional>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "frontend/source_url.h"
#include "solver/ops/context_archive.h"

namespace xbuild::solver::ops {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

struct HttpSource::Download {
  std::unique_ptr<ContextDir> dir;  // owns the file
  std::string path;
  core::Digest digest;
  bool not_modified = false;     // a 304: no file
  std::optional<time_t> mtime;   // Last-Modified
  std::string disposition_name;  // Content-Disposition's filename
  std::string etag;
};

namespace {

std::string Attr(const SourceOp& src, const std::string& name) {
  auto it = src.attrs.find(name);
  return it == src.attrs.end() ? "" : it->second;
}

std::string RecordPath(const std::string& state_root, const std::string& url) {
  return core::JoinPath(core::JoinPath(state_root, "http"), core::Digest::Of(url).Hex() + ".json");
}

struct Record {
  std::string etag;
  std::string digest;
};

// The remembered ETag of a URL; none when absent or unreadable (it is only a hint).
std::optional<Record> LoadRecord(const std::string& state_root, const std::string& url) {
  auto text = core::ReadFile(RecordPath(state_root, url), 64 << 10);
  if (!text.ok()) return std::nullopt;
  auto j = core::Json::parse(*text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  Record r{core::GetOptString(j, "etag").value_or(""),
           core::GetOptString(j, "digest").value_or("")};
  // A record of another URL (a hash collision is not expected; a copied file may be) is ignored.
  if (core::GetOptString(j, "url").value_or("") != url || r.etag.empty() ||
      !core::Digest::Parse(r.digest).ok()) {
    return std::nullopt;
  }
  return r;
}

Status SaveRecord(const std::string& state_root, const std::string& url, const Record& r) {
  XB_TRY(core::MkdirAll(core::JoinPath(state_root, "http"), 0700));
  core::Json j = {{"url", url}, {"etag", r.etag}, {"digest", r.digest}};
  return core::WriteFileAtomic(RecordPath(state_root, url), j.dump(), 0600);
}

// An HTTP date (RFC 7231 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT").
std::optional<time_t> ParseHttpDate(const std::string& s) {
  struct tm tm {};
  const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return ::timegm(&tm);
}

// filename="a.tgz" or filename=a.tgz; only its last path component is ever used.
std::string DispositionFilename(const std::string& header) {
  std::string lower = core::ToLower(header);
  size_t at = lower.find("filename=");
  if (at == std::string::npos) return "";
  std::string v = header.substr(at + 9);
  if (v.starts_with('"')) {
    v = v.substr(1, v.find('"', 1) == std::string::npos ? std::string::npos : v.find('"', 1) - 1);
  } else {
    v = core::Trim(v.substr(0, v.find(';')));
  }
  return v.substr(v.rfind('/') + 1);
}

bool ValidName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// Copies the file at `from` into a new file `name` of the directory `dir` with mode 0600.
Status WriteSourceFile(const std::string& from, const std::string& dir, const std::string& name,
                       std::optional<time_t> mtime) {
  XB_ASSIGN(core::UniqueFd in, core::Open(from, O_RDONLY));
  XB_ASSIGN(core::UniqueFd d, core::Open(dir, O_PATH | O_DIRECTORY));
  int fd =
      ::openat(d.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return core::SysError("create " + name);
  core::UniqueFd out(fd);
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return core::SysError("read " + from);
    if (n == 0) break;
    XB_TRY(core::WriteAll(out.get(), std::string_view(buf.data(), static_cast<size_t>(n))));
  }
  // The mode is BuildKit's, whatever the umask; --chmod on the ADD changes the copy.
  if (::fchmod(out.get(), 0600) != 0) return core::SysError("chmod " + name);
  if (mtime) {
    struct timespec ts[2] = {{*mtime, 0}, {*mtime, 0}};
    if (::futimens(out.get(), ts) != 0) return core::SysError("set the mtime of " + name);
  }
  return core::Ok();
}

}  // namespace

bool IsHttpSource(const SourceOp& src) { return frontend::IsHttpUrl(src.identifier); }

Result<std::shared_ptr<HttpSource::Download>> HttpSource::Fetch(const std::string& url,
                                                                const std::string& etag,
                                                                const std::atomic<bool>* cancel) {
  auto d = std::make_shared<Download>();
  XB_ASSIGN(d->dir, ContextDir::Create(state_root_));
  d->path = core::JoinPath(d->dir->context(), "download");
  XB_ASSIGN(core::UniqueFd out, core::Open(d->path, O_WRONLY | O_CREAT | O_EXCL, 0600));
  core::Sha256 hash;
  int64_t size = 0;
  registry::Request req;
  req.url = url;
  if (!etag.empty()) req.headers.push_back({"If-None-Match", etag});
  req.sink = [&](long, std::string_view data) -> Status {
    if (cancel && cancel->load()) return Error(Code::kCancelled, "cancelled");
    size += static_cast<int64_t>(data.size());
    if (size > kMaxHttpSource) {
      return Error(Code::kResourceExhausted,
                   "larger than " + std::to_string(kMaxHttpSource >> 30) + " GiB");
    }
    hash.Update(data);
    return core::WriteAll(out.get(), data);
  };
  XB_ASSIGN_CTX(registry::Response resp, http_.Do(req), "GET " + url);
  if (resp.status == 304 && !etag.empty()) {
    d->not_modified = true;
    return d;
  }
  if (resp.status < 200 || resp.status > 299)
    return registry::HttpError(resp).Context("GET " + url);
  d->digest = hash.Finish();
  if (auto lm = resp.Header("last-modified")) d->mtime = ParseHttpDate(*lm);
  if (auto cd = resp.Header("content-disposition")) d->disposition_name = DispositionFilename(*cd);
  d->etag = resp.Header("etag").value_or("");
  return d;
}

Result<std::string> HttpSource::Key(const core::Digest& vertex, const SourceOp& src,
                                    const std::atomic<bool>* cancel) {
  const std::string& url = src.identifier;
  if (std::string sum = Attr(src, "http.checksum"); !sum.empty()) {
    keyed_.Put(vertex, Keyed{sum, nullptr});
    return sum;
  }
  std::optional<Record> rec = LoadRecord(state_root_, url);
  XB_ASSIGN(std::shared_ptr<Download> d, Fetch(url, rec ? rec->etag : "", cancel));
  if (d->not_modified) {
    keyed_.Put(vertex, Keyed{rec->digest, nullptr});
    return rec->digest;
  }
  std::string key = d->digest.String();
  // The record only saves a later build a download; failing to write it fails nothing.
  if (!d->etag.empty()) (void)SaveRecord(state_root_, url, Record{d->etag, key});
  keyed_.Put(vertex, Keyed{key, d});
  return key;
}

Status HttpSource::Snapshot(const core::Digest& vertex, const SourceOp& src, const std::string& dir,
                            const std::atomic<bool>* cancel) {
  const std::string& url = src.identifier;
  std::optional<Keyed> k = keyed_.Take(vertex);
  if (!k) {  // Run without ContentKey first: key it now
    auto key = Key(vertex, src, cancel);
    if (!key.ok()) return std::move(key).error();
    k = keyed_.Take(vertex);
    if (!k) return Error(Code::kInternal, url + ": keyed source vanished");
  }
  std::shared_ptr<Download> d = k->file;
  if (!d) {
    XB_ASSIGN(d, Fetch(url, "", cancel));
  }
  if (d->digest.String() != k->key) {
    if (!Attr(src, "http.checksum").empty()) {
      return Error(Code::kFailedPrecondition,
                   url + ": checksum mismatch: expected " + k->key + ", got " + d->digest.String());
    }
    return Error(Code::kAborted, url + " changed while it was being built (it had digest " +
                                     k->key + ", now " + d->digest.String() + "); build again");
  }
  std::string name = Attr(src, "http.filename");
  if (name.empty()) name = d->disposition_name;
  if (!ValidName(name)) name = frontend::UrlFilename(url);
  if (!ValidName(name)) return Error(Code::kInvalidArgument, url + ": no usable file name");
  return WriteSourceFile(d->path, dir, name, d->mtime);
}

}  // namespace xbuild::solver::ops
