#include "core/context.h"

#include <unistd.h>

#include <cstdlib>

#include "core/fs.h"

namespace xbuild::core {

Result<Config> ParseConfig(std::string_view text, std::string_view path) {
  XB_ASSIGN(Json j, ParseJson(text, "config " + std::string(path), 1 << 20));
  if (!j.is_object()) return Error(Code::kInvalidArgument, "config " + std::string(path) + ": not a JSON object");
  Config c;
  c.data_root = GetOptString(j, "data-root").value_or("");
  c.insecure_registries = GetStringList(j, "insecure-registries");
  c.registry_mirrors = GetStringList(j, "registry-mirrors");
  c.default_runtime = GetOptString(j, "default-runtime").value_or("runc");
  if (auto it = j.find("runtimes"); it != j.end() && it->is_object()) {
    for (auto& [name, rt] : it->items()) {
      RuntimeConfig r;
      r.path = GetOptString(rt, "path").value_or(name);
      r.args = GetStringList(rt, "runtimeArgs");
      c.runtimes[name] = r;
    }
  }
  c.raw = std::move(j);
  return c;
}

Result<Config> LoadConfig(const std::string& path, bool required) {
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) {
    if (!required && text.error().code() == Code::kNotFound) return Config{};
    return std::move(text).error().Context("load config");
  }
  return ParseConfig(*text, path);
}

std::string DefaultConfigPath() {
  if (::geteuid() == 0) return "/etc/xbuild/config.json";
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/xbuild/config.json";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/tmp") + "/.config/xbuild/config.json";
}

std::string DefaultStateRoot() {
  if (::geteuid() == 0) return "/var/lib/xbuild";
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/xbuild";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/tmp") + "/.local/share/xbuild";
}

}  // namespace xbuild::core
