// xbuild info [--format json]: where state lives and what is in it.
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>

#include "cli/cli.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "image/manifest.h"

#ifndef XBUILD_VERSION
#define XBUILD_VERSION "dev"
#endif

namespace xbuild::cli {

int RunInfo(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("format", 'f', "", "Format output: json");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "info", "info [OPTIONS]", args, pos, code, 0, 0)) return code;
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto images = (*store)->db().ListImages();
  if (!images.ok()) return cli.Fail(images.error());
  auto tags = (*store)->db().ListTags();
  if (!tags.ok()) return cli.Fail(tags.error());
  auto blobs = (*store)->content().List();
  if (!blobs.ok()) return cli.Fail(blobs.error());
  struct utsname u;
  ::uname(&u);
  const core::Config& cfg = cli.ctx().config;
  std::string runtime_path = core::LookPath(cfg.default_runtime);
  core::OrderedJson j;
  j["ServerVersion"] = XBUILD_VERSION;
  j["Images"] = images->size();
  j["Tags"] = tags->size();
  j["Blobs"] = blobs->size();
  j["ContentSize"] = core::DiskUsage(core::JoinPath(cli.ctx().root, "content/blobs"));
  j["RootDir"] = cli.ctx().root;
  j["MetadataSchemaVersion"] = (*store)->db().SchemaVersion();
  j["StorageDriver"] = "overlayfs";
  j["DefaultRuntime"] = cfg.default_runtime;
  j["RuntimePath"] = runtime_path;
  j["InsecureRegistries"] = cfg.insecure_registries;
  j["RegistryMirrors"] = cfg.registry_mirrors;
  j["KernelVersion"] = u.release;
  j["OSType"] = "linux";
  j["Architecture"] = image::HostPlatform().architecture;
  j["NCPU"] = ::sysconf(_SC_NPROCESSORS_ONLN);
  j["MemTotal"] = static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE);
  if (f.GetString("format") == "json") {
    std::printf("%s\n", j.dump().c_str());
    return kExitOk;
  }
  auto list = [](const core::OrderedJson& a) {
    std::string s;
    for (auto& v : a) s += "\n  " + v.get<std::string>();
    return s;
  };
  std::printf("Server Version: %s\nImages: %zu\n Tags: %zu\n Blobs: %zu (%s)\nStorage Driver: overlayfs\n"
              "Root Dir: %s\nMetadata Schema: %d\nDefault Runtime: %s (%s)\nKernel Version: %s\n"
              "OSType: linux\nArchitecture: %s\nCPUs: %ld\nTotal Memory: %s\nInsecure Registries:%s\nRegistry Mirrors:%s\n",
              XBUILD_VERSION, images->size(), tags->size(), blobs->size(),
              HumanSize(static_cast<double>(j["ContentSize"].get<uint64_t>())).c_str(), cli.ctx().root.c_str(),
              (*store)->db().SchemaVersion(), cfg.default_runtime.c_str(),
              runtime_path.empty() ? "not found" : runtime_path.c_str(), u.release,
              j["Architecture"].get<std::string>().c_str(), j["NCPU"].get<long>(),
              HumanSize(static_cast<double>(j["MemTotal"].get<int64_t>())).c_str(),
              list(j["InsecureRegistries"]).c_str(), list(j["RegistryMirrors"]).c_str());
  return kExitOk;
}

}  // namespace xbuild::cli
