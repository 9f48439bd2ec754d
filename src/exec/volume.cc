#include "exec/volume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/digest.h"
#include "core/dir.h"
#include "core/fs.h"
#include "core/path.h"
#include "core/strings.h"
#include "exec/container.h"
#include "exec/copy_tree.h"
#include "exec/sandbox.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Json;
using core::Result;
using core::Status;

namespace {

constexpr const char* kMetaFile = "volume.json";
constexpr const char* kDataDir = "_data";
constexpr size_t kMaxMetaSize = 1 << 20;

bool EmptyDir(const std::string& dir) { return core::DirNames(dir).empty(); }

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const std::string& id : ids) out += (out.empty() ? "" : ", ") + id;
  return out;
}

Error BadSpec(const std::string& flag, const std::string& spec, const std::string& why) {
  return Error(Code::kInvalidArgument, "invalid " + flag + " \"" + spec + "\": " + why);
}

}  // namespace

Json MountSpecToJson(const MountSpec& m) {
  return Json{{"type", m.type},         {"source", m.source},         {"target", m.target},
              {"readonly", m.readonly}, {"tmpfs_size", m.tmpfs_size}, {"anonymous", m.anonymous}};
}

Result<MountSpec> MountSpecFromJson(const Json& j) {
  MountSpec m;
  XB_ASSIGN(m.type, core::GetString(j, "type"));
  XB_ASSIGN(m.target, core::GetString(j, "target"));
  m.source = core::GetOptString(j, "source").value_or("");
  m.readonly = j.value("readonly", false);
  m.tmpfs_size = j.value("tmpfs_size", int64_t{0});
  m.anonymous = j.value("anonymous", false);
  return m;
}

Json MountSpecsToJson(const std::vector<MountSpec>& mounts) {
  Json out = Json::array();
  for (const MountSpec& m : mounts) out.push_back(MountSpecToJson(m));
  return out;
}

Result<std::vector<MountSpec>> MountSpecsFromJson(const Json& j) {
  std::vector<MountSpec> out;
  if (!j.is_array()) return out;
  for (const Json& m : j) {
    XB_ASSIGN(MountSpec spec, MountSpecFromJson(m));
    out.push_back(std::move(spec));
  }
  return out;
}

Status ApplyContainerOptions(const std::string& root, const std::vector<MountSpec>& mounts, const HostOptions& host,
                             const std::string& rootfs, SandboxOptions& sandbox, ProcessSpec& process) {
  Volumes volumes(root);
  for (const MountSpec& m : mounts) {
    XB_ASSIGN(BindMount b, volumes.Resolve(m, rootfs));
    sandbox.mounts.push_back(std::move(b));
  }
  sandbox.host = host;
  if (host.init) {
    std::string init = InitBinaryPath();
    if (init.empty()) {
      return Error(Code::kNotFound, "--init: no docker-init binary (install Debian's tini package)");
    }
    BindMount b;
    b.source = init;
    b.destination = kInitPath;
    b.readonly = true;
    sandbox.mounts.push_back(std::move(b));
    process.args.insert(process.args.begin(), {kInitPath, "--"});
  }
  return core::Ok();
}

Volumes::Volumes(std::string root)
    : dir_(core::JoinPath(root, "volumes")), containers_dir_(ContainersDir(root)) {}

Status Volumes::ValidateName(const std::string& name) {
  bool ok = name.size() >= 2 && name.size() <= 255 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (ok) return core::Ok();
  return Error(Code::kInvalidArgument, "create " + name + ": \"" + name +
                                           "\" includes invalid characters for a local volume name, only "
                                           "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed");
}

std::string Volumes::DataDir(const std::string& name) const {
  return core::JoinPath(core::JoinPath(dir_, name), kDataDir);
}

Result<VolumeInfo> Volumes::Get(const std::string& name) const {
  if (!ValidateName(name).ok()) return Error(Code::kNotFound, "get " + name + ": no such volume");
  auto text = core::ReadFile(core::JoinPath(core::JoinPath(dir_, name), kMetaFile), kMaxMetaSize);
  if (!text.ok() && text.error().sys_errno() == ENOENT) return Error(Code::kNotFound, "get " + name + ": no such volume");
  if (!text.ok()) return std::move(text).error();
  XB_ASSIGN(Json j, core::ParseJson(*text, "volume " + name));
  VolumeInfo v;
  v.name = name;
  v.driver = core::GetOptString(j, "driver").value_or("local");
  v.labels = core::GetStringMap(j, "labels");
  v.created = core::GetOptString(j, "created").value_or("");
  v.anonymous = j.value("anonymous", false);
  v.mountpoint = DataDir(name);
  return v;
}

