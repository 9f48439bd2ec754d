// Running a build (`xbuild build` with --call=build, the default): lower the Dockerfile, solve it
// with the real runner (snapshots, sandbox, build cache), export the image, tag it.
#pragma once

#include <string>
#include <vector>

#include "cli/build_output.h"
#include "cli/cli.h"
#include "frontend/ast.h"
#include "frontend/lower.h"

namespace xbuild::cli {

struct BuildRequest {
  frontend::Dockerfile df;
  std::string dockerfile_path;
  std::string context;  // directory
  frontend::LowerOptions lower;
  std::vector<std::string> tags;
  std::vector<std::string> labels;  // "k=v"
  bool no_cache = false;
  bool pull = false;
  bool quiet = false;
  std::string progress = "auto";  // auto|plain|tty|quiet|rawjson
  std::string iidfile;
  std::string metadata_file;
  bool oci_mediatypes = true;
  std::vector<BuildOutput> outputs;  // -o
  bool push = false;
  image::Compression compression = image::Compression::kGzip;
};

int ExecuteBuild(Cli& cli, BuildRequest req);

}  // namespace xbuild::cli
