#include "exec/cdi.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <regex>

#include "core/fs.h"
#include "core/strings.h"
#include "core/subprocess.h"

namespace xbuild::exec {

using core::Code;
using core::Error;
using core::Json;
using core::Result;
using core::Status;

namespace {

constexpr size_t kMaxSpecSize = 4 << 20;
constexpr int kMaxYamlDepth = 64;

// ---- YAML (libyaml's event stream) to JSON ----

class YamlReader {
 public:
  YamlReader(std::string_view text, std::string what) : what_(std::move(what)) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  }
  ~YamlReader() {
    if (has_event_) yaml_event_delete(&event_);
    yaml_parser_delete(&parser_);
  }
  YamlReader(const YamlReader&) = delete;
  YamlReader& operator=(const YamlReader&) = delete;

  Result<Json> Document() {
    XB_TRY(Expect(YAML_STREAM_START_EVENT));
    XB_TRY(Next());
    if (event_.type == YAML_STREAM_END_EVENT) return Json::object();  // empty file
    if (event_.type != YAML_DOCUMENT_START_EVENT) return Bad("a document");
    XB_TRY(Next());
    return Node(0);
  }

 private:
  Status Next() {
    if (has_event_) yaml_event_delete(&event_);
    has_event_ = false;
    if (!yaml_parser_parse(&parser_, &event_)) {
      return Error(Code::kInvalidArgument, what_ + ": YAML line " + std::to_string(parser_.problem_mark.line + 1) +
                                               ": " + (parser_.problem ? parser_.problem : "syntax error"));
    }
    has_event_ = true;
    return core::Ok();
  }
  Status Expect(yaml_event_type_t type) {
    XB_TRY(Next());
    if (event_.type != type) return Bad("another YAML element");
    return core::Ok();
  }
  Error Bad(const std::string& want) const {
    return Error(Code::kInvalidArgument, what_ + ": YAML line " + std::to_string(event_.start_mark.line + 1) +
                                             ": expected " + want);
  }

