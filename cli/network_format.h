// How networks and a container's networking read in `network ls|inspect`, `ps` (PORTS) and
// `inspect` (HostConfig.PortBindings, NetworkSettings): Docker's words and JSON shapes.
#pragma once

#include <string>

#include "core/json.h"
#include "exec/container.h"
#include "exec/network.h"

namespace xbuild::cli {

// ps's PORTS column: "127.0.0.1:8080->80/tcp, 0.0.0.0:32768->53/udp" while it runs.
std::string PortsColumn(const exec::ContainerRecord& r);
// Adds HostConfig.PortBindings and ExtraHosts, and NetworkSettings, to a container's inspect.
void AddNetworkSettings(const exec::ContainerRecord& r, core::OrderedJson& j);
// `network inspect`: Docker's NetworkResource, Containers being the ones attached now.
core::OrderedJson InspectNetworkJson(const exec::NetworkInfo& n, const std::vector<exec::ContainerRecord>& attached);

}  // namespace xbuild::cli
