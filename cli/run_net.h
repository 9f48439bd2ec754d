// `run`'s networking flags (--network, -p/--publish, -P/--publish-all, --add-host) turned into
// the record's ContainerNet (exec/network.h). Kept out of cmd_run.cc so that file stays a list.
#pragma once

#include "cli/cli.h"
#include "image/config.h"

namespace xbuild::cli {

// Fills rec.net and rec.network. The network must exist (the default "bridge" is made);
// errors name the bad value.
core::Status RunNetworkFlags(Cli& cli, const Flags& f, const image::ContainerConfig& image,
                             exec::ContainerRecord& rec);

}  // namespace xbuild::cli