  static Json Scalar(const yaml_event_t& e) {
    std::string v(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
    if (!e.data.scalar.plain_implicit) return v;  // quoted: always a string
    if (v == "true" || v == "True") return true;
    if (v == "false" || v == "False") return false;
    if (v == "null" || v == "~" || v.empty()) return nullptr;
    static const std::regex kInt("[-+]?(0|[1-9][0-9]*)");
    static const std::regex kOctal("0o?[0-7]+");
    if (std::regex_match(v, kInt)) return std::stoll(v);
    if (std::regex_match(v, kOctal)) return std::stoll(v.substr(v[1] == 'o' ? 2 : 1), nullptr, 8);
    return v;
  }

  // The node whose first event is the current one; leaves its last event current.
  Result<Json> Node(int depth) {
    if (depth > kMaxYamlDepth) return Bad("less nesting");
    switch (event_.type) {
      case YAML_SCALAR_EVENT:
        return Scalar(event_);
      case YAML_SEQUENCE_START_EVENT: {
        Json arr = Json::array();
        for (;;) {
          XB_TRY(Next());
          if (event_.type == YAML_SEQUENCE_END_EVENT) return arr;
          XB_ASSIGN(Json item, Node(depth + 1));
          arr.push_back(std::move(item));
        }
      }
      case YAML_MAPPING_START_EVENT: {
        Json obj = Json::object();
        for (;;) {
          XB_TRY(Next());
          if (event_.type == YAML_MAPPING_END_EVENT) return obj;
          if (event_.type != YAML_SCALAR_EVENT) return Bad("a scalar mapping key");
          std::string key(reinterpret_cast<const char*>(event_.data.scalar.value), event_.data.scalar.length);
          XB_TRY(Next());
          XB_ASSIGN(Json value, Node(depth + 1));
          obj[key] = std::move(value);
        }
      }
      case YAML_ALIAS_EVENT:
        return Bad("no aliases (not supported)");
      default:
        return Bad("a value");
    }
  }

  std::string what_;
  yaml_parser_t parser_;
  yaml_event_t event_{};
  bool has_event_ = false;
};

// ---- spec fields ----

Result<std::optional<uint32_t>> OptU32(const Json& j, const char* key, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<uint32_t>();
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > UINT32_MAX) {
    return Error(Code::kInvalidArgument, what + ": " + key + " must be a non-negative integer");
  }
  return std::optional<uint32_t>(it->get<uint32_t>());
}

Result<CdiEdits> ParseEdits(const Json& j, const std::string& what) {
  CdiEdits e;
  if (j.is_null()) return e;
  if (!j.is_object()) return Error(Code::kInvalidArgument, what + ": containerEdits must be an object");
  e.env = core::GetStringList(j, "env");
  for (const Json& d : j.value("deviceNodes", Json::array())) {
    CdiDeviceNode n;
    XB_ASSIGN_CTX(n.path, core::GetString(d, "path"), what + ": deviceNodes");
    n.host_path = core::GetOptString(d, "hostPath").value_or("");
    n.type = core::GetOptString(d, "type").value_or("");
    n.permissions = core::GetOptString(d, "permissions").value_or("");
    if (d.contains("major") && d["major"].is_number_integer()) n.major = d["major"].get<int64_t>();
    if (d.contains("minor") && d["minor"].is_number_integer()) n.minor = d["minor"].get<int64_t>();
    XB_ASSIGN(n.file_mode, OptU32(d, "fileMode", what + ": device " + n.path));
    XB_ASSIGN(n.uid, OptU32(d, "uid", what + ": device " + n.path));
    XB_ASSIGN(n.gid, OptU32(d, "gid", what + ": device " + n.path));
    if (!n.path.starts_with('/')) return Error(Code::kInvalidArgument, what + ": device path " + n.path + " is not absolute");
    e.device_nodes.push_back(std::move(n));
  }
  for (const Json& m : j.value("mounts", Json::array())) {
    CdiMount mt;
    XB_ASSIGN_CTX(mt.host_path, core::GetString(m, "hostPath"), what + ": mounts");
    XB_ASSIGN_CTX(mt.container_path, core::GetString(m, "containerPath"), what + ": mounts");
    mt.type = core::GetOptString(m, "type").value_or("");
    mt.options = core::GetStringList(m, "options");
    if (!mt.container_path.starts_with('/')) {
      return Error(Code::kInvalidArgument, what + ": mount containerPath " + mt.container_path + " is not absolute");
    }
    e.mounts.push_back(std::move(mt));
  }
  static const std::vector<std::string> kHookNames = {"prestart",        "createRuntime",  "createContainer",
                                                      "startContainer", "poststart",      "poststop"};
  for (const Json& h : j.value("hooks", Json::array())) {
    CdiHook hk;
    XB_ASSIGN_CTX(hk.hook_name, core::GetString(h, "hookName"), what + ": hooks");
    XB_ASSIGN_CTX(hk.path, core::GetString(h, "path"), what + ": hooks");
    if (std::find(kHookNames.begin(), kHookNames.end(), hk.hook_name) == kHookNames.end()) {
      return Error(Code::kInvalidArgument, what + ": unknown hookName " + hk.hook_name);
    }
    hk.args = core::GetStringList(h, "args");
    hk.env = core::GetStringList(h, "env");
    if (h.contains("timeout") && h["timeout"].is_number_integer()) hk.timeout = h["timeout"].get<int64_t>();
    e.hooks.push_back(std::move(hk));
  }
  return e;
}

bool ValidKind(std::string_view kind) {
  static const std::regex kKind("[A-Za-z0-9][A-Za-z0-9.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*");
  return std::regex_match(kind.begin(), kind.end(), kKind);
}

// The names in `dir`, sorted; none when it cannot be read.
std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> SpecFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const std::string& name : DirEntries(dir)) {
    if (name.ends_with(".json") || name.ends_with(".yaml") || name.ends_with(".yml")) {
      files.push_back(core::JoinPath(dir, name));
    }
  }
  return files;
}

// ---- NVIDIA discovery ----

// "GPU UUID: GPU-..." and "Device Minor: N" of each /proc/driver/nvidia/gpus/<bus>/information.
std::map<int, std::string> NvidiaUuidsByMinor(const std::string& host_root) {
  std::map<int, std::string> out;
  std::string base = core::JoinPath(host_root, "proc/driver/nvidia/gpus");
  for (const std::string& bus : DirEntries(base)) {
    auto info = core::ReadFile(core::JoinPath(core::JoinPath(base, bus), "information"), 1 << 16);
    if (!info.ok()) continue;
    std::string uuid;
    int minor = -1;
    for (const std::string& line : core::Split(*info, '\n')) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = core::Trim(line.substr(0, colon)), value = core::Trim(line.substr(colon + 1));
      if (key == "GPU UUID") uuid = value;
      if (key == "Device Minor") minor = std::atoi(value.c_str());
    }
    if (minor >= 0 && !uuid.empty()) out[minor] = uuid;
  }
  return out;
}

