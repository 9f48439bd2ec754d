#include "registry/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>

#include "core/dynlib.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"

namespace xbuild::registry {

using core::Code;
using core::Error;

namespace {

const char* ReasonPhrase(long status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

bool Idempotent(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE";
}

// libcurl, opened on the first request (core/dynlib.h). The SONAME has been libcurl.so.4 since
// curl 7.16, and the calls below are typed from <curl/curl.h>.
struct CurlApi {
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&::curl_easy_reset) easy_reset = nullptr;
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_easy_perform) easy_perform = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;
};

Result<CurlApi> LoadCurl() {
  XB_ASSIGN(core::DynLib lib, core::DynLib::Open("libcurl.so.4", "libcurl4"));
  CurlApi c;
  XB_TRY(lib.Bind(c.global_init, "curl_global_init"));
  XB_TRY(lib.Bind(c.easy_init, "curl_easy_init"));
  XB_TRY(lib.Bind(c.easy_cleanup, "curl_easy_cleanup"));
  XB_TRY(lib.Bind(c.easy_reset, "curl_easy_reset"));
  XB_TRY(lib.Bind(c.easy_setopt, "curl_easy_setopt"));
  XB_TRY(lib.Bind(c.easy_getinfo, "curl_easy_getinfo"));
  XB_TRY(lib.Bind(c.easy_perform, "curl_easy_perform"));
  XB_TRY(lib.Bind(c.easy_strerror, "curl_easy_strerror"));
  XB_TRY(lib.Bind(c.slist_append, "curl_slist_append"));
  XB_TRY(lib.Bind(c.slist_free_all, "curl_slist_free_all"));
  c.global_init(CURL_GLOBAL_DEFAULT);
  return c;
}

// Loaded once per process; every thread's calls go through the same table.
const Result<CurlApi>& Curl() {
  static const Result<CurlApi> api = LoadCurl();
  return api;
}

// The per-thread easy handle; curl_easy_reset keeps its connection cache between requests.
struct ThreadHandle {
  CURL* h = nullptr;
  ThreadHandle() { h = Curl()->easy_init(); }
  ~ThreadHandle() {
    if (h) Curl()->easy_cleanup(h);
  }
};

CURL* Handle() {
  thread_local ThreadHandle th;
  return th.h;
}

struct Transfer {
  const Request* req = nullptr;
  CURL* h = nullptr;
  Response* resp = nullptr;
  bool* delivered = nullptr;
  std::optional<Error> error;  // set by callbacks to abort
  int64_t read_offset = 0;
};

size_t OnHeader(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t->resp->headers.clear();  // a new response (e.g. after 100 Continue)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->resp->headers.emplace(core::ToLower(core::Trim(line.substr(0, colon))),
                             core::Trim(line.substr(colon + 1)));
  }
  return size * n;
}

