// Registry authentication: WWW-Authenticate challenges, Bearer tokens (cached per scope until
// they expire), Basic auth, and Docker's credential sources.
//
// Credentials come from Docker's client config, <$DOCKER_CONFIG or ~/.docker>/config.json:
//   {"auths": {"<server>": {"auth": base64("user:pass")} | {"username":..,"password":..},
//              "identitytoken": ..},
//    "credHelpers": {"<host>": "<helper>"}, "credsStore": "<helper>"}
// A helper is the program docker-credential-<helper>: `get` reads the server URL on stdin and
// prints {"Username":..,"Secret":..}. docker.io is keyed "https://index.docker.io/v1/".
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "registry/http.h"

namespace xbuild::registry {

struct Challenge {
  std::string scheme;                         // lowercased: "bearer", "basic"
  std::map<std::string, std::string> params;  // keys lowercased: realm, service, scope
};

// Parses a WWW-Authenticate header value (one or more challenges).
std::vector<Challenge> ParseChallenges(std::string_view header);

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token, when the config holds one
  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
};

std::string Base64Encode(std::string_view in);
Result<std::string> Base64Decode(std::string_view in);

// The config.json key for a registry host ("docker.io" -> "https://index.docker.io/v1/").
std::string CredentialKey(std::string_view host);
// $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
std::string DockerConfigPath();

// Docker's client config file; reads are lazy, writes keep unknown fields.
class CredentialStore {
 public:
  explicit CredentialStore(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  // Credentials for a registry host; nullopt when none are configured.
  Result<std::optional<Credentials>> Get(std::string_view host) const;
  // Stores base64 "auth" in "auths" (helpers are not written to).
  Status Store(std::string_view host, const Credentials& creds);
  // Removes the host's entry; kNotFound when it had none.
  Status Erase(std::string_view host);

 private:
  Result<core::Json> Read() const;
  std::string path_;
};

// Bearer tokens by key (realm|service|scope). `now` is passed in so tests control time.
class TokenCache {
 public:
  std::optional<std::string> Get(const std::string& key, std::chrono::steady_clock::time_point now);
  // expires_in <= 0 means the spec's default of 60 s. Tokens expire 10 s early.
  void Put(const std::string& key, std::string token, int64_t expires_in,
           std::chrono::steady_clock::time_point now);

 private:
  struct Entry {
    std::string token;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

// One registry host's auth state: knows its challenge (from a /v2/ ping) and adds the right
// Authorization header to requests for a scope ("repository:app:pull,push"). Thread-safe.
class Authenticator {
 public:
  using CredentialFn = std::function<Result<std::optional<Credentials>>(std::string_view host)>;
  // base: "https://host[:port]" (the transport falls back to http for insecure hosts).
  Authenticator(Transport& transport, std::string host, std::string base, CredentialFn creds);

  // GET /v2/; remembers the challenge. A 200 means no auth is needed.
  Status Ping();
  // Sends req with auth for scope; on a 401 it fetches a fresh token once and retries.
  Result<Response> Do(Request req, const std::string& scope);
  // Checks credentials against the registry (for login): Basic against /v2/, Bearer by
  // fetching a token with them.
  Status Verify(const Credentials& creds);

  const std::string& host() const { return host_; }
  const std::string& base() const { return base_; }

 private:
  Result<std::string> AuthHeader(const std::string& scope, bool fresh);
  Result<std::string> FetchToken(const Challenge& c, const std::string& scope,
                                 const std::optional<Credentials>& creds);
  Result<std::optional<Credentials>> Creds();

  Transport& transport_;
  std::string host_;
  std::string base_;
  CredentialFn creds_fn_;
  TokenCache tokens_;
  std::mutex mu_;
  bool pinged_ = false;                  // guarded by mu_
  std::optional<Challenge> challenge_;   // guarded by mu_
  bool creds_loaded_ = false;            // guarded by mu_
  std::optional<Credentials> creds_;     // guarded by mu_
};

}  // namespace xbuild::registry
