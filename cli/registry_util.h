// What the registry commands share: a transport configured from the CLI's config (insecure
// registries, certs.d) and a client reading Docker's credentials.
#pragma once

#include <memory>
#include <string>

#include "cli/cli.h"
#include "registry/client.h"
#include "registry/http.h"

namespace xbuild::cli {

struct RegistrySession {
  std::unique_ptr<registry::CurlTransport> transport;
  std::unique_ptr<registry::CredentialStore> creds;
  std::unique_ptr<registry::Client> client;
};

// Calls cli.Setup(). certs.d: <config dir>/certs.d, then /etc/docker/certs.d.
core::Result<RegistrySession> OpenRegistry(Cli& cli);
// "https://host:5000/v2/" -> "host:5000"; "" / "docker.io" / index.docker.io URLs -> "docker.io".
std::string NormalizeRegistryHost(std::string_view arg);

}  // namespace xbuild::cli