CdiDeviceNode NodeAt(const std::string& host_root, const std::string& dev) {
  CdiDeviceNode n;
  n.path = dev;
  n.host_path = core::JoinPath(host_root, dev.substr(1));
  return n;
}

CdiMount ReadOnlyBind(const std::string& host_path, const std::string& container_path) {
  CdiMount m;
  m.host_path = host_path;
  m.container_path = container_path;
  m.type = "bind";
  m.options = {"ro", "nosuid", "nodev", "rbind", "rprivate"};
  return m;
}

bool IsDriverLibrary(std::string_view name) {
  static const std::vector<std::string_view> kPrefixes = {
      "libcuda.so",          "libnvidia-ml.so",  "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so",
      "libcudadebugger.so",  "libnvidia-opencl.so", "libnvidia-gpucomp.so",     "libnvidia-allocator.so",
      "libnvidia-cfg.so",
  };
  return std::any_of(kPrefixes.begin(), kPrefixes.end(), [&](std::string_view p) { return name.starts_with(p); });
}

// Driver libraries: ldconfig's cache, else the usual directory.
std::vector<std::string> DriverLibraries(const std::string& host_root) {
  std::vector<std::string> libs;
  if (host_root == "/") {
    auto r = core::RunProcess({"ldconfig", "-p"});
    if (r.ok() && r->success()) {
      for (const std::string& line : core::Split(r->out, '\n')) {
        size_t arrow = line.find("=> ");
        std::string name = core::Trim(line.substr(0, line.find(' ', line.find_first_not_of(" \t"))));
        if (arrow == std::string::npos || !IsDriverLibrary(name) || line.find("x86-64") == std::string::npos) continue;
        libs.push_back(core::Trim(line.substr(arrow + 3)));
      }
    }
  }
  if (libs.empty()) {
    std::string dir = core::JoinPath(host_root, "usr/lib/x86_64-linux-gnu");
    for (const std::string& name : DirEntries(dir)) {
      if (IsDriverLibrary(name)) libs.push_back(core::JoinPath(dir, name));
    }
  }
  // The files the names point to as well, so a link in the container finds its target.
  std::vector<std::string> all = libs;
  for (const std::string& lib : libs) {
    char buf[4096];
    if (::realpath(lib.c_str(), buf)) all.emplace_back(buf);
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

std::string HostToContainer(const std::string& host_root, const std::string& path) {
  if (host_root == "/" || !path.starts_with(host_root)) return path;
  return "/" + path.substr(host_root.size() + (host_root.ends_with('/') ? 0 : 1));
}

std::string JoinNames(const std::map<std::string, CdiEdits>& devices) {
  std::string out;
  for (const auto& [name, _] : devices) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

void CdiEdits::Append(const CdiEdits& o) {
  env.insert(env.end(), o.env.begin(), o.env.end());
  device_nodes.insert(device_nodes.end(), o.device_nodes.begin(), o.device_nodes.end());
  mounts.insert(mounts.end(), o.mounts.begin(), o.mounts.end());
  hooks.insert(hooks.end(), o.hooks.begin(), o.hooks.end());
}

std::vector<std::string> DefaultCdiSpecDirs() { return {"/etc/cdi", "/var/run/cdi"}; }

std::vector<std::string> CdiSpecDirs(const core::Config& config) {
  if (config.raw.is_object() && config.raw.contains("cdi-spec-dirs")) return core::GetStringList(config.raw, "cdi-spec-dirs");
  return DefaultCdiSpecDirs();
}

Result<CdiEdits> ResolveCdiDevices(const std::vector<std::string>& dirs, const std::vector<std::string>& names) {
  if (names.empty()) return CdiEdits();
  XB_ASSIGN(CdiRegistry reg, CdiRegistry::Load(dirs));
  return reg.Resolve(names);
}

Result<CdiEdits> ResolveRunDevices(const std::vector<std::string>& dirs, const std::vector<std::string>& values) {
  CdiEdits out;
  if (values.empty()) return out;
  XB_ASSIGN(CdiRegistry reg, CdiRegistry::Load(dirs));
  for (const std::string& v : values) {
    std::vector<std::string> parts = core::Split(v, ',');
    bool required = true;
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i] == "required" || parts[i] == "required=true") {
        required = true;
      } else if (parts[i] == "required=false") {
        required = false;
      } else {
        return Error(Code::kInvalidArgument, "RUN --device=" + v + ": unknown option " + parts[i]);
      }
    }
    auto edits = reg.Resolve({parts[0]});
    if (edits.ok()) {
      out.Append(*edits);
    } else if (required) {
      return std::move(edits).error().Context("RUN --device=" + v);
    }
  }
  return out;
}

