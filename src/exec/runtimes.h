// `--runtime NAME`: the OCI runtimes a container may run with. "runc" is always known; the
// config file's "runtimes" ({"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": [...]}})
// add or replace names, and "default-runtime" names the one used when none is asked for, as in
// Docker's daemon.json. A container's record keeps the name it was created with.
#pragma once

#include <string>
#include <vector>

#include "core/context.h"
#include "core/result.h"

namespace xbuild::exec {

struct Runtime {
  std::string name;
  std::string path;  // a path or a name looked up in PATH
  std::vector<std::string> args;
};

// `name` ("" = the default) as configured; kInvalidArgument naming the known ones otherwise.
core::Result<Runtime> SelectRuntime(const core::Config& config, const std::string& name);

}  // namespace xbuild::exec
