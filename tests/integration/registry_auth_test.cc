// Registry TLS and token authentication, end to end through the xbuild binary against a real
// docker-registry (Debian's 2.8). Needs root, docker-registry, skopeo, openssl, iproute2 and
// busybox-static (scripts/setup-deps.sh installs them).
//
// RegistryTlsTest: loopback registries are insecure by default (as in Docker), so TLS
// verification is only exercised on another address. Each test moves its thread into a fresh
// network namespace (children inherit it), puts 10.231.0.1 on that namespace's `lo` and runs an
// https registry there with a certificate from a test CA made by the openssl CLI. Nothing leaves
// the namespace; TearDown stops the registries and returns the thread to its old namespace.
//
// RegistryAuthTest: the registry delegates to a token issuer written below (`TokenIssuer`): a
// one-thread HTTP/1.1 server on loopback that issues RS256 JWTs (the signing certificate in the
// `x5c` header, and in the registry's rootcertbundle), speaks both the Docker token protocol
// (GET with Basic auth, repeated `scope` parameters) and OAuth2 (POST password and refresh_token
// grants), and records every request so tests can check what xbuild asked for.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "core/subprocess.h"
#include "integration/registry_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::RunTool;
using testing::TempDir;
using testing::ToolOut;
using testing::WriteTestFile;

// ---------------------------------------------------------------------------------------------
// Small helpers shared by both fixtures.

// Runs xbuild with DOCKER_CONFIG set and XBUILD_CONFIG cleared; global flags come first.
ToolOut RunXbuild(const std::vector<std::string>& global, const std::vector<std::string>& args,
                  const std::string& docker_config, const std::string& stdin_data = "") {
  std::vector<std::string> argv = {XBUILD_BINARY};
  argv.insert(argv.end(), global.begin(), global.end());
  argv.insert(argv.end(), args.begin(), args.end());
  core::RunOptions o;
  o.extra_env = {{"DOCKER_CONFIG", docker_config}, {"XBUILD_CONFIG", ""}};
  if (!stdin_data.empty()) o.stdin_data = stdin_data;
  return RunTool(argv, o);
}

// "...\nNAME: digest: sha256:.. size: N\n" -> "sha256:..".
std::string PushedDigest(const std::string& out) {
  size_t p = out.find(": digest: ");
  if (p == std::string::npos) return "";
  p += 10;
  return out.substr(p, out.find(' ', p) - p);
}

// "Digest: sha256:..\n" in pull output -> "sha256:..".
std::string PulledDigest(const std::string& out) {
  size_t p = out.find("Digest: ");
  if (p == std::string::npos) return "";
  p += 8;
  return out.substr(p, out.find('\n', p) - p);
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// TLS

constexpr char kTlsIp[] = "10.231.0.1";

// Extension sections for the test PKI, used by `openssl req` and `openssl x509 -req`.
constexpr char kOpensslConfig[] = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:10.231.0.1
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
)";

class RegistryTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"docker-registry", "skopeo", "openssl", "ip"}) {
      ASSERT_FALSE(core::LookPath(tool).empty())
          << tool << " is missing: run scripts/setup-deps.sh";
    }
    // Our own network namespace: the registry's address exists only here.
    old_netns_.Reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(old_netns_.valid()) << std::strerror(errno);
    if (::unshare(CLONE_NEWNET) != 0) {
      int err = errno;
      old_netns_.Reset();
      if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
      FAIL() << "unshare(CLONE_NEWNET): " << std::strerror(err);
    }
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"ip", "link", "set", "lo", "up"},
             {"ip", "addr", "add", std::string(kTlsIp) + "/32", "dev", "lo"}}) {
      ToolOut o = RunTool(argv);
      ASSERT_EQ(o.code, 0) << argv[1] << ": " << o.err;
    }
    ASSERT_NO_FATAL_FAILURE(MakePki());
    rootfs_ = tmp_.Sub("rootfs");
    ASSERT_NO_FATAL_FAILURE(testing::MakeBusyboxRootfs(rootfs_));
    root_ = tmp_.Sub("state");
    docker_config_ = tmp_.Sub("docker-config");
    config_dir_ = tmp_.Sub("xbuild-config");
    config_file_ = config_dir_ + "/daemon.json";
    WriteTestFile(config_dir_, "daemon.json", "{}\n");
  }

  void TearDown() override {
    // Stop the registries while their address still exists, then leave the namespace (it
    // disappears with its last process).
    registry_.Stop();
    other_.Stop();
    if (old_netns_.valid()) {
      EXPECT_EQ(::setns(old_netns_.get(), CLONE_NEWNET), 0) << std::strerror(errno);
      old_netns_.Reset();
    }
  }

  void Openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    ToolOut o = RunTool(argv);
    ASSERT_EQ(o.code, 0) << "openssl " << args[0] << ": " << o.err;
  }

  // A CA, a server certificate for 10.231.0.1 and a client certificate, all signed by the CA
  // (which is also the registry's client CA for mutual TLS). P-256 keys: quick to make.
  void MakePki() {
    pki_ = tmp_.Sub("pki");
    WriteTestFile(pki_, "openssl.cnf", kOpensslConfig);
    std::string cnf = pki_ + "/openssl.cnf";
    std::vector<std::string> newkey = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                       "-nodes"};
    auto req = [&](std::vector<std::string> args) {
      std::vector<std::string> a = {"req", "-config", cnf};
      a.insert(a.end(), newkey.begin(), newkey.end());
      a.insert(a.end(), args.begin(), args.end());
      return a;
    };
    ASSERT_NO_FATAL_FAILURE(
        Openssl(req({"-x509", "-extensions", "ca_ext", "-days", "2", "-subj", "/CN=xbuild test CA",
                     "-keyout", pki_ + "/ca.key", "-out", pki_ + "/ca.crt"})));
    struct Leaf {
      const char* name;
      const char* cn;
      const char* ext;
      const char* serial;
    };
    for (const Leaf& l : {Leaf{"server", "/CN=10.231.0.1", "server_ext", "2"},
                          Leaf{"client", "/CN=xbuild test client", "client_ext", "3"}}) {
      std::string base = pki_ + "/" + l.name;
      ASSERT_NO_FATAL_FAILURE(
          Openssl(req({"-new", "-subj", l.cn, "-keyout", base + ".key", "-out", base + ".csr"})));
      ASSERT_NO_FATAL_FAILURE(
          Openssl({"x509", "-req", "-in", base + ".csr", "-CA", pki_ + "/ca.crt", "-CAkey",
                   pki_ + "/ca.key", "-set_serial", l.serial, "-days", "2", "-extfile", cnf,
                   "-extensions", l.ext, "-out", base + ".crt"}));
    }
  }

  // Starts an https registry on 10.231.0.1 (a free port); with mutual_tls it demands a client
  // certificate signed by the test CA.
  void StartRegistry(testing::RegistryProcess& reg, const std::string& name, bool mutual_tls) {
    testing::RegistryProcess::Options o;
    o.ip = kTlsIp;
    o.http_yaml =
        "  tls:\n    certificate: " + pki_ + "/server.crt\n    key: " + pki_ + "/server.key\n";
    if (mutual_tls) o.http_yaml += "    clientcas:\n      - " + pki_ + "/ca.crt\n";
    ASSERT_NO_FATAL_FAILURE(reg.Start(tmp_.Sub(name), o));
  }

  // <config dir>/certs.d/<host>/: ca.crt, and client.cert + client.key when asked.
  std::string CertsDir(const std::string& host) { return config_dir_ + "/certs.d/" + host; }
  void TrustCa(const std::string& host) {
    WriteTestFile(CertsDir(host), "ca.crt", testing::ReadTestFile(pki_ + "/ca.crt"));
  }
  void InstallClientCert(const std::string& host) {
    WriteTestFile(CertsDir(host), "client.cert", testing::ReadTestFile(pki_ + "/client.crt"));
    WriteTestFile(CertsDir(host), "client.key", testing::ReadTestFile(pki_ + "/client.key"), 0600);
  }

  ToolOut Xb(const std::vector<std::string>& args, const std::string& root = "",
             const std::vector<std::string>& extra_global = {}) {
    std::vector<std::string> global = {"--root", root.empty() ? root_ : root, "--config",
                                       config_file_};
    global.insert(global.end(), extra_global.begin(), extra_global.end());
    return RunXbuild(global, args, docker_config_);
  }

  void Import(const std::string& name) {
    ToolOut o = Xb({"import", "--change", "CMD [\"/bin/sh\"]", rootfs_, name});
    ASSERT_EQ(o.code, 0) << o.err;
  }

  // The digest skopeo sees, trusting the test CA (and presenting the client certificate when
  // the certs dir has one).
  std::string SkopeoDigest(const std::string& ref, const std::string& host) {
    ToolOut si = RunTool({"skopeo", "inspect", "--cert-dir", CertsDir(host), "docker://" + ref});
    EXPECT_EQ(si.code, 0) << si.err;
    auto j = core::Json::parse(si.out, nullptr, false);
    return j.is_object() ? j.value("Digest", "") : "";
  }

  bool RepositoryExists(const testing::RegistryProcess& reg, const std::string& repo) {
    return core::Exists(reg.storage() + "/docker/registry/v2/repositories/" + repo);
  }

  // An error a user can act on: it names the registry and says a certificate is the problem.
  static void ExpectCertificateError(const ToolOut& o, const std::string& host) {
    EXPECT_NE(o.code, 0);
    EXPECT_TRUE(Contains(o.err, host)) << o.err;
    EXPECT_TRUE(Contains(o.err, "certificate")) << o.err;
  }

  TempDir tmp_;
  core::UniqueFd old_netns_;
  std::string pki_, rootfs_, root_, docker_config_, config_dir_, config_file_;
  testing::RegistryProcess registry_, other_;
};