Result<Json> YamlToJson(std::string_view text, const std::string& what) {
  YamlReader reader(text, what);
  return reader.Document();
}

Result<CdiSpec> ParseCdiSpec(std::string_view text, bool yaml, const std::string& what) {
  Json j;
  if (yaml) {
    XB_ASSIGN(j, YamlToJson(text, what));
  } else {
    XB_ASSIGN(j, core::ParseJson(text, what, kMaxSpecSize));
  }
  if (!j.is_object()) return Error(Code::kInvalidArgument, what + ": a CDI spec must be an object");
  CdiSpec spec;
  spec.source = what;
  XB_ASSIGN_CTX(std::string version, core::GetString(j, "cdiVersion"), what);
  XB_ASSIGN_CTX(spec.kind, core::GetString(j, "kind"), what);
  if (!ValidKind(spec.kind)) {
    return Error(Code::kInvalidArgument, what + ": invalid kind \"" + spec.kind + "\" (want vendor/class)");
  }
  XB_ASSIGN(spec.edits, ParseEdits(j.value("containerEdits", Json()), what));
  for (const Json& d : j.value("devices", Json::array())) {
    XB_ASSIGN_CTX(std::string name, core::GetString(d, "name"), what + ": devices");
    if (name.empty() || name == "all" || name.find_first_of("=/ ") != std::string::npos) {
      return Error(Code::kInvalidArgument, what + ": invalid device name \"" + name + "\"");
    }
    XB_ASSIGN(spec.devices[name], ParseEdits(d.value("containerEdits", Json()), what + ": device " + name));
  }
  return spec;
}

