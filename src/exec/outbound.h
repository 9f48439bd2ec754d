// A way out for an xbuild network: one slirp4netns process per network namespace, started when
// a container attaches and stopped when the last one leaves or the network is removed. It
// gives the network's namespace a tap device (tap0, 10.0.2.100/24) with a default route to
// 10.0.2.2; one iptables rule inside the network's namespace masquerades the containers'
// traffic out of it (made before the namespace's first slirp4netns; not the bridge plugin's
// ipMasq, which costs iptables runs on every container's CNI ADD and DEL). slirp4netns itself
// runs in the host's namespace and opens ordinary sockets there, so the host gains no
// interface, address, route or iptables rule.
//
// Addresses seen from a container (slirp4netns's defaults):
//   10.0.2.2  the host: what `--add-host NAME:host-gateway` names (network.h). Closed by
//             default (slirp4netns --disable-host-loopback): with it open, every container on
//             the network reaches whatever the host serves on 127.0.0.1, which Docker on Linux
//             never allows and Podman's slirp4netns does not by default either. A network made
//             with `network create --opt xbuild.host-loopback=true` opens it, so that
//             host.docker.internal reaches a service on the host's loopback (Docker Desktop's
//             behaviour).
//   DNS       containers keep the resolv.conf Docker writes (etc_files.h: the host's
//             nameservers without loopback ones, else Google's), now reachable through the
//             NAT; slirp4netns's own forwarder (10.0.2.3) is disabled: unused, and it would
//             reach a loopback resolver of the host even with host loopback closed.
//
// Files under networks/<name>/ (network.h):
//   outbound.pid    the slirp4netns pid, decimal and a newline; trusted only while that process
//                   is a slirp4netns whose arguments name this network's namespace
//   outbound.log    its output, from its last start
//   outbound.lock   flock around starting, stopping, and the CNI ADD that must not race a stop
//   outbound.stopping  the pid file of one stopped without waiting (Stop(kNoWait)), renamed
//                   from outbound.pid; the next Ensure or Stop waits for that process to exit
//   outbound.made   which namespace has forwarding on and the masquerade rule: the boot id and
//                   the namespace's nsfs inode; made again for any other namespace
#pragma once

#include <string>

#include "core/fd.h"
#include "core/result.h"

namespace xbuild::exec {

inline constexpr const char* kOutboundHostAddress = "10.0.2.2";

// The slirp4netns binary: $XBUILD_SLIRP4NETNS when set (a path; tests point it at nothing),
// else slirp4netns in PATH; empty when there is none.
std::string SlirpBinary();

// The iptables binary that masquerades out of tap0 ("" when there is none).
std::string IptablesBinary();

class Outbound {
 public:
  // `dir`: networks/<name>; `netns`: the network's namespace.
  static core::Result<Outbound> Lock(const std::string& dir, const std::string& netns);

  // Starts slirp4netns unless a live one serves the namespace (a killed one is replaced). One
  // still going from a Stop(kNoWait) is waited for first: its tap0 and route must be gone.
  // kNotFound when slirp4netns or iptables is missing.
  // `masquerade` false: the namespace's own processes sit on tap0 (a build step's namespace,
  // netns_pool.h), so nothing is forwarded and no iptables rule is made (nor iptables needed).
  core::Status Ensure(bool host_loopback, bool masquerade = true);
  enum class StopWait { kExit, kNoWait };
  // Stops the one serving the namespace, if any, and removes its pid file. kExit waits until it
  // (and one still going from an earlier kNoWait) has exited. kNoWait only signals it: its exit
  // takes 15-35 ms (the kernel taking tap0 down), which the last container leaving a network
  // need not wait for; the pid is kept in outbound.stopping for the next Ensure or Stop.
  core::Status Stop(StopWait wait = StopWait::kExit);
  // The pid of the slirp4netns serving the namespace; 0 when none.
  int Pid() const;

 private:
  Outbound(std::string dir, std::string netns, core::UniqueFd lock)
      : dir_(std::move(dir)), netns_(std::move(netns)), lock_(std::move(lock)) {}

  std::string dir_, netns_;
  core::UniqueFd lock_;
};

}  // namespace xbuild::exec
