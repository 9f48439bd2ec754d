#include "registry/client.h"

#include <atomic>
#include <thread>

#include "image/media_types.h"

namespace xbuild::registry {

using core::Code;
using core::Digest;
using core::Error;
using image::Descriptor;
using image::Reference;

namespace {

constexpr int kPullConcurrency = 4;
constexpr int kBlobAttempts = 3;

const std::string& ManifestAccept() {
  static const std::string s = std::string(image::media::kOciManifest) + ", " +
                               std::string(image::media::kOciIndex) + ", " +
                               std::string(image::media::kDockerManifest) + ", " +
                               std::string(image::media::kDockerManifestList);
  return s;
}

std::string PullScope(const Reference& r) { return "repository:" + r.path + ":pull"; }
std::string PushScope(const Reference& r) { return "repository:" + r.path + ":pull,push"; }
std::string Base(const Reference& r) { return "https://" + RegistryHost(r.domain); }

}  // namespace

std::string RegistryHost(std::string_view domain) {
  if (domain == "docker.io" || domain == "index.docker.io") return "registry-1.docker.io";
  return std::string(domain);
}

std::string ManifestUrl(const Reference& ref) {
  std::string what = ref.digest ? ref.digest->String() : ref.tag;
  return Base(ref) + "/v2/" + ref.path + "/manifests/" + what;
}

std::string BlobUrl(const Reference& ref, const Digest& d) {
  return Base(ref) + "/v2/" + ref.path + "/blobs/" + d.String();
}

Authenticator& Client::AuthFor(const std::string& domain) {
  std::lock_guard<std::mutex> l(mu_);
  auto& a = auths_[domain];
  if (!a) a = std::make_unique<Authenticator>(transport_, domain, "https://" + RegistryHost(domain), creds_);
  return *a;
}

Result<FetchedManifest> Client::FetchManifest(const Reference& ref, std::string_view tag_or_digest,
                                              std::optional<Digest> expected) {
  Request req;
  req.url = Base(ref) + "/v2/" + ref.path + "/manifests/" + std::string(tag_or_digest);
  req.headers.emplace_back("Accept", ManifestAccept());
  req.max_body = image::kMaxManifestSize;
  std::string what = "manifest " + std::string(tag_or_digest);
  XB_ASSIGN_CTX(Response resp, AuthFor(ref.domain).Do(req, PullScope(ref)), what);
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
  return FetchManifest(ref, what, ref.digest).Context("fetch " + ref.String());
}

Status Client::Login(std::string_view host, const Credentials& creds) {
  return AuthFor(std::string(host)).Verify(creds);
}

Status Client::DownloadBlob(cache::ContentStore& cs, const Reference& ref, const Descriptor& d) {
  Status last = core::Ok();
  for (int attempt = 0; attempt < kBlobAttempts; ++attempt) {
    if (cs.Has(d.digest)) return core::Ok();
    XB_ASSIGN(auto w, cs.NewWriter("pull-" + d.digest.String(), d.digest, d.size, /*wait=*/true));
    int64_t offset = w->Offset();
    Request req;
    req.url = BlobUrl(ref, d.digest);
    req.max_body = 64 * 1024;
    if (offset > 0 && offset < d.size) req.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
    bool first = true;
    int64_t skip = 0;
    req.sink = [&](long status, std::string_view data) -> Status {
      if (first) {
        first = false;
        if (status == 200) skip = offset;  // the server ignored Range: drop what we have
      }
      if (skip > 0) {
        size_t n = static_cast<size_t>(std::min<int64_t>(skip, static_cast<int64_t>(data.size())));
        data.remove_prefix(n);
        skip -= static_cast<int64_t>(n);
      }
      if (data.empty()) return core::Ok();
      return w->Write(data);
    };
    if (offset < d.size) {
      auto resp = AuthFor(ref.domain).Do(req, PullScope(ref));
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

Result<PullResult> Client::Pull(cache::ImageStore& store, const Reference& ref,
                                const image::Platform& platform, const ProgressFn& progress) {
  std::string what = "pull " + ref.String();
  XB_ASSIGN_CTX(FetchedManifest top,
                FetchManifest(ref, ref.digest ? ref.digest->String() : ref.tag, ref.digest), what);
  PullResult out;
  out.digest = top.digest;
  FetchedManifest m = top;
  if (image::IsIndexType(top.media_type)) {
    XB_ASSIGN_CTX(image::Index idx, image::ParseIndex(top.bytes, top.digest), what);
    XB_ASSIGN_CTX(Descriptor sel, image::SelectPlatform(idx, platform), what);
    XB_ASSIGN_CTX(m, FetchManifest(ref, sel.digest.String(), sel.digest), what);
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
  if (progress) progress(ProgressEvent{ProgressEvent::Kind::kPulling, man.config, true});

  auto r = store.WithLease<cache::ImageRecord>([&](const cache::Lease& lease) -> Result<cache::ImageRecord> {
    for (const auto& b : blobs) XB_TRY(store.db().AddLeaseResource(lease.id, "content", b.digest.String()));
    XB_TRY(store.db().AddLeaseResource(lease.id, "content", m.digest.String()));
    XB_TRY_CTX(store.content().WriteBlob(m.bytes, m.digest), "store manifest");

    std::mutex emu;
    std::optional<Error> first_error;  // guarded by emu
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i; (i = next.fetch_add(1)) < blobs.size();) {
        {
          std::lock_guard<std::mutex> l(emu);
          if (first_error) return;
        }
        const Descriptor& b = blobs[i];
        bool is_config = i == 0;
        bool had = store.content().Has(b.digest);
        Status s = had ? core::Ok() : DownloadBlob(store.content(), ref, b);
        if (!s.ok()) {
          std::lock_guard<std::mutex> l(emu);
          if (!first_error) {
            first_error = std::move(s).error().Context((is_config ? "config " : "layer ") + b.digest.String());
          }
          return;
        }
        if (progress) {
          progress(ProgressEvent{had ? ProgressEvent::Kind::kExists : ProgressEvent::Kind::kDone, b, is_config});
        }
      }
    };
    std::vector<std::thread> threads;
    size_t n = std::min<size_t>(kPullConcurrency, blobs.size());
    for (size_t i = 0; i < n; ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (first_error) return std::move(*first_error);
    XB_ASSIGN(cache::ImageRecord rec, store.AddImage(m.digest));
    if (!ref.tag.empty()) XB_TRY(store.Tag(ref, m.digest));
    return rec;
  });
  if (!r.ok()) return std::move(r).error().Context(what);
  out.record = *r;
  return out;
}

Result<bool> Client::UploadBlob(cache::ContentStore& cs, const Reference& ref, const Descriptor& d) {
  Authenticator& auth = AuthFor(ref.domain);
  Request head;
  head.method = "HEAD";
  head.url = BlobUrl(ref, d.digest);
  XB_ASSIGN_CTX(Response h, auth.Do(head, PushScope(ref)), "check blob");
  if (h.status == 200) return false;
  if (h.status != 404) return HttpError(h).Context("check blob");

  Request post;
  post.method = "POST";
  post.url = Base(ref) + "/v2/" + ref.path + "/blobs/uploads/";
  post.follow_redirects = false;
  XB_ASSIGN_CTX(Response p, auth.Do(post, PushScope(ref)), "start upload");
  if (p.status != 202) return HttpError(p).Context("start upload");
  auto loc = p.Header("location");
  if (!loc) return Error(Code::kInvalidArgument, "start upload: no Location in the registry's answer");
  std::string url = ResolveUrl(p.url, *loc);
  url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + "sha256%3A" + d.digest.Hex();

  XB_ASSIGN(core::UniqueFd fd, cs.OpenBlob(d.digest));
  XB_ASSIGN(int64_t size, cs.Size(d.digest));
  Request put;
  put.method = "PUT";
  put.url = url;
  put.body_fd = fd.get();
  put.body_length = size;
  put.headers.emplace_back("Content-Type", "application/octet-stream");
  XB_ASSIGN_CTX(Response r, auth.Do(put, PushScope(ref)), "upload");
  if (r.status != 201) return HttpError(r).Context("upload");
  return true;
}

Result<PushResult> Client::Push(cache::ImageStore& store, std::string_view local,
                                const Reference& target, const ProgressFn& progress) {
  std::string what = "push " + target.String();
  if (target.tag.empty()) return Error(Code::kInvalidArgument, what + ": a tag is required");
  XB_ASSIGN_CTX(cache::ResolvedImage img, store.Resolve(local), what);
  std::vector<std::pair<Descriptor, bool>> blobs;
  for (const auto& l : img.manifest.layers) blobs.emplace_back(l, false);
  blobs.emplace_back(img.manifest.config, true);
  for (const auto& [b, is_config] : blobs) {
    XB_ASSIGN_CTX(bool uploaded, UploadBlob(store.content(), target, b),
                  what + ": " + (is_config ? "config " : "layer ") + b.digest.String());
    if (progress) {
      progress(ProgressEvent{uploaded ? ProgressEvent::Kind::kDone : ProgressEvent::Kind::kExists, b, is_config});
    }
  }
  Request put;
  put.method = "PUT";
  put.url = Base(target) + "/v2/" + target.path + "/manifests/" + target.tag;
  std::string mt = img.manifest.media_type.empty() ? img.record.media_type : img.manifest.media_type;
  put.headers.emplace_back("Content-Type", mt);
  put.body = img.manifest_bytes;
  XB_ASSIGN_CTX(Response r, AuthFor(target.domain).Do(put, PushScope(target)), what + ": put manifest");
  if (r.status != 201 && r.status != 200) return HttpError(r).Context(what + ": put manifest");
  PushResult out;
  out.digest = Digest::Of(img.manifest_bytes);
  out.size = static_cast<int64_t>(img.manifest_bytes.size());
  if (auto h = r.Header("docker-content-digest"); h && *h != out.digest.String()) {
    return Error(Code::kDataLoss, what + ": registry stored the manifest as " + *h + ", expected " + out.digest.String());
  }
  return out;
}

}  // namespace xbuild::registry
