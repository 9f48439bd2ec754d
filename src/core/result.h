// Result<T>: a value or an Error. Errors are values; they gather context as they travel up
// ("push app: upload layer sha256:ab..: HTTP 401"). The success path does not allocate.
#pragma once

#include <cerrno>
#include <optional>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace xbuild::core {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // bad input from the user: a flag, a reference, a file
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,  // e.g. image in use
  kDataLoss,            // digest or size mismatch, corrupt data
  kPermissionDenied,    // includes attempts to escape a root
  kResourceExhausted,   // limits (decompression bomb, size caps)
  kUnavailable,
  kInternal,
  kIo,
  kCancelled,
  kAborted,  // an operation the other side gave up on (e.g. a dropped upload session); start over
};

std::string_view CodeName(Code code);

class Error {
 public:
  Error(Code code, std::string message, int sys_errno = 0)
      : code_(code), errno_(sys_errno), message_(std::move(message)) {}

  Code code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }

  // Prefixes context: Error("x").Context("open /a") reads "open /a: x".
  Error& Context(std::string_view ctx) & {
    message_.insert(0, std::string(ctx) + ": ");
    return *this;
  }
  Error Context(std::string_view ctx) && { return std::move(Context(ctx)); }

  // Full text, including strerror when an errno is attached.
  std::string ToString() const;

 private:
  Code code_;
  int errno_;
  std::string message_;
};

// Builds an Error from the current errno: "what: strerror(errno)".
Error SysError(std::string_view what, int err = errno);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

  Result Context(std::string_view ctx) && {
    if (!ok()) std::get<1>(v_).Context(ctx);
    return std::move(*this);
  }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::in_place, std::move(error)) {}  // NOLINT

  bool ok() const { return !err_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *err_; }
  Error&& error() && { return std::move(*err_); }

  Result Context(std::string_view ctx) && {
    if (err_) err_->Context(ctx);
    return std::move(*this);
  }

 private:
  std::optional<Error> err_;
};

using Status = Result<void>;

inline Status Ok() { return {}; }

}  // namespace xbuild::core

#define XB_CONCAT_INNER(a, b) a##b
#define XB_CONCAT(a, b) XB_CONCAT_INNER(a, b)

// XB_TRY(expr): returns the error of a failed Result/Status from the enclosing function.
#define XB_TRY(expr) XB_TRY_IMPL(XB_CONCAT(xb_try_r_, __COUNTER__), expr, )
// XB_TRY_CTX(expr, ctx): like XB_TRY, adding context to the error.
#define XB_TRY_CTX(expr, ctx) XB_TRY_IMPL(XB_CONCAT(xb_try_r_, __COUNTER__), expr, .Context(ctx))
#define XB_TRY_IMPL(tmp, expr, ctxcall)                   \
  do {                                                    \
    auto tmp = (expr);                                    \
    if (!tmp.ok()) return std::move(tmp).error() ctxcall; \
  } while (0)

// XB_ASSIGN(lhs, expr): `lhs = *expr` on success, else return the error.
#define XB_ASSIGN(lhs, expr) XB_ASSIGN_IMPL(XB_CONCAT(xb_assign_r_, __COUNTER__), lhs, expr, )
#define XB_ASSIGN_CTX(lhs, expr, ctx) \
  XB_ASSIGN_IMPL(XB_CONCAT(xb_assign_r_, __COUNTER__), lhs, expr, .Context(ctx))
#define XB_ASSIGN_IMPL(tmp, lhs, expr, ctxcall)               \
  auto tmp = (expr);                                          \
  if (!tmp.ok()) return std::move(tmp).error() ctxcall;       \
  lhs = std::move(tmp).value()
