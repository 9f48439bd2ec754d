// Lowering: a typed Dockerfile + build options -> the solver's Definition and the image config
// of the target stage. Variables are expanded here (BuildKit's rules: which instructions expand,
// ARG scoping, ENV ordering); stages the target does not need are not lowered. The frontend never
// touches a registry: base image configs come through the ImageResolver interface.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "frontend/ast.h"
#include "frontend/lint.h"
#include "image/config.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "solver/definition.h"

namespace xbuild::frontend {

class ImageResolver {
 public:
  virtual ~ImageResolver() = default;
  // The config of `ref` for `platform` (FROM images; ONBUILD triggers, ENV, WORKDIR, ...).
  virtual core::Result<image::ImageConfig> ResolveImageConfig(const image::Reference& ref,
                                                              const image::Platform& platform) = 0;
  // The manifest digest that ResolveImageConfig found for `ref`, when the resolver knows it. It
  // only names the FROM step for progress ("[1/3] FROM docker.io/library/busybox:latest@sha256:..",
  // as BuildKit shows it); it never enters a vertex digest.
  virtual std::optional<core::Digest> ResolvedDigest(const image::Reference&) { return std::nullopt; }
};

struct LowerOptions {
  std::string target;                             // --target; empty: the last stage
  std::map<std::string, std::string> build_args;  // --build-arg
  image::Platform target_platform = image::HostPlatform();
  image::Platform build_platform = image::HostPlatform();
  std::vector<std::string> context_excludes;      // .dockerignore patterns
  std::optional<int64_t> source_date_epoch;
  std::vector<std::string> extra_hosts;  // --add-host "name:ip" for every RUN step
  // --build-context NAME=VALUE: a directory, docker-image://REF, or a git/http URL. FROM NAME,
  // COPY --from=NAME and RUN --mount from=NAME take it before a stage or image of that name.
  std::map<std::string, std::string> named_contexts;
  // When set, expansion-time lints are also appended here as they are found, so a caller sees
  // them even when lowering then fails (--call=check).
  std::vector<Warning>* warnings_sink = nullptr;
};

struct LowerResult {
  solver::Definition definition;
  image::ImageConfig config;       // the target stage's image config
  int target_stage = 0;
  std::vector<int> stages;         // the stages lowered, in order
  std::vector<Warning> warnings;   // expansion-time lints (UndefinedVar, UndefinedArgInFrom)
  std::vector<std::string> unused_build_args;
};

// resolver may be null: base images then start from an empty config.
core::Result<LowerResult> Lower(const Dockerfile& df, const LowerOptions& opts, ImageResolver* resolver);

// The build args a Dockerfile declares, with their defaults (for --call=outline).
struct ArgInfo {
  std::string name;
  std::optional<std::string> default_value;
  int line = 0;
  bool global = false;
};
std::vector<ArgInfo> DeclaredArgs(const Dockerfile& df);

// Names of the predefined proxy args and the automatic platform args.
const std::vector<std::string>& ProxyArgs();
std::map<std::string, std::string> PlatformArgs(const image::Platform& target, const image::Platform& build);

}  // namespace xbuild::frontend
