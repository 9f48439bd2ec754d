#include "registry/auth.h"

#include <curl/curl.h>

#include <cctype>
#include <cstdlib>

#include "core/fs.h"
#include "core/strings.h"
#include "core/subprocess.h"

namespace xbuild::registry {

using core::Code;
using core::Error;
using core::Json;

namespace {

bool IsDockerHub(std::string_view host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

}  // namespace

std::vector<Challenge> ParseChallenges(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
  };
  while (true) {
    skip_ws();
    if (i >= h.size()) break;
    size_t start = i;
    while (i < h.size() && h[i] != ' ' && h[i] != ',' && h[i] != '=') ++i;
    std::string token(h.substr(start, i - start));
    if (i < h.size() && h[i] == '=') {
      // A param of the current challenge: key=value or key="quoted value".
      ++i;
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value += h[i++];
        }
        if (i < h.size()) ++i;
      } else {
        while (i < h.size() && h[i] != ',' && h[i] != ' ') value += h[i++];
      }
      if (!out.empty()) out.back().params[core::ToLower(token)] = value;
      continue;
    }
    out.push_back(Challenge{core::ToLower(token), {}});
  }
  return out;
}

std::string Base64Encode(std::string_view in) {
  static const char* kTab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kTab[v >> 18];
    out += kTab[(v >> 12) & 63];
    out += kTab[(v >> 6) & 63];
    out += kTab[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kTab[v >> 18];
    out += kTab[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kTab[v >> 18];
    out += kTab[(v >> 12) & 63];
    out += kTab[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=' || c == '\n' || c == '\r') continue;
    else return Error(Code::kInvalidArgument, "invalid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string CredentialKey(std::string_view host) {
  if (IsDockerHub(host)) return "https://index.docker.io/v1/";
  return std::string(host);
}

std::string DockerConfigPath() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) return core::JoinPath(d, "config.json");
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.docker/config.json";
}

Result<Json> CredentialStore::Read() const {
  if (!core::Exists(path_)) return Json::object();
  XB_ASSIGN(std::string text, core::ReadFile(path_, 4 * 1024 * 1024));
  XB_ASSIGN(Json j, core::ParseJson(text, path_));
  if (!j.is_object()) return Error(Code::kInvalidArgument, path_ + ": not a JSON object");
  return j;
}

Result<std::optional<Credentials>> CredentialStore::Get(std::string_view host) const {
  XB_ASSIGN(Json j, Read());
  std::string key = CredentialKey(host);
  std::string helper;
  if (j.contains("credHelpers") && j["credHelpers"].is_object()) {
    helper = core::GetOptString(j["credHelpers"], key).value_or(
        core::GetOptString(j["credHelpers"], std::string(host)).value_or(""));
  }
  if (helper.empty()) helper = core::GetOptString(j, "credsStore").value_or("");
  if (!helper.empty()) {
    std::string prog = "docker-credential-" + helper;
    core::RunOptions o;
    o.stdin_data = key;
    XB_ASSIGN_CTX(core::RunResult r, core::RunProcess({prog, "get"}, o), "credential helper " + prog);
    if (r.success()) {
      XB_ASSIGN_CTX(Json c, core::ParseJson(r.out, prog + " output"), "credential helper " + prog);
      Credentials cr;
      cr.username = core::GetOptString(c, "Username").value_or("");
      cr.password = core::GetOptString(c, "Secret").value_or("");
      if (cr.username == "<token>") {
        cr.identity_token = cr.password;
        cr.username.clear();
        cr.password.clear();
      }
      if (!cr.empty()) return std::optional<Credentials>(cr);
      return std::optional<Credentials>();
    }
    std::string msg = core::Trim(r.out + r.err);
    if (msg.find("credentials not found") != std::string::npos) return std::optional<Credentials>();
    return Error(Code::kUnavailable, "credential helper " + prog + " get: " + msg);
  }
  if (!j.contains("auths") || !j["auths"].is_object()) return std::optional<Credentials>();
  const Json* entry = nullptr;
  for (auto& [k, v] : j["auths"].items()) {
    // Keys may be URLs ("https://host/v1/") or bare hosts.
    std::string kh = k;
    if (size_t p = kh.find("://"); p != std::string::npos) kh = kh.substr(p + 3);
    kh = kh.substr(0, kh.find('/'));
    if (k == key || core::ToLower(kh) == core::ToLower(host) || (IsDockerHub(host) && IsDockerHub(kh))) {
      entry = &v;
      if (k == key) break;
    }
  }
  if (!entry || !entry->is_object()) return std::optional<Credentials>();
  Credentials cr;
  if (auto a = core::GetOptString(*entry, "auth"); a && !a->empty()) {
    XB_ASSIGN_CTX(std::string dec, Base64Decode(*a), path_ + ": auths." + key + ".auth");
    size_t colon = dec.find(':');
    if (colon == std::string::npos) {
      return Error(Code::kInvalidArgument, path_ + ": auths." + key + ".auth: no ':' in decoded value");
    }
    cr.username = dec.substr(0, colon);
    cr.password = dec.substr(colon + 1);
  } else {
    cr.username = core::GetOptString(*entry, "username").value_or("");
    cr.password = core::GetOptString(*entry, "password").value_or("");
  }
  cr.identity_token = core::GetOptString(*entry, "identitytoken").value_or("");
  if (cr.empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(cr);
}

Status CredentialStore::Store(std::string_view host, const Credentials& creds) {
  XB_ASSIGN(Json j, Read());
  if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = Json::object();
  j["auths"][CredentialKey(host)] = Json{{"auth", Base64Encode(creds.username + ":" + creds.password)}};
  XB_TRY(core::MkdirAll(core::Dirname(path_), 0700));
  return core::WriteFileAtomic(path_, j.dump(1, '\t') + "\n", 0600);
}

Status CredentialStore::Erase(std::string_view host) {
  XB_ASSIGN(Json j, Read());
  std::string key = CredentialKey(host);
  if (!j.contains("auths") || !j["auths"].is_object() || !j["auths"].contains(key)) {
    return Error(Code::kNotFound, "not logged in to " + std::string(host));
  }
  j["auths"].erase(key);
  return core::WriteFileAtomic(path_, j.dump(1, '\t') + "\n", 0600);
}

std::optional<std::string> TokenCache::Get(const std::string& key,
                                           std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (now >= it->second.expires) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.token;
}

void TokenCache::Put(const std::string& key, std::string token, int64_t expires_in,
                     std::chrono::steady_clock::time_point now) {
  if (expires_in <= 0) expires_in = 60;
  int64_t keep = expires_in > 20 ? expires_in - 10 : expires_in;
  std::lock_guard<std::mutex> l(mu_);
  entries_[key] = Entry{std::move(token), now + std::chrono::seconds(keep)};
}

Authenticator::Authenticator(Transport& transport, std::string host, std::string base,
                             CredentialFn creds)
    : transport_(transport), host_(std::move(host)), base_(std::move(base)),
      creds_fn_(std::move(creds)) {}

Result<std::optional<Credentials>> Authenticator::Creds() {
  std::lock_guard<std::mutex> l(mu_);
  if (!creds_loaded_) {
    if (creds_fn_) {
      XB_ASSIGN(creds_, creds_fn_(host_));
    }
    creds_loaded_ = true;
  }
  return creds_;
}

Status Authenticator::Ping() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (pinged_) return core::Ok();
  }
  Request req;
  req.url = base_ + "/v2/";
  req.max_body = 64 * 1024;
  XB_ASSIGN_CTX(Response resp, transport_.Do(req), "ping " + host_);
  std::optional<Challenge> ch;
  if (resp.status == 401) {
    for (const auto& h : resp.HeaderAll("www-authenticate")) {
      for (auto& c : ParseChallenges(h)) {
        if (c.scheme == "bearer" || (c.scheme == "basic" && !ch)) ch = c;
      }
    }
    if (!ch) return Error(Code::kPermissionDenied, "ping " + host_ + ": HTTP 401 without a usable WWW-Authenticate challenge");
  } else if (resp.status != 200) {
    return HttpError(resp).Context("ping " + host_);
  }
  std::lock_guard<std::mutex> l(mu_);
  pinged_ = true;
  challenge_ = ch;
  return core::Ok();
}

namespace {

// A token endpoint's answer: {"token"|"access_token": .., "expires_in": ..}.
Result<std::pair<std::string, int64_t>> ParseTokenResponse(const Response& resp, const std::string& realm,
                                                           size_t max_body) {
  XB_ASSIGN(Json j, core::ParseJson(resp.body, "token response", max_body));
  std::string token = core::GetOptString(j, "token").value_or(core::GetOptString(j, "access_token").value_or(""));
  if (token.empty()) return Error(Code::kInvalidArgument, "token response from " + realm + " has no token");
  int64_t expires = 0;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) expires = j["expires_in"].get<int64_t>();
  return std::make_pair(token, expires);
}

}  // namespace

