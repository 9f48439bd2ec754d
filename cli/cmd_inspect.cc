// xbuild inspect [-f FORMAT] [--type image|container] NAME|ID...: Docker's image inspect JSON,
// or its container inspect JSON (container_format.h) for a name that is not an image.
#include <cstdio>

#include "cli/cli.h"
#include "cli/container_format.h"
#include "cli/template.h"
#include "core/json.h"

namespace xbuild::cli {

namespace {

core::OrderedJson StringsOrNull(const std::optional<std::vector<std::string>>& v) {
  return v ? core::OrderedJson(*v) : core::OrderedJson(nullptr);
}

core::OrderedJson SetOrNull(const std::set<std::string>& s) {
  if (s.empty()) return nullptr;
  core::OrderedJson j = core::OrderedJson::object();
  for (auto& k : s) j[k] = core::OrderedJson::object();
  return j;
}

core::OrderedJson InspectJson(const cache::ResolvedImage& img) {
  const image::ContainerConfig& c = img.config.config;
  core::OrderedJson cfg;
  cfg["Hostname"] = "";
  cfg["Domainname"] = "";
  cfg["User"] = c.user;
  cfg["AttachStdin"] = false;
  cfg["AttachStdout"] = false;
  cfg["AttachStderr"] = false;
  if (!c.exposed_ports.empty()) cfg["ExposedPorts"] = SetOrNull(c.exposed_ports);
  cfg["Tty"] = false;
  cfg["OpenStdin"] = false;
  cfg["StdinOnce"] = false;
  cfg["Env"] = c.env.empty() ? core::OrderedJson(nullptr) : core::OrderedJson(c.env);
  cfg["Cmd"] = StringsOrNull(c.cmd);
  if (c.healthcheck) {
    core::OrderedJson h;
    h["Test"] = c.healthcheck->test;
    h["Interval"] = c.healthcheck->interval_ns;
    h["Timeout"] = c.healthcheck->timeout_ns;
    h["StartPeriod"] = c.healthcheck->start_period_ns;
    h["Retries"] = c.healthcheck->retries;
    cfg["Healthcheck"] = h;
  }
  if (c.args_escaped) cfg["ArgsEscaped"] = true;
  cfg["Image"] = "";
  cfg["Volumes"] = SetOrNull(c.volumes);
  cfg["WorkingDir"] = c.working_dir;
  cfg["Entrypoint"] = StringsOrNull(c.entrypoint);
  cfg["OnBuild"] = c.on_build.empty() ? core::OrderedJson(nullptr) : core::OrderedJson(c.on_build);
  core::OrderedJson labels = nullptr;
  if (!c.labels.empty()) {
    labels = core::OrderedJson::object();
    for (auto& [k, v] : c.labels) labels[k] = v;
  }
  cfg["Labels"] = labels;
  if (!c.stop_signal.empty()) cfg["StopSignal"] = c.stop_signal;
  if (!c.shell.empty()) cfg["Shell"] = c.shell;

  core::OrderedJson j;
  j["Id"] = img.record.config.String();
  core::OrderedJson tags = core::OrderedJson::array();
  core::OrderedJson digests = core::OrderedJson::array();
  for (auto& t : img.tags) {
    auto ref = image::ParseReference(t);
    if (!ref.ok()) continue;
    tags.push_back(ref->Familiar());
    std::string rd = ref->FamiliarRepository() + "@" + img.record.digest.String();
    if (std::find(digests.begin(), digests.end(), rd) == digests.end()) digests.push_back(rd);
  }
  j["RepoTags"] = tags;
  j["RepoDigests"] = digests;
  j["Parent"] = "";
  j["Comment"] = img.config.history.empty() ? "" : img.config.history.back().comment;
  j["Created"] = img.config.created;
  j["DockerVersion"] = "";
  j["Author"] = img.config.author;
  j["Config"] = cfg;
  j["Architecture"] = img.config.architecture;
  if (!img.config.variant.empty()) j["Variant"] = img.config.variant;
  j["Os"] = img.config.os;
  int64_t size = 0;
  for (auto& l : img.manifest.layers) size += l.size;
  j["Size"] = size;
  core::OrderedJson rootfs;
  rootfs["Type"] = "layers";
  core::OrderedJson layers = core::OrderedJson::array();
  for (auto& d : img.config.diff_ids) layers.push_back(d.String());
  rootfs["Layers"] = layers;
  j["RootFS"] = rootfs;
  core::OrderedJson meta;
  meta["LastTagTime"] = "0001-01-01T00:00:00Z";
  j["Metadata"] = meta;
  core::OrderedJson desc;
  desc["mediaType"] = img.record.media_type;
  desc["digest"] = img.record.digest.String();
  desc["size"] = img.record.size;
  j["Descriptor"] = desc;
  return j;
}

}  // namespace

int RunInspect(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("format", 'f', "", "Format output using a Go-style template ({{.Field}}, {{json .Field}}) or json");
  f.String("type", 0, "", "Only inspect objects of the given type (image, container)");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]", args, pos, code, 1)) return code;
  const std::string& type = f.GetString("type");
  if (!type.empty() && type != "image" && type != "container") {
    return cli.UsageError("inspect", "unsupported --type \"" + type + "\": want image or container");
  }
  const std::string& format = f.GetString("format");
  Template tmpl;
  if (!format.empty() && format != "json") {
    auto t = Template::Parse(format);
    if (!t.ok()) return cli.UsageError("inspect", t.error().message());
    tmpl = std::move(t).value();
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  core::OrderedJson all = core::OrderedJson::array();
  int rc = kExitOk;
  for (auto& name : pos) {
    core::OrderedJson j;
    auto img = type == "container" ? core::Result<cache::ResolvedImage>(core::Error(core::Code::kNotFound, name))
                                   : (*store)->Resolve(name);
    if (img.ok()) {
      j = InspectJson(*img);
    } else {
      auto containers = type == "image" ? core::Result<exec::Containers*>(core::Error(core::Code::kNotFound, name))
                                        : cli.Containers();
      auto ctr = containers.ok() ? (*containers)->Find(name) : core::Result<exec::ContainerRecord>(containers.error());
      if (!ctr.ok()) {
        std::fprintf(stderr, "Error: No such object: %s\n", name.c_str());
        rc = kExitError;
        continue;
      }
      j = InspectContainerJson(*ctr);
      j["Mounts"] = core::OrderedJson::array();  // Docker's "Mounts" (exec/volume.h)
      for (const exec::MountSpec& m : ctr->mounts) j["Mounts"].push_back(exec::MountInspectJson(m, cli.ctx().root));
    }
    if (!format.empty() && format != "json") {
      auto out = tmpl.Execute(core::Json::parse(j.dump()));
      if (!out.ok()) return cli.Fail(out.error());
      std::printf("%s\n", out->c_str());
    } else {
      all.push_back(j);
    }
  }
  if (format.empty() || format == "json") std::printf("%s\n", all.dump(4).c_str());
  return rc;
}

}  // namespace xbuild::cli
