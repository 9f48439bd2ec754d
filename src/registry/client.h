// The registry client: pull an image into the local store, push one from it, fetch manifests.
// Speaks the OCI distribution API (/v2/) through a Transport, with auth per registry host.
//
// Pull: manifest (OCI/Docker, index -> the platform's manifest), bounded and digest-checked, its
// bytes stored verbatim; config and layers fetched in parallel (pull_concurrency) into resumable
// content-store writers ("pull-<digest>", resumed with Range); all under a lease so a failed pull
// leaves nothing. docker.io pulls try `registry-mirrors` first, then the upstream. Each pulled
// blob's registry and repository are recorded (blob_sources) for cross-repository mounts.
//
// Push: blobs in parallel (push_concurrency). Each: HEAD (exists?), else a cross-repository
// mount from a repository of the same registry it came from, else an upload session: POST, then
// the blob streamed by PATCH (in upload_chunk_size pieces, or one stream), then PUT ?digest=.
// The session URL is remembered under upload_state_dir after each accepted PATCH; after an
// interruption (in this process or a later one) the upload continues from the offset the
// registry reports (GET on the session -> Range: 0-<last>), or starts over when the registry no
// longer knows the session. Last, the manifest's exact bytes are PUT to the tag.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cache/distribution.h"
#include "cache/image_store.h"
#include "core/log.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "registry/auth.h"
#include "registry/http.h"

namespace xbuild::registry {

struct ProgressEvent {
  enum class Kind {
    kPulling,   // about to fetch blobs (after the manifest was resolved)
    kExists,    // blob already present (locally for pull, remotely for push)
    kProgress,  // bytes moved: `current` of blob.size (resumed transfers start above 0)
    kMounted,   // push: mounted from another repository of the same registry (`from`)
    kDone,      // blob downloaded / uploaded
    kMirror,    // pull: `from` is the mirror (or upstream) the image comes from
  };
  Kind kind;
  image::Descriptor blob;
  bool is_config = false;
  int64_t current = 0;
  std::string from;
};
using ProgressFn = std::function<void(const ProgressEvent&)>;

struct PullResult {
  cache::ImageRecord record;
  core::Digest digest;      // what the reference resolved to (an index's digest for an index)
  bool up_to_date = false;  // the tag already named this image
};

struct PushResult {
  core::Digest digest;  // manifest digest
  int64_t size = 0;     // manifest size
};

struct FetchedManifest {
  std::string bytes;
  std::string media_type;
  core::Digest digest;
};

struct ClientOptions {
  // Mirrors for docker.io ("https://mirror.example.com", "http://127.0.0.1:5001"), tried in
  // order before the upstream.
  std::vector<std::string> mirrors;
  // Where unfinished upload sessions are remembered across processes; "" keeps them in memory.
  std::string upload_state_dir;
  int64_t upload_chunk_size = 0;  // 0: one streamed PATCH per blob
  int pull_concurrency = 4;
  int push_concurrency = 4;
  core::Logger* log = nullptr;  // mirror fallbacks, resumed uploads (optional)
};

// One registry API endpoint: `host` keys auth, credentials and blob sources ("docker.io",
// "127.0.0.1:5000"); `base` is the URL prefix ("https://registry-1.docker.io").
struct Endpoint {
  std::string host;
  std::string base;
};
Endpoint EndpointFor(std::string_view domain);
// "http://127.0.0.1:5001/" -> {host "127.0.0.1:5001", base "http://127.0.0.1:5001"}; a URL
// without a scheme means https.
Result<Endpoint> MirrorEndpoint(std::string_view url);

// "docker.io" -> "registry-1.docker.io"; others unchanged.
std::string RegistryHost(std::string_view domain);
// https://<host>/v2/<path>/manifests/<tag or digest>
std::string ManifestUrl(const image::Reference& ref);
std::string BlobUrl(const image::Reference& ref, const core::Digest& d);

class Client {
 public:
  Client(Transport& transport, Authenticator::CredentialFn creds, ClientOptions opts = {})
      : transport_(transport), creds_(std::move(creds)), opts_(std::move(opts)) {}

  Result<PullResult> Pull(cache::ImageStore& store, const image::Reference& ref,
                          const image::Platform& platform, const ProgressFn& progress);
  // Pushes the local image in its distribution form (cache/distribution.h: uncompressed layers
  // compressed, or their stored variants reused).
  Result<PushResult> Push(cache::ImageStore& store, std::string_view local,
                          const image::Reference& target, const ProgressFn& progress,
                          const cache::DistributionOptions& dist = {});
  // Pushes exactly this manifest (whose blobs are all in the store).
  Result<PushResult> PushImage(cache::ImageStore& store, const cache::ResolvedImage& img,
                               const image::Reference& target, const ProgressFn& progress);
  // The manifest or index the reference names, digest-checked.
  Result<FetchedManifest> GetManifest(const image::Reference& ref);
  // Downloads one blob of the reference's repository into the content store (digest-checked,
  // resumable); a blob already there is not fetched.
  Status FetchBlob(cache::ContentStore& cs, const image::Reference& ref, const image::Descriptor& d);
  // Checks credentials against a registry host (e.g. "127.0.0.1:5000", "docker.io").
  Status Login(std::string_view host, const Credentials& creds);
  // The repository's tags (GET /v2/<name>/tags/list, following Link pagination).
  Result<std::vector<std::string>> ListTags(const image::Reference& ref);

 private:
  enum class Upload { kExists, kMounted, kUploaded };
  Authenticator& AuthFor(const Endpoint& ep);
  Result<FetchedManifest> FetchManifest(const Endpoint& ep, const image::Reference& ref,
                                        std::string_view tag_or_digest,
                                        std::optional<core::Digest> expected);
  Result<PullResult> PullFrom(const Endpoint& ep, cache::ImageStore& store, const image::Reference& ref,
                              const image::Platform& platform, const ProgressFn& progress);
  Status DownloadBlob(const Endpoint& ep, cache::ContentStore& cs, const image::Reference& ref,
                      const image::Descriptor& d, const std::function<void(int64_t)>& moved);
  Result<Upload> UploadBlob(cache::ImageStore& store, const image::Reference& ref,
                            const image::Descriptor& d, std::string* mounted_from,
                            const std::function<void(int64_t)>& moved);
  // Streams the blob from `offset` into the session at `location`; returns the final PUT URL's
  // answer. Updates `location` as the registry hands out new ones.
  Status SendBlob(const Endpoint& ep, const image::Reference& ref, cache::ContentStore& cs,
                  const image::Descriptor& d, std::string& location, int64_t offset,
                  const std::function<void(int64_t)>& moved);
  // Asks the registry how much of the session it has: the next offset, nullopt when the
  // registry no longer has the session (or cannot continue it), an error when it did not answer.
  Result<std::optional<int64_t>> SessionOffset(const Endpoint& ep, const image::Reference& ref,
                                       const std::string& location);
  std::string SessionFile(const Endpoint& ep, const image::Reference& ref, const core::Digest& d) const;

  Transport& transport_;
  Authenticator::CredentialFn creds_;
  ClientOptions opts_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Authenticator>> auths_;  // guarded by mu_
};

}  // namespace xbuild::registry
