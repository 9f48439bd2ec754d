#include "exec/network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/digest.h"
#include "core/dir.h"
#include "core/fs.h"
#include "core/strings.h"
#include "exec/container.h"
#include "exec/netns.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Json;
using core::Result;
using core::Status;

namespace {

constexpr const char* kDefaultSubnet = "172.30.0.0/16";
constexpr const char* kBridgeName = "xbr0";  // every network has its own namespace: one name fits all

// A port number 1-65535 (0 allowed when `zero_ok`); -1 when it is not one.
int ParsePort(const std::string& s, bool zero_ok) {
  if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), ::isdigit)) return -1;
  int p = std::atoi(s.c_str());
  return (p == 0 && !zero_ok) || p > 65535 ? -1 : p;
}

bool ValidIpv4(const std::string& s) {
  struct in_addr a;
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

// "a.b.c.d/n" → network address (host order) and prefix length.
struct Subnet {
  uint32_t net = 0;
  int prefix = 0;
  uint32_t Mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
  bool Overlaps(const Subnet& o) const {
    uint32_t m = prefix < o.prefix ? Mask() : o.Mask();
    return (net & m) == (o.net & m);
  }
};

std::string Ipv4String(uint32_t host_order) {
  struct in_addr a;
  a.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

Result<Subnet> ParseSubnet(const std::string& cidr) {
  Error bad(Code::kInvalidArgument, "invalid subnet \"" + cidr + "\": want an IPv4 CIDR such as 172.31.0.0/16 (prefix 8 to 30, host bits zero)");
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) return bad;
  std::string addr = cidr.substr(0, slash), len = cidr.substr(slash + 1);
  struct in_addr a;
  if (::inet_pton(AF_INET, addr.c_str(), &a) != 1 || len.empty() || len.size() > 2 ||
      !std::all_of(len.begin(), len.end(), ::isdigit)) {
    return bad;
  }
  Subnet s;
  s.prefix = std::atoi(len.c_str());
  s.net = ntohl(a.s_addr);
  if (s.prefix < 8 || s.prefix > 30 || (s.net & ~s.Mask()) != 0) return bad;
  return s;
}

Status ValidateNetworkName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  if (ok) return core::Ok();
  return Error(Code::kInvalidArgument, "invalid network name \"" + name + "\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
}

Json PortToJson(const PortMapping& p) {
  return Json{{"host_ip", p.host_ip}, {"host_port", p.host_port}, {"container_port", p.container_port}, {"proto", p.proto}};
}

std::vector<PortMapping> PortsFromJson(const Json& j, const char* key) {
  std::vector<PortMapping> out;
  if (!j.contains(key) || !j[key].is_array()) return out;
  for (const Json& e : j[key]) {
    PortMapping p;
    p.host_ip = core::GetOptString(e, "host_ip").value_or("");
    p.host_port = e.value("host_port", 0);
    p.container_port = e.value("container_port", 0);
    p.proto = core::GetOptString(e, "proto").value_or("tcp");
    out.push_back(std::move(p));
  }
  return out;
}

// flock'ed while it lives.
class FileLock {
 public:
  static Result<FileLock> Take(const std::string& path) {
    XB_ASSIGN(core::UniqueFd fd, core::Open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return core::SysError("lock " + path);
    }
    return FileLock(std::move(fd));
  }

 private:
  explicit FileLock(core::UniqueFd fd) : fd_(std::move(fd)) {}
  core::UniqueFd fd_;
};

}  // namespace

Result<PortMapping> ParsePublish(const std::string& spec) {
  Error bad(Code::kInvalidArgument, "invalid publish spec \"" + spec + "\": want [ip:][host_port:]container_port[/tcp|/udp]");
  PortMapping p;
  std::string rest = spec;
  size_t slash = rest.rfind('/');
  if (slash != std::string::npos) {
    p.proto = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (p.proto != "tcp" && p.proto != "udp") return bad;
  }
  std::vector<std::string> parts = core::Split(rest, ':');
  if (parts.size() > 3) return bad;
  p.container_port = ParsePort(parts.back(), false);
  if (p.container_port < 0) return bad;
  if (parts.size() >= 2) {
    const std::string& host = parts[parts.size() - 2];
    p.host_port = host.empty() ? 0 : ParsePort(host, false);
    if (p.host_port < 0) return bad;
  }
  if (parts.size() == 3) {
    p.host_ip = parts[0];
    if (!p.host_ip.empty() && !ValidIpv4(p.host_ip)) return bad;
  }
  return p;
}

