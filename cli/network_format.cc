#include "cli/network_format.h"

#include <map>

namespace xbuild::cli {

namespace {

std::string HostIp(const exec::PortMapping& p) { return p.host_ip.empty() ? "0.0.0.0" : p.host_ip; }

// {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}; an unset host port reads "".
core::OrderedJson PortMap(const std::vector<exec::PortMapping>& ports, bool asked) {
  core::OrderedJson m = core::OrderedJson::object();
  for (const exec::PortMapping& p : ports) {
    core::OrderedJson b;
    b["HostIp"] = asked ? p.host_ip : HostIp(p);
    b["HostPort"] = p.host_port == 0 ? "" : std::to_string(p.host_port);
    m[exec::PortKey(p)].push_back(b);
  }
  return m;
}

}  // namespace

std::string PortsColumn(const exec::ContainerRecord& r) {
  std::string out;
  for (const exec::PortMapping& p : r.net.published) {
    if (!out.empty()) out += ", ";
    out += HostIp(p) + ":" + std::to_string(p.host_port) + "->" + exec::PortKey(p);
  }
  return out;
}

void AddNetworkSettings(const exec::ContainerRecord& r, core::OrderedJson& j) {
  j["HostConfig"]["PortBindings"] = PortMap(r.net.ports, true);
  j["HostConfig"]["ExtraHosts"] = r.net.extra_hosts.empty() ? core::OrderedJson(nullptr) : core::OrderedJson(r.net.extra_hosts);
  core::OrderedJson ns;
  bool on_default = r.net.mode == exec::kDefaultNetwork;
  ns["Ports"] = PortMap(r.net.published, false);
  // As Docker, the top-level address fields describe the default bridge only.
  ns["Gateway"] = on_default ? r.net.gateway : "";
  ns["IPAddress"] = on_default ? r.net.ip : "";
  ns["IPPrefixLen"] = on_default ? r.net.prefix_len : 0;
  ns["MacAddress"] = on_default ? r.net.mac : "";
  core::OrderedJson nets = core::OrderedJson::object();
  if (exec::IsNetworkMode(r.net.mode) || r.net.mode == "host" || r.net.mode == "none") {
    core::OrderedJson e;
    e["MacAddress"] = r.net.mac;
    e["Gateway"] = r.net.gateway;
    e["IPAddress"] = r.net.ip;
    e["IPPrefixLen"] = r.net.prefix_len;
    if (exec::IsNetworkMode(r.net.mode) && !on_default) {
      e["DNSNames"] = std::vector<std::string>{r.name, r.id.substr(0, 12)};
    }
    nets[r.net.mode] = e;
  }
  ns["Networks"] = nets;
  j["NetworkSettings"] = ns;
}

core::OrderedJson InspectNetworkJson(const exec::NetworkInfo& n, const std::vector<exec::ContainerRecord>& attached) {
  core::OrderedJson j;
  j["Name"] = n.name;
  j["Id"] = n.id;
  j["Created"] = n.created;
  j["Scope"] = "local";
  j["Driver"] = n.driver;
  j["EnableIPv6"] = false;
  core::OrderedJson cfg;
  cfg["Subnet"] = n.subnet;
  cfg["Gateway"] = n.gateway;
  j["IPAM"]["Driver"] = "default";
  j["IPAM"]["Config"] = core::OrderedJson::array({cfg});
  j["Internal"] = false;
  j["Options"] = core::OrderedJson::object();
  for (const auto& [key, value] : n.options) j["Options"][key] = value;
  core::OrderedJson containers = core::OrderedJson::object();
  for (const exec::ContainerRecord& r : attached) {
    core::OrderedJson c;
    c["Name"] = r.name;
    c["MacAddress"] = r.net.mac;
    c["IPv4Address"] = r.net.ip + "/" + std::to_string(r.net.prefix_len);
    containers[r.id] = c;
  }
  j["Containers"] = containers;
  return j;
}

}  // namespace xbuild::cli