TEST_F(RegistryTlsTest, UntrustedCertificateFailsAndNamesTheHost) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry(registry_, "registry", false));
  std::string host = registry_.host();
  std::string ref = host + "/app:1";
  ASSERT_NO_FATAL_FAILURE(Import(ref));

  ToolOut push = Xb({"push", ref});
  ExpectCertificateError(push, host);
  EXPECT_FALSE(RepositoryExists(registry_, "app"));

  ToolOut pull = Xb({"pull", ref}, tmp_.Sub("state2"));
  ExpectCertificateError(pull, host);

  // A CA for another host:port does not count for this one.
  TrustCa(std::string(kTlsIp) + ":1");
  ExpectCertificateError(Xb({"push", ref}), host);
  EXPECT_FALSE(RepositoryExists(registry_, "app"));
}

TEST_F(RegistryTlsTest, CaInCertsDirIsTrusted) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry(registry_, "registry", false));
  std::string host = registry_.host();
  TrustCa(host);
  std::string ref = host + "/app:1";
  ASSERT_NO_FATAL_FAILURE(Import(ref));

  ToolOut push = Xb({"push", ref});
  ASSERT_EQ(push.code, 0) << push.err;
  std::string digest = PushedDigest(push.out);
  ASSERT_TRUE(digest.starts_with("sha256:")) << push.out;

  std::string root2 = tmp_.Sub("state2");
  ToolOut pull = Xb({"pull", ref}, root2);
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_EQ(PulledDigest(pull.out), digest) << pull.out;
  EXPECT_EQ(SkopeoDigest(ref, host), digest);

  ToolOut ids = Xb({"images", "-q"}, root2);
  ASSERT_EQ(ids.code, 0) << ids.err;
  EXPECT_EQ(ids.out, Xb({"images", "-q"}).out);
}

TEST_F(RegistryTlsTest, MutualTlsNeedsTheClientCertificate) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry(registry_, "registry", true));
  std::string host = registry_.host();
  TrustCa(host);
  std::string ref = host + "/app:1";
  ASSERT_NO_FATAL_FAILURE(Import(ref));

  // The server is trusted, but we have no certificate to show it.
  ToolOut without = Xb({"push", ref});
  ExpectCertificateError(without, host);
  EXPECT_FALSE(RepositoryExists(registry_, "app"));

  InstallClientCert(host);
  ToolOut push = Xb({"push", ref});
  ASSERT_EQ(push.code, 0) << push.err;
  std::string digest = PushedDigest(push.out);
  ASSERT_TRUE(digest.starts_with("sha256:")) << push.out;
  ToolOut pull = Xb({"pull", ref}, tmp_.Sub("state2"));
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_EQ(PulledDigest(pull.out), digest) << pull.out;
  EXPECT_EQ(SkopeoDigest(ref, host), digest);
}

TEST_F(RegistryTlsTest, InsecureRegistrySkipsVerificationForThatHostOnly) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry(registry_, "registry", false));
  ASSERT_NO_FATAL_FAILURE(StartRegistry(other_, "other", false));
  std::string listed = registry_.host(), unlisted = other_.host();
  std::vector<std::string> insecure = {"--insecure-registry", listed};
  std::string ref = listed + "/app:1", other_ref = unlisted + "/app:1";
  ASSERT_NO_FATAL_FAILURE(Import(ref));
  ASSERT_NO_FATAL_FAILURE(Import(other_ref));

  // The listed registry only speaks TLS, so this push went over unverified TLS.
  ToolOut push = Xb({"push", ref}, "", insecure);
  ASSERT_EQ(push.code, 0) << push.err;
  std::string digest = PushedDigest(push.out);
  ASSERT_TRUE(digest.starts_with("sha256:")) << push.out;
  ToolOut pull = Xb({"pull", ref}, tmp_.Sub("state2"), insecure);
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_EQ(PulledDigest(pull.out), digest) << pull.out;
  TrustCa(listed);  // for skopeo only
  EXPECT_EQ(SkopeoDigest(ref, listed), digest);

  // Same address, another port, not listed: still verified, so still refused.
  ToolOut refused = Xb({"push", other_ref}, "", insecure);
  ExpectCertificateError(refused, unlisted);
  EXPECT_FALSE(RepositoryExists(other_, "app"));
}

// ---------------------------------------------------------------------------------------------
// Token auth: the issuer.

template <auto Fn>
struct OpensslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpensslDeleter<EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpensslDeleter<X509_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpensslDeleter<EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OpensslDeleter<BIO_free_all>>;

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

// JOSE's base64url without padding.
std::string Base64Url(std::string_view in) {
  std::string s = Base64(in);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t pad = in.ends_with("==") ? 2 : in.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// application/x-www-form-urlencoded decoding ('+' is a space).
std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseForm(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& part : core::Split(s, '&')) {
    if (part.empty()) continue;
    size_t eq = part.find('=');
    out.emplace_back(UrlDecode(part.substr(0, eq)),
                     eq == std::string::npos ? "" : UrlDecode(part.substr(eq + 1)));
  }
  return out;
}

struct HttpRequest {
  std::string method, path, query, body;
  std::map<std::string, std::string> headers;  // keys lowercased
};

struct HttpReply {
  int status = 200;
  std::string body;
};