Result<PortMapping> ParseExposed(const std::string& port) {
  XB_ASSIGN(PortMapping p, ParsePublish(port));
  if (port.find(':') != std::string::npos) return Error(Code::kInvalidArgument, "invalid exposed port \"" + port + "\"");
  return p;
}

std::string PortKey(const PortMapping& p) { return std::to_string(p.container_port) + "/" + p.proto; }

std::string PortLine(const PortMapping& p) {
  return PortKey(p) + " -> " + (p.host_ip.empty() ? "0.0.0.0" : p.host_ip) + ":" + std::to_string(p.host_port);
}

Json ContainerNetToJson(const ContainerNet& n) {
  Json ports = Json::array(), published = Json::array();
  for (const PortMapping& p : n.ports) ports.push_back(PortToJson(p));
  for (const PortMapping& p : n.published) published.push_back(PortToJson(p));
  return Json{{"mode", n.mode},       {"ports", ports},           {"extra_hosts", Json(n.extra_hosts)},
              {"ip", n.ip},           {"gateway", n.gateway},     {"mac", n.mac},
              {"prefix_len", n.prefix_len}, {"published", published}};
}

ContainerNet ContainerNetFromJson(const Json& j) {
  ContainerNet n;
  if (!j.is_object()) return n;
  n.mode = core::GetOptString(j, "mode").value_or("host");
  n.ports = PortsFromJson(j, "ports");
  n.extra_hosts = core::GetStringList(j, "extra_hosts");
  n.ip = core::GetOptString(j, "ip").value_or("");
  n.gateway = core::GetOptString(j, "gateway").value_or("");
  n.mac = core::GetOptString(j, "mac").value_or("");
  n.prefix_len = j.value("prefix_len", 0);
  n.published = PortsFromJson(j, "published");
  return n;
}

bool IsNetworkMode(const std::string& mode) { return mode != "host" && mode != "none" && !mode.empty(); }

bool NetworkInfo::HostLoopback() const {
  auto it = options.find(kHostLoopbackOption);
  return it != options.end() && it->second == "true";
}

Status ValidateNetworkOptions(const std::map<std::string, std::string>& options) {
  for (const auto& [key, value] : options) {
    if (key != kHostLoopbackOption) {
      return Error(Code::kInvalidArgument, "network option \"" + key + "\" is not supported (known: " + kHostLoopbackOption + ")");
    }
    if (value != "true" && value != "false") {
      return Error(Code::kInvalidArgument, "invalid value \"" + value + "\" for network option " + key + ": want true or false");
    }
  }
  return core::Ok();
}

std::vector<std::string> ResolveHostGateway(const std::vector<std::string>& extra_hosts, const std::string& mode) {
  std::string gateway = IsNetworkMode(mode) ? kOutboundHostAddress : "127.0.0.1";
  std::vector<std::string> out;
  for (const std::string& entry : extra_hosts) {
    size_t sep = entry.find_first_of(":=");  // as MakeHostsFile splits it
    bool special = sep != std::string::npos && entry.compare(sep + 1, std::string::npos, "host-gateway") == 0;
    out.push_back(special ? entry.substr(0, sep + 1) + gateway : entry);
  }
  return out;
}

Networks::Networks(std::string root) : root_(std::move(root)) {}

std::string Networks::Dir(const std::string& name) const {
  return core::JoinPath(core::JoinPath(root_, "networks"), name);
}
std::string Networks::NetnsPath(const std::string& network) const { return core::JoinPath(Dir(network), "netns"); }
std::string Networks::HostsLockPath(const std::string& network) const {
  return core::JoinPath(Dir(network), "hosts.lock");
}
std::string Networks::ContainerNetnsPath(const std::string& id) const {
  return core::JoinPath(core::JoinPath(root_, "netns"), id);
}

Json Networks::CniConfig(const NetworkInfo& net) const {
  return Json{{"cniVersion", "1.0.0"},
              {"name", net.name},
              {"type", "bridge"},
              {"bridge", kBridgeName},
              {"isGateway", true},
              {"ipMasq", false},  // one rule for the namespace masquerades out of tap0 (outbound.h)
              {"hairpinMode", true},
              {"ipam",
               {{"type", "host-local"},
                {"ranges", Json::array({Json::array({{{"subnet", net.subnet}, {"gateway", net.gateway}}})})},
                // The container's default route, via the gateway on xbr0 (then tap0).
                {"routes", Json::array({{{"dst", "0.0.0.0/0"}}})},
                {"dataDir", core::JoinPath(Dir(net.name), "ipam")}}}};
}

