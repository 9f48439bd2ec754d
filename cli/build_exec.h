// Running a build (`xbuild build` with --call=build, the default): lower the Dockerfile, solve it
// with the real runner (snapshots, sandbox, build cache), export the image, tag it.
#pragma once

#include <string>
#include <vector>

#include "cli/cli.h"
#include "frontend/ast.h"
#include "frontend/lower.h"

namespace xbuild::cli {

struct BuildRequest {
  frontend::Dockerfile df;
  std::string dockerfile_path;
  std::string dockerfile_text;
  std::string context;  // an absolute directory; "" = the build has no context
  // The context is the user's directory: its checksum cache is kept under the state root for
  // the next build (an extracted archive is new every time).
  bool keep_checksums = true;
  frontend::LowerOptions lower;
  std::vector<std::string> tags;
  std::vector<std::string> labels;  // "k=v"
  bool no_cache = false;
  bool pull = false;
  bool quiet = false;
  std::string progress = "auto";  // auto|plain|tty|quiet|rawjson
  std::string iidfile;
  bool oci_mediatypes = true;
};

int ExecuteBuild(Cli& cli, BuildRequest req);

}  // namespace xbuild::cli
