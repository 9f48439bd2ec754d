#include "exec/port_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <list>
#include <map>

#include "exec/netns.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Result;
using core::Status;

namespace {

constexpr size_t kBufferSize = 64 * 1024;
constexpr auto kUdpIdle = std::chrono::seconds(60);  // a UDP peer's flow is dropped after this
constexpr size_t kMaxUdpFlows = 1024;

sockaddr_in Address(const std::string& ip, int port) {
  sockaddr_in a;
  std::memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.empty() ? "0.0.0.0" : ip.c_str(), &a.sin_addr);
  return a;
}

// One direction of a TCP connection: bytes read from `from` wait in buf until written to `to`.
struct Pipe {
  std::string buf;
  size_t off = 0;
  bool eof = false;   // `from` said EOF
  bool done = false;  // eof and buf drained: `to` was shut for writing
};

struct TcpConn {
  core::UniqueFd client, upstream;
  bool connecting = true;
  Pipe up, down;  // client → upstream, upstream → client
  bool Finished() const { return up.done && down.done; }
};

struct UdpFlow {
  core::UniqueFd upstream;  // connected to the container, made in the network's namespace
  sockaddr_in peer;
  int listener;
  std::chrono::steady_clock::time_point last;
};

// Reads into p from `from` when it is empty, writes p to `to`; false on a hard error.
bool Pump(int from, int to, Pipe& p, short from_events, short to_events) {
  if (!p.eof && p.off == p.buf.size() && (from_events & (POLLIN | POLLHUP | POLLERR))) {
    p.buf.resize(kBufferSize);
    p.off = 0;
    ssize_t n = ::read(from, p.buf.data(), p.buf.size());
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    p.buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (n == 0) p.eof = true;
  }
  if (p.off < p.buf.size() && (to_events & (POLLOUT | POLLERR))) {
    ssize_t n = ::send(to, p.buf.data() + p.off, p.buf.size() - p.off, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    if (n > 0) p.off += static_cast<size_t>(n);
  }
  if (p.eof && p.off == p.buf.size() && !p.done) {
    ::shutdown(to, SHUT_WR);
    p.done = true;
  }
  return true;
}

// A datagram to the container on a flow's connected socket. When its port refused an earlier
// one (ICMP port unreachable), the socket holds ECONNREFUSED, which fails the next send and is
// cleared by it: this datagram is then sent again, not lost.
void SendUpstream(int fd, const char* data, size_t n) {
  if (::send(fd, data, n, 0) < 0 && errno == ECONNREFUSED) (void)::send(fd, data, n, 0);
}

short Wants(const Pipe& p_from, const Pipe& p_to) {
  short ev = 0;
  if (!p_from.eof && p_from.off == p_from.buf.size()) ev |= POLLIN;  // this fd is p_from's source
  if (p_to.off < p_to.buf.size()) ev |= POLLOUT;                     // and p_to's destination
  return ev;
}

}  // namespace

Result<std::unique_ptr<PortProxy>> PortProxy::Start(std::vector<PortMapping>& ports, const std::string& target_ip,
                                                    const std::string& netns_path) {
  std::unique_ptr<PortProxy> proxy(new PortProxy());
  proxy->target_ip_ = target_ip;
  for (PortMapping& p : ports) {
    bool udp = p.proto == "udp";
    core::UniqueFd fd(::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return core::SysError("socket");
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = Address(p.host_ip, p.host_port);
    std::string where = (p.host_ip.empty() ? "0.0.0.0" : p.host_ip) + ":" + std::to_string(p.host_port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      int err = errno;
      if (err == EADDRINUSE) return Error(Code::kAlreadyExists, "Bind for " + where + " failed: port is already allocated");
      return core::SysError("bind " + where + "/" + p.proto, err);
    }
    if (!udp && ::listen(fd.get(), SOMAXCONN) != 0) return core::SysError("listen on " + where);
    socklen_t len = sizeof a;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return core::SysError("getsockname");
    p.host_port = ntohs(a.sin_port);
    proxy->listeners_.push_back(Listener{std::move(fd), p});
  }
  proxy->wake_ = core::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (proxy->wake_.get() < 0) return core::SysError("eventfd");
  std::promise<Status> entered;
  std::future<Status> entered_f = entered.get_future();
  PortProxy* self = proxy.get();
  proxy->thread_ = std::thread([self, netns_path, &entered] {
    Status s = EnterNetns(netns_path);
    bool ok = s.ok();
    entered.set_value(std::move(s));
    if (ok) self->Serve();
  });
  Status s = entered_f.get();
  if (!s.ok()) return std::move(s).error().Context("port proxy");
  return proxy;
}

PortProxy::~PortProxy() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    thread_.join();
  }
}

