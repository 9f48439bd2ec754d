// `run`'s flags for volumes, resource limits and privileges (-v, --mount, --tmpfs, -m, --cpus,
// --pids-limit, --cap-add, --privileged, --init, --device, --add-host, --security-opt...):
// declared on run's Flags and turned into the record's mounts and HostOptions.
#pragma once

#include <set>
#include <string>

#include "cli/flags.h"
#include "core/result.h"
#include "exec/container.h"

namespace xbuild::cli {

void AddRunOptionFlags(Flags& f);

// Fills rec.mounts (with an anonymous volume for each of the image's VOLUMEs that no flag
// mounts) and rec.host. Errors name the bad value.
core::Status ApplyRunOptionFlags(const Flags& f, const std::set<std::string>& image_volumes,
                                 exec::ContainerRecord& rec);

}  // namespace xbuild::cli
