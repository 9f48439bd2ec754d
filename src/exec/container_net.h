// A kept container on an xbuild network (network.h), for the run that Containers::Run makes:
// its own network namespace, CNI ADD into the network, the port proxy, and the /etc/hosts
// entries by which containers on one user network find each other; all of it undone (proxy
// stopped, CNI DEL, namespace removed) when the run ends, or by Refresh when its monitor died.
//
// Names: on a user network each container's /etc/hosts (the bundle's `hosts` file, bind-mounted)
// lists its peers' names and short ids. The files of running peers are rewritten in place (same
// inode, under the network's hosts.lock) whenever a container joins or leaves, from the records'
// addresses; the default "bridge", as Docker's, gives no names.
#pragma once

#include <memory>
#include <string>

#include "core/log.h"
#include "core/result.h"
#include "exec/container.h"
#include "exec/network.h"
#include "exec/port_proxy.h"

namespace xbuild::exec {

class ContainerNetworking {
 public:
  ContainerNetworking(std::string root, Containers& containers, core::Logger* log)
      : root_(std::move(root)), containers_(containers), networks_(root_), log_(log) {}
  ~ContainerNetworking() { Detach(); }
  ContainerNetworking(const ContainerNetworking&) = delete;
  ContainerNetworking& operator=(const ContainerNetworking&) = delete;

  // Sets up what `r`'s network mode asks for and points `sandbox` at it (network, namespace
  // path, extra hosts). Records the address and published ports in the record.
  core::Status Attach(const ContainerRecord& r, SandboxOptions& sandbox);
  // Once the process runs: its own hosts file gets the peers that joined meanwhile.
  void Started();
  // Undoes Attach (idempotent; the destructor calls it).
  void Detach();

 private:
  std::string root_;
  Containers& containers_;
  Networks networks_;
  core::Logger* log_;
  std::string id_, network_;
  bool attached_ = false;
  std::unique_ptr<PortProxy> proxy_;
};

// What a container that was attached keeps after its monitor died: CNI DEL, its namespace, its
// address in the record and its peers' hosts files. Nothing for one that is not attached.
core::Status ReleaseContainerNetwork(const std::string& root, Containers& containers, const ContainerRecord& r);

// The names of the containers attached to `network` now.
core::Result<std::vector<std::string>> AttachedContainers(Containers& containers, const std::string& network);

}  // namespace xbuild::exec
