// How containers read in ps and inspect: Docker's words, columns and JSON shapes.
#pragma once

#include <cstdint>
#include <string>

#include "core/json.h"
#include "exec/container.h"

namespace xbuild::cli {

// The COMMAND column: entrypoint and cmd joined, quoted; cut to 20 characters with "…".
std::string ContainerCommand(const exec::ContainerRecord& r, bool trunc);
// The STATUS column: "Created", "Up 3 seconds", "Exited (0) 5 seconds ago".
std::string ContainerStatus(const exec::ContainerRecord& r, int64_t now);
// `ps --format json`: one object per container with Docker's keys.
core::Json PsJson(const exec::ContainerRecord& r, int64_t now, bool trunc);
// `inspect` of a container (a subset of Docker's ContainerJSON).
core::OrderedJson InspectContainerJson(const exec::ContainerRecord& r);

}  // namespace xbuild::cli
