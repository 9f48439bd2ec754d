// Registry client pieces that need no network: challenge parsing, credentials (config file and
// helpers), the token cache, URL building, error formatting, and the Authenticator driven by a
// fake Transport.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "registry/auth.h"
#include "registry/client.h"
#include "registry/http.h"
#include "unit/test_util.h"

namespace xbuild::registry {
namespace {

using xbuild::testing::TempDir;
using xbuild::testing::WriteTestFile;

TEST(RegistryChallenge, ParsesBearerAndBasic) {
  auto cs = ParseChallenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(cs[0].params["service"], "registry.docker.io");
  EXPECT_EQ(cs[0].params["scope"], "repository:library/busybox:pull");

  cs = ParseChallenges(R"(Basic realm="test, with comma", Bearer realm=https://x/t,service=s)");
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].params["realm"], "test, with comma");
  EXPECT_EQ(cs[1].scheme, "bearer");
  EXPECT_EQ(cs[1].params["realm"], "https://x/t");
  EXPECT_EQ(cs[1].params["service"], "s");
  EXPECT_TRUE(ParseChallenges("").empty());
}

TEST(RegistryCredentials, Base64) {
  EXPECT_EQ(Base64Encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_EQ(Base64Encode("a"), "YQ==");
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
  EXPECT_EQ(*Base64Decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(*Base64Decode("YQ=="), "a");
  EXPECT_FALSE(Base64Decode("!!").ok());
}

TEST(RegistryCredentials, ReadsAuthsAndMapsDockerHub) {
  TempDir t;
  WriteTestFile(t.path(), "config.json", R"({
    "auths": {
      "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
      "127.0.0.1:5000": {"username": "u", "password": "p"},
      "https://ghcr.io/v2/": {"auth": "Z2g6dG9r"}
    },
    "other": {"kept": true}
  })");
  CredentialStore cs(t.Sub("config.json"));
  auto hub = cs.Get("docker.io");
  ASSERT_TRUE(hub.ok()) << hub.error().ToString();
  ASSERT_TRUE(hub->has_value());
  EXPECT_EQ((*hub)->username, "hub");
  EXPECT_EQ((*hub)->password, "secret");
  auto local = cs.Get("127.0.0.1:5000");
  ASSERT_TRUE(local.ok() && local->has_value());
  EXPECT_EQ((*local)->username, "u");
  EXPECT_EQ((*local)->password, "p");
  auto gh = cs.Get("ghcr.io");
  ASSERT_TRUE(gh.ok() && gh->has_value());
  EXPECT_EQ((*gh)->username, "gh");
  auto none = cs.Get("quay.io");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(cs.Store("quay.io", Credentials{"q", "w", ""}).ok());
  auto q = cs.Get("quay.io");
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_EQ((*q)->password, "w");
  auto j = core::Json::parse(xbuild::testing::ReadTestFile(t.Sub("config.json")));
  EXPECT_EQ(j["other"]["kept"], true);
  EXPECT_EQ(j["auths"]["quay.io"]["auth"], Base64Encode("q:w"));
  ASSERT_TRUE(cs.Erase("quay.io").ok());
  EXPECT_EQ(cs.Erase("quay.io").error().code(), core::Code::kNotFound);
  EXPECT_EQ(CredentialKey("docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(CredentialKey("localhost:5000"), "localhost:5000");

  WriteTestFile(t.path(), "bad.json", R"({"auths": {"h": {"auth": "bm9jb2xvbg=="}}})");
  auto bad = CredentialStore(t.Sub("bad.json")).Get("h");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("no ':'"), std::string::npos);
  // A missing file means no credentials.
  auto missing = CredentialStore(t.Sub("nope.json")).Get("h");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST(RegistryCredentials, UsesCredentialHelpers) {
  TempDir t;
  std::string bin = t.Sub("bin");
  // The helper answers for one server URL and logs what it was asked.
  WriteTestFile(bin, "docker-credential-test",
                "#!/bin/sh\n"
                "read server\n"
                "echo \"$1 $server\" >> " + t.Sub("asked") + "\n"
                "if [ \"$server\" = \"reg.example:5000\" ]; then\n"
                "  echo '{\"ServerURL\":\"reg.example:5000\",\"Username\":\"helper-user\",\"Secret\":\"helper-pass\"}'\n"
                "  exit 0\n"
                "fi\n"
                "echo 'credentials not found in native keychain'\n"
                "exit 1\n",
                0755);
  WriteTestFile(t.path(), "config.json",
                R"({"credHelpers": {"reg.example:5000": "test", "other.example": "test"},
                    "auths": {"plain.example": {"auth": "YTpi"}}})");
  std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", (bin + ":" + old_path).c_str(), 1);
  CredentialStore cs(t.Sub("config.json"));
  auto c = cs.Get("reg.example:5000");
  auto missing = cs.Get("other.example");
  auto plain = cs.Get("plain.example");
  WriteTestFile(t.path(), "store.json", R"({"credsStore": "test"})");
  auto via_store = CredentialStore(t.Sub("store.json")).Get("reg.example:5000");
  ::setenv("PATH", old_path.c_str(), 1);

  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->username, "helper-user");
  EXPECT_EQ((*c)->password, "helper-pass");
  ASSERT_TRUE(missing.ok()) << missing.error().ToString();
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(plain.ok() && plain->has_value());
  EXPECT_EQ((*plain)->username, "a");
  ASSERT_TRUE(via_store.ok() && via_store->has_value());
  EXPECT_EQ((*via_store)->username, "helper-user");
  EXPECT_NE(xbuild::testing::ReadTestFile(t.Sub("asked")).find("get reg.example:5000"), std::string::npos);
}

TEST(RegistryTokenCache, ExpiresTokens) {
  TokenCache c;
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  c.Put("k", "tok", 300, t0);
  EXPECT_EQ(c.Get("k", t0 + std::chrono::seconds(100)).value_or(""), "tok");
  // Expires 10 s early.
  EXPECT_FALSE(c.Get("k", t0 + std::chrono::seconds(291)).has_value());
  c.Put("d", "default", 0, t0);  // no expires_in: 60 s (less the 10 s margin)
  EXPECT_TRUE(c.Get("d", t0 + std::chrono::seconds(49)).has_value());
  EXPECT_FALSE(c.Get("d", t0 + std::chrono::seconds(51)).has_value());
  EXPECT_FALSE(c.Get("other", t0).has_value());
}

TEST(RegistryUrls, BuildsFromReferences) {
  auto hub = image::ParseReference("busybox");
  ASSERT_TRUE(hub.ok());
  EXPECT_EQ(ManifestUrl(*hub), "https://registry-1.docker.io/v2/library/busybox/manifests/latest");
  auto local = image::ParseReference("127.0.0.1:5000/team/app@sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(ManifestUrl(*local), "https://127.0.0.1:5000/v2/team/app/manifests/sha256:" + std::string(64, 'a'));
  EXPECT_EQ(BlobUrl(*local, *local->digest), "https://127.0.0.1:5000/v2/team/app/blobs/sha256:" + std::string(64, 'a'));
  EXPECT_EQ(UrlHost("https://User@Reg.Example:5000/v2/?x"), "reg.example:5000");
  EXPECT_EQ(UrlHost("not a url"), "");
  EXPECT_EQ(ResolveUrl("http://h:1/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u?s=1"), "http://h:1/v2/a/blobs/uploads/u?s=1");
  EXPECT_EQ(ResolveUrl("http://h:1/v2/x", "https://cdn/b"), "https://cdn/b");
  EXPECT_EQ(ResolveUrl("https://h/v2/a/b?q", "c"), "https://h/v2/a/c");
  EXPECT_EQ(ResolveUrl("https://h/v2/a", "//cdn/b"), "https://cdn/b");
}

TEST(RegistryErrors, FormatsErrorBodies) {
  EXPECT_EQ(FormatHttpError(401, R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]})"),
            "HTTP 401 Unauthorized: UNAUTHORIZED: authentication required");
  EXPECT_EQ(FormatHttpError(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"X","message":"y"}]})"),
            "HTTP 404 Not Found: MANIFEST_UNKNOWN: manifest unknown; X: y");
  EXPECT_EQ(FormatHttpError(502, "<html>bad gateway</html>\nmore"), "HTTP 502 Bad Gateway: <html>bad gateway</html>");
  EXPECT_EQ(FormatHttpError(418, ""), "HTTP 418");
  Response r;
  r.status = 403;
  EXPECT_EQ(HttpError(r).code(), core::Code::kPermissionDenied);
  r.status = 503;
  EXPECT_EQ(HttpError(r).code(), core::Code::kUnavailable);
}

