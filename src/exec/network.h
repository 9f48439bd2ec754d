// xbuild networks (`network create|ls|rm`, `run --network`): bridge networks made with the CNI
// plugins (cni.h), each inside a network namespace of its own (netns.h), so that neither the
// bridge, nor the veth host ends, nor any address is ever added to the host's namespace. The
// host reaches a container only through published ports (port_proxy.h); containers reach the
// outside through slirp4netns (outbound.h). The default network, "bridge", is made on first
// use; "host" and "none" are not networks but modes.
//
// Layout under the state root:
//   networks/lock                 flock around creating and removing networks
//   networks/<name>/config.json   NetworkInfo as JSON: {"name","id","driver","subnet",
//                                 "gateway","created","options":{"KEY":"VALUE"}}
//   networks/<name>/netns         the network's namespace (a bind mount), holding bridge xbr0
//                                 with the gateway address
//   networks/<name>/ipam/         the host-local plugin's data: one file per address in use
//   networks/<name>/hosts.lock    flock while its containers' hosts files are rewritten
//   networks/<name>/outbound.*    its slirp4netns: pid, log, lock, stopping, made (outbound.h)
//   netns/<container id>          a running container's namespace (a bind mount), removed
//                                 before CNI DEL (which then only releases the address)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "exec/outbound.h"

namespace xbuild::exec {

inline constexpr const char* kDefaultNetwork = "bridge";
// `network create --opt xbuild.host-loopback=true`: the network's containers reach the host's
// 127.0.0.1 through 10.0.2.2 (host-gateway). Off by default (outbound.h says why).
inline constexpr const char* kHostLoopbackOption = "xbuild.host-loopback";

// One published port (-p [ip:][host_port:]container_port[/proto], -P).
struct PortMapping {
  std::string host_ip;  // empty: every address (0.0.0.0)
  int host_port = 0;    // 0: any free port
  int container_port = 0;
  std::string proto = "tcp";  // tcp | udp
};

// Parses one -p value; errors name it.
core::Result<PortMapping> ParsePublish(const std::string& spec);
// Parses an EXPOSE entry ("80/tcp", "53/udp", "8080") into a mapping to a free host port.
core::Result<PortMapping> ParseExposed(const std::string& port);
// "80/tcp".
std::string PortKey(const PortMapping& p);
// Docker's `port` line: "80/tcp -> 127.0.0.1:8080".
std::string PortLine(const PortMapping& p);

// The networking part of a container record.
struct ContainerNet {
  std::string mode = "host";              // host | none | a network's name
  std::vector<PortMapping> ports;         // as asked
  std::vector<std::string> extra_hosts;   // --add-host "name:ip"
  // While it runs on a network (empty otherwise):
  std::string ip, gateway, mac;
  int prefix_len = 0;
  std::vector<PortMapping> published;     // the host addresses and ports bound
};

core::Json ContainerNetToJson(const ContainerNet& n);
ContainerNet ContainerNetFromJson(const core::Json& j);
// True for a mode that is an xbuild network (not host or none).
bool IsNetworkMode(const std::string& mode);

struct NetworkInfo {
  std::string name, id, driver = "bridge";
  std::string subnet;   // "172.30.0.0/16"
  std::string gateway;  // "172.30.0.1", on the bridge in the network's namespace
  std::string created;  // RFC3339Nano
  std::map<std::string, std::string> options;  // --opt; only kHostLoopbackOption is known
  bool HostLoopback() const;
};

// Checks `network create --opt` values: known keys, valid values; errors name the bad one.
core::Status ValidateNetworkOptions(const std::map<std::string, std::string>& options);

// --add-host values with Docker's special "host-gateway" replaced by the address through which
// a container in `mode` reaches the host: 10.0.2.2 on a network, 127.0.0.1 with host or none.
std::vector<std::string> ResolveHostGateway(const std::vector<std::string>& extra_hosts, const std::string& mode);

class Networks {
 public:
  explicit Networks(std::string root);

  // The network by name or unique id prefix; the default "bridge" is made when missing.
  core::Result<NetworkInfo> Get(const std::string& ref);
  // The network by exact name, never made (for undoing what a container did on it).
  core::Result<NetworkInfo> Lookup(const std::string& name) const { return Load(name); }
  // Every network, the default one included (made when missing), by name.
  core::Result<std::vector<NetworkInfo>> List();
  // A new bridge network; an empty subnet takes the next free /16.
  core::Result<NetworkInfo> Create(const std::string& name, const std::string& subnet,
                                   const std::string& driver = "bridge",
                                   const std::map<std::string, std::string>& options = {});
  // Removes a user network (its slirp4netns first). `attached`: the containers running on it
  // (it is refused then).
  core::Status Remove(const NetworkInfo& net, const std::vector<std::string>& attached);

  std::string NetnsPath(const std::string& network) const;
  std::string ContainerNetnsPath(const std::string& container_id) const;
  std::string HostsLockPath(const std::string& network) const;
  // The bridge plugin's configuration (with host-local IPAM under the state root).
  core::Json CniConfig(const NetworkInfo& net) const;
  // The network's slirp4netns, its lock held (outbound.h).
  core::Result<Outbound> LockOutbound(const std::string& network) const;
  // How many addresses host-local has handed out on the network (containers attached, or
  // being attached: CNI ADD allocates first).
  size_t AddressesInUse(const std::string& network) const;

 private:
  core::Result<NetworkInfo> Load(const std::string& name) const;
  core::Result<NetworkInfo> CreateLocked(const std::string& name, const std::string& subnet,
                                         const std::map<std::string, std::string>& options);
  std::vector<std::string> Names() const;
  std::string Dir(const std::string& name) const;

  std::string root_;
};

}  // namespace xbuild::exec