Result<Outbound> Networks::LockOutbound(const std::string& network) const {
  return Outbound::Lock(Dir(network), NetnsPath(network));
}

size_t Networks::AddressesInUse(const std::string& network) const {
  // host-local keeps one file per address, named by it, in <dataDir>/<network name>/.
  std::vector<std::string> names = core::DirNames(core::JoinPath(core::JoinPath(Dir(network), "ipam"), network));
  return static_cast<size_t>(std::count_if(names.begin(), names.end(), [](const std::string& n) { return ValidIpv4(n); }));
}

Result<NetworkInfo> Networks::Load(const std::string& name) const {
  auto text = core::ReadFile(core::JoinPath(Dir(name), "config.json"), 1 << 20);
  if (!text.ok() && text.error().sys_errno() == ENOENT) return Error(Code::kNotFound, "network " + name + " not found");
  if (!text.ok()) return std::move(text).error();
  XB_ASSIGN(Json j, core::ParseJson(*text, "network " + name));
  NetworkInfo n;
  XB_ASSIGN(n.name, core::GetString(j, "name"));
  XB_ASSIGN(n.id, core::GetString(j, "id"));
  XB_ASSIGN(n.subnet, core::GetString(j, "subnet"));
  XB_ASSIGN(n.gateway, core::GetString(j, "gateway"));
  n.driver = core::GetOptString(j, "driver").value_or("bridge");
  n.created = core::GetOptString(j, "created").value_or("");
  if (j.contains("options") && j["options"].is_object()) {
    for (const auto& [key, value] : j["options"].items()) {
      if (value.is_string()) n.options[key] = value.get<std::string>();
    }
  }
  return n;
}

std::vector<std::string> Networks::Names() const {
  std::vector<std::string> names;
  for (std::string& name : core::DirNames(core::JoinPath(root_, "networks"))) {
    if (ValidateNetworkName(name).ok() && core::Exists(core::JoinPath(Dir(name), "config.json"))) names.push_back(name);
  }
  return names;
}

Result<NetworkInfo> Networks::CreateLocked(const std::string& name, const std::string& subnet_in,
                                           const std::map<std::string, std::string>& options) {
  std::vector<Subnet> used;
  for (const std::string& other : Names()) {
    auto n = Load(other);
    if (!n.ok()) continue;
    auto s = ParseSubnet(n->subnet);
    if (s.ok()) used.push_back(*s);
  }
  auto free = [&](const Subnet& s) {
    return std::none_of(used.begin(), used.end(), [&](const Subnet& u) { return u.Overlaps(s); });
  };
  Subnet subnet;
  if (!subnet_in.empty()) {
    XB_ASSIGN(subnet, ParseSubnet(subnet_in));
    if (!free(subnet)) {
      return Error(Code::kAlreadyExists, "subnet " + subnet_in + " overlaps with another xbuild network");
    }
  } else if (name == kDefaultNetwork) {
    XB_ASSIGN(subnet, ParseSubnet(kDefaultSubnet));
  } else {
    // 172.31.0.0/16, then 10.31.0.0/16 ... 10.254.0.0/16.
    bool found = false;
    for (uint32_t second = 30; second < 255 && !found; ++second) {
      Subnet s;
      s.prefix = 16;
      s.net = second == 30 ? (172u << 24 | 31u << 16) : (10u << 24 | second << 16);
      if (free(s)) {
        subnet = s;
        found = true;
      }
    }
    if (!found) return Error(Code::kResourceExhausted, "no free subnet left for network " + name);
  }
  NetworkInfo n;
  n.name = name;
  XB_ASSIGN(n.id, core::RandomHex(32));
  n.subnet = Ipv4String(subnet.net) + "/" + std::to_string(subnet.prefix);
  n.gateway = Ipv4String(subnet.net + 1);
  n.created = NowRfc3339Nano();
  n.options = options;
  std::string dir = Dir(name);
  XB_TRY(core::MkdirAll(core::JoinPath(dir, "ipam"), 0700));
  bool done = false;
  core::ScopeGuard undo([&] {
    if (done) return;
    (void)RemoveNetns(NetnsPath(name));
    (void)core::RemoveAll(dir);
  });
  XB_TRY(RemoveNetns(NetnsPath(name)));  // what an interrupted create left
  XB_TRY_CTX(CreateNetns(NetnsPath(name)), "network " + name);
  Json j{{"name", n.name}, {"id", n.id},           {"driver", n.driver},
         {"subnet", n.subnet}, {"gateway", n.gateway}, {"created", n.created}, {"options", Json(n.options)}};
  // config.json last: a network without it is an unfinished create, taken over by the next.
  XB_TRY(core::WriteFileAtomic(core::JoinPath(dir, "config.json"), j.dump(2), 0600));
  done = true;
  return n;
}