// One request read from a connection (Content-Length bodies only); nullopt when it is cut short.
std::optional<HttpRequest> ReadRequest(int fd) {
  std::string data;
  char buf[4096];
  size_t header_end;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0 || data.size() > 64 * 1024) return std::nullopt;
    data.append(buf, static_cast<size_t>(n));
  }
  HttpRequest req;
  std::vector<std::string> lines = core::Split(data.substr(0, header_end), '\n');
  if (lines.empty()) return std::nullopt;
  std::vector<std::string> first = core::Split(core::Trim(lines[0]), ' ');
  if (first.size() < 2) return std::nullopt;
  req.method = first[0];
  size_t q = first[1].find('?');
  req.path = first[1].substr(0, q);
  if (q != std::string::npos) req.query = first[1].substr(q + 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    req.headers[core::ToLower(core::Trim(lines[i].substr(0, colon)))] =
        core::Trim(lines[i].substr(colon + 1));
  }
  size_t length = 0;
  if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
    length = std::strtoul(it->second.c_str(), nullptr, 10);
    if (length > 1024 * 1024) return std::nullopt;
  }
  req.body = data.substr(header_end + 4);
  while (req.body.size() < length) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    req.body.append(buf, static_cast<size_t>(n));
  }
  return req;
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// What the issuer saw and answered, for assertions.
struct TokenRequest {
  std::string method;      // GET, or POST for OAuth2
  std::string grant_type;  // POST: "password" or "refresh_token"
  std::string user;        // who authenticated; empty: anonymous (or failed)
  std::string service;
  std::vector<std::string> scopes;
  int status = 0;
};

// A token server for docker-registry's `auth.token`. Users: alice (pull and push everywhere),
// bob (pull everywhere), both with password "secret"; everyone, anonymous included, may pull
// repositories under public/. Like Docker's token servers it grants the intersection of what was
// asked and what is allowed (a token with less access, not an error), and answers 401 only to
// wrong credentials.
class TokenIssuer {
 public:
  static constexpr char kService[] = "xbuild-test";
  static constexpr char kIssuer[] = "xbuild-test-issuer";

  TokenIssuer() = default;
  ~TokenIssuer() { Stop(); }
  TokenIssuer(const TokenIssuer&) = delete;
  TokenIssuer& operator=(const TokenIssuer&) = delete;

