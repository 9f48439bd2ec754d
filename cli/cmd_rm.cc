// xbuild rm [-f] CONTAINER...: removes containers (a running one only with -f, which kills it).
// xbuild container prune [-f]: removes every container that does not run.
#include <cstdio>
#include <iostream>
#include <string>

#include "cli/cli.h"
#include "cli/prune.h"
#include "core/fs.h"

namespace xbuild::cli {

int RunRm(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("force", 'f', "Force the removal of a running container (uses SIGKILL)");
  f.Bool("volumes", 'v', "Remove anonymous volumes associated with the container");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", args, pos, code, 1)) return code;
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  int rc = kExitOk;
  for (const std::string& ref : pos) {
    auto r = (*containers)->Find(ref);
    if (!r.ok()) {
      rc = cli.Fail(r.error());
      continue;
    }
    bool running = r->status == exec::kStatusRunning || (*containers)->MonitorAlive(r->id);
    if (running && !f.GetBool("force")) {
      rc = cli.Fail(core::Error(core::Code::kFailedPrecondition,
                                "cannot remove container \"/" + r->name + "\": container is running: stop the container before removing or force remove"));
      continue;
    }
    core::Status s = running ? (*containers)->Stop(*r, "KILL", 0) : core::Ok();
    if (s.ok()) s = (*containers)->Remove(*r);
    if (s.ok() && f.GetBool("volumes")) s = exec::Volumes(cli.ctx().root).RemoveAnonymous(r->mounts);  // rm -v
    if (!s.ok()) {
      rc = cli.Fail(s.error());
      continue;
    }
    std::printf("%s\n", ref.c_str());
  }
  return rc;
}

int RunContainerPrune(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("force", 'f', "Do not prompt for confirmation");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "container prune", "container prune [OPTIONS]", args, pos, code, 0, 0)) return code;
  if (!f.GetBool("force") && !Confirm("WARNING! This will remove all stopped containers.")) return kExitOk;
  auto pruned = PruneContainers(cli, 0);
  if (!pruned.ok()) return cli.Fail(pruned.error());
  PrintPruned("Deleted Containers:", pruned->lines);
  std::printf("Total reclaimed space: %s\n", HumanSize(static_cast<double>(pruned->reclaimed)).c_str());
  return kExitOk;
}

}  // namespace xbuild::cli
