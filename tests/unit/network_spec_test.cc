// The parts of networking that need no namespace: -p specs, the record's networking JSON,
// the CNI configuration of a network, network options, host-gateway, and the spec's network
// namespace.
#include <gtest/gtest.h>

#include "exec/container.h"
#include "exec/network.h"
#include "exec/spec.h"

namespace xbuild::exec {
namespace {

TEST(PublishSpecTest, DockerForms) {
  auto full = ParsePublish("127.0.0.1:8080:80/udp");
  ASSERT_TRUE(full.ok()) << full.error().ToString();
  EXPECT_EQ(full->host_ip, "127.0.0.1");
  EXPECT_EQ(full->host_port, 8080);
  EXPECT_EQ(full->container_port, 80);
  EXPECT_EQ(full->proto, "udp");
  EXPECT_EQ(PortLine(*full), "80/udp -> 127.0.0.1:8080");

  auto two = ParsePublish("8080:80");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->host_ip, "");
  EXPECT_EQ(two->host_port, 8080);
  EXPECT_EQ(two->proto, "tcp");

  auto one = ParsePublish("80");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->host_port, 0);  // any free port
  EXPECT_EQ(PortKey(*one), "80/tcp");

  auto any_port = ParsePublish("127.0.0.1::80");
  ASSERT_TRUE(any_port.ok());
  EXPECT_EQ(any_port->host_ip, "127.0.0.1");
  EXPECT_EQ(any_port->host_port, 0);
}

TEST(PublishSpecTest, BadSpecsAreNamed) {
  for (const char* bad : {"", "0", "70000", "80/sctp", "a:b:c:d", "x:80:80", "127.0.0.1:99999:80", "80-90"}) {
    auto p = ParsePublish(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.error().message().find(std::string("\"") + bad + "\""), std::string::npos) << p.error().message();
  }
  EXPECT_FALSE(ParseExposed("8080:80").ok());
  EXPECT_TRUE(ParseExposed("53/udp").ok());
}

TEST(ContainerNetTest, RecordRoundTrip) {
  ContainerRecord r;
  r.id = std::string(64, 'a');
  r.name = "web";
  r.snapshot = "s";
  r.network = Network::kBridge;
  r.net.mode = "appnet";
  r.net.ports = {*ParsePublish("127.0.0.1:8080:80")};
  r.net.extra_hosts = {"db:10.0.0.5"};
  r.net.ip = "10.77.0.2";
  r.net.prefix_len = 24;
  r.net.published = r.net.ports;
  auto back = RecordFromJson(RecordToJson(r));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->network, Network::kBridge);
  EXPECT_EQ(back->net.mode, "appnet");
  ASSERT_EQ(back->net.published.size(), 1u);
  EXPECT_EQ(PortLine(back->net.published[0]), "80/tcp -> 127.0.0.1:8080");
  EXPECT_EQ(back->net.extra_hosts, r.net.extra_hosts);
  EXPECT_EQ(back->net.ip, "10.77.0.2");
  EXPECT_EQ(back->net.prefix_len, 24);

  // A record from before networks: its mode is its old network.
  core::Json old = RecordToJson(r);
  old.erase("net");
  old["network"] = "none";
  auto legacy = RecordFromJson(old);
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(legacy->net.mode, "none");
  EXPECT_EQ(legacy->network, Network::kNone);
}

TEST(NetworkConfigTest, BridgeWithHostLocalUnderTheRoot) {
  Networks networks("/state");
  NetworkInfo n;
  n.name = "appnet";
  n.subnet = "10.77.0.0/24";
  n.gateway = "10.77.0.1";
  core::Json c = networks.CniConfig(n);
  EXPECT_EQ(c["type"], "bridge");
  EXPECT_EQ(c["isGateway"], true);
  EXPECT_EQ(c["ipMasq"], false);  // one rule per network namespace does it (outbound.h)
  EXPECT_EQ(c["ipam"]["type"], "host-local");
  EXPECT_EQ(c["ipam"]["dataDir"], "/state/networks/appnet/ipam");
  EXPECT_EQ(c["ipam"]["ranges"][0][0]["subnet"], "10.77.0.0/24");
  EXPECT_EQ(c["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
  EXPECT_EQ(networks.NetnsPath("appnet"), "/state/networks/appnet/netns");
  EXPECT_EQ(networks.ContainerNetnsPath("abc"), "/state/netns/abc");
}

TEST(NetworkOptionsTest, OnlyHostLoopbackTrueOrFalse) {
  EXPECT_TRUE(ValidateNetworkOptions({}).ok());
  EXPECT_TRUE(ValidateNetworkOptions({{"xbuild.host-loopback", "false"}}).ok());
  auto bad_value = ValidateNetworkOptions({{"xbuild.host-loopback", "no"}});
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.error().message().find("\"no\""), std::string::npos) << bad_value.error().message();
  auto bad_key = ValidateNetworkOptions({{"com.docker.network.bridge.name", "br0"}});
  ASSERT_FALSE(bad_key.ok());
  EXPECT_NE(bad_key.error().message().find("com.docker.network.bridge.name"), std::string::npos);

  NetworkInfo n;
  EXPECT_FALSE(n.HostLoopback());  // closed unless asked for, as in Docker
  n.options["xbuild.host-loopback"] = "true";
  EXPECT_TRUE(n.HostLoopback());
  n.options["xbuild.host-loopback"] = "false";
  EXPECT_FALSE(n.HostLoopback());
}

TEST(HostGatewayTest, TheHostAsTheContainerReachesIt) {
  std::vector<std::string> hosts = {"host.docker.internal:host-gateway", "db:10.1.2.3", "gw=host-gateway",
                                    "x:host-gateway-not"};
  EXPECT_EQ(ResolveHostGateway(hosts, "bridge"),
            (std::vector<std::string>{"host.docker.internal:10.0.2.2", "db:10.1.2.3", "gw=10.0.2.2",
                                      "x:host-gateway-not"}));
  EXPECT_EQ(ResolveHostGateway(hosts, "host")[0], "host.docker.internal:127.0.0.1");
  EXPECT_EQ(ResolveHostGateway(hosts, "none")[2], "gw=127.0.0.1");
}

TEST(NetworkSpecTest, BridgeJoinsTheGivenNamespace) {
  ProcessSpec p;
  p.args = {"true"};
  SandboxOptions opts;
  opts.rootfs = "/rootfs";
  opts.network = Network::kBridge;
  opts.netns_path = "/state/netns/abc";
  opts.security = Security::kInsecure;  // no seccomp profile to read
  auto spec = BuildSpec(p, ExecUser{}, opts, "abc");
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  bool joined = false;
  for (const core::Json& ns : (*spec)["linux"]["namespaces"]) {
    if (ns["type"] == "network") joined = ns.value("path", "") == "/state/netns/abc";
  }
  EXPECT_TRUE(joined);
  EXPECT_EQ((*spec)["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
}

}  // namespace
}  // namespace xbuild::exec