// Answers requests from a script and records them.
class FakeTransport : public Transport {
 public:
  std::vector<Request> seen;
  std::function<Response(const Request&)> handler;
  Result<Response> Do(const Request& req) override {
    seen.push_back(req);
    return handler(req);
  }
};

std::string HeaderOf(const Request& r, const std::string& name) {
  for (auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(RegistryAuthenticator, FetchesAndCachesBearerTokens) {
  FakeTransport t;
  int token_fetches = 0;
  t.handler = [&](const Request& req) {
    Response r;
    if (req.url == "https://reg/v2/") {
      r.status = 401;
      r.headers.emplace("www-authenticate", R"(Bearer realm="https://auth/token",service="reg")");
    } else if (req.url.starts_with("https://auth/token?")) {
      ++token_fetches;
      EXPECT_EQ(req.url, "https://auth/token?service=reg&scope=repository%3Aapp%3Apull");
      EXPECT_EQ(HeaderOf(req, "Authorization"), "Basic " + Base64Encode("u:p"));
      r.status = 200;
      r.body = R"({"token":"T1","expires_in":300})";
    } else {
      r.status = HeaderOf(req, "Authorization") == "Bearer T1" ? 200 : 401;
    }
    return r;
  };
  Authenticator a(t, "reg", "https://reg", [](std::string_view) -> Result<std::optional<Credentials>> {
    return std::optional<Credentials>(Credentials{"u", "p", ""});
  });
  Request req;
  req.url = "https://reg/v2/app/manifests/1";
  auto r1 = a.Do(req, "repository:app:pull");
  ASSERT_TRUE(r1.ok()) << r1.error().ToString();
  EXPECT_EQ(r1->status, 200);
  auto r2 = a.Do(req, "repository:app:pull");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(token_fetches, 1);
}

TEST(RegistryAuthenticator, BasicNeedsCredentials) {
  FakeTransport t;
  t.handler = [](const Request& req) {
    Response r;
    std::string auth = HeaderOf(req, "Authorization");
    r.status = auth == "Basic " + Base64Encode("u:p") ? 200 : 401;
    if (r.status == 401) {
      r.headers.emplace("www-authenticate", R"(Basic realm="test")");
      r.body = R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})";
    }
    return r;
  };
  Authenticator anon(t, "h:1", "https://h:1", nullptr);
  Request req;
  req.url = "https://h:1/v2/app/tags/list";
  auto r = anon.Do(req, "repository:app:pull");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("xbuild login h:1"), std::string::npos);
  EXPECT_FALSE(anon.Verify(Credentials{"u", "bad", ""}).ok());
  EXPECT_NE(anon.Verify(Credentials{"u", "bad", ""}).error().message().find("incorrect username or password"),
            std::string::npos);
  EXPECT_TRUE(anon.Verify(Credentials{"u", "p", ""}).ok());
  Authenticator withc(t, "h:1", "https://h:1", [](std::string_view) -> Result<std::optional<Credentials>> {
    return std::optional<Credentials>(Credentials{"u", "p", ""});
  });
  auto ok = withc.Do(req, "repository:app:pull");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
}