Result<VolumeInfo> Volumes::Create(const std::string& name_in, const std::map<std::string, std::string>& labels,
                                   bool anonymous) {
  std::string name = name_in;
  if (name.empty()) {
    XB_ASSIGN(name, core::RandomHex(32));
    anonymous = true;
  }
  XB_TRY(ValidateName(name));
  if (auto v = Get(name); v.ok() || v.error().code() != Code::kNotFound) return v;
  XB_TRY(core::MkdirAll(dir_, 0700));
  XB_ASSIGN(std::string tmp, core::MakeTempDir(dir_, "." + name + ".tmp-"));
  core::ScopeGuard undo([&] { (void)core::RemoveAll(tmp); });
  if (::mkdir(core::JoinPath(tmp, kDataDir).c_str(), 0755) != 0) return core::SysError("mkdir " + tmp);
  Json meta = {{"name", name}, {"driver", "local"}, {"labels", labels}, {"created", NowRfc3339Nano()},
               {"anonymous", anonymous}};
  XB_TRY(core::WriteFileAtomic(core::JoinPath(tmp, kMetaFile), meta.dump(2), 0600));
  if (::chmod(tmp.c_str(), 0701) != 0) return core::SysError("chmod " + tmp);
  if (::rename(tmp.c_str(), core::JoinPath(dir_, name).c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) return Get(name);  // made meanwhile by another process
    return core::SysError("create volume " + name);
  }
  return Get(name);
}

Result<std::vector<VolumeInfo>> Volumes::List() const {
  std::vector<VolumeInfo> out;
  for (const std::string& n : core::DirNames(dir_)) {
    if (n.starts_with('.')) continue;  // a creation in flight
    auto v = Get(n);
    if (!v.ok() && v.error().code() == Code::kNotFound) continue;
    if (!v.ok()) return std::move(v).error();
    out.push_back(std::move(v).value());
  }
  return out;
}

std::vector<std::string> Volumes::Users(const std::string& name) const {
  std::vector<std::string> ids;
  for (const std::string& id : core::DirNames(containers_dir_)) {
    auto text = core::ReadFile(core::JoinPath(core::JoinPath(containers_dir_, id), "config.json"), 1 << 20);
    if (!text.ok()) continue;
    Json j = Json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("mounts") || !j["mounts"].is_array()) continue;
    for (const Json& m : j["mounts"]) {
      auto spec = MountSpecFromJson(m);
      if (spec.ok() && spec->type == "volume" && spec->source == name) {
        ids.push_back(id);
        break;
      }
    }
  }
  return ids;
}

Status Volumes::Remove(const std::string& name, bool force) {
  auto v = Get(name);
  if (!v.ok()) {
    if (force && v.error().code() == Code::kNotFound) return core::Ok();
    return Error(v.error().code(), "remove " + name + ": " + (v.error().code() == Code::kNotFound ? "no such volume" : v.error().message()));
  }
  std::vector<std::string> users = Users(name);
  if (!users.empty()) {
    return Error(Code::kFailedPrecondition, "remove " + name + ": volume is in use - [" + JoinIds(users) + "]");
  }
  // Renamed out of the way first, so nobody finds a half-removed volume.
  std::string dir = core::JoinPath(dir_, name);
  XB_ASSIGN(std::string gone, core::RandomHex(8));
  std::string trash = core::JoinPath(dir_, ".rm-" + gone);
  if (::rename(dir.c_str(), trash.c_str()) != 0) return core::SysError("remove volume " + name);
  return core::RemoveAll(trash);
}

Result<std::vector<PrunedVolume>> Volumes::Prune(bool all) {
  std::vector<PrunedVolume> out;
  XB_ASSIGN(std::vector<VolumeInfo> list, List());
  for (const VolumeInfo& v : list) {
    if ((!all && !v.anonymous) || !Users(v.name).empty()) continue;
    uint64_t bytes = core::DiskUsage(v.mountpoint);
    Status s = Remove(v.name, true);
    if (!s.ok() && s.error().code() == Code::kFailedPrecondition) continue;  // taken meanwhile
    XB_TRY(s);
    out.push_back({v.name, bytes});
  }
  return out;
}

