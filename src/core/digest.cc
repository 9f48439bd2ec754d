#include "core/digest.h"

// SHA-256 through libcrypto's own functions rather than EVP: EVP fetches the digest from a
// provider, and the first fetch in a process loads openssl.cnf and the default provider (~1.3 ms
// of every command, `xbuild run` included). These are deprecated in OpenSSL 3 in favour of EVP
// but compute the same digest with the same assembly (SHA extensions, AVX2).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <sys/random.h>

#include <cerrno>

namespace xbuild::core {

namespace {
int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is rejected on purpose: digests are canonical lowercase
}
}  // namespace

Result<Digest> Digest::FromHex(std::string_view hex) {
  if (hex.size() != kSize * 2) {
    return Error(Code::kInvalidArgument, "invalid digest \"" + std::string(hex.substr(0, 80)) +
                                             "\": want 64 lowercase hex characters");
  }
  std::array<uint8_t, kSize> b{};
  for (size_t i = 0; i < kSize; ++i) {
    int hi = HexVal(hex[2 * i]), lo = HexVal(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Error(Code::kInvalidArgument,
                   "invalid digest \"" + std::string(hex) + "\": not lowercase hex");
    }
    b[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return Digest(b);
}

Result<Digest> Digest::Parse(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (!text.starts_with(kPrefix)) {
    auto colon = text.find(':');
    std::string algo = colon == std::string_view::npos ? "" : std::string(text.substr(0, colon));
    return Error(Code::kInvalidArgument,
                 "invalid digest \"" + std::string(text.substr(0, 80)) + "\": " +
                     (algo.empty() ? "missing algorithm" : "unsupported algorithm " + algo));
  }
  return FromHex(text.substr(kPrefix.size()));
}

Digest Digest::Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

std::string Digest::Hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(kSize * 2, '0');
  for (size_t i = 0; i < kSize; ++i) {
    s[2 * i] = kHex[bytes_[i] >> 4];
    s[2 * i + 1] = kHex[bytes_[i] & 0xf];
  }
  return s;
}

bool Digest::empty() const {
  for (uint8_t b : bytes_)
    if (b) return false;
  return true;
}

struct Sha256::Impl {
  SHA256_CTX ctx;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) { SHA256_Init(&impl_->ctx); }

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&& o) noexcept = default;

void Sha256::Update(const void* data, size_t len) {
  if (len) SHA256_Update(&impl_->ctx, data, len);
}

Digest Sha256::Finish() {
  std::array<uint8_t, Digest::kSize> out{};
  SHA256_Final(out.data(), &impl_->ctx);
  SHA256_Init(&impl_->ctx);
  return Digest(out);
}

Result<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("getrandom");
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

}  // namespace xbuild::core
