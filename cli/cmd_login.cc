// xbuild login [-u USER] [-p PASS | --password-stdin] [SERVER]; xbuild logout [SERVER]
#include <unistd.h>

#include <cstdio>

#include "cli/cli.h"
#include "cli/registry_util.h"
#include "core/fs.h"
#include "core/strings.h"

namespace xbuild::cli {

int RunLogin(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("username", 'u', "", "Username");
  f.String("password", 'p', "", "Password");
  f.Bool("password-stdin", 0, "Take the password from stdin");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "login", "login [OPTIONS] [SERVER]", args, pos, code, 0, 1)) return code;
  std::string host = NormalizeRegistryHost(pos.empty() ? "" : pos[0]);
  registry::Credentials creds;
  creds.username = f.GetString("username");
  if (f.GetBool("password-stdin")) {
    if (f.Changed("password")) return cli.UsageError("login", "--password and --password-stdin are mutually exclusive");
    if (creds.username.empty()) return cli.UsageError("login", "Must provide --username with --password-stdin");
    auto in = core::ReadFd(STDIN_FILENO, 64 * 1024);
    if (!in.ok()) return cli.Fail(in.error());
    std::string pw = *in;
    while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
    creds.password = pw;
  } else {
    creds.password = f.GetString("password");
  }
  if (creds.username.empty() || creds.password.empty()) {
    return cli.UsageError("login", "a username (-u) and a password (-p or --password-stdin) are required");
  }
  if (f.Changed("password")) {
    std::fprintf(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
  }
  auto reg = OpenRegistry(cli);
  if (!reg.ok()) return cli.Fail(reg.error());
  if (auto s = reg->client->Login(host, creds); !s.ok()) return cli.Fail(s.error());
  if (auto s = reg->creds->Store(host, creds); !s.ok()) return cli.Fail(s.error());
  std::printf("Login Succeeded\n");
  return kExitOk;
}

int RunLogout(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "logout", "logout [SERVER]", args, pos, code, 0, 1)) return code;
  std::string host = NormalizeRegistryHost(pos.empty() ? "" : pos[0]);
  registry::CredentialStore creds(registry::DockerConfigPath());
  auto s = creds.Erase(host);
  if (!s.ok() && s.error().code() == core::Code::kNotFound) {
    std::printf("Not logged in to %s\n", host.c_str());
    return kExitOk;
  }
  if (!s.ok()) return cli.Fail(s.error());
  std::printf("Removing login credentials for %s\n", registry::CredentialKey(host).c_str());
  return kExitOk;
}

}  // namespace xbuild::cli