void PortProxy::Serve() {
  std::list<TcpConn> conns;
  using FlowKey = std::pair<int, std::pair<uint32_t, uint16_t>>;  // (listener, peer)
  std::map<FlowKey, UdpFlow> flows;
  sockaddr_in target_base = Address(target_ip_, 0);
  std::vector<pollfd> pfds;
  std::vector<char> dgram(65536);
  for (;;) {
    pfds.clear();
    pfds.push_back({wake_.get(), POLLIN, 0});
    for (const Listener& l : listeners_) pfds.push_back({l.fd.get(), POLLIN, 0});
    for (const TcpConn& c : conns) {
      if (c.connecting) {
        pfds.push_back({c.client.get(), 0, 0});
        pfds.push_back({c.upstream.get(), POLLOUT, 0});
      } else {
        pfds.push_back({c.client.get(), Wants(c.up, c.down), 0});
        pfds.push_back({c.upstream.get(), Wants(c.down, c.up), 0});
      }
    }
    // pfds has a slot for exactly these connections and flows: ones accepted below wait for the
    // next round.
    std::vector<FlowKey> polled_flows;
    for (const auto& [key, f] : flows) {
      pfds.push_back({f.upstream.get(), POLLIN, 0});
      polled_flows.push_back(key);
    }
    std::list<TcpConn> accepted;
    int timeout_ms = flows.empty() ? -1 : 5000;
    if (::poll(pfds.data(), pfds.size(), timeout_ms) < 0 && errno != EINTR) return;
    if (pfds[0].revents) return;
    auto now = std::chrono::steady_clock::now();
    size_t i = 1;
    for (const Listener& l : listeners_) {
      short rev = pfds[i++].revents;
      if (!rev) continue;
      sockaddr_in target = target_base;
      target.sin_port = htons(static_cast<uint16_t>(l.port.container_port));
      if (l.port.proto == "tcp") {
        core::UniqueFd client(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (client.get() < 0) continue;
        // This thread is in the network's namespace: the upstream socket is made there.
        core::UniqueFd up(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (up.get() < 0) continue;
        if (::connect(up.get(), reinterpret_cast<sockaddr*>(&target), sizeof target) != 0 && errno != EINPROGRESS) {
          continue;  // closing the client tells it
        }
        TcpConn c;
        c.client = std::move(client);
        c.upstream = std::move(up);
        accepted.push_back(std::move(c));
        continue;
      }
      sockaddr_in peer;
      socklen_t plen = sizeof peer;
      ssize_t n = ::recvfrom(l.fd.get(), dgram.data(), dgram.size(), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
      if (n < 0) continue;
      auto key = std::make_pair(l.fd.get(), std::make_pair(peer.sin_addr.s_addr, peer.sin_port));
      auto it = flows.find(key);
      if (it == flows.end()) {
        if (flows.size() >= kMaxUdpFlows) continue;
        core::UniqueFd up(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (up.get() < 0 || ::connect(up.get(), reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) continue;
        it = flows.emplace(key, UdpFlow{std::move(up), peer, l.fd.get(), now}).first;
      }
      it->second.last = now;
      SendUpstream(it->second.upstream.get(), dgram.data(), static_cast<size_t>(n));
    }
    for (auto it = conns.begin(); it != conns.end();) {
      short crev = pfds[i++].revents, urev = pfds[i++].revents;
      bool ok = true;
      if (it->connecting) {
        if (urev) {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(it->upstream.get(), SOL_SOCKET, SO_ERROR, &err, &len);
          ok = err == 0;
          it->connecting = false;
        }
      } else {
        ok = Pump(it->client.get(), it->upstream.get(), it->up, crev, urev) &&
             Pump(it->upstream.get(), it->client.get(), it->down, urev, crev);
        // A side that hung up after its EOF can take nothing more: done (poll would report the
        // hang-up on every round otherwise).
        ok = ok && !((crev & POLLHUP) && it->up.eof) && !((urev & POLLHUP) && it->down.eof) &&
             !((crev | urev) & POLLERR);
      }
      if (!ok || it->Finished()) {
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
    conns.splice(conns.end(), accepted);
    for (const FlowKey& key : polled_flows) {
      short rev = pfds[i++].revents;
      auto it = flows.find(key);
      // POLLERR: a refusal from the container's port. recv takes it (n < 0) and clears it;
      // left there, poll would report it at once on every round.
      if (it != flows.end() && (rev & (POLLIN | POLLERR))) {
        ssize_t n = ::recv(it->second.upstream.get(), dgram.data(), dgram.size(), 0);
        if (n >= 0) {
          (void)::sendto(it->second.listener, dgram.data(), static_cast<size_t>(n), 0,
                         reinterpret_cast<const sockaddr*>(&it->second.peer), sizeof it->second.peer);
          it->second.last = now;
        }
      }
    }
    std::erase_if(flows, [&](const auto& kv) { return now - kv.second.last > kUdpIdle; });
  }
}

}  // namespace xbuild::exec
