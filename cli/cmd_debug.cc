// xbuild debug parse [FILE]: prints BuildKit's dump of the Dockerfile's parse tree.
#include <algorithm>
#include <cstdio>
#include <iterator>

#include "cli/cli.h"
#include "core/fs.h"
#include "frontend/parser/parser.h"

namespace xbuild::cli {
namespace {

int RunDebugParse(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "debug parse", "debug parse [FILE]  (FILE: default ./Dockerfile, - for stdin)", args,
                    pos, code, 0, 1)) {
    return code;
  }
  std::string path = pos.empty() ? "Dockerfile" : pos[0];
  std::string text;
  if (path == "-") {
    char buf[65536];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) text.append(buf, n);
  } else {
    auto read = core::ReadFile(path);
    if (!read.ok()) return cli.Fail(read.error());
    text = std::move(*read);
  }
  auto parsed = frontend::Parse(text, path == "-" ? "Dockerfile" : core::Basename(path));
  if (!parsed.ok()) return cli.Fail(parsed.error());
  std::fputs(frontend::Dump(*parsed).c_str(), stdout);
  return kExitOk;
}

}  // namespace

int RunDebug(Cli& cli, const std::vector<std::string>& args) {
  // The first positional is the debug subcommand; global flags (moved here by main) may come
  // before it.
  static const char* kValueFlags[] = {"--root", "--config", "--log-level", "-l", "--insecure-registry"};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool takes_value = std::any_of(std::begin(kValueFlags), std::end(kValueFlags), [&](const char* f) { return a == f; });
    if (takes_value) {
      ++i;
      continue;
    }
    if (a.starts_with("-")) continue;
    if (a != "parse") break;
    std::vector<std::string> rest(args.begin(), args.begin() + static_cast<long>(i));
    rest.insert(rest.end(), args.begin() + static_cast<long>(i) + 1, args.end());
    return RunDebugParse(cli, rest);
  }
  return cli.UsageError("debug", "usage: xbuild debug parse [FILE]");
}

}  // namespace xbuild::cli