// A one-request-per-connection HTTP server on 127.0.0.1 that records what it received.
class TinyServer {
 public:
  TinyServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<std::string> Requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (true) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string path = req.substr(req.find(' ') + 1);
      path = path.substr(0, path.find(' '));
      int n;
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(req);
        n = ++hits_[path];
      }
      std::string p = std::to_string(port_);
      std::string resp;
      if (path == "/other-host") {
        resp = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:" + p + "/final\r\n";
      } else if (path == "/same-host") {
        resp = "HTTP/1.1 307 Temporary Redirect\r\nLocation: /final\r\n";
      } else if (path == "/flaky" && n == 1) {
        resp = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n";
      } else if (path == "/missing") {
        std::string body = R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})";
        resp = "HTTP/1.1 404 Not Found\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      } else {
        resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      }
      if (resp.find("\r\n\r\n") == std::string::npos) resp += "Content-Length: 0\r\n\r\n";
      resp.insert(resp.find("\r\n") + 2, "Connection: close\r\n");
      (void)!::write(c, resp.data(), resp.size());
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;    // guarded by mu_
  std::map<std::string, int> hits_;      // guarded by mu_
};

bool HasAuth(const std::string& raw) { return raw.find("\r\nAuthorization: Bearer secret\r\n") != std::string::npos; }

TEST(RegistryCurlTransport, DropsAuthorizationOnCrossHostRedirect) {
  TinyServer srv;
  CurlTransport t(TransportOptions{});
  std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  Request req;
  req.url = base + "/other-host";
  req.headers.emplace_back("Authorization", "Bearer secret");
  auto r = t.Do(req);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(r->url, "http://localhost:" + std::to_string(srv.port()) + "/final");
  req.url = base + "/same-host";
  ASSERT_TRUE(t.Do(req).ok());
  auto reqs = srv.Requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_TRUE(HasAuth(reqs[0]));
  EXPECT_FALSE(HasAuth(reqs[1])) << reqs[1];  // localhost is another host
  EXPECT_TRUE(HasAuth(reqs[2]));
  EXPECT_TRUE(HasAuth(reqs[3]));  // same host keeps it
}

TEST(RegistryCurlTransport, RetriesServerErrorsAndStreams) {
  TinyServer srv;
  TransportOptions o;
  o.base_backoff_ms = 1;
  CurlTransport t(o);
  std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  Request req;
  req.url = base + "/flaky";
  std::string got;
  req.sink = [&](long status, std::string_view d) -> Status {
    EXPECT_EQ(status, 200);
    got.append(d);
    return core::Ok();
  };
  auto r = t.Do(req);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(got, "ok");
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(srv.Requests().size(), 2u);

  Request miss;
  miss.url = base + "/missing";
  auto m = t.Do(miss);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(HttpError(*m).message(), "HTTP 404 Not Found: BLOB_UNKNOWN: blob unknown to registry");

  Request small;
  small.url = base + "/missing";
  small.max_body = 10;
  auto s = t.Do(small);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), core::Code::kResourceExhausted);
}

}  // namespace
}  // namespace xbuild::registry
