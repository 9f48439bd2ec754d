#include "registry/client.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "image/media_types.h"

namespace xbuild::registry {

using core::Code;
using core::Digest;
using core::Error;
using image::Descriptor;
using image::Reference;

namespace {

constexpr int kBlobAttempts = 3;

const std::string& ManifestAccept() {
  static const std::string s = std::string(image::media::kOciManifest) + ", " +
                               std::string(image::media::kOciIndex) + ", " +
                               std::string(image::media::kDockerManifest) + ", " +
                               std::string(image::media::kDockerManifestList);
  return s;
}

std::string PullScope(const std::string& path) { return "repository:" + path + ":pull"; }
std::string PushScope(const std::string& path) { return "repository:" + path + ":pull,push"; }

std::string WithQuery(std::string url, std::string_view kv) {
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += kv;
  return url;
}

// Runs fn(0..n-1) on up to `concurrency` threads; stops handing out work after the first error,
// which it returns.
Status RunParallel(size_t n, int concurrency, const std::function<Status(size_t)>& fn) {
  std::mutex mu;
  std::optional<Error> first_error;  // guarded by mu
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (first_error) return;
      }
      Status s = fn(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> l(mu);
        if (!first_error) first_error = std::move(s).error();
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  size_t t = std::min<size_t>(static_cast<size_t>(std::max(concurrency, 1)), n);
  for (size_t i = 1; i < t; ++i) threads.emplace_back(worker);
  worker();
  for (auto& th : threads) th.join();
  if (first_error) return std::move(*first_error);
  return core::Ok();
}

// "0-1023" (a Range header from an upload session) -> 1024, the next offset.
std::optional<int64_t> NextOffset(const Response& r) {
  auto range = r.Header("range");
  if (!range) return 0;
  std::string v = *range;
  if (v.starts_with("bytes=")) v = v.substr(6);
  size_t dash = v.find('-');
  if (dash == std::string::npos) return std::nullopt;
  try {
    return std::stoll(v.substr(dash + 1)) + 1;
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace

std::string RegistryHost(std::string_view domain) {
  if (domain == "docker.io" || domain == "index.docker.io") return "registry-1.docker.io";
  return std::string(domain);
}

Endpoint EndpointFor(std::string_view domain) {
  return Endpoint{std::string(domain), "https://" + RegistryHost(domain)};
}

Result<Endpoint> MirrorEndpoint(std::string_view url) {
  std::string u(url);
  std::string scheme = "https";
  if (size_t p = u.find("://"); p != std::string::npos) {
    scheme = core::ToLower(u.substr(0, p));
    u = u.substr(p + 3);
  }
  if (scheme != "http" && scheme != "https") {
    return Error(Code::kInvalidArgument, "registry mirror " + std::string(url) + ": scheme must be http or https");
  }
  std::string host = core::ToLower(u.substr(0, u.find('/')));
  if (host.empty()) return Error(Code::kInvalidArgument, "registry mirror " + std::string(url) + ": no host");
  return Endpoint{host, scheme + "://" + host};
}

std::string ManifestUrl(const Reference& ref) {
  std::string what = ref.digest ? ref.digest->String() : ref.tag;
  return EndpointFor(ref.domain).base + "/v2/" + ref.path + "/manifests/" + what;
}

std::string BlobUrl(const Reference& ref, const Digest& d) {
  return EndpointFor(ref.domain).base + "/v2/" + ref.path + "/blobs/" + d.String();
}

Authenticator& Client::AuthFor(const Endpoint& ep) {
  std::lock_guard<std::mutex> l(mu_);
  auto& a = auths_[ep.base];
  if (!a) a = std::make_unique<Authenticator>(transport_, ep.host, ep.base, creds_);
  return *a;
}

Result<FetchedManifest> Client::FetchManifest(const Endpoint& ep, const Reference& ref,
                                              std::string_view tag_or_digest, std::optional<Digest> expected) {
  Request req;
  req.url = ep.base + "/v2/" + ref.path + "/manifests/" + std::string(tag_or_digest);
  req.headers.emplace_back("Accept", ManifestAccept());
  req.max_body = image::kMaxManifestSize;
  std::string what = "manifest " + std::string(tag_or_digest);
  auto got = AuthFor(ep).Do(req, PullScope(ref.path));
  if (!got.ok()) {
    Error e = std::move(got).error();
    if (e.code() == Code::kResourceExhausted) {
      return Error(Code::kResourceExhausted, what + ": larger than the " +
                                                 std::to_string(image::kMaxManifestSize) +
                                                 "-byte limit for manifests; refusing to read it");
    }
    return std::move(e).Context(what);
  }
  Response resp = std::move(*got);
  if (resp.status != 200) return HttpError(resp).Context(what);
  FetchedManifest m;
  m.bytes = std::move(resp.body);
  m.digest = Digest::Of(m.bytes);
  if (expected && *expected != m.digest) {
    return Error(Code::kDataLoss, what + ": digest mismatch: content hashes to " + m.digest.String());
  }
  if (auto h = resp.Header("docker-content-digest")) {
    auto d = Digest::Parse(*h);
    if (d.ok() && *d != m.digest) {
      return Error(Code::kDataLoss, what + ": digest mismatch: registry says " + *h +
                                        ", content hashes to " + m.digest.String());
    }
  }
  XB_ASSIGN_CTX(m.media_type, image::SniffMediaType(m.bytes), what);
  return m;
}

Result<FetchedManifest> Client::GetManifest(const Reference& ref) {
  std::string what = ref.digest ? ref.digest->String() : ref.tag;
  return FetchManifest(EndpointFor(ref.domain), ref, what, ref.digest).Context("fetch " + ref.String());
}

Status Client::Login(std::string_view host, const Credentials& creds) {
  return AuthFor(EndpointFor(host)).Verify(creds);
}

Result<std::vector<std::string>> Client::ListTags(const Reference& ref) {
  Endpoint ep = EndpointFor(ref.domain);
  std::string url = ep.base + "/v2/" + ref.path + "/tags/list?n=1000";
  std::vector<std::string> tags;
  for (int page = 0; page < 1000 && !url.empty(); ++page) {
    Request req;
    req.url = url;
    req.max_body = 8 * 1024 * 1024;
    XB_ASSIGN_CTX(Response r, AuthFor(ep).Do(req, PullScope(ref.path)), "list tags of " + ref.Repository());
    if (r.status != 200) return HttpError(r).Context("list tags of " + ref.Repository());
    XB_ASSIGN(core::Json j, core::ParseJson(r.body, "tag list", req.max_body));
    if (j.contains("tags") && j["tags"].is_array()) {
      for (const auto& t : j["tags"]) {
        if (t.is_string()) tags.push_back(t.get<std::string>());
      }
    }
    // Link: </v2/<name>/tags/list?n=1000&last=x>; rel="next"
    url.clear();
    if (auto link = r.Header("link"); link && link->find("rel=\"next\"") != std::string::npos) {
      size_t a = link->find('<'), b = link->find('>');
      if (a != std::string::npos && b != std::string::npos && b > a) url = ResolveUrl(r.url, link->substr(a + 1, b - a - 1));
    }
  }
  return tags;
}

Status Client::FetchBlob(cache::ContentStore& cs, const Reference& ref, const Descriptor& d) {
  return DownloadBlob(EndpointFor(ref.domain), cs, ref, d, nullptr).Context("fetch " + d.digest.String() + " from " + ref.Repository());
}

Status Client::DownloadBlob(const Endpoint& ep, cache::ContentStore& cs, const Reference& ref, const Descriptor& d,
                            const std::function<void(int64_t)>& moved) {
  Status last = core::Ok();
  for (int attempt = 0; attempt < kBlobAttempts; ++attempt) {
    if (cs.Has(d.digest)) return core::Ok();
    XB_ASSIGN(auto w, cs.NewWriter("pull-" + d.digest.String(), d.digest, d.size, /*wait=*/true));
    int64_t offset = w->Offset();
    int64_t current = offset;
    Request req;
    req.url = ep.base + "/v2/" + ref.path + "/blobs/" + d.digest.String();
    req.max_body = 64 * 1024;
    if (offset > 0 && offset < d.size) req.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
    bool first = true;
    int64_t skip = 0;
    req.sink = [&](long status, std::string_view data) -> Status {
      if (first) {
        first = false;
        if (status == 200) {
          skip = offset;  // the server ignored Range: drop what we have
          current = 0;
        }
      }
      if (skip > 0) {
        size_t n = static_cast<size_t>(std::min<int64_t>(skip, static_cast<int64_t>(data.size())));
        data.remove_prefix(n);
        skip -= static_cast<int64_t>(n);
        current += static_cast<int64_t>(n);
      }
      if (data.empty()) return core::Ok();
      XB_TRY(w->Write(data));
      current += static_cast<int64_t>(data.size());
      if (moved) moved(current);
      return core::Ok();
    };
    if (offset < d.size) {
      auto resp = AuthFor(ep).Do(req, PullScope(ref.path));
      if (!resp.ok()) {
        last = std::move(resp).error();
        if (last.error().code() == Code::kUnavailable) continue;  // resume from what we have
        return last;
      }
      if (resp->status != 200 && resp->status != 206) return HttpError(*resp);
    }
    auto c = w->Commit();
    if (!c.ok()) {
      Error e = std::move(c).error();
      if (e.code() == Code::kDataLoss) return std::move(e).Context("digest mismatch");
      return e;
    }
    return core::Ok();
  }
  return last;
}

Result<PullResult> Client::Pull(cache::ImageStore& store, const Reference& ref, const image::Platform& platform,
                                const ProgressFn& progress) {
  std::vector<Endpoint> eps;
  if (ref.domain == "docker.io") {
    for (const auto& m : opts_.mirrors) {
      auto ep = MirrorEndpoint(m);
      if (ep.ok()) {
        eps.push_back(*ep);
      } else if (opts_.log) {
        opts_.log->Warn(ep.error().ToString());
      }
    }
  }
  eps.push_back(EndpointFor(ref.domain));
  std::string mirror_errors;
  for (size_t i = 0; i < eps.size(); ++i) {
    bool mirror = i + 1 < eps.size();
    if (progress && mirror) progress(ProgressEvent{ProgressEvent::Kind::kMirror, {}, false, 0, eps[i].base});
    auto r = PullFrom(eps[i], store, ref, platform, progress);
    if (r.ok() || !mirror) {
      if (!r.ok() && !mirror_errors.empty()) {
        Error e = std::move(r).error();
        return Error(e.code(), e.message() + " (after mirrors failed: " + mirror_errors + ")");
      }
      return r;
    }
    std::string msg = r.error().ToString();
    if (opts_.log) opts_.log->Warn("mirror " + eps[i].base + " failed, trying the next source: " + msg);
    mirror_errors += (mirror_errors.empty() ? "" : "; ") + eps[i].base + ": " + msg;
  }
  return Error(Code::kInternal, "unreachable");
}

Result<PullResult> Client::PullFrom(const Endpoint& ep, cache::ImageStore& store, const Reference& ref,
                                    const image::Platform& platform, const ProgressFn& progress) {
  std::string what = "pull " + ref.String();
  XB_ASSIGN_CTX(FetchedManifest top, FetchManifest(ep, ref, ref.digest ? ref.digest->String() : ref.tag, ref.digest),
                what);
  PullResult out;
  out.digest = top.digest;
  FetchedManifest m = top;
  if (image::IsIndexType(top.media_type)) {
    XB_ASSIGN_CTX(image::Index idx, image::ParseIndex(top.bytes, top.digest), what);
    XB_ASSIGN_CTX(Descriptor sel, image::SelectPlatform(idx, platform), what);
    XB_ASSIGN_CTX(m, FetchManifest(ep, ref, sel.digest.String(), sel.digest), what);
  }
  XB_ASSIGN_CTX(image::Manifest man, image::ParseManifest(m.bytes, m.digest), what);

  if (!ref.tag.empty()) {
    auto cur = store.db().GetTag(ref.String());
    if (cur.ok() && *cur && **cur == m.digest) {
      auto rec = store.db().GetImage(m.digest);
      if (rec.ok() && *rec) {
        out.record = **rec;
        out.up_to_date = true;
        return out;
      }
    }
  }

  std::vector<Descriptor> blobs;
  blobs.push_back(man.config);
  for (const auto& l : man.layers) blobs.push_back(l);
  if (progress) progress(ProgressEvent{ProgressEvent::Kind::kPulling, man.config, true, 0, {}});

  auto r = store.WithLease<cache::ImageRecord>([&](const cache::Lease& lease) -> Result<cache::ImageRecord> {
    for (const auto& b : blobs) XB_TRY(store.db().AddLeaseResource(lease.id, "content", b.digest.String()));
    XB_TRY(store.db().AddLeaseResource(lease.id, "content", m.digest.String()));
    // The image too: a prune must not take it between its record and its tag.
    XB_TRY(store.db().AddLeaseResource(lease.id, "image", m.digest.String()));
    XB_TRY_CTX(store.content().WriteBlob(m.bytes, m.digest), "store manifest");
    XB_TRY(RunParallel(blobs.size(), opts_.pull_concurrency, [&](size_t i) -> Status {
      const Descriptor& b = blobs[i];
      bool is_config = i == 0;
      bool had = store.content().Has(b.digest);
      auto moved = [&](int64_t cur) {
        if (progress) progress(ProgressEvent{ProgressEvent::Kind::kProgress, b, is_config, cur, {}});
      };
      Status s = had ? core::Ok() : DownloadBlob(ep, store.content(), ref, b, moved);
      if (!s.ok()) return std::move(s).error().Context((is_config ? "config " : "layer ") + b.digest.String());
      if (progress) {
        progress(ProgressEvent{had ? ProgressEvent::Kind::kExists : ProgressEvent::Kind::kDone, b, is_config, b.size, {}});
      }
      return core::Ok();
    }));
    XB_ASSIGN(cache::ImageRecord rec, store.AddImage(m.digest));
    if (!ref.tag.empty()) XB_TRY(store.Tag(ref, m.digest));
    return rec;
  });
  if (!r.ok()) return std::move(r).error().Context(what);
  // Remember where the blobs live, for cross-repository mounts on push (best effort).
  for (const auto& b : blobs) (void)store.db().AddBlobSource(b.digest, ep.host, ref.path);
  out.record = *r;
  return out;
}

std::string Client::SessionFile(const Endpoint& ep, const Reference& ref, const Digest& d) const {
  if (opts_.upload_state_dir.empty()) return "";
  return core::JoinPath(opts_.upload_state_dir, Digest::Of(ep.host + "/" + ref.path + "@" + d.String()).Hex() + ".json");
}

Result<std::optional<int64_t>> Client::SessionOffset(const Endpoint& ep, const Reference& ref,
                                                     const std::string& location) {
  Request req;
  req.url = location;
  req.max_body = 64 * 1024;
  req.follow_redirects = false;
  XB_ASSIGN_CTX(Response r, AuthFor(ep).Do(req, PushScope(ref.path)), "upload status");
  if (r.status >= 500) return HttpError(r).Context("upload status");
  if (r.status != 204) return std::optional<int64_t>();
  return NextOffset(r);
}

Status Client::SendBlob(const Endpoint& ep, const Reference& ref, cache::ContentStore& cs, const Descriptor& d,
                        std::string& location, int64_t offset, const std::function<void(int64_t)>& moved) {
  Authenticator& auth = AuthFor(ep);
  std::string scope = PushScope(ref.path);
  XB_ASSIGN(core::UniqueFd fd, cs.OpenBlob(d.digest));
  XB_ASSIGN(int64_t size, cs.Size(d.digest));
  std::string session_file = SessionFile(ep, ref, d.digest);
  auto remember = [&] {
    if (session_file.empty()) return;
    core::Json j = {{"location", location}, {"digest", d.digest.String()}, {"repository", ep.host + "/" + ref.path}};
    (void)core::MkdirAll(opts_.upload_state_dir, 0700);
    (void)core::WriteFileAtomic(session_file, j.dump(), 0600);
  };
  remember();
  int failures = 0;
  while (offset < size) {
    int64_t len = opts_.upload_chunk_size > 0 ? std::min(opts_.upload_chunk_size, size - offset) : size - offset;
    Request patch;
    patch.method = "PATCH";
    patch.url = location;
    patch.follow_redirects = false;
    patch.body_fd = fd.get();
    patch.body_offset = offset;
    patch.body_length = len;
    patch.headers.emplace_back("Content-Type", "application/octet-stream");
    patch.headers.emplace_back("Content-Range", std::to_string(offset) + "-" + std::to_string(offset + len - 1));
    int64_t current = offset;
    patch.body_progress = [&](int64_t n) {
      current += n;
      if (moved) moved(std::min(current, size));
    };
    auto r = auth.Do(patch, scope);
    if (r.ok() && r->status == 202) {
      if (auto loc = r->Header("location")) location = ResolveUrl(r->url, *loc);
      auto next = NextOffset(*r);
      offset = next && *next > offset ? *next : offset + len;
      remember();
      continue;
    }
    Error e = r.ok() ? HttpError(*r) : std::move(r).error();
    if (r.ok() && r->status != 404 && r->status < 500 && r->status != 416) return std::move(e).Context("upload");
    // Interrupted: the registry says how much of the session it kept.
    if (++failures >= kBlobAttempts) return std::move(e).Context("upload");
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << failures));
    XB_ASSIGN_CTX(std::optional<int64_t> at, SessionOffset(ep, ref, location), "upload interrupted: " + e.ToString());
    if (!at) return Error(Code::kAborted, "upload: the registry dropped the session after: " + e.ToString());
    if (opts_.log) opts_.log->Info("resuming upload of " + d.digest.String() + " at byte " + std::to_string(*at));
    offset = *at;
  }
  Request put;
  put.method = "PUT";
  put.url = WithQuery(location, "digest=sha256%3A" + d.digest.Hex());
  put.follow_redirects = false;
  put.headers.emplace_back("Content-Type", "application/octet-stream");
  XB_ASSIGN_CTX(Response r, auth.Do(put, scope), "finish upload");
  if (r.status != 201) return HttpError(r).Context("finish upload");
  if (!session_file.empty()) ::unlink(session_file.c_str());
  return core::Ok();
}

Result<Client::Upload> Client::UploadBlob(cache::ImageStore& store, const Reference& ref, const Descriptor& d,
                                          std::string* mounted_from, const std::function<void(int64_t)>& moved) {
  Endpoint ep = EndpointFor(ref.domain);
  Authenticator& auth = AuthFor(ep);
  std::string scope = PushScope(ref.path);
  std::string uploads = ep.base + "/v2/" + ref.path + "/blobs/uploads/";
  Request head;
  head.method = "HEAD";
  head.url = ep.base + "/v2/" + ref.path + "/blobs/" + d.digest.String();
  XB_ASSIGN_CTX(Response h, auth.Do(head, scope), "check blob");
  if (h.status == 200) return Upload::kExists;
  if (h.status != 404) return HttpError(h).Context("check blob");

  std::string location;
  int64_t offset = 0;
  // A blob pulled from (or pushed to) another repository of this registry: mount it.
  auto sources = store.db().BlobSources(d.digest, ep.host);
  if (sources.ok()) {
    for (const auto& from : *sources) {
      if (from == ref.path) continue;
      Request mount;
      mount.method = "POST";
      mount.url = uploads + "?mount=" + d.digest.String() + "&from=" + UrlEscape(from);
      mount.follow_redirects = false;
      auto m = auth.Do(mount, scope + " " + PullScope(from));
      if (!m.ok()) continue;
      if (m->status == 201) {
        *mounted_from = from;
        return Upload::kMounted;
      }
      if (m->status == 202) {  // not mountable: the registry opened an upload session instead
        if (auto loc = m->Header("location")) location = ResolveUrl(m->url, *loc);
        break;
      }
    }
  }
  // An earlier push left an unfinished session: continue where the registry says it stands.
  std::string session_file = SessionFile(ep, ref, d.digest);
  if (location.empty() && !session_file.empty() && core::Exists(session_file)) {
    auto text = core::ReadFile(session_file, 64 * 1024);
    auto j = text.ok() ? core::Json::parse(*text, nullptr, false) : core::Json();
    std::string loc = j.is_object() ? j.value("location", "") : "";
    std::optional<int64_t> at;
    if (!loc.empty()) {
      XB_ASSIGN(at, SessionOffset(ep, ref, loc));
    }
    if (at) {
      location = loc;
      offset = *at;
      if (opts_.log) {
        opts_.log->Info("resuming upload of " + d.digest.String() + " at byte " + std::to_string(offset));
      }
    } else {
      if (opts_.log) {
        opts_.log->Info("upload of " + d.digest.String() + " starts over: the registry cannot continue the last session");
      }
      ::unlink(session_file.c_str());
    }
  }
  for (int fresh = 0;; ++fresh) {
    if (location.empty()) {
      Request post;
      post.method = "POST";
      post.url = uploads;
      post.follow_redirects = false;
      XB_ASSIGN_CTX(Response p, auth.Do(post, scope), "start upload");
      if (p.status != 202) return HttpError(p).Context("start upload");
      auto loc = p.Header("location");
      if (!loc) return Error(Code::kInvalidArgument, "start upload: no Location in the registry's answer");
      location = ResolveUrl(p.url, *loc);
      offset = 0;
    }
    Status s = SendBlob(ep, ref, store.content(), d, location, offset, moved);
    if (s.ok()) return Upload::kUploaded;
    // The registry dropped the session (e.g. it restarted mid-chunk): start one fresh upload.
    if (fresh > 0 || s.error().code() != Code::kAborted) return std::move(s).error();
    if (opts_.log) opts_.log->Info("upload of " + d.digest.String() + " restarts: " + s.error().ToString());
    if (!session_file.empty()) ::unlink(session_file.c_str());
    location.clear();
  }
}

Result<PushResult> Client::Push(cache::ImageStore& store, std::string_view local, const Reference& target,
                                const ProgressFn& progress, const cache::DistributionOptions& dist) {
  std::string what = "push " + target.String();
  if (target.tag.empty()) return Error(Code::kInvalidArgument, what + ": a tag is required");
  XB_ASSIGN_CTX(cache::ResolvedImage img, store.Resolve(local), what);
  XB_ASSIGN_CTX(cache::ResolvedImage sent, cache::ForDistribution(store, img, dist), what);
  return PushImage(store, sent, target, progress);
}

Result<PushResult> Client::PushImage(cache::ImageStore& store, const cache::ResolvedImage& img,
                                     const Reference& target, const ProgressFn& progress) {
  std::string what = "push " + target.String();
  if (target.tag.empty()) return Error(Code::kInvalidArgument, what + ": a tag is required");
  std::vector<std::pair<Descriptor, bool>> blobs;
  for (const auto& l : img.manifest.layers) blobs.emplace_back(l, false);
  blobs.emplace_back(img.manifest.config, true);
  XB_TRY_CTX(RunParallel(blobs.size(), opts_.push_concurrency, [&](size_t i) -> Status {
    const auto& [b, is_config] = blobs[i];
    auto moved = [&, b = b, is_config = is_config](int64_t cur) {
      if (progress) progress(ProgressEvent{ProgressEvent::Kind::kProgress, b, is_config, cur, {}});
    };
    std::string from;
    XB_ASSIGN_CTX(Upload u, UploadBlob(store, target, b, &from, moved),
                  std::string(is_config ? "config " : "layer ") + b.digest.String());
    if (progress) {
      auto kind = u == Upload::kExists    ? ProgressEvent::Kind::kExists
                  : u == Upload::kMounted ? ProgressEvent::Kind::kMounted
                                          : ProgressEvent::Kind::kDone;
      progress(ProgressEvent{kind, b, is_config, b.size, from});
    }
    return core::Ok();
  }), what);
  Endpoint ep = EndpointFor(target.domain);
  Request put;
  put.method = "PUT";
  put.url = ep.base + "/v2/" + target.path + "/manifests/" + target.tag;
  std::string mt = img.manifest.media_type.empty() ? img.record.media_type : img.manifest.media_type;
  put.headers.emplace_back("Content-Type", mt);
  put.body = img.manifest_bytes;
  XB_ASSIGN_CTX(Response r, AuthFor(ep).Do(put, PushScope(target.path)), what + ": put manifest");
  if (r.status != 201 && r.status != 200) return HttpError(r).Context(what + ": put manifest");
  PushResult out;
  out.digest = Digest::Of(img.manifest_bytes);
  out.size = static_cast<int64_t>(img.manifest_bytes.size());
  if (auto h = r.Header("docker-content-digest"); h && *h != out.digest.String()) {
    return Error(Code::kDataLoss, what + ": registry stored the manifest as " + *h + ", expected " + out.digest.String());
  }
  for (const auto& [b, is_config] : blobs) (void)store.db().AddBlobSource(b.digest, ep.host, target.path);
  return out;
}

}  // namespace xbuild::registry