size_t OnWrite(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  long status = 0;
  Curl()->easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
  if (t->req->sink && status >= 200 && status < 300) {
    *t->delivered = true;
    Status s = t->req->sink(status, std::string_view(data, len));
    if (!s.ok()) {
      t->error = std::move(s).error();
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() + len > t->req->max_body) {
    t->error = Error(Code::kResourceExhausted,
                     "response body larger than " + std::to_string(t->req->max_body) + " bytes");
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  int64_t left = t->req->body_length - t->read_offset;
  if (left <= 0) return 0;
  size_t want = std::min<size_t>(size * n, static_cast<size_t>(left));
  ssize_t got;
  do {
    got = ::pread(t->req->body_fd, buf, want, t->req->body_offset + t->read_offset);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    t->error = core::SysError("read request body");
    return CURL_READFUNC_ABORT;
  }
  if (got == 0) {
    t->error = Error(Code::kIo, "read request body: unexpected end of file");
    return CURL_READFUNC_ABORT;
  }
  t->read_offset += got;
  if (t->req->body_progress) t->req->body_progress(got);
  return static_cast<size_t>(got);
}

int OnSeek(void* ud, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(ud);
  if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  t->read_offset = offset;
  return CURL_SEEKFUNC_OK;
}

std::string FindCertFile(const std::vector<std::string>& dirs, const std::string& host,
                         const char* name) {
  for (const auto& d : dirs) {
    std::string p = core::JoinPath(core::JoinPath(d, host), name);
    if (core::Exists(p)) return p;
  }
  return "";
}

}  // namespace

std::optional<std::string> Response::Header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Response::HeaderAll(std::string_view lower_name) const {
  std::vector<std::string> out;
  auto [b, e] = headers.equal_range(std::string(lower_name));
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

std::string UrlHost(std::string_view url) {
  size_t p = url.find("://");
  if (p == std::string_view::npos) return "";
  std::string_view rest = url.substr(p + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view auth = rest.substr(0, end);
  if (size_t at = auth.rfind('@'); at != std::string_view::npos) auth = auth.substr(at + 1);
  return core::ToLower(auth);
}

std::string ResolveUrl(std::string_view base, std::string_view location) {
  if (location.find("://") != std::string_view::npos) return std::string(location);
  size_t p = base.find("://");
  if (p == std::string_view::npos) return std::string(location);
  if (location.starts_with("//")) return std::string(base.substr(0, p + 1)) + std::string(location);
  size_t host_end = base.find_first_of("/?#", p + 3);
  std::string origin(base.substr(0, host_end));
  if (location.starts_with("/")) return origin + std::string(location);
  // Relative path: replace the last segment of base's path.
  std::string_view path = host_end == std::string_view::npos ? "/" : base.substr(host_end);
  path = path.substr(0, path.find_first_of("?#"));
  size_t slash = path.rfind('/');
  return origin + std::string(path.substr(0, slash + 1)) + std::string(location);
}

std::string FormatHttpError(long status, std::string_view body) {
  std::string out = "HTTP " + std::to_string(status);
  if (const char* r = ReasonPhrase(status); *r) out += std::string(" ") + r;
  auto j = core::Json::parse(body, nullptr, false);
  std::vector<std::string> parts;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      std::string code = core::GetOptString(e, "code").value_or("");
      std::string msg = core::GetOptString(e, "message").value_or("");
      std::string part = code;
      if (!msg.empty()) part += (part.empty() ? "" : ": ") + msg;
      if (e.contains("detail") && !e["detail"].is_null()) {
        std::string d = e["detail"].is_string() ? e["detail"].get<std::string>() : e["detail"].dump();
        if (!d.empty() && d.size() < 300) part += " (" + d + ")";
      }
      if (!part.empty()) parts.push_back(part);
    }
  } else if (j.is_object() && j.contains("details") && j["details"].is_string()) {
    parts.push_back(j["details"].get<std::string>());  // token servers
  } else if (!body.empty() && !j.is_object()) {
    std::string line = core::Trim(body.substr(0, body.find('\n')));
    if (line.size() > 200) line = line.substr(0, 200) + "...";
    if (!line.empty()) parts.push_back(line);
  }
  for (size_t i = 0; i < parts.size(); ++i) out += (i == 0 ? ": " : "; ") + parts[i];
  return out;
}

Error HttpError(const Response& resp) {
  Code c = Code::kInvalidArgument;
  if (resp.status == 401 || resp.status == 403) c = Code::kPermissionDenied;
  else if (resp.status == 404) c = Code::kNotFound;
  else if (resp.status == 429 || resp.status >= 500) c = Code::kUnavailable;
  return Error(c, FormatHttpError(resp.status, resp.body));
}

CurlTransport::CurlTransport(TransportOptions opts) : opts_(std::move(opts)) {}
CurlTransport::~CurlTransport() = default;

bool CurlTransport::IsInsecure(const std::string& host) const {
  // As Docker does, loopback registries are insecure without being listed.
  std::string bare = host.starts_with("[") ? host.substr(0, host.find(']') + 1)
                                           : host.substr(0, host.rfind(':'));
  if (bare == "localhost" || bare.starts_with("127.") || bare == "[::1]") return true;
  for (const auto& h : opts_.insecure_registries) {
    if (core::ToLower(h) == host) return true;
  }
  return false;
}

Result<Response> CurlTransport::DoOnce(const Request& req, bool* delivered) {
  if (!Curl().ok()) return Curl().error();
  const CurlApi& curl = *Curl();
  CURL* h = Handle();
  if (!h) return Error(Code::kInternal, "curl_easy_init failed");
  curl.easy_reset(h);
  Response resp;
  Transfer t;
  t.req = &req;
  t.h = h;
  t.resp = &resp;
  t.delivered = delivered;
  std::string host = UrlHost(req.url);
  bool https = req.url.starts_with("https://");

  curl.easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  curl.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl.easy_setopt(h, CURLOPT_USERAGENT, opts_.user_agent.c_str());
  curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl.easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, OnWrite);
  curl.easy_setopt(h, CURLOPT_WRITEDATA, &t);
  if (https) {
    if (IsInsecure(host)) {
      curl.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    // certs.d's ca.crt is trusted in addition to the system's CAs (as Docker does).
    std::string ca = FindCertFile(opts_.cert_dirs, host, "ca.crt");
    if (!ca.empty()) {
      curl.easy_setopt(h, CURLOPT_CAINFO, ca.c_str());
      curl.easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
    std::string cert = FindCertFile(opts_.cert_dirs, host, "client.cert");
    std::string key = FindCertFile(opts_.cert_dirs, host, "client.key");
    if (!cert.empty() && !key.empty()) {
      curl.easy_setopt(h, CURLOPT_SSLCERT, cert.c_str());
      curl.easy_setopt(h, CURLOPT_SSLKEY, key.c_str());
    }
  }

  curl_slist* hdrs = nullptr;
  for (const auto& [k, v] : req.headers) hdrs = curl.slist_append(hdrs, (k + ": " + v).c_str());
  bool has_body = req.body_fd >= 0 || !req.body.empty() || req.method == "PUT" || req.method == "POST";
  if (has_body) hdrs = curl.slist_append(hdrs, "Expect:");
  curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

  if (req.method == "HEAD") {
    curl.easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "GET") {
    curl.easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (has_body) {
    curl.easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (req.body_fd >= 0) {
      curl.easy_setopt(h, CURLOPT_READFUNCTION, OnRead);
      curl.easy_setopt(h, CURLOPT_READDATA, &t);
      curl.easy_setopt(h, CURLOPT_SEEKFUNCTION, OnSeek);
      curl.easy_setopt(h, CURLOPT_SEEKDATA, &t);
      curl.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body_length));
    } else {
      // An in-memory body (a manifest, an empty POST) is sent as-is with the custom method.
      curl.easy_setopt(h, CURLOPT_UPLOAD, 0L);
      curl.easy_setopt(h, CURLOPT_POST, 1L);
      curl.easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
      curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
  } else {
    curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl.easy_perform(h);
  curl.slist_free_all(hdrs);
  if (t.error) return std::move(*t.error);
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? errbuf : curl.easy_strerror(rc);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ISSUER_ERROR) {
      // Not retried: the certificate will not become trusted by asking again.
      return Error(Code::kPermissionDenied,
                   req.method + " " + req.url + ": TLS: the certificate of " + host + " is not trusted (" + detail +
                       "); put its CA in certs.d/" + host + "/ca.crt, or list " + host +
                       " as an insecure registry");
    }
    if (https && (rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR ||
                  rc == CURLE_SEND_ERROR) &&
        (detail.find("bad certificate") != std::string::npos ||
         detail.find("certificate required") != std::string::npos || rc == CURLE_SSL_CERTPROBLEM)) {
      // The registry refused our (missing) client certificate: asking again will not help.
      return Error(Code::kPermissionDenied, req.method + " " + req.url + ": TLS: " + detail +
                                                ": the registry requires a client certificate: put client.cert and "
                                                "client.key in certs.d/" + host + "/");
    }
    return Error(Code::kUnavailable, req.method + " " + req.url + ": " + detail);
  }
  curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  resp.url = req.url;
  return resp;
}

Result<Response> CurlTransport::DoHost(const Request& req, bool* delivered) {
  std::string host = UrlHost(req.url);
  if (!req.url.starts_with("https://") || !IsInsecure(host)) return DoOnce(req, delivered);
  Request plain = req;
  plain.url = "http://" + req.url.substr(8);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (plain_http_hosts_.count(host)) return DoOnce(plain, delivered);
  }
  Result<Response> r = DoOnce(req, delivered);
  if (r.ok() || *delivered || r.error().code() != Code::kUnavailable) return r;
  // An insecure registry that does not speak TLS: fall back to plain HTTP and remember it.
  Result<Response> p = DoOnce(plain, delivered);
  if (p.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    plain_http_hosts_.insert(host);
  }
  return p;
}

