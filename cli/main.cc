// xbuild: parse the global flags, pick the subcommand from the table, run it.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "cli/cli.h"

#include <sys/stat.h>

#ifndef XBUILD_VERSION
#define XBUILD_VERSION "dev"
#endif

namespace xbuild::cli {
namespace {

const Command kCommands[] = {
    {"build", "Build an image from a Dockerfile", RunBuild},
    {"builder", "Manage builds (builder prune)", RunBuilder},
    {"buildx", "Docker Buildx compatible commands (buildx build, buildx prune, buildx du)", RunBuilder},
    {"debug", "Debugging tools (debug parse FILE)", RunDebug},
    {"run", "Create and run a new container from an image", RunRun},
    {"exec", "Execute a command in a running container", RunExec},
    {"ps", "List containers", RunPs},
    {"logs", "Fetch the logs of a container", RunLogs},
    {"start", "Start one or more stopped containers", RunStart},
    {"stop", "Stop one or more running containers", RunStop},
    {"restart", "Restart one or more containers", RunRestart},
    {"kill", "Kill one or more running containers", RunKill},
    {"rm", "Remove one or more containers", RunRm},
    {"images", "List images", RunImages},
    {"import", "Import the contents from a tarball or directory to create a filesystem image", RunImport},
    {"info", "Display system-wide information", RunInfo},
    {"inspect", "Return low-level information on images and containers", RunInspect},
    {"load", "Load an image from a tar archive or STDIN", RunLoad},
    {"login", "Log in to a registry", RunLogin},
    {"logout", "Log out from a registry", RunLogout},
    {"manifest", "Inspect an image manifest or manifest list in a registry", RunManifest},
    {"pull", "Download an image from a registry", RunPull},
    {"push", "Upload an image to a registry", RunPush},
    {"rmi", "Remove one or more images", RunRmi},
    {"save", "Save one or more images to a tar archive", RunSave},
    {"system", "Manage xbuild (system df, system prune)", RunSystem},
    {"tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", RunTag},
    {"version", "Show the xbuild version information", RunVersion},
    // Volumes and cp (cmd_volume.cc, cmd_cp.cc).
    {"volume", "Manage volumes", RunVolume},
    {"cp", "Copy files/folders between a container and the local filesystem", RunCp},
    // Networks (cmd_network.cc, cmd_port.cc).
    {"network", "Manage networks", RunNetwork},
    {"port", "List port mappings or a specific mapping for the container", RunPort},
};

// `xbuild network ls` and friends.
const std::pair<const char*, const char*> kNetworkAliases[] = {
    {"ls", "network ls"}, {"list", "network ls"}, {"create", "network create"},
    {"rm", "network rm"}, {"remove", "network rm"}, {"inspect", "network inspect"},
    {"prune", "network prune"},
};

// `xbuild image ls` and friends, as in Docker's management commands.
const std::pair<const char*, const char*> kImageAliases[] = {
    {"ls", "images"}, {"list", "images"}, {"rm", "rmi"}, {"remove", "rmi"}, {"inspect", "inspect"},
    {"tag", "tag"}, {"save", "save"}, {"load", "load"}, {"import", "import"},
    {"pull", "pull"}, {"push", "push"}, {"prune", "image prune"},
};

// `xbuild container ls` and friends.
const std::pair<const char*, const char*> kContainerAliases[] = {
    {"ls", "ps"}, {"list", "ps"}, {"ps", "ps"}, {"rm", "rm"}, {"remove", "rm"}, {"run", "run"},
    {"exec", "exec"}, {"logs", "logs"}, {"start", "start"}, {"stop", "stop"}, {"restart", "restart"},
    {"kill", "kill"}, {"inspect", "inspect"}, {"prune", "container prune"},
    {"cp", "cp"},
};

// `xbuild builder prune`, `xbuild buildx prune`, `xbuild system df|prune`.
const std::pair<const char*, const char*> kBuilderAliases[] = {{"prune", "builder prune"}};
const std::pair<const char*, const char*> kBuildxAliases[] = {
    {"prune", "buildx prune"}, {"build", "build"}, {"b", "build"}, {"du", "system df"}};
const std::pair<const char*, const char*> kSystemAliases[] = {{"df", "system df"}, {"prune", "system prune"}};
using Aliases = std::span<const std::pair<const char*, const char*>>;
const std::pair<const char*, Aliases> kGroupAliases[] = {
    {"builder", kBuilderAliases}, {"buildx", kBuildxAliases}, {"system", kSystemAliases},
    {"network", kNetworkAliases}};

// Commands that only exist under a management command, or not for users at all.
const Command kHiddenCommands[] = {
    {"container prune", "Remove all stopped containers", RunContainerPrune},
    {"image prune", "Remove unused images", RunImagePrune},
    {"builder prune", "Remove build cache", RunBuilderPrune},
    {"buildx prune", "Remove build cache", RunBuildxPrune},
    {"system df", "Show xbuild disk usage", RunSystemDf},
    {"system prune", "Remove unused data", RunSystemPrune},
    {"__monitor", "The monitor of a detached container (container_monitor.h)", RunMonitor},
    {"network ls", "List networks", RunNetworkLs},
    {"network create", "Create a network", RunNetworkCreate},
    {"network rm", "Remove one or more networks", RunNetworkRm},
    {"network inspect", "Display detailed information on one or more networks", RunNetworkInspect},
    {"network prune", "Remove all unused networks", RunNetworkPrune},
};

void PrintHelp() {
  std::printf(
      "Usage:  xbuild [OPTIONS] COMMAND\n\n"
      "A Dockerfile build engine, registry client and container runner\n\n"
      "Global Options:\n"
      "      --root string               Root directory of xbuild state (env XBUILD_ROOT)\n"
      "      --config string             Location of the config file (env XBUILD_CONFIG)\n"
      "  -D, --debug                     Enable debug output\n"
      "  -l, --log-level string          Set the logging level (debug, info, warn, error, fatal)\n"
      "      --insecure-registry list    Registry (HOST:PORT) to reach over HTTP or unverified TLS\n"
      "  -v, --version                   Print version information and quit\n\n"
      "Commands:\n");
  for (auto& c : kCommands) std::printf("  %-10s %s\n", c.name, c.summary);
  std::printf("\nRun 'xbuild COMMAND --help' for more information on a command.\n");
}

bool TakesValue(const std::string& flag) {
  return flag == "--root" || flag == "--config" || flag == "--log-level" || flag == "-l" ||
         flag == "--insecure-registry";
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

int Main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  // Global flags before the subcommand are moved after it, where every command accepts them.
  std::vector<std::string> globals;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      PrintHelp();
      return kExitOk;
    }
    if (a == "-v" || a == "--version") {
      std::printf("xbuild version %s\n", XBUILD_VERSION);
      return kExitOk;
    }
    if (a.empty() || a[0] != '-') break;
    // A flag that is not global starts a build: `xbuild -t name:tag .` is `xbuild build ...`.
    if (!TakesValue(a) && a != "--debug" && a != "-D" && !a.starts_with("--root=") && !a.starts_with("--config=") &&
        !a.starts_with("--log-level=") && !a.starts_with("--insecure-registry=")) {
      break;
    }
    globals.push_back(a);
    if (TakesValue(a)) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "flag needs an argument: %s\nSee 'xbuild --help'.\n", a.c_str());
        return kExitUsage;
      }
      globals.push_back(args[++i]);
    }
  }
  if (i >= args.size()) {
    PrintHelp();
    return globals.empty() ? kExitOk : kExitUsage;
  }
  std::string name = args[i];
  bool known = name == "image" || name == "container" || name == "__monitor";
  for (auto& c : kCommands) known |= name == c.name;
  if (known) {
    ++i;
  } else if (name[0] == '-' || name == "." || name.find('/') != std::string::npos || IsDirectory(name)) {
    name = "build";  // no subcommand: build (what CI jobs type: `xbuild -t name:tag .`)
  }
  std::vector<std::string> rest(args.begin() + static_cast<long>(i), args.end());
  if (name == "image" && !rest.empty()) {
    for (auto& [alias, target] : kImageAliases) {
      if (rest[0] == alias) {
        name = target;
        rest.erase(rest.begin());
        break;
      }
    }
  }
  if (name == "container" && !rest.empty()) {
    for (auto& [alias, target] : kContainerAliases) {
      if (rest[0] == alias) {
        name = target;
        rest.erase(rest.begin());
        break;
      }
    }
  }
  for (const auto& [group, aliases] : kGroupAliases) {
    if (name != group || rest.empty()) continue;
    for (auto& [alias, target] : aliases) {
      if (rest[0] == alias) {
        name = target;
        rest.erase(rest.begin());
        break;
      }
    }
    break;
  }
  rest.insert(rest.begin(), globals.begin(), globals.end());
  for (auto& c : kHiddenCommands) {
    if (name == c.name) {
      Cli cli;
      return c.run(cli, rest);
    }
  }
  for (auto& c : kCommands) {
    if (name == c.name) {
      Cli cli;
      return c.run(cli, rest);
    }
  }
  std::fprintf(stderr, "xbuild: '%s' is not an xbuild command.\nSee 'xbuild --help'\n", name.c_str());
  return kExitUsage;
}

}  // namespace
}  // namespace xbuild::cli

int main(int argc, char** argv) { return xbuild::cli::Main(argc, argv); }