Result<std::string> Authenticator::FetchToken(const Challenge& c, const std::string& scope,
                                              const std::optional<Credentials>& creds) {
  auto realm = c.params.find("realm");
  if (realm == c.params.end()) return Error(Code::kInvalidArgument, "bearer challenge without realm");
  std::string service = c.params.count("service") ? c.params.at("service") : "";
  std::vector<std::string> scopes;
  for (auto& s : core::Split(scope, ' ')) {
    if (!s.empty()) scopes.push_back(s);
  }
  std::string what = "fetch token from " + realm->second;
  constexpr size_t kMaxTokenBody = 1024 * 1024;
  std::optional<std::pair<std::string, int64_t>> got;

  // OAuth2 (what Docker and containerd do with a refresh token or a password): POST a form;
  // a token server without OAuth2 answers 404/405 and we fall back to GET with Basic.
  bool oauth = creds && (!creds->identity_token.empty() || (!creds->username.empty() && !creds->password.empty()));
  if (oauth) {
    Request post;
    post.method = "POST";
    post.url = realm->second;
    post.max_body = kMaxTokenBody;
    post.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    std::string form = "client_id=xbuild&service=" + UrlEscape(service);
    if (!scopes.empty()) form += "&scope=" + UrlEscape(scope);
    if (!creds->identity_token.empty()) {
      form += "&grant_type=refresh_token&refresh_token=" + UrlEscape(creds->identity_token);
    } else {
      form += "&grant_type=password&username=" + UrlEscape(creds->username) + "&password=" + UrlEscape(creds->password);
    }
    post.body = std::move(form);
    XB_ASSIGN_CTX(Response resp, transport_.Do(post), what);
    if (resp.status == 200) {
      XB_ASSIGN_CTX(got, ParseTokenResponse(resp, realm->second, kMaxTokenBody), what);
    } else if (resp.status != 404 && resp.status != 405 && !(resp.status == 401 && creds->identity_token.empty())) {
      return HttpError(resp).Context(what);
    }
  }
  if (!got) {
    std::string url = realm->second;
    std::string q;
    if (!service.empty()) q += "service=" + UrlEscape(service);
    for (const auto& s : scopes) q += std::string(q.empty() ? "" : "&") + "scope=" + UrlEscape(s);
    if (!q.empty()) url += (url.find('?') == std::string::npos ? "?" : "&") + q;
    Request req;
    req.url = url;
    req.max_body = kMaxTokenBody;
    if (creds && !creds->username.empty()) {
      req.headers.emplace_back("Authorization", "Basic " + Base64Encode(creds->username + ":" + creds->password));
    }
    XB_ASSIGN_CTX(Response resp, transport_.Do(req), what);
    if (resp.status != 200) return HttpError(resp).Context(what);
    XB_ASSIGN_CTX(got, ParseTokenResponse(resp, realm->second, kMaxTokenBody), what);
  }
  std::string key = realm->second + "|" + service + "|" + scope;
  tokens_.Put(key, got->first, got->second, std::chrono::steady_clock::now());
  return got->first;
}

