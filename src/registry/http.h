// HTTP for the registry client: a small Transport interface (so tests and callers can fake it)
// and its libcurl implementation.
//
// CurlTransport:
//  - one CURL easy handle per thread, reused (curl_easy_reset keeps its connection cache);
//  - connect timeout 30 s; a transfer slower than 1 KiB/s for 60 s is aborted;
//  - idempotent requests (GET, HEAD, PUT, DELETE) are retried with backoff on transport errors,
//    5xx and 429, honouring Retry-After (seconds), unless a streamed body already reached the sink;
//  - redirects are followed by hand, and `Authorization` is dropped when a redirect leaves the
//    original host[:port] (blob downloads redirect to storage backends);
//  - per-host TLS: hosts listed as insecure (and loopback hosts: localhost, 127.0.0.0/8, [::1])
//    are tried over https without verification and fall
//    back to plain http (remembered per host); other hosts are never downgraded. certs.d dirs
//    (<dir>/<host[:port]>/ca.crt, client.cert, client.key) configure CA and client certificates;
//  - proxy environment variables are honoured (libcurl's default).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace xbuild::registry {

using core::Result;
using core::Status;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;        // sent when body_fd < 0 (and non-empty, or method is PUT/POST)
  int body_fd = -1;        // when >= 0: body_length bytes read with pread from body_offset
  int64_t body_offset = 0;
  int64_t body_length = 0;
  // Called with the number of request-body bytes just handed to the connection (uploads).
  std::function<void(int64_t)> body_progress;
  // When set, a 2xx response body is streamed here (status passed along: 200 or 206) instead of
  // being kept in Response::body. Returning an error aborts the transfer with that error.
  std::function<Status(long status, std::string_view data)> sink;
  // Bodies kept in memory larger than this fail with kResourceExhausted.
  size_t max_body = 16 * 1024 * 1024;
  bool follow_redirects = true;
};

struct Response {
  long status = 0;
  std::multimap<std::string, std::string> headers;  // keys lowercased
  std::string body;                                 // empty when streamed to a sink
  std::string url;                                  // effective URL after redirects

  std::optional<std::string> Header(std::string_view lower_name) const;
  std::vector<std::string> HeaderAll(std::string_view lower_name) const;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Fails only when no HTTP response came back (or a limit was hit); any status is a Response.
  virtual Result<Response> Do(const Request& req) = 0;
};

struct TransportOptions {
  std::vector<std::string> insecure_registries;  // "host[:port]"; CIDRs are not interpreted
  std::vector<std::string> cert_dirs;            // searched in order: <dir>/<host[:port]>/
  int max_retries = 3;
  int64_t base_backoff_ms = 200;
  std::string user_agent = "xbuild";
};

class CurlTransport : public Transport {
 public:
  explicit CurlTransport(TransportOptions opts);
  ~CurlTransport() override;
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  Result<Response> Do(const Request& req) override;

 private:
  Result<Response> DoOnce(const Request& req, bool* delivered);
  Result<Response> DoHost(const Request& req, bool* delivered);
  bool IsInsecure(const std::string& host) const;

  TransportOptions opts_;
  std::mutex mu_;
  std::set<std::string> plain_http_hosts_;  // guarded by mu_: insecure hosts that fell back
};

// "scheme://host[:port]/path" -> "host[:port]" (lowercased); empty when unparsable.
std::string UrlHost(std::string_view url);
// Percent-encodes everything but unreserved characters (RFC 3986), for query values and forms.
std::string UrlEscape(std::string_view s);
// Resolves a Location header against the URL it came from.
std::string ResolveUrl(std::string_view base, std::string_view location);
// Turns a registry error response into readable text:
// `HTTP 401 Unauthorized: UNAUTHORIZED: authentication required` (codes and messages of every
// entry of {"errors":[...]}), or the first line of a non-JSON body.
std::string FormatHttpError(long status, std::string_view body);
// An Error for a failed response, with a code matching the status (401/403 -> kPermissionDenied,
// 404 -> kNotFound, 429/5xx -> kUnavailable, else kInvalidArgument).
core::Error HttpError(const Response& resp);

}  // namespace xbuild::registry
