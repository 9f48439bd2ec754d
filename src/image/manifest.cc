#include "image/manifest.h"

#include <sys/utsname.h>

namespace xbuild::image {

using core::Code;
using core::Error;
using core::Json;
using core::OrderedJson;

std::string Platform::String() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Result<Platform> ParsePlatform(std::string_view text) {
  Platform p;
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find('/', i);
    if (j == std::string_view::npos) j = text.size();
    parts.emplace_back(text.substr(i, j - i));
    i = j + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return Error(Code::kInvalidArgument,
                 "invalid platform \"" + std::string(text) + "\": want os/arch[/variant]");
  }
  p.os = parts[0];
  p.architecture = parts[1];
  if (p.architecture == "x86_64" || p.architecture == "x86-64") p.architecture = "amd64";
  if (p.architecture == "aarch64") p.architecture = "arm64";
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

Platform HostPlatform() {
  Platform p;
  p.os = "linux";
  struct utsname u;
  std::string m = ::uname(&u) == 0 ? u.machine : "x86_64";
  if (m == "x86_64") p.architecture = "amd64";
  else if (m == "aarch64") p.architecture = "arm64";
  else if (m.starts_with("arm")) { p.architecture = "arm"; p.variant = "v7"; }
  else p.architecture = m;
  return p;
}

namespace {

OrderedJson MapToJson(const std::map<std::string, std::string>& m) {
  OrderedJson j = OrderedJson::object();
  for (auto& [k, v] : m) j[k] = v;
  return j;
}

OrderedJson PlatformToJson(const Platform& p) {
  OrderedJson j;
  j["architecture"] = p.architecture;
  j["os"] = p.os;
  if (!p.os_version.empty()) j["os.version"] = p.os_version;
  if (!p.os_features.empty()) j["os.features"] = p.os_features;
  if (!p.variant.empty()) j["variant"] = p.variant;
  return j;
}

Result<Platform> ParsePlatformJson(const Json& j) {
  if (!j.is_object()) return Error(Code::kInvalidArgument, "platform: not an object");
  Platform p;
  p.architecture = core::GetOptString(j, "architecture").value_or("");
  p.os = core::GetOptString(j, "os").value_or("");
  p.variant = core::GetOptString(j, "variant").value_or("");
  p.os_version = core::GetOptString(j, "os.version").value_or("");
  p.os_features = core::GetStringList(j, "os.features");
  return p;
}

std::string Dump(const OrderedJson& j) { return j.dump(-1, ' ', false, OrderedJson::error_handler_t::strict); }

Status CheckBytes(std::string_view bytes, std::optional<core::Digest> expected, std::string_view what) {
  if (bytes.size() > kMaxManifestSize) {
    return Error(Code::kResourceExhausted, std::string(what) + ": " + std::to_string(bytes.size()) +
                                               " bytes is over the limit of " +
                                               std::to_string(kMaxManifestSize));
  }
  if (expected) {
    core::Digest got = core::Digest::Of(bytes);
    if (got != *expected) {
      return Error(Code::kDataLoss, std::string(what) + ": digest mismatch: want " +
                                        expected->String() + ", got " + got.String());
    }
  }
  return core::Ok();
}

Result<std::vector<Descriptor>> ParseDescriptorList(const Json& j, std::string_view key) {
  std::vector<Descriptor> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return Error(Code::kInvalidArgument, "field \"" + std::string(key) + "\": not an array");
  for (size_t i = 0; i < it->size(); ++i) {
    XB_ASSIGN_CTX(Descriptor d, ParseDescriptor((*it)[i]), std::string(key) + "[" + std::to_string(i) + "]");
    out.push_back(std::move(d));
  }
  return out;
}

Result<int> SchemaVersion(const Json& j) {
  auto it = j.find("schemaVersion");
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() != 2) {
    return Error(Code::kInvalidArgument, "schemaVersion: want 2");
  }
  return 2;
}

}  // namespace

OrderedJson Descriptor::ToJson() const {
  OrderedJson j;
  j["mediaType"] = media_type;
  j["digest"] = digest.String();
  j["size"] = size;
  if (!urls.empty()) j["urls"] = urls;
  if (!annotations.empty()) j["annotations"] = MapToJson(annotations);
  if (platform) j["platform"] = PlatformToJson(*platform);
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  return j;
}

Result<Descriptor> ParseDescriptor(const Json& j) {
  if (!j.is_object()) return Error(Code::kInvalidArgument, "descriptor: not an object");
  Descriptor d;
  d.media_type = core::GetOptString(j, "mediaType").value_or("");
  XB_ASSIGN(std::string digest, core::GetString(j, "digest"));
  XB_ASSIGN(d.digest, core::Digest::Parse(digest));
  XB_ASSIGN(d.size, core::GetInt(j, "size"));
  if (d.size < 0) return Error(Code::kInvalidArgument, "descriptor " + digest + ": negative size");
  d.urls = core::GetStringList(j, "urls");
  d.annotations = core::GetStringMap(j, "annotations");
  d.artifact_type = core::GetOptString(j, "artifactType").value_or("");
  if (auto it = j.find("platform"); it != j.end()) {
    XB_ASSIGN(Platform p, ParsePlatformJson(*it));
    d.platform = std::move(p);
  }
  return d;
}

std::string Manifest::Serialize() const {
  OrderedJson j;
  j["schemaVersion"] = schema_version;
  j["mediaType"] = media_type;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  j["config"] = config.ToJson();
  OrderedJson ls = OrderedJson::array();
  for (auto& l : layers) ls.push_back(l.ToJson());
  j["layers"] = ls;
  if (subject) j["subject"] = subject->ToJson();
  if (!annotations.empty()) j["annotations"] = MapToJson(annotations);
  return Dump(j);
}