Result<std::string> Authenticator::AuthHeader(const std::string& scope, bool fresh) {
  XB_TRY(Ping());
  std::optional<Challenge> ch;
  {
    std::lock_guard<std::mutex> l(mu_);
    ch = challenge_;
  }
  if (!ch) return std::string();
  XB_ASSIGN(std::optional<Credentials> creds, Creds());
  if (ch->scheme == "basic") {
    if (!creds || creds->username.empty()) {
      return Error(Code::kPermissionDenied, host_ + " requires authentication: run `xbuild login " + host_ + "`");
    }
    return "Basic " + Base64Encode(creds->username + ":" + creds->password);
  }
  std::string key = ch->params["realm"] + "|" + ch->params["service"] + "|" + scope;
  if (!fresh) {
    if (auto t = tokens_.Get(key, std::chrono::steady_clock::now())) return "Bearer " + *t;
  }
  XB_ASSIGN(std::string token, FetchToken(*ch, scope, creds));
  return "Bearer " + token;
}

Result<Response> Authenticator::Do(Request req, const std::string& scope) {
  size_t base_headers = req.headers.size();
  for (int attempt = 0; attempt < 2; ++attempt) {
    req.headers.resize(base_headers);
    XB_ASSIGN(std::string auth, AuthHeader(scope, attempt > 0));
    if (!auth.empty()) req.headers.emplace_back("Authorization", auth);
    XB_ASSIGN(Response resp, transport_.Do(req));
    if (resp.status == 401 && attempt > 0) {
      // Still refused with a fresh token: say which access was missing.
      for (const auto& h : resp.HeaderAll("www-authenticate")) {
        for (auto& c : ParseChallenges(h)) {
          if (c.params["error"] == "insufficient_scope") {
            std::string want = c.params.count("scope") ? c.params["scope"] : scope;
            XB_ASSIGN(std::optional<Credentials> creds, Creds());
            if (!creds || creds->empty()) {
              return Error(Code::kPermissionDenied, host_ + ": authentication required for " + want +
                                                        ": run `xbuild login " + host_ + "`");
            }
            return Error(Code::kPermissionDenied, host_ + ": insufficient scope: the credentials do not grant " + want);
          }
        }
      }
    }
    if (resp.status != 401 || attempt > 0) return resp;
    // A 401 after a ping: the challenge may have changed (or the token expired early).
    std::lock_guard<std::mutex> l(mu_);
    pinged_ = false;
  }
  return Error(Code::kInternal, "unreachable");
}

Status Authenticator::Verify(const Credentials& creds) {
  XB_TRY(Ping());
  std::optional<Challenge> ch;
  {
    std::lock_guard<std::mutex> l(mu_);
    ch = challenge_;
  }
  if (!ch) return core::Ok();  // the registry needs no auth
  if (ch->scheme == "basic") {
    Request req;
    req.url = base_ + "/v2/";
    req.max_body = 64 * 1024;
    req.headers.emplace_back("Authorization", "Basic " + Base64Encode(creds.username + ":" + creds.password));
    XB_ASSIGN(Response resp, transport_.Do(req));
    if (resp.status == 200) return core::Ok();
    if (resp.status == 401) {
      return Error(Code::kPermissionDenied, "login " + host_ + ": unauthorized: incorrect username or password");
    }
    return HttpError(resp).Context("login " + host_);
  }
  auto t = FetchToken(*ch, "", creds);
  if (!t.ok()) {
    if (t.error().code() == Code::kPermissionDenied) {
      return Error(Code::kPermissionDenied, "login " + host_ + ": unauthorized: incorrect username or password");
    }
    return std::move(t).error().Context("login " + host_);
  }
  return core::Ok();
}

}  // namespace xbuild::registry
