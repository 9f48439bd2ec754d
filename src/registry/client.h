// The registry client: pull an image into the local store, push one from it, fetch manifests.
// Speaks the OCI distribution API (/v2/) through a Transport, with auth per registry host.
//
// Pull: manifest (OCI/Docker, index -> the platform's manifest), bounded and digest-checked, its
// bytes stored verbatim; config and layers fetched 4 at a time into resumable content-store
// writers ("pull-<digest>", resumed with Range); all under a lease so a failed pull leaves
// nothing. Push: HEAD each blob, upload the missing ones (POST + monolithic PUT streamed from
// the store), then PUT the manifest's exact bytes to the tag.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "cache/image_store.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "registry/auth.h"
#include "registry/http.h"

namespace xbuild::registry {

struct ProgressEvent {
  enum class Kind {
    kPulling,    // about to fetch blobs (after the manifest was resolved)
    kExists,     // blob already present (locally for pull, remotely for push)
    kDone,       // blob downloaded / uploaded
  };
  Kind kind;
  image::Descriptor blob;
  bool is_config = false;
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

// "docker.io" -> "registry-1.docker.io"; others unchanged.
std::string RegistryHost(std::string_view domain);
// https://<host>/v2/<path>/manifests/<tag or digest>
std::string ManifestUrl(const image::Reference& ref);
std::string BlobUrl(const image::Reference& ref, const core::Digest& d);

class Client {
 public:
  Client(Transport& transport, Authenticator::CredentialFn creds)
      : transport_(transport), creds_(std::move(creds)) {}

  Result<PullResult> Pull(cache::ImageStore& store, const image::Reference& ref,
                          const image::Platform& platform, const ProgressFn& progress);
  Result<PushResult> Push(cache::ImageStore& store, std::string_view local,
                          const image::Reference& target, const ProgressFn& progress);
  // The manifest or index the reference names, digest-checked.
  Result<FetchedManifest> GetManifest(const image::Reference& ref);
  // Checks credentials against a registry host (e.g. "127.0.0.1:5000", "docker.io").
  Status Login(std::string_view host, const Credentials& creds);

 private:
  Authenticator& AuthFor(const std::string& domain);
  Result<FetchedManifest> FetchManifest(const image::Reference& ref, std::string_view tag_or_digest,
                                        std::optional<core::Digest> expected);
  Status DownloadBlob(cache::ContentStore& cs, const image::Reference& ref,
                      const image::Descriptor& d);
  Result<bool> UploadBlob(cache::ContentStore& cs, const image::Reference& ref,
                          const image::Descriptor& d);

  Transport& transport_;
  Authenticator::CredentialFn creds_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Authenticator>> auths_;  // guarded by mu_
};

}  // namespace xbuild::registry