std::string Index::Serialize() const {
  OrderedJson j;
  j["schemaVersion"] = schema_version;
  j["mediaType"] = media_type;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  OrderedJson ms = OrderedJson::array();
  for (auto& m : manifests) ms.push_back(m.ToJson());
  j["manifests"] = ms;
  if (subject) j["subject"] = subject->ToJson();
  if (!annotations.empty()) j["annotations"] = MapToJson(annotations);
  return Dump(j);
}

Result<std::string> SniffMediaType(std::string_view bytes) {
  XB_ASSIGN(Json j, core::ParseJson(bytes, "manifest", kMaxManifestSize));
  if (!j.is_object()) return Error(Code::kInvalidArgument, "manifest: not a JSON object");
  bool has_manifests = j.contains("manifests");
  bool has_layers = j.contains("layers") || j.contains("config");
  if (has_manifests && has_layers) {
    return Error(Code::kInvalidArgument, "manifest: has both \"manifests\" and \"layers\"/\"config\"");
  }
  std::string mt = core::GetOptString(j, "mediaType").value_or("");
  if (!mt.empty()) {
    if (IsManifestType(mt) || IsIndexType(mt)) return mt;
    return Error(Code::kInvalidArgument, "manifest: unsupported media type \"" + mt + "\"");
  }
  if (has_manifests) return std::string(media::kOciIndex);
  if (has_layers) return std::string(media::kOciManifest);
  return Error(Code::kInvalidArgument, "manifest: neither an image manifest nor an index");
}

Result<Manifest> ParseManifest(std::string_view bytes, std::optional<core::Digest> expected) {
  XB_TRY_CTX(CheckBytes(bytes, expected, "manifest"), "parse manifest");
  XB_ASSIGN_CTX(Json j, core::ParseJson(bytes, "manifest", kMaxManifestSize), "parse manifest");
  if (!j.is_object()) return Error(Code::kInvalidArgument, "parse manifest: not a JSON object");
  Manifest m;
  XB_ASSIGN_CTX(m.schema_version, SchemaVersion(j), "parse manifest");
  m.media_type = core::GetOptString(j, "mediaType").value_or(std::string(media::kOciManifest));
  if (!IsManifestType(m.media_type)) {
    return Error(Code::kInvalidArgument, "parse manifest: media type \"" + m.media_type + "\" is not an image manifest");
  }
  if (j.contains("manifests")) {
    return Error(Code::kInvalidArgument, "parse manifest: a manifest must not have \"manifests\" (is it an index?)");
  }
  auto cfg = j.find("config");
  if (cfg == j.end()) return Error(Code::kInvalidArgument, "parse manifest: missing \"config\"");
  XB_ASSIGN_CTX(m.config, ParseDescriptor(*cfg), "parse manifest: config");
  XB_ASSIGN_CTX(m.layers, ParseDescriptorList(j, "layers"), "parse manifest");
  if (auto it = j.find("subject"); it != j.end()) {
    XB_ASSIGN_CTX(Descriptor s, ParseDescriptor(*it), "parse manifest: subject");
    m.subject = std::move(s);
  }
  m.artifact_type = core::GetOptString(j, "artifactType").value_or("");
  m.annotations = core::GetStringMap(j, "annotations");
  return m;
}

Result<Index> ParseIndex(std::string_view bytes, std::optional<core::Digest> expected) {
  XB_TRY_CTX(CheckBytes(bytes, expected, "index"), "parse index");
  XB_ASSIGN_CTX(Json j, core::ParseJson(bytes, "index", kMaxManifestSize), "parse index");
  if (!j.is_object()) return Error(Code::kInvalidArgument, "parse index: not a JSON object");
  Index x;
  XB_ASSIGN_CTX(x.schema_version, SchemaVersion(j), "parse index");
  x.media_type = core::GetOptString(j, "mediaType").value_or(std::string(media::kOciIndex));
  if (!IsIndexType(x.media_type)) {
    return Error(Code::kInvalidArgument, "parse index: media type \"" + x.media_type + "\" is not an index");
  }
  if (j.contains("layers") || j.contains("config")) {
    return Error(Code::kInvalidArgument, "parse index: an index must not have \"layers\" or \"config\"");
  }
  XB_ASSIGN_CTX(x.manifests, ParseDescriptorList(j, "manifests"), "parse index");
  if (auto it = j.find("subject"); it != j.end()) {
    XB_ASSIGN_CTX(Descriptor s, ParseDescriptor(*it), "parse index: subject");
    x.subject = std::move(s);
  }
  x.artifact_type = core::GetOptString(j, "artifactType").value_or("");
  x.annotations = core::GetStringMap(j, "annotations");
  return x;
}

Result<Descriptor> SelectPlatform(const Index& index, const Platform& want) {
  const Descriptor* best = nullptr;
  for (auto& d : index.manifests) {
    if (!d.platform || !IsManifestType(d.media_type)) continue;
    const Platform& p = *d.platform;
    if (p.os != want.os || p.architecture != want.architecture) continue;
    if (!want.variant.empty() && !p.variant.empty() && p.variant != want.variant) continue;
    if (!best || (!want.variant.empty() && p.variant == want.variant)) best = &d;
  }
  if (!best) {
    return Error(Code::kNotFound, "no image for platform " + want.String() + " in the index");
  }
  return *best;
}

}  // namespace xbuild::image