Result<std::vector<VolumeUsage>> Volumes::Usage() const {
  std::vector<VolumeUsage> out;
  XB_ASSIGN(std::vector<VolumeInfo> list, List());
  for (const VolumeInfo& v : list) {
    out.push_back({v.name, core::DiskUsage(v.mountpoint), static_cast<int>(Users(v.name).size()), v.anonymous});
  }
  return out;
}

Result<BindMount> Volumes::Resolve(const MountSpec& m, const std::string& rootfs) {
  BindMount b;
  b.destination = m.target;
  b.readonly = m.readonly;
  if (m.type == "tmpfs") {
    b.tmpfs = true;
    b.tmpfs_size = m.tmpfs_size;
    return b;
  }
  if (m.type == "bind") {
    struct stat st;
    if (::stat(m.source.c_str(), &st) != 0) {
      return Error(Code::kInvalidArgument, "invalid mount config for type \"bind\": bind source path does not exist: " + m.source);
    }
    b.source = m.source;
    return b;
  }
  XB_ASSIGN(VolumeInfo v, Create(m.source, {}, m.anonymous));
  b.source = v.mountpoint;
  if (!EmptyDir(v.mountpoint) || rootfs.empty()) return b;
  // Docker's copy-up: a new (empty) volume starts with what the image has at the target.
  XB_ASSIGN(core::UniqueFd root_fd, core::Open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto src = core::OpenInRoot(root_fd.get(), m.target, {.flags = O_RDONLY | O_DIRECTORY});
  if (!src.ok()) return b;  // nothing there (or not a directory): the volume stays empty
  XB_ASSIGN(core::UniqueFd dst, core::Open(v.mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  XB_TRY_CTX(CopyDirContents(src->get(), dst.get()), "copy " + m.target + " into volume " + v.name);
  struct stat st;
  if (::fstat(src->get(), &st) == 0) {
    (void)::fchown(dst.get(), st.st_uid, st.st_gid);
    (void)::fchmod(dst.get(), st.st_mode & 07777);
  }
  return b;
}

Status Volumes::RemoveAnonymous(const std::vector<MountSpec>& mounts) {
  Status first;
  for (const MountSpec& m : mounts) {
    if (m.type != "volume" || !m.anonymous) continue;
    Status s = Remove(m.source, true);
    if (!s.ok() && s.error().code() != Code::kFailedPrecondition && first.ok()) first = s;
  }
  return first;
}

Result<int64_t> ParseRamSize(const std::string& value) {
  std::string v = core::Trim(value);
  size_t i = 0;
  while (i < v.size() && (std::isdigit(static_cast<unsigned char>(v[i])) || v[i] == '.')) ++i;
  std::string num = v.substr(0, i), unit = v.substr(i);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.size() == 2 && unit[1] == 'b') unit.pop_back();  // "mb", "gb"
  double mult = unit.empty() || unit == "b" ? 1 : unit == "k" ? 1024.0 : unit == "m" ? 1048576.0
               : unit == "g" ? 1073741824.0 : unit == "t" ? 1099511627776.0 : -1;
  char* end = nullptr;
  double n = num.empty() ? -1 : std::strtod(num.c_str(), &end);
  if (mult < 0 || n < 0 || (end && *end != '\0')) {
    return Error(Code::kInvalidArgument, "invalid size: '" + value + "'");
  }
  return static_cast<int64_t>(n * mult);
}

Result<MountSpec> ParseVolumeFlag(const std::string& spec) {
  std::vector<std::string> parts = core::Split(spec, ':');
  MountSpec m;
  if (parts.size() == 1) {
    m.type = "volume";
    m.anonymous = true;
    m.target = parts[0];
  } else if (parts.size() == 2 || parts.size() == 3) {
    m.source = parts[0];
    m.target = parts[1];
    m.type = m.source.starts_with('/') ? "bind" : "volume";
    if (parts.size() == 3) {
      for (const std::string& opt : core::Split(parts[2], ',')) {
        if (opt == "ro") {
          m.readonly = true;
        } else if (opt == "rw") {
          m.readonly = false;
        } else if (opt != "z" && opt != "Z" && opt != "nocopy") {
          return BadSpec("volume specification", spec, "unknown option " + opt);
        }
      }
    }
  } else {
    return BadSpec("volume specification", spec, "want [SOURCE:]TARGET[:ro|rw]");
  }
  if (m.source.empty() && !m.anonymous) return BadSpec("volume specification", spec, "empty source");
  if (!m.target.starts_with('/')) {
    return BadSpec("volume specification", spec, "invalid mount config: mount path must be absolute");
  }
  if (m.type == "volume" && !m.anonymous) XB_TRY(Volumes::ValidateName(m.source));
  m.target = core::CleanPath(m.target);
  if (m.target == "/") return BadSpec("volume specification", spec, "invalid mount config: destination can't be '/'");
  return m;
}

Result<MountSpec> ParseMountFlag(const std::string& spec) {
  MountSpec m;
  m.type = "volume";
  for (const std::string& field : core::Split(spec, ',')) {
    size_t eq = field.find('=');
    std::string key = core::Trim(field.substr(0, eq));
    std::string val = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (key == "type") {
      if (val != "bind" && val != "volume" && val != "tmpfs") return BadSpec("--mount", spec, "unsupported type \"" + val + "\"");
      m.type = val;
    } else if (key == "source" || key == "src") {
      m.source = val;
    } else if (key == "target" || key == "dst" || key == "destination") {
      m.target = val;
    } else if (key == "readonly" || key == "ro") {
      if (eq != std::string::npos && val != "true" && val != "1" && val != "false" && val != "0") {
        return BadSpec("--mount", spec, "invalid value for " + key + ": " + val);
      }
      m.readonly = eq == std::string::npos || val == "true" || val == "1";
    } else if (key == "tmpfs-size") {
      XB_ASSIGN(m.tmpfs_size, ParseRamSize(val));
    } else if (key == "volume-nocopy" || key == "bind-propagation" || key == "consistency" || key == "tmpfs-mode") {
      // accepted, not acted on
    } else {
      return BadSpec("--mount", spec, "unexpected key '" + key + "'");
    }
  }
  if (m.target.empty()) return BadSpec("--mount", spec, "target is required");
  if (!m.target.starts_with('/')) return BadSpec("--mount", spec, "mount path must be absolute: " + m.target);
  m.target = core::CleanPath(m.target);
  if (m.type == "bind" && (m.source.empty() || !m.source.starts_with('/'))) {
    return BadSpec("--mount", spec, "bind source must be an absolute host path: \"" + m.source + "\"");
  }
  if (m.type == "tmpfs" && !m.source.empty()) return BadSpec("--mount", spec, "tmpfs mounts take no source");
  if (m.type == "volume" && m.source.empty()) m.anonymous = true;
  if (m.type == "volume" && !m.anonymous) XB_TRY(Volumes::ValidateName(m.source));
  return m;
}

Result<MountSpec> ParseTmpfsFlag(const std::string& spec) {
  MountSpec m;
  m.type = "tmpfs";
  size_t colon = spec.find(':');
  m.target = spec.substr(0, colon);
  if (!m.target.starts_with('/')) return BadSpec("--tmpfs", spec, "mount path must be absolute");
  m.target = core::CleanPath(m.target);
  if (colon != std::string::npos) {
    for (const std::string& opt : core::Split(spec.substr(colon + 1), ',')) {
      if (opt.starts_with("size=")) {
        XB_ASSIGN(m.tmpfs_size, ParseRamSize(opt.substr(5)));
      } else if (opt == "ro") {
        m.readonly = true;
      }
    }
  }
  return m;
}

core::OrderedJson MountInspectJson(const MountSpec& m, const std::string& root) {
  core::OrderedJson j;
  j["Type"] = m.type;
  if (m.type == "volume") j["Name"] = m.source;
  j["Source"] = m.type == "volume" ? Volumes(root).DataDir(m.source) : m.source;
  j["Destination"] = m.target;
  if (m.type == "volume") j["Driver"] = "local";
  j["Mode"] = m.type == "bind" ? (m.readonly ? "ro" : "") : m.type == "volume" ? "z" : "";
  j["RW"] = !m.readonly;
  j["Propagation"] = m.type == "bind" ? "rprivate" : "";
  return j;
}

}  // namespace xbuild::exec
