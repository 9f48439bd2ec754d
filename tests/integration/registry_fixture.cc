#include "integration/registry_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/fs.h"
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

}  // namespace xbuild::testing
