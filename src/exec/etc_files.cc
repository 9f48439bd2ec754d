#include "exec/etc_files.h"

#include "core/fs.h"
#include "core/strings.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Result;

namespace {

constexpr std::string_view kDefaultNameservers = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";
constexpr size_t kMaxResolvConfSize = 1 << 20;

// The address of a "nameserver ADDR" line; empty for any other line.
std::string Nameserver(std::string_view line) {
  std::string t = core::Trim(line);
  if (!t.starts_with("nameserver") || t.size() < 11 || (t[10] != ' ' && t[10] != '\t')) return "";
  return core::Trim(std::string_view(t).substr(10));
}

bool IsLoopback(std::string_view addr) { return addr.starts_with("127.") || addr == "::1"; }

bool UsesSystemdResolved(std::string_view text) {
  for (const std::string& line : core::Split(text, '\n')) {
    if (Nameserver(line) == "127.0.0.53") return true;
  }
  return false;
}

// Drops loopback nameservers; falls back to the defaults when no nameserver is left.
std::string WithoutLoopback(std::string_view text) {
  std::string out;
  bool any = false;
  for (const std::string& line : core::Split(text, '\n')) {
    std::string addr = Nameserver(line);
    if (!addr.empty() && IsLoopback(addr)) continue;
    any = any || !addr.empty();
    if (!line.empty()) out += line + "\n";
  }
  if (!any) out += kDefaultNameservers;
  return out;
}

std::optional<std::string> ReadOptional(const std::string& path) {
  auto r = core::ReadFile(path, kMaxResolvConfSize);
  return r.ok() ? std::optional<std::string>(std::move(*r)) : std::nullopt;
}

}  // namespace

Result<std::string> MakeHostsFile(std::string_view hostname,
                                  const std::vector<std::string>& extra_hosts) {
  std::string out = "127.0.0.1\tlocalhost";
  if (!hostname.empty() && hostname != "localhost") out += " " + std::string(hostname);
  out +=
      "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
      "ff02::2\tip6-allrouters\n";
  for (const std::string& entry : extra_hosts) {
    size_t sep = entry.find_first_of(":=");
    if (sep == 0 || sep == std::string::npos || sep + 1 == entry.size()) {
      return Error(Code::kInvalidArgument, "extra host \"" + entry + "\": want name:ip");
    }
    out += entry.substr(sep + 1) + "\t" + entry.substr(0, sep) + "\n";
  }
  return out;
}

std::string MakeResolvConf(Network network, const std::optional<std::string>& host,
                           const std::optional<std::string>& resolved) {
  if (!host) return std::string(kDefaultNameservers);
  if (network == Network::kHost) return *host;
  if (UsesSystemdResolved(*host) && resolved) return WithoutLoopback(*resolved);
  return WithoutLoopback(*host);
}

std::string HostResolvConf(Network network) {
  return MakeResolvConf(network, ReadOptional("/etc/resolv.conf"),
                        ReadOptional("/run/systemd/resolve/resolv.conf"));
}

}  // namespace xbuild::exec
