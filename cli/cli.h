// The CLI's shared state: global options, the Context handed to the libraries, and the
// lazily opened image store. One file per subcommand implements `int Run...(Cli&, args)`.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cache/image_store.h"
#include "cli/flags.h"
#include "core/context.h"
#include "core/log.h"
#include "exec/container.h"
#include "exec/snapshot.h"

namespace xbuild::cli {

// Exit codes, as Docker's CLI uses them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 125;

class Cli {
 public:
  Cli() : logger_(core::LogLevel::kWarn) {}

  // Global flags are accepted before the subcommand and after it.
  void AddGlobalFlags(Flags& f) const;
  core::Status ApplyGlobalFlags(const Flags& f);
  // Resolves the config file and the state root (flag > XBUILD_ROOT > config data-root > default).
  core::Status Setup();

  core::Result<cache::ImageStore*> Store();
  // The kept containers of the state root (opens the store).
  core::Result<exec::Containers*> Containers();
  core::Context& ctx() { return ctx_; }
  core::Logger& log() { return logger_; }

  // Prints "Error: ..." to stderr and returns the exit code.
  int Fail(const core::Error& e, int code = kExitError);
  int UsageError(const std::string& command, const std::string& msg);

  std::string root_flag;
  std::string config_flag;
  std::vector<std::string> insecure_registries;

 private:
  core::Logger logger_;
  core::Context ctx_;
  bool setup_done_ = false;
  std::unique_ptr<cache::ImageStore> store_;
  std::unique_ptr<exec::Snapshotter> snapshots_;
  std::unique_ptr<exec::Containers> containers_;
};

// Parses `args` with `flags` plus the global flags; on error prints it and returns false.
// `min_args`/`max_args` bound the positionals (max_args < 0: unbounded).
bool ParseCommand(Cli& cli, Flags& flags, const std::string& command, const std::string& usage,
                  const std::vector<std::string>& args, std::vector<std::string>& pos, int& exit_code,
                  int min_args = 0, int max_args = -1);

struct Command {
  const char* name;
  const char* summary;
  int (*run)(Cli&, const std::vector<std::string>&);
};

// A SOURCE_DATE_EPOCH value (unix seconds); empty or null -> nullopt; `what` names its origin.
core::Result<std::optional<int64_t>> ParseSourceDateEpoch(const char* value, const std::string& what);

int RunBuild(Cli&, const std::vector<std::string>&);
int RunRun(Cli&, const std::vector<std::string>&);
int RunImport(Cli&, const std::vector<std::string>&);
int RunImages(Cli&, const std::vector<std::string>&);
int RunTag(Cli&, const std::vector<std::string>&);
int RunRmi(Cli&, const std::vector<std::string>&);
int RunInspect(Cli&, const std::vector<std::string>&);
int RunSave(Cli&, const std::vector<std::string>&);
int RunLoad(Cli&, const std::vector<std::string>&);
int RunVersion(Cli&, const std::vector<std::string>&);
int RunInfo(Cli&, const std::vector<std::string>&);
int RunDebug(Cli&, const std::vector<std::string>&);
int RunPull(Cli&, const std::vector<std::string>&);
int RunPush(Cli&, const std::vector<std::string>&);
int RunLogin(Cli&, const std::vector<std::string>&);
int RunLogout(Cli&, const std::vector<std::string>&);
int RunManifest(Cli&, const std::vector<std::string>&);
int RunPs(Cli&, const std::vector<std::string>&);
int RunLogs(Cli&, const std::vector<std::string>&);
int RunStop(Cli&, const std::vector<std::string>&);
int RunKill(Cli&, const std::vector<std::string>&);
int RunStart(Cli&, const std::vector<std::string>&);
int RunRestart(Cli&, const std::vector<std::string>&);
int RunRm(Cli&, const std::vector<std::string>&);
int RunExec(Cli&, const std::vector<std::string>&);
// Volumes and cp (cmd_volume.cc, cmd_cp.cc).
int RunVolume(Cli&, const std::vector<std::string>&);
int RunCp(Cli&, const std::vector<std::string>&);
// Prints `warning` and asks "Are you sure you want to continue? [y/N]" on stdin (Docker's prune
// prompt); true for y or Y.
bool Confirm(const std::string& warning);

int RunImagePrune(Cli&, const std::vector<std::string>&);
int RunContainerPrune(Cli&, const std::vector<std::string>&);
// Build cache and disk usage (cli/cmd_builder_prune.cc, cli/cmd_system.cc).
int RunBuilder(Cli&, const std::vector<std::string>&);  // `builder`/`buildx` alone: their usage
int RunBuilderPrune(Cli&, const std::vector<std::string>&);
int RunBuildxPrune(Cli&, const std::vector<std::string>&);
int RunSystem(Cli&, const std::vector<std::string>&);
int RunSystemDf(Cli&, const std::vector<std::string>&);
int RunSystemPrune(Cli&, const std::vector<std::string>&);
// Networks (cmd_network.cc, cmd_port.cc).
int RunNetwork(Cli&, const std::vector<std::string>&);
int RunNetworkLs(Cli&, const std::vector<std::string>&);
int RunNetworkCreate(Cli&, const std::vector<std::string>&);
int RunNetworkRm(Cli&, const std::vector<std::string>&);
int RunNetworkPrune(Cli&, const std::vector<std::string>&);
int RunNetworkInspect(Cli&, const std::vector<std::string>&);
int RunPort(Cli&, const std::vector<std::string>&);
// The hidden monitor of a detached container (cli/container_monitor.cc).
int RunMonitor(Cli&, const std::vector<std::string>&);

// Writes a container's output chunk to our stdout (stream 1) or stderr (2), flushed.
void WriteToStdio(int stream, std::string_view data);

// Formatting helpers shared by commands (Docker's go-units conventions).
std::string HumanSize(double bytes);           // "4.26MB"
std::string HumanDuration(int64_t seconds);    // "2 weeks"
int64_t ParseTime(const std::string& rfc3339); // unix seconds, 0 when unparsable

}  // namespace xbuild::cli
