// Digest: a sha256 content digest, held as 32 bytes; hex only at the edges.
// Parse() accepts exactly "sha256:<64 lowercase hex>", so a parsed digest is always safe
// to use as a path component.
#pragma once

#include <array>
#include <cstring>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace xbuild::core {

class Digest {
 public:
  static constexpr size_t kSize = 32;
  Digest() = default;  // all zero: "not set"
  explicit Digest(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  static Result<Digest> Parse(std::string_view text);
  static Result<Digest> FromHex(std::string_view hex);
  static Digest Of(std::string_view data);  // sha256 of the bytes

  std::string Hex() const;
  std::string String() const { return "sha256:" + Hex(); }  // "sha256:<hex>"
  std::string Short() const { return Hex().substr(0, 12); }
  bool empty() const;
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

  auto operator<=>(const Digest&) const = default;

 private:
  std::array<uint8_t, kSize> bytes_{};
};

// Streaming sha256 over OpenSSL EVP.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  Digest Finish();  // the hasher may be reused after Finish (it resets)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `bytes` random bytes from getrandom(2), as lowercase hex (ids for leases, snapshots, containers).
Result<std::string> RandomHex(size_t bytes);

}  // namespace xbuild::core

template <>
struct std::hash<xbuild::core::Digest> {
  size_t operator()(const xbuild::core::Digest& d) const noexcept {
    size_t h;
    std::memcpy(&h, d.bytes().data(), sizeof h);
    return h;
  }
};
