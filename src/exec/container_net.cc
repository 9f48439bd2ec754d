#include "exec/container_net.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/fs.h"
#include "exec/cni.h"
#include "exec/etc_files.h"
#include "exec/netns.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

namespace {

bool Attached(const ContainerRecord& r, const std::string& network) {
  return r.net.mode == network && !r.net.ip.empty();
}

// The /etc/hosts entries of `self`: --add-host, its own address under its hostname, and on a
// user network the names and short ids of its attached peers.
std::vector<std::string> HostsEntries(const ContainerRecord& self, const std::vector<ContainerRecord>& all) {
  std::vector<std::string> entries = ResolveHostGateway(self.net.extra_hosts, self.net.mode);
  std::string hostname = self.hostname.empty() ? self.id.substr(0, 12) : self.hostname;
  if (!self.net.ip.empty()) entries.push_back(hostname + ":" + self.net.ip);
  if (self.net.mode == kDefaultNetwork) return entries;
  for (const ContainerRecord& peer : all) {
    if (peer.id == self.id || !Attached(peer, self.net.mode)) continue;
    entries.push_back(peer.name + ":" + peer.net.ip);
    entries.push_back(peer.id.substr(0, 12) + ":" + peer.net.ip);
  }
  return entries;
}

// Rewrites, in place, the hosts file of every running container on `network` (user networks).
Status SyncHosts(const std::string& root, Containers& containers, const std::string& network) {
  if (network == kDefaultNetwork) return core::Ok();
  Networks networks(root);
  XB_ASSIGN(core::UniqueFd lock, core::Open(networks.HostsLockPath(network), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return core::SysError("lock the hosts of network " + network);
  }
  // Raw records: this runs inside Refresh too, which List would call again.
  XB_ASSIGN(std::vector<ContainerRecord> all, containers.ListRaw());
  for (const ContainerRecord& r : all) {
    if (!Attached(r, network)) continue;
    std::string path = core::JoinPath(core::JoinPath(containers.Dir(r.id), "bundle"), "hosts");
    SandboxOptions opts;
    opts.hostname = r.hostname;
    XB_ASSIGN(std::string text, MakeHostsFile(SandboxHostname(opts, r.id), HostsEntries(r, all)));
    // The same inode: it is bind-mounted into the container. Not there yet: its run writes it.
    int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    core::UniqueFd owned(fd);
    XB_TRY_CTX(core::WriteAll(fd, text), "write " + path);
  }
  return core::Ok();
}

CniCall MakeCall(const Networks& networks, const NetworkInfo& net, const std::string& id) {
  CniCall call;
  call.network_netns = networks.NetnsPath(net.name);
  call.config = networks.CniConfig(net);
  call.container_id = id;
  call.container_netns = networks.ContainerNetnsPath(id);
  return call;
}

// The network's slirp4netns goes with the last address in use on it, without waiting for its
// exit (the next container to attach, or `network rm`, waits for that).
Status StopOutboundIfUnused(const Networks& networks, const std::string& network) {
  XB_ASSIGN(Outbound outbound, networks.LockOutbound(network));
  if (networks.AddressesInUse(network) > 0) return core::Ok();
  return outbound.Stop(Outbound::StopWait::kNoWait);
}

// The network's slirp4netns started unless it runs (without it, a warning: the container runs
// with no way out), then CNI ADD. The lock is held through both: a container leaving
// meanwhile then sees this one's address and leaves slirp4netns running.
Result<CniResult> AddToNetwork(const Networks& networks, const NetworkInfo& net, const std::string& id,
                               core::Logger* log) {
  XB_ASSIGN(Outbound outbound, networks.LockOutbound(net.name));
  Status out = outbound.Ensure(net.HostLoopback());
  if (!out.ok() && log) log->Warn("network " + net.name + " has no outbound access: " + out.error().ToString());
  return CniAdd(MakeCall(networks, net, id)).Context("network " + net.name);
}

// The namespace's removal, CNI DEL and, when the network's last address goes, its slirp4netns.
// The first error is returned; every step is tried. The namespace goes first and DEL gets no
// netns: the bridge plugin then only releases the address (host-local), and the kernel takes the
// veth pair away with the namespace, in the background. Deleting the veth itself made DEL wait
// for the network stack (~15 ms of every `run` on a bridge network).
Status Release(Networks& networks, const std::string& network, const std::string& id) {
  Status first = RemoveNetns(networks.ContainerNetnsPath(id));
  auto net = networks.Lookup(network);  // never made again here: it may be going with its root
  if (net.ok()) {
    CniCall call = MakeCall(networks, *net, id);
    call.container_netns.clear();
    Status del = CniDel(call);
    if (first.ok() && !del.ok()) first = std::move(del);
    Status stopped = StopOutboundIfUnused(networks, net->name);
    if (first.ok() && !stopped.ok()) first = std::move(stopped);
  }
  return first;
}

}  // namespace

Status ContainerNetworking::Attach(const ContainerRecord& r, SandboxOptions& sandbox) {
  sandbox.extra_hosts = ResolveHostGateway(r.net.extra_hosts, r.net.mode);
  if (r.net.mode == "none") sandbox.network = Network::kNone;
  if (r.net.mode == "host") sandbox.network = Network::kHost;
  if (!IsNetworkMode(r.net.mode)) return core::Ok();
  XB_ASSIGN(NetworkInfo net, networks_.Get(r.net.mode));
  id_ = r.id;
  network_ = net.name;
  attached_ = true;  // from here Detach undoes whatever was done
  std::string netns = networks_.ContainerNetnsPath(r.id);
  XB_TRY(core::MkdirAll(core::Dirname(netns), 0700));
  XB_TRY(RemoveNetns(netns));  // what a killed monitor left
  XB_TRY(CreateNetns(netns));
  XB_ASSIGN(CniResult cni, AddToNetwork(networks_, net, r.id, log_));
  std::vector<PortMapping> published = r.net.ports;
  if (!published.empty()) {
    XB_ASSIGN(proxy_, PortProxy::Start(published, cni.ip, networks_.NetnsPath(net.name)));
  }
  ContainerRecord updated;
  XB_TRY(containers_.Update(r.id, [&](ContainerRecord& rec) {
    rec.net.ip = cni.ip;
    rec.net.gateway = cni.gateway;
    rec.net.mac = cni.mac;
    rec.net.prefix_len = cni.prefix_len;
    rec.net.published = published;
    updated = rec;
  }));
  XB_ASSIGN(std::vector<ContainerRecord> all, containers_.ListRaw());
  sandbox.network = Network::kBridge;
  sandbox.netns_path = netns;
  sandbox.extra_hosts = HostsEntries(updated, all);
  Status synced = SyncHosts(root_, containers_, network_);
  if (!synced.ok() && log_) log_->Warn(synced.error().ToString());
  return core::Ok();
}

void ContainerNetworking::Started() {
  if (!attached_) return;
  Status synced = SyncHosts(root_, containers_, network_);
  if (!synced.ok() && log_) log_->Warn(synced.error().ToString());
}

void ContainerNetworking::Detach() {
  if (!attached_) return;
  attached_ = false;
  proxy_.reset();
  auto rec = containers_.Get(id_);
  if (rec.ok()) {
    Status s = ReleaseContainerNetwork(root_, containers_, *rec);
    if (!s.ok() && log_) log_->Warn("network of container " + id_ + ": " + s.error().ToString());
  }
  // Done above unless the record is gone; CNI DEL and the namespace go all the same.
  if (core::Exists(networks_.ContainerNetnsPath(id_))) {
    Status s = Release(networks_, network_, id_);
    if (!s.ok() && log_) log_->Warn("network of container " + id_ + ": " + s.error().ToString());
  }
}

Status ReleaseContainerNetwork(const std::string& root, Containers& containers, const ContainerRecord& r) {
  if (!IsNetworkMode(r.net.mode)) return core::Ok();
  Networks networks(root);
  bool had_ip = !r.net.ip.empty();
  if (had_ip) {
    Status cleared = containers.Update(r.id, [](ContainerRecord& rec) {
      rec.net.ip.clear();
      rec.net.gateway.clear();
      rec.net.mac.clear();
      rec.net.prefix_len = 0;
      rec.net.published.clear();
    });
    if (!cleared.ok() && cleared.error().code() != Code::kNotFound) return cleared;
  }
  if (!had_ip && !core::Exists(networks.ContainerNetnsPath(r.id))) return core::Ok();
  Status first = Release(networks, r.net.mode, r.id);
  if (had_ip) {
    Status synced = SyncHosts(root, containers, r.net.mode);
    if (first.ok() && !synced.ok()) first = std::move(synced);
  }
  return first;
}

Result<std::vector<std::string>> AttachedContainers(Containers& containers, const std::string& network) {
  XB_ASSIGN(std::vector<ContainerRecord> all, containers.List());  // refreshed: lost ones released
  std::vector<std::string> names;
  for (const ContainerRecord& r : all) {
    if (Attached(r, network)) names.push_back(r.name);
  }
  return names;
}

}  // namespace xbuild::exec