Result<CdiSpec> DiscoverNvidia(const std::string& host_root) {
  CdiSpec spec;
  spec.kind = kNvidiaGpuKind;
  std::map<int, std::string> uuids = NvidiaUuidsByMinor(host_root);
  static const std::regex kGpuNode("nvidia([0-9]+)");
  std::smatch m;
  for (const std::string& name : DirEntries(core::JoinPath(host_root, "dev"))) {
    if (!std::regex_match(name, m, kGpuNode)) continue;
    int index = std::stoi(m[1]);
    CdiEdits e;
    e.device_nodes.push_back(NodeAt(host_root, "/dev/" + name));
    spec.devices[std::to_string(index)] = e;
    if (auto it = uuids.find(index); it != uuids.end()) spec.devices[it->second] = e;
  }
  if (spec.devices.empty()) {
    return Error(Code::kNotFound, "could not select device driver \"\" with capabilities: [[gpu]]: no NVIDIA GPU "
                                  "on this host (no /dev/nvidia[0-9]* device and no CDI spec of kind nvidia.com/gpu)");
  }
  for (const char* ctl : {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"}) {
    std::string dev = std::string("/dev/") + ctl;
    if (core::Exists(core::JoinPath(host_root, dev.substr(1)))) spec.edits.device_nodes.push_back(NodeAt(host_root, dev));
  }
  for (const char* bin : {"nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control",
                          "nvidia-cuda-mps-server"}) {
    for (const char* dir : {"usr/bin", "usr/local/bin", "bin"}) {
      std::string path = core::JoinPath(core::JoinPath(host_root, dir), bin);
      if (!core::Exists(path)) continue;
      spec.edits.mounts.push_back(ReadOnlyBind(path, "/usr/bin/" + std::string(bin)));
      break;
    }
  }
  for (const std::string& lib : DriverLibraries(host_root)) {
    spec.edits.mounts.push_back(ReadOnlyBind(lib, HostToContainer(host_root, lib)));
  }
  spec.edits.env.push_back("NVIDIA_VISIBLE_DEVICES=void");
  return spec;
}

void CdiRegistry::Add(CdiSpec spec) {
  CdiSpec& have = specs_[spec.kind];
  have.kind = spec.kind;
  have.source = spec.source;
  have.edits.Append(spec.edits);
  for (auto& [name, edits] : spec.devices) have.devices[name] = std::move(edits);
}

Result<CdiRegistry> CdiRegistry::Load(const std::vector<std::string>& dirs) {
  CdiRegistry reg;
  for (const std::string& dir : dirs) {
    for (const std::string& file : SpecFiles(dir)) {
      XB_ASSIGN(std::string text, core::ReadFile(file, kMaxSpecSize));
      XB_ASSIGN(CdiSpec spec, ParseCdiSpec(text, !file.ends_with(".json"), "CDI spec " + file));
      reg.Add(std::move(spec));
    }
  }
  return reg;
}

Result<CdiEdits> CdiRegistry::Resolve(const std::vector<std::string>& names) {
  CdiEdits out;
  std::vector<std::string> kinds_done;
  for (const std::string& name : names) {
    if (!IsCdiName(name)) {
      return Error(Code::kInvalidArgument, "invalid CDI device name \"" + name + "\": want vendor/class=name");
    }
    size_t eq = name.find('=');
    std::string kind = name.substr(0, eq), dev = name.substr(eq + 1);
    auto it = specs_.find(kind);
    if (it == specs_.end() && kind == kNvidiaGpuKind) {
      XB_ASSIGN(CdiSpec found, DiscoverNvidia());
      it = specs_.emplace(kind, std::move(found)).first;
    }
    if (it == specs_.end()) {
      return Error(Code::kNotFound, "unresolvable CDI devices " + name + ": no CDI spec of kind " + kind);
    }
    const CdiSpec& spec = it->second;
    if (std::find(kinds_done.begin(), kinds_done.end(), kind) == kinds_done.end()) {
      out.Append(spec.edits);
      kinds_done.push_back(kind);
    }
    if (dev == "all") {
      for (const auto& [_, edits] : spec.devices) out.Append(edits);
      continue;
    }
    auto d = spec.devices.find(dev);
    if (d == spec.devices.end()) {
      return Error(Code::kNotFound, "unresolvable CDI devices " + name + " (known devices of " + kind + ": " +
                                        JoinNames(spec.devices) + ")");
    }
    out.Append(d->second);
  }
  // A device named twice (gpu=0 and gpu=all, or by index and uuid) is added once.
  std::vector<CdiDeviceNode> nodes;
  for (CdiDeviceNode& n : out.device_nodes) {
    bool dup = std::any_of(nodes.begin(), nodes.end(), [&](const CdiDeviceNode& o) { return o.path == n.path; });
    if (!dup) nodes.push_back(std::move(n));
  }
  out.device_nodes = std::move(nodes);
  return out;
}

bool IsCdiName(std::string_view name) {
  size_t eq = name.find('=');
  if (eq == std::string_view::npos || eq + 1 == name.size()) return false;
  if (!ValidKind(name.substr(0, eq))) return false;
  std::string_view dev = name.substr(eq + 1);
  return std::all_of(dev.begin(), dev.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == ':';
  });
}

