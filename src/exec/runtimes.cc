#include "exec/runtimes.h"

namespace xbuild::exec {

core::Result<Runtime> SelectRuntime(const core::Config& config, const std::string& name_in) {
  std::string name = name_in.empty() ? config.default_runtime : name_in;
  if (name.empty()) name = "runc";
  if (auto it = config.runtimes.find(name); it != config.runtimes.end()) {
    return Runtime{name, it->second.path.empty() ? name : it->second.path, it->second.args};
  }
  if (name == "runc") return Runtime{"runc", "runc", {}};
  std::string known = "runc";
  for (const auto& [n, _] : config.runtimes) {
    if (n != "runc") known += ", " + n;
  }
  return core::Error(core::Code::kInvalidArgument,
                     "unknown or invalid runtime name: " + name + " (known runtimes: " + known +
                         "; others are added under \"runtimes\" in the config file)");
}

}  // namespace xbuild::exec