  // Makes the signing key and certificate and starts serving on 127.0.0.1 (a free port).
  void Start() {
    ASSERT_NO_FATAL_FAILURE(MakeKey());
    listen_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listen_.valid());
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(listen_.get(), 64), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    wake_read_.Reset(p[0]);
    wake_write_.Reset(p[1]);
    thread_ = std::thread([this] { Serve(); });
  }

  void Stop() {
    if (!thread_.joinable()) return;
    char c = 'x';
    (void)!::write(wake_write_.get(), &c, 1);
    thread_.join();
    listen_.Reset();
  }

  std::string realm() const { return "http://127.0.0.1:" + std::to_string(port_) + "/token"; }
  const std::string& cert_pem() const { return cert_pem_; }

  // When off, POST answers 404, as token servers without OAuth2 do.
  void set_oauth2(bool on) { oauth2_ = on; }
  // A refresh token (a config.json `identitytoken`) that stands for `user`.
  void AddRefreshToken(const std::string& token, const std::string& user) {
    std::lock_guard<std::mutex> l(mu_);
    refresh_tokens_[token] = user;
  }

  std::vector<TokenRequest> requests() const {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }
  void ClearRequests() {
    std::lock_guard<std::mutex> l(mu_);
    requests_.clear();
  }

 private:
  void MakeKey() {
    PkeyCtxPtr kctx(EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nullptr));
    ASSERT_TRUE(kctx);
    ASSERT_EQ(EVP_PKEY_keygen_init(kctx.get()), 1);
    ASSERT_EQ(EVP_PKEY_CTX_set_rsa_keygen_bits(kctx.get(), 2048), 1);
    EVP_PKEY* raw = nullptr;
    ASSERT_EQ(EVP_PKEY_keygen(kctx.get(), &raw), 1);
    key_.reset(raw);

    X509Ptr cert(X509_new());
    ASSERT_TRUE(cert);
    ASSERT_EQ(X509_set_version(cert.get(), 2), 1);  // v3
    ASSERT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1), 1);
    ASSERT_TRUE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600));
    ASSERT_TRUE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 2 * 24 * 3600));
    ASSERT_EQ(X509_set_pubkey(cert.get(), key_.get()), 1);
    X509_NAME* name = X509_get_subject_name(cert.get());
    ASSERT_EQ(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(kIssuer), -1, -1, 0),
        1);
    ASSERT_EQ(X509_set_issuer_name(cert.get(), name), 1);
    ASSERT_GT(X509_sign(cert.get(), key_.get(), EVP_sha256()), 0);

    BioPtr bio(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_X509(bio.get(), cert.get()), 1);
    char* pem = nullptr;
    long pem_len = BIO_get_mem_data(bio.get(), &pem);
    cert_pem_.assign(pem, static_cast<size_t>(pem_len));

    int der_len = i2d_X509(cert.get(), nullptr);
    ASSERT_GT(der_len, 0);
    std::string der(static_cast<size_t>(der_len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    ASSERT_EQ(i2d_X509(cert.get(), &p), der_len);
    cert_der_b64_ = Base64(der);
  }

  std::string SignRs256(std::string_view data) {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    size_t len = 0;
    auto in = reinterpret_cast<const unsigned char*>(data.data());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) {
      return "";
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                       data.size()) != 1) {
      return "";
    }
    sig.resize(len);
    return sig;
  }

  // The actions `user` ("" for anonymous) may take on repository `name`.
  static std::set<std::string> Allowed(const std::string& user, const std::string& name) {
    std::set<std::string> a;
    if (name.starts_with("public/")) a.insert("pull");
    if (user == "alice") a.insert({"pull", "push"});
    if (user == "bob") a.insert("pull");
    return a;
  }

  std::string MakeToken(const std::string& user, const std::vector<std::string>& scopes) {
    core::Json access = core::Json::array();
    for (const auto& scope : scopes) {
      // repository:NAME:ACTIONS (NAME has no ':' here; a class like "repository(plugin)" is kept).
      size_t first = scope.find(':'), last = scope.rfind(':');
      if (first == std::string::npos || first == last) continue;
      std::string type = scope.substr(0, first);
      std::string name = scope.substr(first + 1, last - first - 1);
      if (type != "repository") continue;
      std::set<std::string> allowed = Allowed(user, name);
      core::Json granted = core::Json::array();
      for (const auto& action : core::Split(scope.substr(last + 1), ',')) {
        if (allowed.count(action)) granted.push_back(action);
      }
      if (!granted.empty())
        access.push_back({{"type", type}, {"name", name}, {"actions", granted}});
    }
    int64_t now = std::time(nullptr);
    core::Json header = {
        {"typ", "JWT"}, {"alg", "RS256"}, {"x5c", core::Json::array({cert_der_b64_})}};
    core::Json claims = {{"iss", kIssuer},
                         {"sub", user},
                         {"aud", kService},
                         {"exp", now + kExpiresIn},
                         {"nbf", now - 10},
                         {"iat", now},
                         {"jti", std::to_string(++issued_)},
                         {"access", access}};
    std::string signing_input = Base64Url(header.dump()) + "." + Base64Url(claims.dump());
    return signing_input + "." + Base64Url(SignRs256(signing_input));
  }

  static HttpReply Unauthorized() {
    return {401, core::Json{{"details", "incorrect username or password"}}.dump()};
  }

  HttpReply Answer(const HttpRequest& http, TokenRequest& rec) {
    rec.method = http.method;
    if (http.path != "/token") return {404, "not found"};
    std::string user;
    std::optional<std::string> refresh;
    if (http.method == "GET") {
      for (const auto& [k, v] : ParseForm(http.query)) {
        if (k == "service") rec.service = v;
        if (k == "scope") {
          for (const auto& s : core::Split(v, ' ')) {
            if (!s.empty()) rec.scopes.push_back(s);
          }
        }
      }
      if (auto it = http.headers.find("authorization"); it != http.headers.end()) {
        if (!it->second.starts_with("Basic ")) return Unauthorized();
        auto dec = Base64Decode(it->second.substr(6));
        if (!dec) return Unauthorized();
        size_t colon = dec->find(':');
        std::string u = dec->substr(0, colon);
        if (colon == std::string::npos || !kPasswords.count(u) ||
            kPasswords.at(u) != dec->substr(colon + 1)) {
          return Unauthorized();
        }
        user = u;
      }
    } else if (http.method == "POST") {
      if (!oauth2_) return {404, "404 page not found"};
      std::string username, password, token, access_type;
      for (const auto& [k, v] : ParseForm(http.body)) {
        if (k == "service") rec.service = v;
        if (k == "grant_type") rec.grant_type = v;
        if (k == "username") username = v;
        if (k == "password") password = v;
        if (k == "refresh_token") token = v;
        if (k == "access_type") access_type = v;
        if (k == "scope") {
          for (const auto& s : core::Split(v, ' ')) {
            if (!s.empty()) rec.scopes.push_back(s);
          }
        }
      }
      if (rec.grant_type == "password") {
        if (!kPasswords.count(username) || kPasswords.at(username) != password) {
          return Unauthorized();
        }
        user = username;
        if (access_type == "offline") {
          refresh = "refresh-" + username + "-" + std::to_string(++issued_);
          AddRefreshToken(*refresh, user);
        }
      } else if (rec.grant_type == "refresh_token") {
        std::lock_guard<std::mutex> l(mu_);
        auto it = refresh_tokens_.find(token);
        if (it == refresh_tokens_.end()) return Unauthorized();
        user = it->second;
      } else {
        return {400, core::Json{{"error", "unsupported_grant_type"}}.dump()};
      }
    } else {
      return {405, "method not allowed"};
    }
    rec.user = user;
    std::string jwt = MakeToken(user, rec.scopes);
    if (jwt.empty()) return {500, "signing failed"};
    core::Json reply = {{"access_token", jwt}, {"expires_in", kExpiresIn}};
    if (http.method == "GET") reply["token"] = jwt;  // the Docker token protocol's name
    if (refresh) reply["refresh_token"] = *refresh;
    return {200, reply.dump()};
  }

  void Handle(int fd) {
    timeval tv{5, 0};  // a client that stalls cannot wedge the server (or Stop)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::optional<HttpRequest> http = ReadRequest(fd);
    if (!http) return;
    TokenRequest rec;
    HttpReply reply = Answer(*http, rec);
    rec.status = reply.status;
    {
      std::lock_guard<std::mutex> l(mu_);
      requests_.push_back(rec);
    }
    std::string type = reply.body.starts_with("{") ? "application/json" : "text/plain";
    WriteAll(fd, "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nContent-Type: " + type +
                     "\r\nContent-Length: " + std::to_string(reply.body.size()) +
                     "\r\nConnection: close\r\n\r\n" + reply.body);
  }

  void Serve() {
    while (true) {
      pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      core::UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn.valid()) Handle(conn.get());
    }
  }

  static constexpr int64_t kExpiresIn = 300;
  static inline const std::map<std::string, std::string> kPasswords = {{"alice", "secret"},
                                                                       {"bob", "secret"}};

  PkeyPtr key_;
  std::string cert_pem_, cert_der_b64_;
  core::UniqueFd listen_, wake_read_, wake_write_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> oauth2_{true};
  int64_t issued_ = 0;  // used by the server thread only
  mutable std::mutex mu_;
  std::vector<TokenRequest> requests_;                 // guarded by mu_
  std::map<std::string, std::string> refresh_tokens_;  // guarded by mu_
};

