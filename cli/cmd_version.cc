// xbuild version [--format json]
#include <archive.h>
#include <openssl/opensslv.h>
#include <sqlite3.h>
#include <sys/utsname.h>

#include <cstdio>

#include "cli/cli.h"
#include "core/json.h"
#include "image/manifest.h"

#ifndef XBUILD_VERSION
#define XBUILD_VERSION "dev"
#endif

namespace xbuild::cli {

int RunVersion(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("format", 'f', "", "Format output: json");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "version", "version [OPTIONS]", args, pos, code, 0, 0)) return code;
  core::OrderedJson j;
  j["Version"] = XBUILD_VERSION;
  j["Os"] = "linux";
  j["Arch"] = image::HostPlatform().architecture;
  j["Compiler"] = "g++ " __VERSION__;
  j["OpenSSL"] = OPENSSL_VERSION_TEXT;
  j["SQLite"] = sqlite3_libversion();
  j["LibArchive"] = archive_version_string();
  if (f.GetString("format") == "json") {
    std::printf("%s\n", j.dump().c_str());
    return kExitOk;
  }
  std::printf("xbuild version %s\n", XBUILD_VERSION);
  std::printf(" OS/Arch:    linux/%s\n Compiler:   %s\n OpenSSL:    %s\n SQLite:     %s\n LibArchive: %s\n",
              j["Arch"].get<std::string>().c_str(), j["Compiler"].get<std::string>().c_str(),
              OPENSSL_VERSION_TEXT, sqlite3_libversion(), archive_version_string());
  return kExitOk;
}

}  // namespace xbuild::cli
