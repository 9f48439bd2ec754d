// Detached containers: each is run by a monitor, the xbuild binary re-executed as
// `xbuild --root ROOT __monitor ID` in a session of its own (double fork, setsid, stdio on
// /dev/null), so it outlives the CLI that started it. The monitor runs the container to its end
// (exec::Containers::Run: log file, run state, --rm) and reports the start to its starter over
// fd 3, one JSON line: {"ok":true} once the process runs, or
// {"ok":false,"code":127,"error":"..."} when it could not be started.
#pragma once

#include <string>

#include "cli/cli.h"

namespace xbuild::cli {

// Starts the monitor of container `id` and waits for its report. A failed start is an error
// and `exit_code` Docker's code for it (125, 126, 127).
core::Status StartMonitor(Cli& cli, const std::string& id, int& exit_code);

}  // namespace xbuild::cli