Result<std::vector<std::string>> GpusToCdiNames(const std::string& value_in) {
  std::string value = value_in;
  auto bad = [&](const std::string& why) {
    return Error(Code::kInvalidArgument, "invalid --gpus value \"" + value_in + "\": " + why);
  };
  // The CSV Docker reads: a field may be quoted ("device=0,2" keeps its comma).
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false;
  for (char c : value) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      fields.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (quoted) return bad("unbalanced quotes");
  fields.push_back(cur);
  std::vector<std::string> devices;
  bool all = false;
  int count = -1;
  for (const std::string& f : fields) {
    if (f == "all") {
      all = true;
    } else if (f.starts_with("device=")) {
      for (const std::string& d : core::Split(f.substr(7), ',')) {
        if (d.empty()) return bad("empty device");
        devices.push_back(d);
      }
    } else if (f.starts_with("count=")) {
      if (f == "count=all") {
        all = true;
      } else {
        count = std::atoi(f.c_str() + 6);
      }
    } else if (f.starts_with("driver=")) {
      if (f != "driver=nvidia") return bad("only the nvidia driver is known");
    } else if (f.starts_with("capabilities=") || f.starts_with("options=")) {
      // Every GPU capability comes with the device; nothing to select.
    } else if (!f.empty() && std::all_of(f.begin(), f.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      count = std::atoi(f.c_str());
    } else {
      return bad("unexpected \"" + f + "\"");
    }
  }
  std::vector<std::string> names;
  if (all || count < 0) {
    if (!devices.empty()) {
      for (const std::string& d : devices) names.push_back(std::string(kNvidiaGpuKind) + "=" + d);
      return names;
    }
    if (!all && count < 0) return bad("want all, a count or device=IDS");
    names.push_back(std::string(kNvidiaGpuKind) + "=all");
    return names;
  }
  if (!devices.empty()) return bad("count and device are exclusive");
  if (count == 0) return bad("a count must be positive");
  for (int i = 0; i < count; ++i) names.push_back(std::string(kNvidiaGpuKind) + "=" + std::to_string(i));
  return names;
}

Status ApplyCdiEdits(const CdiEdits& edits, Json& spec) {
  if (edits.empty()) return core::Ok();
  Json& env = spec["process"]["env"];
  for (const std::string& e : edits.env) {
    std::string key = e.substr(0, e.find('=') + 1);
    Json kept = Json::array();
    for (const Json& old : env) {
      if (!old.get<std::string>().starts_with(key)) kept.push_back(old);
    }
    kept.push_back(e);
    env = std::move(kept);
  }
  Json& linux = spec["linux"];
  if (!linux.contains("devices")) linux["devices"] = Json::array();
  Json& rules = linux["resources"]["devices"];
  if (rules.is_null()) rules = Json::array();
  for (const CdiDeviceNode& n : edits.device_nodes) {
    std::string host = n.host_path.empty() ? n.path : n.host_path;
    std::string type = n.type;
    int64_t major = n.major, minor = n.minor;
    if (type.empty() || major < 0 || minor < 0) {
      struct stat st;
      if (::stat(host.c_str(), &st) != 0) return core::SysError("CDI device node " + host);
      if (type.empty()) {
        type = S_ISCHR(st.st_mode) ? "c" : S_ISBLK(st.st_mode) ? "b" : S_ISFIFO(st.st_mode) ? "p" : "";
      }
      if (type.empty()) return Error(Code::kInvalidArgument, "CDI device node " + host + " is not a device");
      if (major < 0) major = gnu_dev_major(st.st_rdev);
      if (minor < 0) minor = gnu_dev_minor(st.st_rdev);
    }
    Json d = {{"path", n.path}, {"type", type}, {"major", major}, {"minor", minor}};
    if (n.file_mode) d["fileMode"] = *n.file_mode;
    if (n.uid) d["uid"] = *n.uid;
    if (n.gid) d["gid"] = *n.gid;
    Json kept = Json::array();
    for (const Json& old : linux["devices"]) {
      if (old.value("path", "") != n.path) kept.push_back(old);
    }
    kept.push_back(std::move(d));
    linux["devices"] = std::move(kept);
    if (type != "p") {
      rules.push_back({{"allow", true}, {"type", type}, {"major", major}, {"minor", minor},
                       {"access", n.permissions.empty() ? "rwm" : n.permissions}});
    }
  }
  for (const CdiMount& m : edits.mounts) {
    std::vector<std::string> options = m.options;
    std::string type = m.type.empty() ? "bind" : m.type;
    if (type == "bind" && std::find(options.begin(), options.end(), "bind") == options.end() &&
        std::find(options.begin(), options.end(), "rbind") == options.end()) {
      options.push_back("rbind");
    }
    spec["mounts"].push_back({{"destination", m.container_path}, {"type", type}, {"source", m.host_path}, {"options", options}});
  }
  for (const CdiHook& h : edits.hooks) {
    Json hook = {{"path", h.path}};
    if (!h.args.empty()) hook["args"] = h.args;
    if (!h.env.empty()) hook["env"] = h.env;
    if (h.timeout) hook["timeout"] = *h.timeout;
    spec["hooks"][h.hook_name].push_back(std::move(hook));
  }
  return core::Ok();
}

}  // namespace xbuild::exec
