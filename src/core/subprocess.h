// Runs child processes: argv (never a shell string), optional stdin bytes, captured output.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.h"
#include "core/result.h"

namespace xbuild::core {

struct RunOptions {
  std::optional<std::string> stdin_data;  // nullopt: /dev/null
  bool capture_stdout = true;             // false: inherit
  bool capture_stderr = true;             // false: inherit
  std::optional<std::string> cwd;
  // Replaces the environment when set; otherwise the parent's is inherited.
  std::optional<std::vector<std::string>> env;
  std::map<std::string, std::string> extra_env;  // added on top of either
};

struct RunResult {
  int exit_code = -1;    // exit status, or -1 when killed by a signal
  int term_signal = 0;   // the signal that ended it, if any
  std::string out;
  std::string err;
  bool success() const { return exit_code == 0; }
};

// Starts argv[0] (looked up in PATH) and waits for it. Fails only when the process could not
// be started; a non-zero exit is reported in RunResult.
Result<RunResult> RunProcess(const std::vector<std::string>& argv, const RunOptions& opts = {});

// Like RunProcess, but a non-zero exit becomes an Error carrying the command and its stderr.
Result<RunResult> RunChecked(const std::vector<std::string>& argv, const RunOptions& opts = {});

// Finds an executable in PATH; empty when absent.
std::string LookPath(const std::string& name);

// A pidfd for process `pid`, a child or not (pidfd_open): poll() reports it readable once
// the process has exited, so a loop that waits for output and exit together wakes at the exit
// instead of at its next timeout. Invalid where the kernel has no pidfd_open (before 5.3):
// callers fall back to their timeout.
UniqueFd ExitFd(pid_t pid);

}  // namespace xbuild::core
