#include "exec/host_options.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/fd.h"
#include "core/fs.h"
#include "core/strings.h"
#include "exec/spec.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Json;
using core::Result;
using core::Status;

namespace {

constexpr int64_t kCpuPeriod = 100000;  // microseconds, Docker's
constexpr int64_t kMinMemory = 6 * 1024 * 1024;
constexpr const char* kCgroupFs = "/sys/fs/cgroup";

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Json DeviceJson(const std::string& path, const struct stat& st) {
  return {{"path", path},
          {"type", S_ISBLK(st.st_mode) ? "b" : "c"},
          {"major", static_cast<int64_t>(major(st.st_rdev))},
          {"minor", static_cast<int64_t>(minor(st.st_rdev))},
          {"fileMode", st.st_mode & 0777},
          {"uid", st.st_uid},
          {"gid", st.st_gid}};
}

// Every device node under /dev, as Docker's --privileged gives them (not the ones a container
// has of its own: pts, shm, mqueue).
void HostDevices(const std::string& dir, Json& out) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    if (path == "/dev/pts" || path == "/dev/shm" || path == "/dev/mqueue" || path == "/dev/fd" ||
        path == "/dev/console" || path == "/dev/ptmx" || name.starts_with(".")) {
      continue;
    }
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      HostDevices(path, out);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      out.push_back(DeviceJson(path, st));
    }
  }
  ::closedir(d);
}

void DropReadOnly(Json& mounts, const std::string& dest) {
  for (Json& m : mounts) {
    if (m.value("destination", "") != dest || !m.contains("options")) continue;
    Json opts = Json::array();
    for (const Json& o : m["options"]) {
      if (o != "ro") opts.push_back(o);
    }
    m["options"] = opts;
  }
}

std::vector<std::string> CgroupParents(const std::string& id) {
  std::vector<std::string> out;
  std::string rel = "xbuild/" + id;
  if (core::Exists(core::JoinPath(kCgroupFs, "cgroup.controllers"))) {
    out.push_back(core::JoinPath(kCgroupFs, rel));  // unified (v2) host
    return out;
  }
  DIR* d = ::opendir(kCgroupFs);
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(core::JoinPath(core::JoinPath(kCgroupFs, name), rel));
  }
  ::closedir(d);
  return out;
}

