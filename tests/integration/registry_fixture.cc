#include "integration/registry_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <poll.h>

#include <chrono>
#include <thread>

#include "core/strings.h"

#include "core/fs.h"
#include "core/json.h"
#include "unit/test_util.h"

namespace xbuild::testing {

namespace {

sockaddr_in Addr(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

}  // namespace

int FreePort(const std::string& ip) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Addr(ip, 0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool CanConnect(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Addr(ip, port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

ToolOut RunTool(const std::vector<std::string>& argv, const core::RunOptions& opts) {
  auto r = core::RunProcess(argv, opts);
  EXPECT_TRUE(r.ok()) << argv[0] << ": " << (r.ok() ? "" : r.error().ToString());
  if (!r.ok()) return {};
  return {r->exit_code, r->out, r->err};
}

ToolOut RunXbuild(const std::string& root, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {XBUILD_BINARY, "--root", root};
  argv.insert(argv.end(), args.begin(), args.end());
  core::RunOptions o;
  o.extra_env = {{"XBUILD_CONFIG", ""}, {"BUILDKIT_PROGRESS", ""}};
  return RunTool(argv, o);
}

void ImportBusyboxImage(const std::string& scratch_dir, const std::string& root, const std::string& name) {
  std::string rootfs = scratch_dir + "/busybox-rootfs";
  ASSERT_NO_FATAL_FAILURE(MakeBusyboxRootfs(rootfs));
  ToolOut r = RunTool({XBUILD_BINARY, "--root", root, "import", rootfs, name});
  ASSERT_EQ(r.code, 0) << "xbuild import: " << r.err;
}

std::string SkopeoDigest(const std::string& ref) {
  ToolOut si = RunTool({"skopeo", "inspect", "--tls-verify=false", "docker://" + ref});
  EXPECT_EQ(si.code, 0) << si.err;
  auto j = core::Json::parse(si.out, nullptr, false);
  return j.is_object() ? j.value("Digest", "") : "";
}

std::string LineAfter(const std::string& out, const std::string& prefix) {
  size_t p = out.find(prefix);
  if (p == std::string::npos) return "";
  size_t e = out.find('\n', p);
  return out.substr(p + prefix.size(), e == std::string::npos ? std::string::npos : e - p - prefix.size());
}

void RegistryProcess::Start(const std::string& dir, Options opts) {
  ASSERT_FALSE(core::LookPath("docker-registry").empty()) << "docker-registry is missing: run scripts/setup-deps.sh";
  dir_ = dir;
  ip_ = opts.ip;
  port_ = opts.port ? opts.port : FreePort(ip_);
  storage_ = dir + "/storage";
  host_ = ip_ + ":" + std::to_string(port_);
  ASSERT_TRUE(core::MkdirAll(storage_).ok());
  std::string cfg = "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: " + storage_ +
                    "\n  delete:\n    enabled: true\nhttp:\n  addr: " + host_ +
                    "\n  secret: xbuild-test-secret\n" + opts.http_yaml + opts.extra_yaml;
  WriteTestFile(dir, "registry.yml", cfg);
  ASSERT_NO_FATAL_FAILURE(Launch());
}

void RegistryProcess::Launch() {
  std::string log_path = dir_ + "/registry.log";
  std::string cfg = dir_ + "/registry.yml";
  pid_t parent = ::getpid();
  pid_ = ::fork();
  ASSERT_GE(pid_, 0);
  if (pid_ == 0) {
    // Ends with the test process, even when that is killed (a ctest timeout).
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execlp("docker-registry", "docker-registry", "serve", cfg.c_str(), nullptr);
    ::_exit(127);
  }
  for (int i = 0; i < 200 && !CanConnect(ip_, port_); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(CanConnect(ip_, port_)) << log();
}

void RegistryProcess::Stop(int sig) {
  if (pid_ <= 0) return;
  ::kill(pid_, sig);
  int st;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  // The port is free again once nothing listens on it.
  for (int i = 0; i < 100 && CanConnect(ip_, port_); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void RegistryProcess::Restart() {
  Stop();
  Launch();
}

std::string RegistryProcess::log() const { return ReadTestFile(dir_ + "/registry.log"); }

std::string RegistryProcess::BlobPath(const std::string& hex) const {
  return storage_ + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
}

void TestHttpServer::Start(const std::string& ip, Handler handler) {
  handler_ = std::move(handler);
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd_, 0);
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = Addr(ip, 0);
  ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << ip;
  ASSERT_EQ(::listen(fd_, 64), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  host_ = ip + ":" + std::to_string(ntohs(a.sin_port));
  thread_ = std::thread([this] { Serve(); });
}

void TestHttpServer::Stop() {
  if (fd_ < 0) return;
  stop_ = true;
  thread_.join();
  ::close(fd_);
  fd_ = -1;
}

std::vector<HttpRequest> TestHttpServer::requests() {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

namespace {

bool ReadRequest(int c, HttpRequest& req) {
  std::string data;
  char buf[65536];
  size_t head_end;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n <= 0) return false;
    data.append(buf, static_cast<size_t>(n));
    if (data[0] == 0x16) return false;  // a TLS ClientHello: this server speaks plain HTTP only
  }
  std::string head = data.substr(0, head_end);
  auto lines = core::Split(head, '\n');
  auto first = core::Split(core::Trim(lines[0]), ' ');
  if (first.size() < 2) return false;
  req.method = first[0];
  req.target = first[1];
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    req.headers[core::ToLower(core::Trim(lines[i].substr(0, colon)))] = core::Trim(lines[i].substr(colon + 1));
  }
  size_t want = 0;
  if (auto it = req.headers.find("content-length"); it != req.headers.end()) want = std::stoul(it->second);
  req.body = data.substr(head_end + 4);
  while (req.body.size() < want) {
    ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n <= 0) return false;
    req.body.append(buf, static_cast<size_t>(n));
  }
  req.raw = head + "\r\n\r\n" + req.body;
  return true;
}

void SendAll(int c, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(c, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void TestHttpServer::Serve() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{5, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    HttpRequest req;
    if (ReadRequest(c, req)) {
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(req);
      }
      SendAll(c, handler_(req));
    }
    ::shutdown(c, SHUT_RDWR);
    ::close(c);
  }
}

std::string TestHttpServer::Response(int status, const std::string& reason, const std::string& body,
                                     const std::vector<std::string>& headers) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  return r;
}

std::string TestHttpServer::Forward(const std::string& host, const HttpRequest& req) {
  size_t colon = host.rfind(':');
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Addr(host.substr(0, colon), std::stoi(host.substr(colon + 1)));
  if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(c);
    return Response(502, "Bad Gateway", "upstream down");
  }
  std::string out = req.method + " " + req.target + " HTTP/1.1\r\n";
  for (const auto& [k, v] : req.headers) {
    if (k != "connection") out += k + ": " + v + "\r\n";
  }
  out += "connection: close\r\n\r\n" + req.body;
  SendAll(c, out);
  std::string resp;
  char buf[65536];
  for (ssize_t n; (n = ::recv(c, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
  ::close(c);
  return resp;
}

}  // namespace xbuild::testing
