#include "cli/registry_util.h"

#include <cstdlib>

#include "core/fs.h"

namespace xbuild::cli {

core::Result<RegistrySession> OpenRegistry(Cli& cli) {
  XB_TRY(cli.Setup());
  registry::TransportOptions o;
  o.insecure_registries = cli.ctx().config.insecure_registries;
  std::string config_path = cli.config_flag;
  if (config_path.empty()) {
    const char* e = std::getenv("XBUILD_CONFIG");
    config_path = (e && *e) ? e : core::DefaultConfigPath();
  }
  o.cert_dirs = {core::JoinPath(core::Dirname(config_path), "certs.d"), "/etc/docker/certs.d"};
  RegistrySession s;
  s.transport = std::make_unique<registry::CurlTransport>(std::move(o));
  s.creds = std::make_unique<registry::CredentialStore>(registry::DockerConfigPath());
  registry::CredentialStore* cs = s.creds.get();
  registry::ClientOptions co;
  co.mirrors = cli.ctx().config.registry_mirrors;
  co.upload_state_dir = core::JoinPath(cli.ctx().root, "uploads");
  co.log = cli.ctx().log;
  // For registries behind proxies that cap request bodies: upload blobs in PATCH chunks.
  if (const char* c = std::getenv("XBUILD_UPLOAD_CHUNK_SIZE"); c && *c) {
    char* end = nullptr;
    long long n = std::strtoll(c, &end, 10);
    if (*end != '\0' || n < 0) {
      return core::Error(core::Code::kInvalidArgument, "XBUILD_UPLOAD_CHUNK_SIZE=" + std::string(c) + ": not a byte count");
    }
    co.upload_chunk_size = n;
  }
  s.client = std::make_unique<registry::Client>(
      *s.transport, [cs](std::string_view host) { return cs->Get(host); }, std::move(co));
  return s;
}

std::string NormalizeRegistryHost(std::string_view arg) {
  std::string h(arg);
  if (size_t p = h.find("://"); p != std::string::npos) h = h.substr(p + 3);
  h = h.substr(0, h.find('/'));
  if (h.empty() || h == "index.docker.io" || h == "registry-1.docker.io") return "docker.io";
  return h;
}

}  // namespace xbuild::cli