Result<Response> CurlTransport::Do(const Request& original) {
  Request req = original;
  std::string origin_host = UrlHost(req.url);
  for (int redirects = 0;; ++redirects) {
    Result<Response> r = Error(Code::kInternal, "no attempt");
    bool delivered = false;
    for (int attempt = 0;; ++attempt) {
      r = DoHost(req, &delivered);
      bool retry_status = r.ok() && (r->status == 429 || r->status >= 500);
      bool retry_error = !r.ok() && r.error().code() == Code::kUnavailable;
      if (!(retry_status || retry_error) || delivered || !Idempotent(req.method) ||
          attempt >= opts_.max_retries) {
        break;
      }
      int64_t wait_ms = opts_.base_backoff_ms << attempt;
      if (r.ok()) {
        if (auto ra = r->Header("retry-after")) {
          char* end = nullptr;
          long secs = std::strtol(ra->c_str(), &end, 10);
          if (end != ra->c_str() && secs >= 0) wait_ms = std::min<int64_t>(secs, 60) * 1000;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
    if (!r.ok()) return r;
    long s = r->status;
    bool is_redirect = s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
    auto loc = r->Header("location");
    if (!is_redirect || !loc || !req.follow_redirects) return r;
    if (redirects >= 10) return Error(Code::kUnavailable, req.url + ": too many redirects");
    std::string next = ResolveUrl(req.url, *loc);
    if (!next.starts_with("http://") && !next.starts_with("https://")) {
      return Error(Code::kInvalidArgument, req.url + ": redirect to unsupported URL " + next);
    }
    if (req.url.starts_with("https://") && next.starts_with("http://") &&
        !IsInsecure(UrlHost(next))) {
      return Error(Code::kPermissionDenied, req.url + ": refusing redirect from https to " + next);
    }
    if (UrlHost(next) != origin_host) {
      std::erase_if(req.headers, [](const auto& kv) { return core::ToLower(kv.first) == "authorization"; });
    }
    if (s == 303 || ((s == 301 || s == 302) && req.method == "POST")) {
      req.method = "GET";
      req.body.clear();
      req.body_fd = -1;
    }
    req.url = next;
  }
}

std::string UrlEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace xbuild::registry