// ---------------------------------------------------------------------------------------------
// Token auth: the tests.

class RegistryAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"docker-registry", "skopeo"}) {
      ASSERT_FALSE(core::LookPath(tool).empty())
          << tool << " is missing: run scripts/setup-deps.sh";
    }
    ASSERT_NO_FATAL_FAILURE(issuer_.Start());
    WriteTestFile(tmp_.path(), "issuer.crt", issuer_.cert_pem());
    testing::RegistryProcess::Options o;
    o.extra_yaml = "auth:\n  token:\n    realm: " + issuer_.realm() +
                   "\n    service: " + TokenIssuer::kService +
                   "\n    issuer: " + TokenIssuer::kIssuer +
                   "\n    rootcertbundle: " + tmp_.Sub("issuer.crt") + "\n";
    ASSERT_NO_FATAL_FAILURE(registry_.Start(tmp_.Sub("registry"), o));
    host_ = registry_.host();
    rootfs_ = tmp_.Sub("rootfs");
    ASSERT_NO_FATAL_FAILURE(testing::MakeBusyboxRootfs(rootfs_));
    root_ = tmp_.Sub("state");
    WriteTestFile(tmp_.path(), "xbuild.json", "{}\n");
  }

  void TearDown() override {
    registry_.Stop();
    issuer_.Stop();
  }

  // A DOCKER_CONFIG directory per user, so each test names whose credentials xbuild sees.
  std::string ConfigDir(const std::string& user) { return tmp_.Sub("docker-" + user); }

  // Loopback registries are insecure by default: no --insecure-registry needed.
  ToolOut Xb(const std::string& user, const std::vector<std::string>& args,
             const std::string& root = "", const std::string& stdin_data = "") {
    return RunXbuild({"--root", root.empty() ? root_ : root, "--config", tmp_.Sub("xbuild.json")},
                     args, ConfigDir(user), stdin_data);
  }

  void Login(const std::string& user) {
    ToolOut o = Xb(user, {"login", "-u", user, "--password-stdin", host_}, "", "secret\n");
    ASSERT_EQ(o.code, 0) << o.err;
    EXPECT_EQ(o.out, "Login Succeeded\n");
  }

  void Import(const std::string& name) {
    ToolOut o = Xb("nobody", {"import", "--change", "CMD [\"/bin/sh\"]", rootfs_, name});
    ASSERT_EQ(o.code, 0) << o.err;
  }

  // alice pushes `ref`; returns the manifest digest.
  std::string PushAsAlice(const std::string& ref) {
    Login("alice");
    Import(ref);
    ToolOut p = Xb("alice", {"push", ref});
    EXPECT_EQ(p.code, 0) << p.err;
    return PushedDigest(p.out);
  }

  static int Count(const std::vector<TokenRequest>& reqs, const std::string& method) {
    int n = 0;
    for (const auto& r : reqs) n += r.method == method;
    return n;
  }

  static std::string Describe(const std::vector<TokenRequest>& reqs) {
    std::string s;
    for (const auto& r : reqs) {
      s += r.method + " grant=" + r.grant_type + " user=" + r.user +
           " status=" + std::to_string(r.status) + " scopes=";
      for (const auto& sc : r.scopes) s += sc + " ";
      s += "\n";
    }
    return s;
  }

  TempDir tmp_;
  TokenIssuer issuer_;
  testing::RegistryProcess registry_;
  std::string host_, rootfs_, root_;
};

