// The /etc/hosts, /etc/resolv.conf and /etc/hostname a sandbox sees. They are files in the
// bundle directory, bind-mounted over those paths, so the rootfs (and a RUN step's layer)
// never holds them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "exec/spec.h"

namespace xbuild::exec {

// localhost and the IPv6 names Docker writes, the hostname on 127.0.0.1, then extra_hosts
// ("name:ip" or "name=ip", as `--add-host` takes them).
core::Result<std::string> MakeHostsFile(std::string_view hostname,
                                        const std::vector<std::string>& extra_hosts);

// What the sandbox gets as resolv.conf, from the host's /etc/resolv.conf (`host`, nullopt
// when missing) and systemd-resolved's upstream list (`resolved`, the contents of
// /run/systemd/resolve/resolv.conf, nullopt when missing), as Docker decides:
//   - host network: the host's file as it is (Google's public DNS when it is missing);
//   - otherwise: loopback nameservers cannot be reached from another network namespace, so
//     a file pointing at systemd-resolved's 127.0.0.53 is replaced by resolved's upstream
//     list, remaining loopback nameservers are dropped, and when none is left Google's
//     public DNS (8.8.8.8, 8.8.4.4) is used. search and options lines are kept.
std::string MakeResolvConf(Network network, const std::optional<std::string>& host,
                           const std::optional<std::string>& resolved);

// MakeResolvConf with this machine's files.
std::string HostResolvConf(Network network);

}  // namespace xbuild::exec
