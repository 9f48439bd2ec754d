#include "image/config.h"

#include <ctime>

namespace xbuild::image {

using core::Code;
using core::Error;
using core::Json;
using core::OrderedJson;

namespace {

OrderedJson SetToObject(const std::set<std::string>& s) {
  OrderedJson j = OrderedJson::object();
  for (auto& k : s) j[k] = OrderedJson::object();
  return j;
}

std::set<std::string> ObjectKeys(const Json& j, std::string_view key) {
  std::set<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (auto& [k, v] : it->items()) out.insert(k);
  return out;
}

std::optional<std::vector<std::string>> OptList(const Json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return core::GetStringList(j, key);
}

int64_t OptInt(const Json& j, std::string_view key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

OrderedJson ContainerConfigToJson(const ContainerConfig& c) {
  OrderedJson j = OrderedJson::object();
  if (!c.user.empty()) j["User"] = c.user;
  if (!c.exposed_ports.empty()) j["ExposedPorts"] = SetToObject(c.exposed_ports);
  if (!c.env.empty()) j["Env"] = c.env;
  if (c.entrypoint) j["Entrypoint"] = *c.entrypoint;
  if (c.cmd) j["Cmd"] = *c.cmd;
  if (c.healthcheck) {
    OrderedJson h;
    h["Test"] = c.healthcheck->test;
    if (c.healthcheck->interval_ns) h["Interval"] = c.healthcheck->interval_ns;
    if (c.healthcheck->timeout_ns) h["Timeout"] = c.healthcheck->timeout_ns;
    if (c.healthcheck->start_period_ns) h["StartPeriod"] = c.healthcheck->start_period_ns;
    if (c.healthcheck->start_interval_ns) h["StartInterval"] = c.healthcheck->start_interval_ns;
    if (c.healthcheck->retries) h["Retries"] = c.healthcheck->retries;
    j["Healthcheck"] = h;
  }
  if (c.args_escaped) j["ArgsEscaped"] = true;
  if (!c.volumes.empty()) j["Volumes"] = SetToObject(c.volumes);
  if (!c.working_dir.empty()) j["WorkingDir"] = c.working_dir;
  if (!c.labels.empty()) {
    OrderedJson l = OrderedJson::object();
    for (auto& [k, v] : c.labels) l[k] = v;
    j["Labels"] = l;
  }
  if (!c.on_build.empty()) j["OnBuild"] = c.on_build;
  if (!c.stop_signal.empty()) j["StopSignal"] = c.stop_signal;
  if (!c.shell.empty()) j["Shell"] = c.shell;
  return j;
}

ContainerConfig ParseContainerConfig(const Json& j) {
  ContainerConfig c;
  if (!j.is_object()) return c;
  c.user = core::GetOptString(j, "User").value_or("");
  c.exposed_ports = ObjectKeys(j, "ExposedPorts");
  c.env = core::GetStringList(j, "Env");
  c.entrypoint = OptList(j, "Entrypoint");
  c.cmd = OptList(j, "Cmd");
  c.volumes = ObjectKeys(j, "Volumes");
  c.working_dir = core::GetOptString(j, "WorkingDir").value_or("");
  c.labels = core::GetStringMap(j, "Labels");
  c.stop_signal = core::GetOptString(j, "StopSignal").value_or("");
  if (auto it = j.find("ArgsEscaped"); it != j.end() && it->is_boolean()) c.args_escaped = it->get<bool>();
  c.on_build = core::GetStringList(j, "OnBuild");
  c.shell = core::GetStringList(j, "Shell");
  if (auto it = j.find("Healthcheck"); it != j.end() && it->is_object()) {
    HealthConfig h;
    h.test = core::GetStringList(*it, "Test");
    h.interval_ns = OptInt(*it, "Interval");
    h.timeout_ns = OptInt(*it, "Timeout");
    h.start_period_ns = OptInt(*it, "StartPeriod");
    h.start_interval_ns = OptInt(*it, "StartInterval");
    h.retries = static_cast<int>(OptInt(*it, "Retries"));
    c.healthcheck = h;
  }
  return c;
}

const char* kKnownFields[] = {"created", "author", "architecture", "os", "variant",
                              "config", "rootfs", "history"};

}  // namespace

std::string ImageConfig::Serialize() const {
  OrderedJson j;
  j["architecture"] = architecture;
  if (!author.empty()) j["author"] = author;
  j["config"] = ContainerConfigToJson(config);
  if (!created.empty()) j["created"] = created;
  OrderedJson hist = OrderedJson::array();
  for (auto& h : history) {
    OrderedJson e = OrderedJson::object();
    if (!h.created.empty()) e["created"] = h.created;
    if (!h.author.empty()) e["author"] = h.author;
    if (!h.created_by.empty()) e["created_by"] = h.created_by;
    if (!h.comment.empty()) e["comment"] = h.comment;
    if (h.empty_layer) e["empty_layer"] = true;
    hist.push_back(e);
  }
  if (!history.empty()) j["history"] = hist;
  j["os"] = os;
  OrderedJson rootfs;
  rootfs["type"] = "layers";
  OrderedJson ids = OrderedJson::array();
  for (auto& d : diff_ids) ids.push_back(d.String());
  rootfs["diff_ids"] = ids;
  j["rootfs"] = rootfs;
  if (!variant.empty()) j["variant"] = variant;
  for (auto& [k, v] : extra.items()) j[k] = OrderedJson::parse(v.dump());
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

std::optional<std::string> ImageConfig::GetEnv(std::string_view key) const {
  for (auto& e : config.env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      return e.substr(key.size() + 1);
    }
  }
  return std::nullopt;
}

void ImageConfig::SetEnv(std::string_view key, std::string_view value) {
  std::string kv = std::string(key) + "=" + std::string(value);
  for (auto& e : config.env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      e = kv;
      return;
    }
  }
  config.env.push_back(kv);
}

Result<ImageConfig> ParseImageConfig(std::string_view bytes, std::optional<core::Digest> expected) {
  if (bytes.size() > kMaxConfigSize) {
    return Error(Code::kResourceExhausted, "parse image config: " + std::to_string(bytes.size()) +
                                               " bytes is over the limit of " +
                                               std::to_string(kMaxConfigSize));
  }
  if (expected && core::Digest::Of(bytes) != *expected) {
    return Error(Code::kDataLoss, "parse image config: digest mismatch: want " + expected->String() +
                                      ", got " + core::Digest::Of(bytes).String());
  }
  XB_ASSIGN_CTX(Json j, core::ParseJson(bytes, "image config", kMaxConfigSize), "parse image config");
  if (!j.is_object()) return Error(Code::kInvalidArgument, "parse image config: not a JSON object");
  if (j.contains("layers") || j.contains("manifests")) {
    return Error(Code::kInvalidArgument, "parse image config: looks like a manifest, not a config");
  }
  ImageConfig c;
  c.created = core::GetOptString(j, "created").value_or("");
  c.author = core::GetOptString(j, "author").value_or("");
  c.architecture = core::GetOptString(j, "architecture").value_or("");
  c.os = core::GetOptString(j, "os").value_or("");
  c.variant = core::GetOptString(j, "variant").value_or("");
  if (auto it = j.find("config"); it != j.end()) c.config = ParseContainerConfig(*it);
  if (auto it = j.find("rootfs"); it != j.end() && it->is_object()) {
    for (auto& s : core::GetStringList(*it, "diff_ids")) {
      XB_ASSIGN_CTX(core::Digest d, core::Digest::Parse(s), "parse image config: rootfs.diff_ids");
      c.diff_ids.push_back(d);
    }
  }
  if (auto it = j.find("history"); it != j.end() && it->is_array()) {
    for (auto& h : *it) {
      HistoryEntry e;
      e.created = core::GetOptString(h, "created").value_or("");
      e.created_by = core::GetOptString(h, "created_by").value_or("");
      e.author = core::GetOptString(h, "author").value_or("");
      e.comment = core::GetOptString(h, "comment").value_or("");
      if (auto eit = h.find("empty_layer"); eit != h.end() && eit->is_boolean()) e.empty_layer = eit->get<bool>();
      c.history.push_back(std::move(e));
    }
  }
  for (auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* f : kKnownFields) known = known || k == f;
    if (!known) c.extra[k] = v;
  }
  return c;
}

std::string FormatTime(int64_t unix_seconds, int32_t nanos) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  ::gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (nanos > 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09d", nanos);
    std::string f = frac;
    while (f.back() == '0') f.pop_back();
    s += f;
  }
  return s + "Z";
}

}  // namespace xbuild::image
