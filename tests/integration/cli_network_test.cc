// Networks end to end with real runc and the CNI plugins: published ports answering on
// loopback, `port`, names on a user network, --network none, `network ls|create|rm|inspect`,
// bad input, and nothing left behind (namespaces, mounts, addresses, host interfaces).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "integration/container_fixture.h"

namespace xbuild::testing {
namespace {

namespace fs = std::filesystem;

// Serves /www/index.html ("hello from NAME") on port 80 of the container.
std::vector<std::string> HttpdCommand(const std::string& name) {
  return {"sh", "-c",
          "/bin/busybox mkdir -p /www && echo hello from " + name +
              " > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www"};
}

std::set<std::string> DirNames(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it) {
    names.insert(it->path().filename().string());
  }
  return names;
}

// A TCP socket bound to 127.0.0.1 on a free port, which it sets.
core::UniqueFd LoopbackSocket(int& port) {
  core::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  port = -1;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  return s;
}

// A TCP port free on 127.0.0.1 right now.
int FreePort() {
  int port = -1;
  (void)LoopbackSocket(port);
  return port;
}

// GET / from 127.0.0.1:port; the whole response, empty when the connection failed.
std::string HttpGet(int port) {
  core::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "";
  std::string req = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (::write(s.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return "";
  auto resp = core::ReadFd(s.get(), 1 << 20);
  return resp.ok() ? *resp : "";
}

// Polls (up to 30 s) until GET / on the port gives a body containing `want`.
bool WaitHttp(int port, const std::string& want) {
  for (int i = 0; i < 300; ++i) {
    if (HttpGet(port).find(want) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

class NetworkTest : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    host_links_ = DirNames("/sys/class/net");
    host_netns_ = DirNames("/run/netns");
  }

  void TearDown() override {
    // Whatever a test did, the host's own namespace gained no interface and no named netns.
    EXPECT_EQ(DirNames("/sys/class/net"), host_links_);
    EXPECT_EQ(DirNames("/run/netns"), host_netns_);
    for (const std::string& name : PsNames(true)) (void)Xb({"rm", "-f", name});
    ContainerTest::TearDown();
  }

  // Files of host-local's allocations for `network` (one per address in use).
  std::set<std::string> Allocations(const std::string& network) {
    std::set<std::string> ips;
    for (const std::string& n : DirNames(root_ + "/networks/" + network + "/ipam/" + network)) {
      if (n.find('.') != std::string::npos && !n.starts_with("last_reserved_ip")) ips.insert(n);
    }
    return ips;
  }

  bool NetnsMountedUnderRoot() {
    auto mounts = core::ReadFile("/proc/self/mountinfo");
    return mounts.ok() && mounts->find(" " + root_ + "/netns/") != std::string::npos;
  }

  // Polls (up to 30 s) until the container's namespace, mount and address are gone.
  bool WaitReleased(const std::string& network) {
    for (int i = 0; i < 300; ++i) {
      if (DirNames(root_ + "/netns").empty() && !NetnsMountedUnderRoot() && Allocations(network).empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::set<std::string> host_links_, host_netns_;
};

TEST_F(NetworkTest, PublishedPortAnswersOnLoopbackAndPortPrintsIt) {
  int port = FreePort();
  ASSERT_GT(port, 0);
  std::string p = "127.0.0.1:" + std::to_string(port) + ":80";
  std::vector<std::string> args = {"--name", "web", "-p", p, "-p", "8081", "base:1"};
  for (const std::string& a : HttpdCommand("web")) args.push_back(a);
  std::string id = RunDetached(args);
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(WaitHttp(port, "hello from web"));

  ToolOut ports = Xb({"port", "web"});
  ASSERT_EQ(ports.code, 0) << ports.err;
  std::vector<std::string> lines = core::Split(core::Trim(ports.out), '\n');
  ASSERT_EQ(lines.size(), 2u) << ports.out;
  EXPECT_EQ(lines[0], "80/tcp -> 127.0.0.1:" + std::to_string(port));
  EXPECT_TRUE(lines[1].starts_with("8081/tcp -> 0.0.0.0:")) << lines[1];
  ToolOut one = Xb({"port", "web", "80/tcp"});
  EXPECT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(one.out, "127.0.0.1:" + std::to_string(port) + "\n");
  ToolOut none = Xb({"port", "web", "81"});
  EXPECT_NE(none.code, 0);
  EXPECT_NE(none.err.find("81/tcp"), std::string::npos) << none.err;

  core::Json j = Inspect("web");
  std::string ip = j["NetworkSettings"]["IPAddress"].get<std::string>();
  EXPECT_TRUE(ip.starts_with("172.30.")) << ip;
  EXPECT_EQ(j["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], ip);
  EXPECT_EQ(j["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], std::to_string(port));
  EXPECT_EQ(j["HostConfig"]["NetworkMode"], "bridge");
  EXPECT_EQ(Allocations("bridge"), std::set<std::string>{ip});
  // The address lives in the network's namespace, not the host's: the host has no route to it.
  EXPECT_EQ(DirNames("/sys/class/net"), host_links_);
  EXPECT_NE(Xb({"ps"}).out.find("127.0.0.1:" + std::to_string(port) + "->80/tcp"), std::string::npos);

  ToolOut rm = Xb({"rm", "-f", "web"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_TRUE(WaitReleased("bridge"));
  EXPECT_EQ(HttpGet(port), "");  // the proxy is gone with its monitor
}

TEST_F(NetworkTest, PublishAllPublishesTheImagesExposedPorts) {
  ToolOut imported = Xb({"import", "--change", "EXPOSE 80", "--change", "EXPOSE 53/udp",
                         tmp_.Sub("rootfs") + "/busybox-rootfs", "exposed:1"});
  ASSERT_EQ(imported.code, 0) << imported.err;
  std::vector<std::string> args = {"--name", "pub", "-P", "exposed:1"};
  for (const std::string& a : HttpdCommand("pub")) args.push_back(a);
  ASSERT_FALSE(RunDetached(args).empty());
  ToolOut port = Xb({"port", "pub", "80"});
  ASSERT_EQ(port.code, 0) << port.err;
  std::string hostport = core::Trim(port.out);
  ASSERT_TRUE(hostport.starts_with("0.0.0.0:")) << hostport;
  EXPECT_TRUE(WaitHttp(std::stoi(hostport.substr(8)), "hello from pub"));
  EXPECT_EQ(Xb({"port", "pub", "53/udp"}).code, 0);
  ASSERT_EQ(Xb({"rm", "-f", "pub"}).code, 0);
  EXPECT_TRUE(WaitReleased("bridge"));
}

TEST_F(NetworkTest, ContainersOnAUserNetworkReachEachOtherByName) {
  ToolOut created = Xb({"network", "create", "--subnet", "10.77.0.0/24", "appnet"});
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_EQ(core::Trim(created.out).size(), 64u);
  ToolOut ls = Xb({"network", "ls"});
  EXPECT_NE(ls.out.find("appnet"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("bridge"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("none"), std::string::npos) << ls.out;
  EXPECT_EQ(Xb({"network", "create", "appnet"}).code, 125);

  std::vector<std::string> args = {"--name", "srv", "--network", "appnet", "base:1"};
  for (const std::string& a : HttpdCommand("srv")) args.push_back(a);
  ASSERT_FALSE(RunDetached(args).empty());
  ToolOut get = Xb({"run", "--rm", "--network", "appnet", "base:1", "sh", "-c",
                    "for i in $(/bin/busybox seq 100); do /bin/busybox wget -q -O - http://srv/ && exit 0; "
                    "/bin/busybox sleep 0.2; done; exit 1"});
  EXPECT_EQ(get.code, 0) << get.err;
  EXPECT_EQ(get.out, "hello from srv\n");
  core::Json inspect = core::Json::parse(Xb({"network", "inspect", "appnet"}).out, nullptr, false);
  ASSERT_TRUE(inspect.is_array());
  EXPECT_EQ(inspect[0]["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/24");
  EXPECT_EQ(inspect[0]["Containers"].size(), 1u);
  // A running peer's hosts file follows who joins and leaves.
  ASSERT_FALSE(RunDetached({"--name", "peer", "--network", "appnet", "base:1", "/bin/busybox", "sleep", "1000"}).empty());
  EXPECT_NE(Xb({"exec", "srv", "/bin/busybox", "cat", "/etc/hosts"}).out.find("\tpeer\n"), std::string::npos);
  ASSERT_EQ(Xb({"rm", "-f", "peer"}).code, 0);
  EXPECT_EQ(Xb({"exec", "srv", "/bin/busybox", "cat", "/etc/hosts"}).out.find("\tpeer\n"), std::string::npos);
  // The default bridge gives no names.
  ToolOut unnamed = Xb({"run", "--rm", "base:1", "/bin/busybox", "wget", "-q", "-T", "2", "-O", "-", "http://srv/"});
  EXPECT_NE(unnamed.code, 0);

  ToolOut refused = Xb({"network", "rm", "appnet"});
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.err.find("active endpoints"), std::string::npos) << refused.err;
  EXPECT_TRUE(fs::exists(root_ + "/networks/appnet/config.json"));

  ASSERT_EQ(Xb({"rm", "-f", "srv"}).code, 0);
  EXPECT_TRUE(WaitReleased("appnet"));
  ToolOut rm = Xb({"network", "rm", "appnet"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_FALSE(fs::exists(root_ + "/networks/appnet"));
  EXPECT_EQ(Xb({"network", "ls"}).out.find("appnet"), std::string::npos);
  EXPECT_NE(Xb({"network", "rm", "bridge"}).code, 0);
}

TEST_F(NetworkTest, NoneHasOnlyLoopbackAndBridgeHasEth0) {
  ToolOut none = Xb({"run", "--rm", "--network", "none", "base:1", "/bin/busybox", "cat", "/proc/net/dev"});
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_NE(none.out.find("lo:"), std::string::npos) << none.out;
  EXPECT_EQ(none.out.find("eth0"), std::string::npos) << none.out;
  ToolOut bridge = Xb({"run", "--rm", "base:1", "/bin/busybox", "cat", "/proc/net/dev"});
  ASSERT_EQ(bridge.code, 0) << bridge.err;
  EXPECT_NE(bridge.out.find("eth0"), std::string::npos) << bridge.out;
  EXPECT_NE(bridge.out.find("lo:"), std::string::npos) << bridge.out;
  EXPECT_TRUE(WaitReleased("bridge"));
}

// network prune (and system prune) take the user networks no container uses, running or
// stopped; never the default bridge or a network a container is on; --filter until= spares the
// newer ones.
TEST_F(NetworkTest, PruneRemovesOnlyUnusedUserNetworks) {
  for (const char* n : {"idle1", "idle2", "used", "stoppedon"}) ASSERT_EQ(Xb({"network", "create", n}).code, 0) << n;
  ASSERT_FALSE(RunDetached({"--name", "onused", "--network", "used", "base:1", "/bin/busybox", "sleep", "1000"}).empty());
  ASSERT_EQ(Xb({"run", "--name", "stopped", "--network", "stoppedon", "base:1", "sh", "-c", "true"}).code, 0);

  ToolOut early = Xb({"network", "prune", "-f", "--filter", "until=2000-01-01T00:00:00Z"});
  ASSERT_EQ(early.code, 0) << early.err;
  EXPECT_EQ(early.out, "");  // all made after the cut-off
  ToolOut bad = Xb({"network", "prune", "-f", "--filter", "color=red"});
  EXPECT_EQ(bad.code, 125);
  EXPECT_NE(bad.err.find("color=red"), std::string::npos) << bad.err;

  ToolOut pruned = Xb({"network", "prune", "-f"});
  ASSERT_EQ(pruned.code, 0) << pruned.err;
  EXPECT_EQ(pruned.out, "Deleted Networks:\nidle1\nidle2\n\n");
  for (const char* gone : {"idle1", "idle2"}) EXPECT_FALSE(fs::exists(root_ + "/networks/" + gone)) << gone;
  for (const char* kept : {"used", "stoppedon", "bridge"}) EXPECT_TRUE(fs::exists(root_ + "/networks/" + kept)) << kept;
  ToolOut again = Xb({"start", "-a", "stopped"});
  EXPECT_EQ(again.code, 0) << again.err;

  // system prune removes the stopped container first, then its now unused network.
  ToolOut sys = Xb({"system", "prune", "-f"});
  ASSERT_EQ(sys.code, 0) << sys.err;
  EXPECT_NE(sys.out.find("Deleted Networks:\nstoppedon\n"), std::string::npos) << sys.out;
  EXPECT_FALSE(fs::exists(root_ + "/networks/stoppedon"));
  EXPECT_TRUE(fs::exists(root_ + "/networks/used"));
  ASSERT_EQ(Xb({"rm", "-f", "onused"}).code, 0);
  EXPECT_EQ(Xb({"network", "prune", "-f"}).out, "Deleted Networks:\nused\n\n");
}

TEST_F(NetworkTest, BadInputIsNamedAndWritesNothing) {
  ToolOut net = Xb({"run", "--rm", "--network", "nosuchnet", "base:1", "true"});
  EXPECT_EQ(net.code, 125);
  EXPECT_NE(net.err.find("nosuchnet"), std::string::npos) << net.err;
  ToolOut port = Xb({"run", "--rm", "-p", "127.0.0.1:99999:80", "base:1", "true"});
  EXPECT_EQ(port.code, 125);
  EXPECT_NE(port.err.find("127.0.0.1:99999:80"), std::string::npos) << port.err;
  ToolOut conflict = Xb({"run", "--rm", "--network", "none", "-p", "80", "base:1", "true"});
  EXPECT_EQ(conflict.code, 125);
  ToolOut subnet = Xb({"network", "create", "--subnet", "300.1.0.0/16", "x1"});
  EXPECT_EQ(subnet.code, 125);
  EXPECT_NE(subnet.err.find("300.1.0.0/16"), std::string::npos) << subnet.err;
  ToolOut name = Xb({"network", "create", "bad/name"});
  EXPECT_EQ(name.code, 125);
  EXPECT_NE(name.err.find("bad/name"), std::string::npos) << name.err;
  EXPECT_FALSE(fs::exists(root_ + "/networks/x1"));
  EXPECT_TRUE(PsNames(true).empty());
  // A taken host port fails the start with Docker's words, and leaves no address behind.
  int taken_port = -1;
  core::UniqueFd taken = LoopbackSocket(taken_port);
  ASSERT_GT(taken_port, 0);
  ASSERT_EQ(::listen(taken.get(), 1), 0);
  std::string spec = "127.0.0.1:" + std::to_string(taken_port) + ":80";
  ToolOut busy = Xb({"run", "--rm", "-p", spec, "base:1", "true"});
  EXPECT_NE(busy.code, 0);
  EXPECT_NE(busy.err.find("port is already allocated"), std::string::npos) << busy.err;
  EXPECT_TRUE(WaitReleased("bridge"));
}

TEST_F(NetworkTest, LostMonitorReleasesTheNetwork) {
  std::string id = RunDetached({"--name", "lost", "base:1", "/bin/busybox", "sleep", "1000"});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Allocations("bridge").size(), 1u);
  int pid = MonitorPid(id);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  bool exited = false;
  for (int i = 0; i < 300 && !exited; ++i) {
    exited = core::Trim(Xb({"inspect", "-f", "{{.State.Status}}", "lost"}).out) == "exited";
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(exited);
  EXPECT_TRUE(WaitReleased("bridge"));
  EXPECT_EQ(Inspect("lost")["NetworkSettings"]["IPAddress"], "");
}

}  // namespace
}  // namespace xbuild::testing
