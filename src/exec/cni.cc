#include "exec/cni.h"

#include <unistd.h>

#include <cstdlib>

#include "core/fs.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "exec/netns.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Json;
using core::Result;
using core::Status;

namespace {

// Runs the plugin named by config.type with CNI_COMMAND=command; returns its stdout.
Result<std::string> Exec(const std::string& command, const CniCall& call) {
  std::string type = core::GetOptString(call.config, "type").value_or("");
  if (type.empty() || type.find('/') != std::string::npos) {
    return Error(Code::kInvalidArgument, "CNI config without a plugin type");
  }
  std::string plugin = core::JoinPath(CniPluginDir(), type);
  if (::access(plugin.c_str(), X_OK) != 0) {
    return Error(Code::kFailedPrecondition, "CNI plugin " + plugin +
                                                " not found: install containernetworking-plugins (or set XBUILD_CNI_PATH), "
                                                "or run with --network host or none");
  }
  core::RunOptions opts;
  opts.stdin_data = call.config.dump();
  opts.env = std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  opts.extra_env = {{"CNI_COMMAND", command},
                    {"CNI_CONTAINERID", call.container_id},
                    {"CNI_NETNS", call.container_netns},
                    {"CNI_IFNAME", call.ifname},
                    {"CNI_PATH", CniPluginDir()}};
  core::RunResult out;
  XB_TRY(RunInNetns(call.network_netns, [&]() -> Status {
    XB_ASSIGN(out, core::RunProcess({plugin}, opts));
    return core::Ok();
  }));
  if (out.success()) return std::move(out.out);
  // A CNI error object: {"code": N, "msg": "...", "details": "..."}.
  Json err = Json::parse(out.out, nullptr, false);
  std::string msg = err.is_object() ? core::GetOptString(err, "msg").value_or("") : "";
  std::string details = err.is_object() ? core::GetOptString(err, "details").value_or("") : "";
  if (msg.empty()) msg = core::Trim(out.err.empty() ? out.out : out.err);
  if (!details.empty()) msg += " (" + details + ")";
  return Error(Code::kInternal, "CNI " + type + " " + command + ": " + msg);
}

}  // namespace

std::string CniPluginDir() {
  const char* dir = std::getenv("XBUILD_CNI_PATH");
  return dir && *dir ? dir : "/usr/lib/cni";
}

Result<CniResult> CniAdd(const CniCall& call) {
  XB_ASSIGN(std::string out, Exec("ADD", call));
  CniResult r;
  r.raw = Json::parse(out, nullptr, false);
  if (!r.raw.is_object()) return Error(Code::kInternal, "CNI ADD: unreadable result: " + out);
  // The container's interface is the one with a sandbox; its address names it by index.
  const Json& ifaces = r.raw.value("interfaces", Json::array());
  for (const Json& ip : r.raw.value("ips", Json::array())) {
    int idx = ip.value("interface", -1);
    if (idx >= 0 && idx < static_cast<int>(ifaces.size()) && !ifaces[idx].contains("sandbox")) continue;
    std::string cidr = core::GetOptString(ip, "address").value_or("");
    size_t slash = cidr.find('/');
    if (slash == std::string::npos || cidr.find(':') != std::string::npos) continue;  // IPv4 only
    r.ip = cidr.substr(0, slash);
    r.prefix_len = std::atoi(cidr.c_str() + slash + 1);
    r.gateway = core::GetOptString(ip, "gateway").value_or("");
    if (idx >= 0 && idx < static_cast<int>(ifaces.size())) r.mac = core::GetOptString(ifaces[idx], "mac").value_or("");
    break;
  }
  if (r.ip.empty()) return Error(Code::kInternal, "CNI ADD gave the container no IPv4 address: " + out);
  return r;
}

Status CniDel(const CniCall& call) {
  // Without the plugin, ADD made nothing that DEL would have to undo.
  std::string type = core::GetOptString(call.config, "type").value_or("");
  if (::access(core::JoinPath(CniPluginDir(), type).c_str(), X_OK) != 0) return core::Ok();
  auto out = Exec("DEL", call);
  if (!out.ok()) return std::move(out).error();
  return core::Ok();
}

}  // namespace xbuild::exec