int64_t CounterIn(const std::string& file, const std::string& key) {
  auto text = core::ReadFile(file, 1 << 16);
  if (!text.ok()) return 0;
  for (const std::string& line : core::Split(*text, '\n')) {
    if (line.starts_with(key + " ")) return std::strtoll(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return 0;
}

// cgroup v1 counts an OOM kill only in the cgroup itself, which runc has removed by now; the
// kernel's log still has the kill's line naming it ("oom-kill:...,oom_memcg=/xbuild/<id>/ctr").
bool KernelLogNamesOom(const std::string& id) {
  int fd = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  core::UniqueFd kmsg(fd);
  std::string needle = "oom_memcg=/xbuild/" + id + "/";
  char record[8192];
  for (;;) {
    ssize_t n = ::read(fd, record, sizeof record);
    if (n < 0 && (errno == EPIPE || errno == EINTR)) continue;  // EPIPE: overwritten, go on
    if (n <= 0) return false;
    if (std::string_view(record, static_cast<size_t>(n)).find(needle) != std::string_view::npos) return true;
  }
}

}  // namespace

Json HostOptionsToJson(const HostOptions& h) {
  Json devices = Json::array();
  for (const DeviceMapping& d : h.devices) {
    devices.push_back({{"host", d.host}, {"container", d.container}, {"permissions", d.permissions}});
  }
  return Json{{"memory", h.resources.memory},
              {"memory_swap", h.resources.memory_swap},
              {"nano_cpus", h.resources.nano_cpus},
              {"cpu_shares", h.resources.cpu_shares},
              {"pids_limit", h.resources.pids_limit},
              {"cap_add", h.cap_add},
              {"cap_drop", h.cap_drop},
              {"privileged", h.privileged},
              {"devices", devices},
              {"init", h.init},
              {"seccomp_unconfined", h.seccomp_unconfined},
              {"no_new_privileges", h.no_new_privileges}};
}

HostOptions HostOptionsFromJson(const Json& j) {
  HostOptions h;
  if (!j.is_object()) return h;
  h.resources.memory = j.value("memory", int64_t{0});
  h.resources.memory_swap = j.value("memory_swap", int64_t{0});
  h.resources.nano_cpus = j.value("nano_cpus", int64_t{0});
  h.resources.cpu_shares = j.value("cpu_shares", int64_t{0});
  h.resources.pids_limit = j.value("pids_limit", int64_t{0});
  h.cap_add = core::GetStringList(j, "cap_add");
  h.cap_drop = core::GetStringList(j, "cap_drop");
  h.privileged = j.value("privileged", false);
  if (j.contains("devices") && j["devices"].is_array()) {
    for (const Json& d : j["devices"]) {
      DeviceMapping m;
      m.host = core::GetOptString(d, "host").value_or("");
      m.container = core::GetOptString(d, "container").value_or(m.host);
      m.permissions = core::GetOptString(d, "permissions").value_or("rwm");
      h.devices.push_back(std::move(m));
    }
  }
  h.init = j.value("init", false);
  h.seccomp_unconfined = j.value("seccomp_unconfined", false);
  h.no_new_privileges = j.value("no_new_privileges", false);
  return h;
}

Result<std::string> NormalizeCapability(const std::string& name) {
  std::string up = core::ToUpper(name);
  if (up == "ALL") return up;
  if (!up.starts_with("CAP_")) up = "CAP_" + up;
  if (!Contains(AllCapabilities(), up)) {
    return Error(Code::kInvalidArgument, "unknown capability: \"" + name + "\"");
  }
  return up;
}

Result<std::vector<std::string>> EffectiveCapabilities(const HostOptions& h) {
  if (h.privileged) return AllCapabilities();
  std::vector<std::string> add, drop;
  for (const std::string& c : h.cap_add) {
    XB_ASSIGN(std::string n, NormalizeCapability(c));
    add.push_back(n);
  }
  for (const std::string& c : h.cap_drop) {
    XB_ASSIGN(std::string n, NormalizeCapability(c));
    drop.push_back(n);
  }
  std::vector<std::string> caps;
  if (!Contains(drop, "ALL")) {
    caps = Contains(add, "ALL") ? AllCapabilities() : DefaultCapabilities();
    std::erase_if(caps, [&](const std::string& c) { return Contains(drop, c) && !Contains(add, c); });
  } else if (Contains(add, "ALL")) {
    caps = AllCapabilities();
  }
  for (const std::string& c : add) {
    if (c != "ALL" && !Contains(caps, c)) caps.push_back(c);
  }
  return caps;
}

Result<Rlimit> ParseUlimit(const std::string& spec) {
  static const char* const kNames[] = {"as",     "core",   "cpu",    "data",       "fsize", "locks",
                                       "memlock", "msgqueue", "nice", "nofile",     "nproc", "rss",
                                       "rtprio", "rttime", "sigpending", "stack"};
  size_t eq = spec.find('=');
  std::string name = core::ToLower(spec.substr(0, eq));
  if (eq == std::string::npos || std::find(std::begin(kNames), std::end(kNames), name) == std::end(kNames)) {
    return Error(Code::kInvalidArgument, "invalid ulimit \"" + spec + "\": want NAME=SOFT[:HARD] with NAME one of nofile, nproc, core, ...");
  }
  std::string values = spec.substr(eq + 1);
  size_t colon = values.find(':');
  auto number = [&](const std::string& v) -> Result<uint64_t> {
    if (v == "-1" || v == "unlimited") return UINT64_MAX;
    if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      return Error(Code::kInvalidArgument, "invalid ulimit \"" + spec + "\": \"" + v + "\" is not a number");
    }
    return std::strtoull(v.c_str(), nullptr, 10);
  };
  Rlimit r;
  r.type = "RLIMIT_" + core::ToUpper(name);
  XB_ASSIGN(r.soft, number(values.substr(0, colon)));
  r.hard = r.soft;
  if (colon != std::string::npos) {
    XB_ASSIGN(r.hard, number(values.substr(colon + 1)));
  }
  if (r.soft > r.hard) {
    return Error(Code::kInvalidArgument, "invalid ulimit \"" + spec + "\": the soft limit is above the hard limit");
  }
  return r;
}

Result<int64_t> ParseCpus(const std::string& value) {
  char* end = nullptr;
  double cpus = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !(cpus >= 0) || std::isinf(cpus)) {
    return Error(Code::kInvalidArgument, "invalid argument \"" + value + "\" for \"--cpus\" flag: failed to parse " + value + " as a rational number");
  }
  if (cpus > static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN))) {
    return Error(Code::kInvalidArgument, "range of CPUs is from 0.01 to " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) +
                                             ".00, as there are only " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs available");
  }
  return static_cast<int64_t>(std::llround(cpus * 1e9));
}

Result<DeviceMapping> ParseDevice(const std::string& spec) {
  std::vector<std::string> parts = core::Split(spec, ':');
  DeviceMapping d;
  auto is_perms = [](const std::string& s) {
    return !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), [](char c) { return c == 'r' || c == 'w' || c == 'm'; });
  };
  if (parts.empty() || parts.size() > 3 || parts[0].empty()) {
    return Error(Code::kInvalidArgument, "invalid device specification: " + spec);
  }
  d.host = parts[0];
  d.container = d.host;
  if (parts.size() == 2) {
    if (is_perms(parts[1])) {
      d.permissions = parts[1];
    } else {
      d.container = parts[1];
    }
  } else if (parts.size() == 3) {
    d.container = parts[1];
    if (!is_perms(parts[2])) return Error(Code::kInvalidArgument, "invalid device mode: " + parts[2]);
    d.permissions = parts[2];
  }
  if (!d.host.starts_with('/') || !d.container.starts_with('/')) {
    return Error(Code::kInvalidArgument, "invalid device specification: " + spec + " (paths must be absolute)");
  }
  struct stat st;
  if (::stat(d.host.c_str(), &st) != 0) {
    return Error(Code::kInvalidArgument, "error gathering device information while adding custom device \"" + d.host + "\": no such file or directory");
  }
  if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Error(Code::kInvalidArgument, "error gathering device information while adding custom device \"" + d.host + "\": not a device node");
  }
  return d;
}

