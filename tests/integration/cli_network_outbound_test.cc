// Outbound access from xbuild networks (exec/outbound.h) with real runc, the CNI plugins and
// slirp4netns. The tests talk only to loopback: a server on the host's 127.0.0.1 is what a
// container reaches through `--add-host NAME:host-gateway` (10.0.2.2). Also: one slirp4netns
// per network, replaced when killed, gone with the last container (a lost one too) and with
// `network rm`; the per-network option that closes the host's loopback; a run without it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "integration/container_fixture.h"

namespace xbuild::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kGreeting = "hello from the host";

// An HTTP server on the host's 127.0.0.1 (a free port) answering every GET with kGreeting.
class HostServer {
 public:
  HostServer() {
    listen_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_.get(), 16) != 0 ||
        ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~HostServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  HostServer(const HostServer&) = delete;
  HostServer& operator=(const HostServer&) = delete;

  int port() const { return port_; }

 private:
  void Serve() {
    while (!stop_) {
      struct pollfd pfd = {listen_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      core::UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (c.get() < 0) continue;
      // The request's head, then the answer; HTTP/1.0 closes after it.
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        struct pollfd in = {c.get(), POLLIN, 0};
        if (::poll(&in, 1, 5000) <= 0) break;
        ssize_t n = ::read(c.get(), buf, sizeof buf);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      std::string body = std::string(kGreeting) + "\n";
      std::string resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body;
      (void)core::WriteAll(c.get(), resp);
    }
  }

  core::UniqueFd listen_;
  int port_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A shell line that GETs `url` until it answers (up to 50 tries, for a network that is still
// coming up) and prints the body. busybox-static's wget crashes with -T: `timeout` bounds it.
std::string WgetLoop(const std::string& url) {
  return "for i in $(/bin/busybox seq 50); do /bin/busybox timeout 10 /bin/busybox wget -q -O - " + url +
         " && exit 0; /bin/busybox sleep 0.2; done; exit 1";
}

bool HaveSlirp() { return !core::LookPath("slirp4netns").empty(); }
constexpr const char* kNoSlirp = "slirp4netns is not installed (apt-get install slirp4netns)";

class OutboundTest : public ContainerTest {
 protected:
  void TearDown() override {
    for (const std::string& name : PsNames(true)) (void)Xb({"rm", "-f", name});
    ContainerTest::TearDown();
  }

  // The slirp4netns processes serving `network` of this root.
  std::vector<int> Slirps(const std::string& network) {
    return SlirpProcessesBelow(root_ + "/networks/" + network);
  }

  // Polls (up to 30 s) until `network` has no slirp4netns and no pid file for one.
  bool WaitNoSlirp(const std::string& network) {
    for (int i = 0; i < 300; ++i) {
      if (Slirps(network).empty() && !fs::exists(root_ + "/networks/" + network + "/outbound.pid")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // `network rm NETWORK` succeeds and leaves neither a slirp4netns nor the network's directory.
  void ExpectRemovedWithoutSlirp(const std::string& network) {
    ToolOut rm = Xb({"network", "rm", network});
    EXPECT_EQ(rm.code, 0) << rm.err;
    EXPECT_TRUE(Slirps(network).empty());
    EXPECT_FALSE(fs::exists(root_ + "/networks/" + network));
  }

  std::string Url(const HostServer& server, const std::string& host) {
    return "http://" + host + ":" + std::to_string(server.port()) + "/";
  }
};

TEST_F(OutboundTest, DefaultBridgeHasAWayOutButNotToTheHostsLoopback) {
  if (!HaveSlirp()) GTEST_SKIP() << kNoSlirp;
  HostServer server;
  ASSERT_GT(server.port(), 0);
  // As in Docker, a container does not reach what the host serves on 127.0.0.1 (a user network
  // opts in, below); the way out itself is there (its gateway, the default route).
  ToolOut get = Xb({"run", "--rm", "--add-host", "host.docker.internal:host-gateway", "base:1", "sh", "-c",
                    "/bin/busybox cat /etc/hosts && /bin/busybox ip route && "
                    "/bin/busybox timeout 10 /bin/busybox wget -q -O - " + Url(server, "host.docker.internal") +
                        " || echo refused"});
  EXPECT_EQ(get.code, 0) << get.err;
  EXPECT_NE(get.out.find("10.0.2.2\thost.docker.internal\n"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("default via"), std::string::npos) << get.out;
  EXPECT_EQ(get.out.find(kGreeting), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("refused"), std::string::npos) << get.out;
  EXPECT_EQ(get.err.find("outbound"), std::string::npos) << get.err;
  // The last container left the network: its slirp4netns went with it.
  EXPECT_TRUE(WaitNoSlirp("bridge"));
}

TEST_F(OutboundTest, HostGatewayIsRecordedAsGivenAndMeansLoopbackOnTheHostNetwork) {
  ASSERT_FALSE(RunDetached({"--name", "hostnet", "--network", "host", "--add-host", "gw:host-gateway", "base:1",
                            "/bin/busybox", "sleep", "1000"})
                   .empty());
  EXPECT_EQ(Inspect("hostnet")["HostConfig"]["ExtraHosts"][0], "gw:host-gateway");
  ToolOut hosts = Xb({"exec", "hostnet", "/bin/busybox", "cat", "/etc/hosts"});
  EXPECT_NE(hosts.out.find("127.0.0.1\tgw\n"), std::string::npos) << hosts.out;
  EXPECT_TRUE(Slirps("bridge").empty());
}

TEST_F(OutboundTest, UserNetworkHasItsOwnSlirpReplacedWhenKilledAndGoneAfterRm) {
  if (!HaveSlirp()) GTEST_SKIP() << kNoSlirp;
  HostServer server;
  ASSERT_GT(server.port(), 0);
  ASSERT_EQ(Xb({"network", "create", "-o", "xbuild.host-loopback=true", "outnet"}).code, 0);
  ASSERT_FALSE(RunDetached({"--name", "idle", "--network", "outnet", "base:1", "/bin/busybox", "sleep", "1000"}).empty());
  std::vector<int> first = Slirps("outnet");
  ASSERT_EQ(first.size(), 1u);
  auto pid_file = core::ReadFile(root_ + "/networks/outnet/outbound.pid");
  ASSERT_TRUE(pid_file.ok());
  EXPECT_EQ(core::Trim(*pid_file), std::to_string(first[0]));
  EXPECT_TRUE(Slirps("bridge").empty());  // nothing runs on the default one
  // One masquerade rule for the whole namespace, inside it (not a chain per container).
  auto nat = core::RunProcess({"nsenter", "--net=" + root_ + "/networks/outnet/netns", "iptables", "-w", "-t", "nat",
                               "-S", "POSTROUTING"});
  ASSERT_TRUE(nat.ok());
  EXPECT_NE(nat->out.find("-A POSTROUTING -o tap0 -j MASQUERADE"), std::string::npos) << nat->out;
  EXPECT_EQ(nat->out.find("CNI-"), std::string::npos) << nat->out;
  // The gateway answers without --add-host too: it is the network namespace's default route.
  ToolOut direct = Xb({"exec", "idle", "sh", "-c", WgetLoop(Url(server, "10.0.2.2"))});
  EXPECT_EQ(direct.code, 0) << direct.err;
  EXPECT_EQ(direct.out, std::string(kGreeting) + "\n");

  // The rule is made once per namespace (outbound.made names it: boot id, nsfs inode); one
  // recorded for another namespace (another boot) does not count, and the rule is made again.
  std::string made = root_ + "/networks/outnet/outbound.made";
  auto boot = core::ReadFile("/proc/sys/kernel/random/boot_id");
  ASSERT_TRUE(boot.ok());
  EXPECT_TRUE(core::ReadFile(made).value_or("").starts_with(core::Trim(*boot) + " ")) << made;
  auto del = core::RunProcess({"nsenter", "--net=" + root_ + "/networks/outnet/netns", "iptables", "-w", "-t", "nat",
                               "-D", "POSTROUTING", "-o", "tap0", "-j", "MASQUERADE"});
  ASSERT_TRUE(del.ok() && del->success());
  WriteTestFile(root_ + "/networks/outnet", "outbound.made", "another-boot 0:0\n");

  // A killed slirp4netns is replaced by the next container that attaches.
  ASSERT_EQ(::kill(first[0], SIGKILL), 0);
  for (int i = 0; i < 300 && !Slirps("outnet").empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(Slirps("outnet").empty());
  ToolOut again = Xb({"run", "--rm", "--network", "outnet", "--add-host", "gw:host-gateway", "base:1", "sh", "-c",
                      WgetLoop(Url(server, "gw"))});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, std::string(kGreeting) + "\n");
  std::vector<int> second = Slirps("outnet");
  ASSERT_EQ(second.size(), 1u);  // idle still runs on it
  EXPECT_NE(second[0], first[0]);
  auto remade = core::RunProcess({"nsenter", "--net=" + root_ + "/networks/outnet/netns", "iptables", "-w", "-t", "nat",
                                  "-S", "POSTROUTING"});
  ASSERT_TRUE(remade.ok());
  EXPECT_NE(remade->out.find("-A POSTROUTING -o tap0 -j MASQUERADE"), std::string::npos) << remade->out;
  EXPECT_TRUE(core::ReadFile(made).value_or("").starts_with(core::Trim(*boot) + " ")) << made;

  ToolOut rm = Xb({"rm", "-f", "idle"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_TRUE(WaitNoSlirp("outnet"));
  ExpectRemovedWithoutSlirp("outnet");
}

// The last container to leave signals the network's slirp4netns and does not wait for it to go
// (outbound.stopping keeps its pid); the next container to attach waits for it before starting
// another, and `network rm` waits for it too.
TEST_F(OutboundTest, TheLastContainerLeavingDoesNotWaitForSlirpsExit) {
  if (!HaveSlirp()) GTEST_SKIP() << kNoSlirp;
  ASSERT_EQ(Xb({"network", "create", "quick"}).code, 0);
  std::string dir = root_ + "/networks/quick";
  auto stopping_pid = [&] { return std::atoi(core::ReadFile(dir + "/outbound.stopping").value_or("0").c_str()); };
  ToolOut first = Xb({"run", "--rm", "--network", "quick", "base:1", "sh", "-c", "true"});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_FALSE(fs::exists(dir + "/outbound.pid"));
  int p1 = stopping_pid();
  ASSERT_GT(p1, 0);

  ToolOut second = Xb({"run", "--rm", "--network", "quick", "base:1", "sh", "-c", "true"});
  ASSERT_EQ(second.code, 0) << second.err;
  int p2 = stopping_pid();
  ASSERT_GT(p2, 0);
  EXPECT_NE(p2, p1);
  for (int pid : Slirps("quick")) EXPECT_NE(pid, p1) << "the first slirp4netns was not waited for";
  EXPECT_LE(Slirps("quick").size(), 1u);

  ExpectRemovedWithoutSlirp("quick");  // waits for the second
}

TEST_F(OutboundTest, ALostContainerReleasesItsNetworksSlirp) {
  if (!HaveSlirp()) GTEST_SKIP() << kNoSlirp;
  ASSERT_EQ(Xb({"network", "create", "lostnet"}).code, 0);
  std::string id = RunDetached({"--name", "lost", "--network", "lostnet", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(Slirps("lostnet").size(), 1u);
  // Its monitor killed, the container is released when next looked at, slirp4netns with it.
  int pid = MonitorPid(id);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_TRUE(WaitState("lost", "exited"));
  EXPECT_TRUE(WaitNoSlirp("lostnet"));
  ExpectRemovedWithoutSlirp("lostnet");
}

TEST_F(OutboundTest, HostLoopbackCanBeClosedPerNetwork) {
  if (!HaveSlirp()) GTEST_SKIP() << kNoSlirp;
  HostServer server;
  ASSERT_GT(server.port(), 0);
  ToolOut created = Xb({"network", "create", "-o", "xbuild.host-loopback=false", "closed"});
  ASSERT_EQ(created.code, 0) << created.err;
  core::Json inspect = core::Json::parse(Xb({"network", "inspect", "closed"}).out, nullptr, false);
  ASSERT_TRUE(inspect.is_array());
  EXPECT_EQ(inspect[0]["Options"]["xbuild.host-loopback"], "false");
  ToolOut get = Xb({"run", "--rm", "--network", "closed", "--add-host", "gw:host-gateway", "base:1", "/bin/busybox",
                    "timeout", "10", "/bin/busybox", "wget", "-q", "-O", "-", Url(server, "gw")});
  EXPECT_NE(get.code, 0);
  EXPECT_EQ(get.out.find(kGreeting), std::string::npos) << get.out;
  EXPECT_TRUE(WaitNoSlirp("closed"));
  ExpectRemovedWithoutSlirp("closed");

  ToolOut bad_value = Xb({"network", "create", "-o", "xbuild.host-loopback=maybe", "x1"});
  EXPECT_EQ(bad_value.code, 125);
  EXPECT_NE(bad_value.err.find("maybe"), std::string::npos) << bad_value.err;
  ToolOut bad_key = Xb({"network", "create", "-o", "com.docker.network.bridge.name=br9", "x2"});
  EXPECT_EQ(bad_key.code, 125);
  EXPECT_NE(bad_key.err.find("com.docker.network.bridge.name"), std::string::npos) << bad_key.err;
  ToolOut no_eq = Xb({"network", "create", "-o", "novalue", "x3"});
  EXPECT_EQ(no_eq.code, 125);
  EXPECT_NE(no_eq.err.find("novalue"), std::string::npos) << no_eq.err;
  EXPECT_FALSE(fs::exists(root_ + "/networks/x1"));
  EXPECT_FALSE(fs::exists(root_ + "/networks/x2"));
}

TEST_F(OutboundTest, WithoutSlirp4netnsTheContainerRunsAndIsWarned) {
  ::setenv("XBUILD_SLIRP4NETNS", "/nonexistent/slirp4netns", 1);
  ToolOut run = Xb({"run", "--rm", "base:1", "/bin/busybox", "echo", "still runs"});
  ::unsetenv("XBUILD_SLIRP4NETNS");
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "still runs\n");
  EXPECT_NE(run.err.find("no outbound access"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("slirp4netns"), std::string::npos) << run.err;
  EXPECT_TRUE(Slirps("bridge").empty());
}

}  // namespace
}  // namespace xbuild::testing
