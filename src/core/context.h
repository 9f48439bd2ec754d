// The Context carries what every operation needs and nothing is global: the state root, the
// parsed config file and the logger. Commands build one in main and pass it down.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/log.h"
#include "core/result.h"

namespace xbuild::core {

struct RuntimeConfig {
  std::string path;
  std::vector<std::string> args;
};

// /etc/xbuild/config.json (root) or ~/.config/xbuild/config.json, shaped like Docker's
// daemon.json where the meaning is the same.
struct Config {
  std::string data_root;                             // "data-root"
  std::vector<std::string> insecure_registries;      // "insecure-registries"
  std::vector<std::string> registry_mirrors;         // "registry-mirrors"
  std::map<std::string, RuntimeConfig> runtimes;     // "runtimes"
  std::string default_runtime = "runc";              // "default-runtime"
  Json raw;                                          // the whole document, for later sections
};

Result<Config> ParseConfig(std::string_view text, std::string_view path);
// Loads `path`; a missing file gives the defaults unless `required`.
Result<Config> LoadConfig(const std::string& path, bool required);
std::string DefaultConfigPath();
std::string DefaultStateRoot();  // /var/lib/xbuild for root, $XDG_DATA_HOME/xbuild otherwise

struct Context {
  std::string root;  // state root, absolute
  Config config;
  Logger* log = nullptr;
};

}  // namespace xbuild::core
