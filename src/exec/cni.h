// Runs CNI plugins (the containernetworking-plugins binaries, /usr/lib/cni by default) the way a
// CNI runtime does: CNI_COMMAND and friends in the environment, the network configuration on
// stdin, the result (or a CNI error object) on stdout. The plugin process is started inside
// the network namespace of the xbuild network (netns.h), so the bridge and the host ends of
// the veth pairs it makes live there and never in the host's namespace.
#pragma once

#include <string>

#include "core/json.h"
#include "core/result.h"

namespace xbuild::exec {

// The directory the plugins are looked up in: $XBUILD_CNI_PATH, else /usr/lib/cni.
std::string CniPluginDir();

struct CniCall {
  std::string network_netns;    // where the plugin runs
  core::Json config;            // one plugin's configuration (with cniVersion, name, type)
  std::string container_id;     // CNI_CONTAINERID
  std::string container_netns;  // CNI_NETNS
  std::string ifname = "eth0";  // CNI_IFNAME
};

// What ADD gave the container's interface.
struct CniResult {
  std::string ip;       // "172.30.0.2"
  int prefix_len = 0;   // 16
  std::string gateway;  // "172.30.0.1"
  std::string mac;      // of the container's interface
  core::Json raw;       // the plugin's whole result
};

core::Result<CniResult> CniAdd(const CniCall& call);
// DEL: releases the address and removes the veth pair. A container namespace that is already
// gone is fine (the plugins then only release the address).
core::Status CniDel(const CniCall& call);

}  // namespace xbuild::exec