TEST_F(RegistryAuthTest, LoginPushPullWithOAuth2PasswordGrant) {
  ASSERT_NO_FATAL_FAILURE(Login("alice"));
  auto login = issuer_.requests();
  ASSERT_FALSE(login.empty());
  EXPECT_EQ(login[0].method, "POST") << Describe(login);
  EXPECT_EQ(login[0].grant_type, "password");
  EXPECT_EQ(login[0].user, "alice");
  EXPECT_EQ(login[0].service, TokenIssuer::kService);
  EXPECT_EQ(Count(login, "GET"), 0) << Describe(login);
  auto cfg = core::Json::parse(testing::ReadTestFile(ConfigDir("alice") + "/config.json"));
  EXPECT_EQ(cfg["auths"][host_]["auth"], "YWxpY2U6c2VjcmV0");  // base64("alice:secret")

  std::string ref = host_ + "/team/app:1";
  ASSERT_NO_FATAL_FAILURE(Import(ref));
  issuer_.ClearRequests();
  ToolOut push = Xb("alice", {"push", ref});
  ASSERT_EQ(push.code, 0) << push.err;
  std::string digest = PushedDigest(push.out);
  ASSERT_TRUE(digest.starts_with("sha256:")) << push.out;
  auto pushed = issuer_.requests();
  // A push is a dozen registry requests (ping, HEAD and upload per blob, manifest); the token
  // is fetched once and reused, so the issuer sees one request per scope, not per request.
  ASSERT_FALSE(pushed.empty());
  EXPECT_LE(pushed.size(), 2u) << Describe(pushed);
  for (const auto& r : pushed) {
    EXPECT_EQ(r.method, "POST") << Describe(pushed);
    EXPECT_EQ(r.grant_type, "password");
    EXPECT_EQ(r.user, "alice");
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(pushed[0].scopes, std::vector<std::string>{"repository:team/app:pull,push"});

  issuer_.ClearRequests();
  ToolOut pull = Xb("alice", {"pull", ref}, tmp_.Sub("state2"));
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_EQ(PulledDigest(pull.out), digest) << pull.out;
  auto pulled = issuer_.requests();
  ASSERT_FALSE(pulled.empty());
  EXPECT_LE(pulled.size(), 2u) << Describe(pulled);
  EXPECT_EQ(pulled[0].scopes, std::vector<std::string>{"repository:team/app:pull"});
  EXPECT_EQ(pulled[0].user, "alice");

  ToolOut a = Xb("alice", {"images", "-q"}), b = Xb("alice", {"images", "-q"}, tmp_.Sub("state2"));
  EXPECT_EQ(a.out, b.out);
}

TEST_F(RegistryAuthTest, FallsBackToGetWhenThereIsNoOAuth2) {
  issuer_.set_oauth2(false);
  ASSERT_NO_FATAL_FAILURE(Login("alice"));
  auto login = issuer_.requests();
  // A POST answered 404, then the Docker token protocol with Basic credentials.
  ASSERT_EQ(login.size(), 2u) << Describe(login);
  EXPECT_EQ(login[0].method, "POST");
  EXPECT_EQ(login[0].status, 404);
  EXPECT_EQ(login[1].method, "GET");
  EXPECT_EQ(login[1].user, "alice");
  EXPECT_EQ(login[1].service, TokenIssuer::kService);
  EXPECT_EQ(login[1].status, 200);

  std::string ref = host_ + "/team/app:1";
  ASSERT_NO_FATAL_FAILURE(Import(ref));
  issuer_.ClearRequests();
  ToolOut push = Xb("alice", {"push", ref});
  ASSERT_EQ(push.code, 0) << push.err;
  auto pushed = issuer_.requests();
  bool got_token = false;
  for (const auto& r : pushed) {
    if (r.method == "GET" && r.status == 200) {
      got_token = true;
      EXPECT_EQ(r.user, "alice");
      EXPECT_EQ(r.scopes, std::vector<std::string>{"repository:team/app:pull,push"});
    }
  }
  EXPECT_TRUE(got_token) << Describe(pushed);

  ToolOut pull = Xb("alice", {"pull", ref}, tmp_.Sub("state2"));
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_EQ(PulledDigest(pull.out), PushedDigest(push.out));
}

TEST_F(RegistryAuthTest, WrongPasswordFailsLoginAndStoresNothing) {
  ToolOut o = Xb("alice", {"login", "-u", "alice", "--password-stdin", host_}, "", "wrong\n");
  EXPECT_NE(o.code, 0);
  EXPECT_TRUE(Contains(o.err, "incorrect username or password")) << o.err;
  EXPECT_TRUE(Contains(o.err, host_)) << o.err;
  EXPECT_FALSE(core::Exists(ConfigDir("alice") + "/config.json"));
  auto reqs = issuer_.requests();
  ASSERT_FALSE(reqs.empty());
  for (const auto& r : reqs) EXPECT_EQ(r.status, 401) << Describe(reqs);

  ToolOut unknown = Xb("mallory", {"login", "-u", "mallory", "-p", "secret", host_});
  EXPECT_NE(unknown.code, 0);
  EXPECT_TRUE(Contains(unknown.err, "incorrect username or password")) << unknown.err;
  EXPECT_FALSE(core::Exists(ConfigDir("mallory") + "/config.json"));
}

TEST_F(RegistryAuthTest, PullOnlyUserCannotPush) {
  std::string ref = host_ + "/team/app:1";
  std::string digest = PushAsAlice(ref);
  ASSERT_TRUE(digest.starts_with("sha256:"));

  ASSERT_NO_FATAL_FAILURE(Login("bob"));
  ToolOut pull = Xb("bob", {"pull", ref}, tmp_.Sub("state-bob"));
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_EQ(PulledDigest(pull.out), digest);

  std::string ref2 = host_ + "/team/app:2";
  ToolOut tag = Xb("bob", {"tag", ref, ref2}, tmp_.Sub("state-bob"));
  ASSERT_EQ(tag.code, 0) << tag.err;
  issuer_.ClearRequests();
  ToolOut push = Xb("bob", {"push", ref2}, tmp_.Sub("state-bob"));
  EXPECT_NE(push.code, 0);
  EXPECT_TRUE(Contains(push.err, "insufficient scope")) << push.err;
  EXPECT_TRUE(Contains(push.err, "team/app")) << push.err;
  // bob did get tokens (with pull only): the refusal came from the registry, not the issuer.
  for (const auto& r : issuer_.requests()) EXPECT_EQ(r.user, "bob");

  // Nothing moved: tag 2 does not exist.
  ToolOut missing = Xb("alice", {"manifest", "inspect", ref2});
  EXPECT_NE(missing.code, 0);
}

TEST_F(RegistryAuthTest, AnonymousPullOfPublicRepository) {
  std::string pub = host_ + "/public/x:1";
  std::string digest = PushAsAlice(pub);
  ASSERT_TRUE(digest.starts_with("sha256:"));
  std::string priv = host_ + "/team/secret:1";
  ASSERT_FALSE(PushAsAlice(priv).empty());

  issuer_.ClearRequests();
  ToolOut pull = Xb("anonymous", {"pull", pub}, tmp_.Sub("state-anon"));
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_EQ(PulledDigest(pull.out), digest);
  auto reqs = issuer_.requests();
  ASSERT_FALSE(reqs.empty());
  for (const auto& r : reqs) {
    // No credentials: the Docker token protocol, anonymously.
    EXPECT_EQ(r.method, "GET") << Describe(reqs);
    EXPECT_EQ(r.user, "");
    EXPECT_EQ(r.scopes, std::vector<std::string>{"repository:public/x:pull"});
  }

  // Without credentials, a push (and a pull of a private repository) fails and says how to fix
  // it: log in.
  ToolOut push = Xb("anonymous", {"push", pub}, tmp_.Sub("state-anon"));
  EXPECT_NE(push.code, 0);
  EXPECT_TRUE(Contains(push.err, "public/x")) << push.err;
  EXPECT_TRUE(Contains(push.err, "xbuild login " + host_)) << push.err;

  ToolOut denied = Xb("anonymous", {"pull", priv}, tmp_.Sub("state-anon"));
  EXPECT_NE(denied.code, 0);
  EXPECT_TRUE(Contains(denied.err, "team/secret")) << denied.err;
  EXPECT_TRUE(Contains(denied.err, "xbuild login " + host_)) << denied.err;
}

TEST_F(RegistryAuthTest, IdentityTokenUsesTheRefreshTokenGrant) {
  std::string ref = host_ + "/team/app:1";
  std::string digest = PushAsAlice(ref);
  ASSERT_TRUE(digest.starts_with("sha256:"));

  // A config.json written by `docker login` against an OAuth2 registry holds only a refresh
  // token.
  issuer_.AddRefreshToken("refresh-for-bob", "bob");
  WriteTestFile(ConfigDir("bob"), "config.json",
                core::Json{{"auths", {{host_, {{"identitytoken", "refresh-for-bob"}}}}}}.dump());
  issuer_.ClearRequests();
  ToolOut pull = Xb("bob", {"pull", ref}, tmp_.Sub("state-bob"));
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_EQ(PulledDigest(pull.out), digest);
  auto reqs = issuer_.requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs[0].method, "POST") << Describe(reqs);
  EXPECT_EQ(reqs[0].grant_type, "refresh_token");
  EXPECT_EQ(reqs[0].user, "bob");
  EXPECT_EQ(reqs[0].scopes, std::vector<std::string>{"repository:team/app:pull"});

  // An unknown refresh token is refused by the issuer; the pull fails and says so.
  WriteTestFile(ConfigDir("stale"), "config.json",
                core::Json{{"auths", {{host_, {{"identitytoken", "revoked"}}}}}}.dump());
  ToolOut stale = Xb("stale", {"pull", ref}, tmp_.Sub("state-stale"));
  EXPECT_NE(stale.code, 0);
  EXPECT_TRUE(Contains(stale.err, "401")) << stale.err;
}

}  // namespace
}  // namespace xbuild
