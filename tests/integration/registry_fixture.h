// What the registry integration tests share: free loopback ports, running tools, and a real
// docker-registry (Debian's 2.8) started on a chosen address and stopped (or killed) at will.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/subprocess.h"

namespace xbuild::testing {

// A TCP port free on `ip` right now.
int FreePort(const std::string& ip = "127.0.0.1");
bool CanConnect(const std::string& ip, int port);

struct ToolOut {
  int code = -1;
  std::string out, err;
};
// Runs argv to completion; a launch failure fails the calling test and returns code -1.
ToolOut RunTool(const std::vector<std::string>& argv, const core::RunOptions& opts = {});
// Runs the xbuild binary on state root `root` (global flags first), with XBUILD_CONFIG and
// BUILDKIT_PROGRESS cleared so the user's settings never leak into a test.
ToolOut RunXbuild(const std::string& root, const std::vector<std::string>& args);
// Imports testing::MakeBusyboxRootfs (built under scratch_dir) as image `name` into the state
// root with the xbuild binary. Fails the calling test on error (use ASSERT_NO_FATAL_FAILURE).
void ImportBusyboxImage(const std::string& scratch_dir, const std::string& root, const std::string& name);
// The manifest digest `skopeo inspect` reports for a reference on a plain-HTTP/loopback
// registry ("" on failure, which also fails the calling test).
std::string SkopeoDigest(const std::string& ref);
// The rest of the line after the first `prefix` in `out`; "" when absent.
std::string LineAfter(const std::string& out, const std::string& prefix);

class RegistryProcess {
 public:
  struct Options {
    std::string ip = "127.0.0.1";
    int port = 0;            // 0: a free port
    std::string http_yaml;   // extra keys of the `http:` section, each line indented 2 (e.g. tls)
    std::string extra_yaml;  // extra top-level sections (auth, ...)
  };
  RegistryProcess() = default;
  ~RegistryProcess() { Stop(); }
  RegistryProcess(const RegistryProcess&) = delete;
  RegistryProcess& operator=(const RegistryProcess&) = delete;

  // Writes <dir>/registry.yml (storage in <dir>/storage, a fixed http.secret so upload
  // sessions survive a restart) and starts docker-registry; waits until it accepts connections.
  // Fails the calling test (use ASSERT_NO_FATAL_FAILURE) when it does not come up.
  void Start(const std::string& dir, Options opts);
  void Start(const std::string& dir) { Start(dir, Options()); }
  // Sends sig (SIGKILL for a crash) and reaps the process; no-op when not running.
  void Stop(int sig = SIGTERM);
  // Starts again with the same config, address and storage.
  void Restart();

  const std::string& host() const { return host_; }        // "ip:port"
  const std::string& storage() const { return storage_; }  // filesystem driver's root
  std::string log() const;
  // <storage>/docker/registry/v2/blobs/sha256/<xx>/<hex>/data
  std::string BlobPath(const std::string& hex) const;
  pid_t pid() const { return pid_; }

 private:
  void Launch();
  std::string dir_, storage_, host_, ip_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A small HTTP/1.1 server for fault tests: one request per connection (it answers with
// `Connection: close`), request bodies read by Content-Length. The handler returns the whole raw
// response ("HTTP/1.1 200 OK\r\n...\r\n\r\nbody"); every request is recorded.
struct HttpRequest {
  std::string method, target;                // "GET", "/v2/app/manifests/1"
  std::map<std::string, std::string> headers;  // lowercased keys
  std::string body;
  std::string raw;  // the request as received (head and body)
};
class TestHttpServer {
 public:
  using Handler = std::function<std::string(const HttpRequest&)>;
  ~TestHttpServer() { Stop(); }
  // Listens on ip (a free port) and serves from a thread. Fails the calling test on error.
  void Start(const std::string& ip, Handler handler);
  void Stop();
  const std::string& host() const { return host_; }  // "ip:port"
  std::vector<HttpRequest> requests();

  // Helpers for handlers.
  static std::string Response(int status, const std::string& reason, const std::string& body,
                              const std::vector<std::string>& headers = {});
  // Sends req (Connection: close) to host ("ip:port") and returns the raw response.
  static std::string Forward(const std::string& host, const HttpRequest& req);

 private:
  void Serve();
  std::string host_;
  int fd_ = -1;
  Handler handler_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<HttpRequest> requests_;  // guarded by mu_
};

}  // namespace xbuild::testing