Status ValidateResources(const Resources& r) {
  if (r.memory > 0 && r.memory < kMinMemory) {
    return Error(Code::kInvalidArgument, "Minimum memory limit allowed is 6MB");
  }
  if (r.memory_swap != 0 && r.memory == 0) {
    return Error(Code::kInvalidArgument, "You should always set the Memory limit when using Memoryswap limit, see usage");
  }
  if (r.memory_swap > 0 && r.memory_swap < r.memory) {
    return Error(Code::kInvalidArgument, "Minimum memoryswap limit should be larger than memory limit, see usage");
  }
  return core::Ok();
}

Status ApplyHostOptions(const HostOptions& h, Json& spec) {
  Json& process = spec["process"];
  Json& linux = spec["linux"];
  XB_ASSIGN(std::vector<std::string> caps, EffectiveCapabilities(h));
  if (h.privileged || !h.cap_add.empty() || !h.cap_drop.empty()) {
    process["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  }
  if (h.privileged || h.seccomp_unconfined) linux.erase("seccomp");
  if (h.privileged) {
    process["noNewPrivileges"] = false;
    linux.erase("maskedPaths");
    linux.erase("readonlyPaths");
    DropReadOnly(spec["mounts"], "/sys");
    DropReadOnly(spec["mounts"], "/sys/fs/cgroup");
    linux["resources"]["devices"] = Json::array({{{"allow", true}, {"access", "rwm"}}});
    Json devices = Json::array();
    HostDevices("/dev", devices);
    // The spec's own devices (null, zero...) stay; the host's are added beside them.
    for (Json& d : devices) {
      bool have = std::any_of(linux["devices"].begin(), linux["devices"].end(),
                              [&](const Json& o) { return o.value("path", "") == d["path"]; });
      if (!have) linux["devices"].push_back(std::move(d));
    }
  }
  if (h.no_new_privileges) process["noNewPrivileges"] = true;
  for (const DeviceMapping& m : h.devices) {
    struct stat st;
    if (::stat(m.host.c_str(), &st) != 0) return core::SysError("device " + m.host);
    Json d = DeviceJson(m.container, st);
    Json kept = Json::array();
    for (const Json& o : linux["devices"]) {
      if (o.value("path", "") != m.container) kept.push_back(o);
    }
    kept.push_back(d);
    linux["devices"] = kept;
    linux["resources"]["devices"].push_back({{"allow", true},
                                             {"type", d["type"]},
                                             {"major", d["major"]},
                                             {"minor", d["minor"]},
                                             {"access", m.permissions}});
  }
  const Resources& r = h.resources;
  Json& res = linux["resources"];
  if (r.memory > 0) {
    res["memory"]["limit"] = r.memory;
    // Docker: no --memory-swap means as much swap as memory.
    res["memory"]["swap"] = r.memory_swap == 0 ? 2 * r.memory : r.memory_swap;
    linux["cgroupsPath"] = linux.value("cgroupsPath", "") + "/ctr";
  }
  if (r.nano_cpus > 0) {
    res["cpu"]["period"] = kCpuPeriod;
    res["cpu"]["quota"] = r.nano_cpus * kCpuPeriod / 1000000000;
  }
  if (r.cpu_shares > 0) res["cpu"]["shares"] = r.cpu_shares;
  if (r.pids_limit != 0) res["pids"]["limit"] = r.pids_limit;
  return core::Ok();
}

bool ReadOomKilled(const std::string& id) {
  for (const std::string& dir : CgroupParents(id)) {
    if (CounterIn(core::JoinPath(dir, "memory.oom_control"), "oom_kill") > 0) return true;
    if (CounterIn(core::JoinPath(dir, "memory.events"), "oom_kill") > 0) return true;
  }
  return KernelLogNamesOom(id);
}

void RemoveCgroupParent(const std::string& id) {
  for (const std::string& dir : CgroupParents(id)) {
    (void)::rmdir(core::JoinPath(dir, "ctr").c_str());  // runc's, should it be left
    (void)::rmdir(dir.c_str());
  }
}

std::string InitBinaryPath() {
  for (const char* p : {"/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/bin/tini", "/usr/local/bin/docker-init"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

}  // namespace xbuild::exec
