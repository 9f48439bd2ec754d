// UDP publishing end to end (`run -p 127.0.0.1:HOST:CTR/udp`, exec/port_proxy.h) with real runc
// and the CNI plugins: a datagram sent to the host port reaches the container's listener (a
// static echo server, udp_echo.cc, bound in from the build tree), and its reply comes back to
// the sender, one flow per peer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/fd.h"
#include "core/strings.h"
#include "integration/container_fixture.h"

namespace xbuild::testing {
namespace {

constexpr int kContainerPort = 5353;

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A UDP port free on 127.0.0.1 right now.
int FreeUdpPort() {
  core::UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = Loopback(0);
  socklen_t len = sizeof a;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  return ntohs(a.sin_port);
}

// Sends `msg` from `sock` to 127.0.0.1:port until a reply comes (the listener may not be up
// yet; UDP drops what nobody reads), up to 30 s; the reply, empty when none came.
std::string Exchange(int sock, int port, const std::string& msg) {
  sockaddr_in to = Loopback(port);
  for (int i = 0; i < 60; ++i) {
    ::sendto(sock, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    struct pollfd p = {sock, POLLIN, 0};
    if (::poll(&p, 1, 500) <= 0) continue;
    char buf[2048];
    ssize_t n = ::recv(sock, buf, sizeof buf, 0);
    if (n > 0) return std::string(buf, static_cast<size_t>(n));
  }
  return "";
}

class PortUdpTest : public ContainerTest {
 protected:
  void TearDown() override {
    for (const std::string& name : PsNames(true)) (void)Xb({"rm", "-f", name});
    ContainerTest::TearDown();
  }
};

TEST_F(PortUdpTest, DatagramsReachTheContainerAndRepliesComeBack) {
  int port = FreeUdpPort();
  ASSERT_GT(port, 0);
  std::string publish = "127.0.0.1:" + std::to_string(port) + ":" + std::to_string(kContainerPort) + "/udp";
  std::string id = RunDetached({"--name", "udp", "-p", publish, "-v", std::string(UDP_ECHO_BINARY) + ":/udp_echo:ro",
                                "base:1", "/udp_echo", std::to_string(kContainerPort)});
  ASSERT_FALSE(id.empty());

  core::UniqueFd a(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  core::UniqueFd b(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(Exchange(a.get(), port, "ping-a"), "echo: ping-a") << Xb({"logs", "udp"}).out;
  // Another peer is another flow: its replies come to it, not to the first.
  EXPECT_EQ(Exchange(b.get(), port, "ping-b"), "echo: ping-b");
  EXPECT_EQ(Exchange(a.get(), port, "again"), "echo: again");
  std::string logs = Xb({"logs", "udp"}).out;
  EXPECT_NE(logs.find("got: ping-a\n"), std::string::npos) << logs;
  EXPECT_NE(logs.find("got: ping-b\n"), std::string::npos) << logs;

  ToolOut ports = Xb({"port", "udp"});
  EXPECT_EQ(ports.out, std::to_string(kContainerPort) + "/udp -> 127.0.0.1:" + std::to_string(port) + "\n") << ports.err;
  ToolOut one = Xb({"port", "udp", std::to_string(kContainerPort) + "/udp"});
  EXPECT_EQ(one.out, "127.0.0.1:" + std::to_string(port) + "\n") << one.err;

  // Once the container is gone, so is the port: it can be bound again.
  ASSERT_EQ(Xb({"rm", "-f", "udp"}).code, 0);
  core::UniqueFd again(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = Loopback(port);
  EXPECT_EQ(::bind(again.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
}

TEST_F(PortUdpTest, AFlowThatWasRefusedCarriesTheNextDatagram) {
  int port = FreeUdpPort();
  ASSERT_GT(port, 0);
  std::string publish = "127.0.0.1:" + std::to_string(port) + ":" + std::to_string(kContainerPort) + "/udp";
  ASSERT_FALSE(RunDetached({"--name", "late", "-p", publish, "-v", std::string(UDP_ECHO_BINARY) + ":/udp_echo:ro",
                            "base:1", "/bin/busybox", "sleep", "1000"})
                   .empty());
  // Nothing listens yet: the container's port answers the first datagram with a refusal, which
  // the proxy's socket for this peer holds as an error.
  core::UniqueFd a(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in to = Loopback(port);
  ASSERT_EQ(::sendto(a.get(), "early", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 5);
  ASSERT_EQ(Xb({"exec", "-d", "late", "sh", "-c", "/udp_echo " + std::to_string(kContainerPort) + " > /echo.log"}).code, 0);
  bool listening = false;
  for (int i = 0; i < 300 && !listening; ++i) {
    listening = Xb({"exec", "late", "/bin/busybox", "cat", "/echo.log"}).out == "listening\n";
    if (!listening) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(listening);
  // The same peer's next datagram, sent once, is carried (the refusal was not kept to fail it).
  ASSERT_EQ(::sendto(a.get(), "late", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 4);
  struct pollfd p = {a.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 30000), 1);
  char buf[64];
  ssize_t n = ::recv(a.get(), buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "echo: late");
}

}  // namespace
}  // namespace xbuild::testing