Result<NetworkInfo> Networks::Create(const std::string& name, const std::string& subnet, const std::string& driver,
                                     const std::map<std::string, std::string>& options) {
  XB_TRY(ValidateNetworkName(name));
  XB_TRY(ValidateNetworkOptions(options));
  if (driver != "bridge") {
    return Error(Code::kInvalidArgument, "network driver \"" + driver + "\" is not supported (only bridge)");
  }
  if (name == "host" || name == "none") {
    return Error(Code::kAlreadyExists, "network with name " + name + " already exists");
  }
  XB_TRY(core::MkdirAll(core::JoinPath(root_, "networks"), 0700));
  XB_ASSIGN(FileLock lock, FileLock::Take(core::JoinPath(core::JoinPath(root_, "networks"), "lock")));
  if (Load(name).ok()) return Error(Code::kAlreadyExists, "network with name " + name + " already exists");
  return CreateLocked(name, subnet, options);
}

Result<NetworkInfo> Networks::Get(const std::string& ref) {
  auto n = Load(ref);
  if (n.ok() || n.error().code() != Code::kNotFound) return n;
  if (ref == kDefaultNetwork) {
    XB_TRY(core::MkdirAll(core::JoinPath(root_, "networks"), 0700));
    XB_ASSIGN(FileLock lock, FileLock::Take(core::JoinPath(core::JoinPath(root_, "networks"), "lock")));
    auto again = Load(ref);
    if (again.ok() || again.error().code() != Code::kNotFound) return again;
    return CreateLocked(ref, "", {});
  }
  std::vector<NetworkInfo> matches;
  for (const std::string& name : Names()) {
    auto other = Load(name);
    if (other.ok() && !ref.empty() && other->id.starts_with(ref)) matches.push_back(std::move(*other));
  }
  if (matches.size() == 1) return matches[0];
  if (matches.size() > 1) return Error(Code::kInvalidArgument, "network " + ref + " is ambiguous (" + std::to_string(matches.size()) + " matches found based on ID prefix)");
  return Error(Code::kNotFound, "network " + ref + " not found");
}

Result<std::vector<NetworkInfo>> Networks::List() {
  XB_TRY(Get(kDefaultNetwork));
  std::vector<NetworkInfo> out;
  for (const std::string& name : Names()) {
    XB_ASSIGN(NetworkInfo n, Load(name));
    out.push_back(std::move(n));
  }
  return out;
}

Status Networks::Remove(const NetworkInfo& net, const std::vector<std::string>& attached) {
  if (net.name == kDefaultNetwork) {
    return Error(Code::kFailedPrecondition, kDefaultNetwork + std::string(" is a pre-defined network and cannot be removed"));
  }
  if (!attached.empty()) {
    std::string list;
    for (const std::string& c : attached) list += (list.empty() ? "" : ", ") + c;
    return Error(Code::kFailedPrecondition, "error while removing network: network " + net.name + " id " + net.id +
                                                " has active endpoints (" + list + ")");
  }
  XB_ASSIGN(FileLock lock, FileLock::Take(core::JoinPath(core::JoinPath(root_, "networks"), "lock")));
  // config.json first: from then on the network does not exist, whatever is left of it.
  std::string dir = Dir(net.name);
  if (::unlink(core::JoinPath(dir, "config.json").c_str()) != 0 && errno != ENOENT) {
    return core::SysError("remove network " + net.name);
  }
  {
    // Its tap device holds the namespace: it goes first.
    XB_ASSIGN(Outbound outbound, LockOutbound(net.name));
    XB_TRY(outbound.Stop());
  }
  XB_TRY(RemoveNetns(NetnsPath(net.name)));
  return core::RemoveAll(dir);
}

}  // namespace xbuild::exec
