#include "core/result.h"

namespace xbuild::core {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kFailedPrecondition: return "failed precondition";
    case Code::kDataLoss: return "data loss";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kResourceExhausted: return "resource exhausted";
    case Code::kUnavailable: return "unavailable";
    case Code::kInternal: return "internal";
    case Code::kIo: return "i/o";
    case Code::kCancelled: return "cancelled";
    case Code::kAborted: return "aborted";
  }
  return "unknown";
}

std::string Error::ToString() const {
  if (errno_ == 0) return message_;
  return message_ + ": " + std::strerror(errno_);
}

Error SysError(std::string_view what, int err) {
  Code code = Code::kIo;
  switch (err) {
    case ENOENT: code = Code::kNotFound; break;
    case EEXIST: code = Code::kAlreadyExists; break;
    case EACCES:
    case EPERM:
    case EXDEV:
    case ELOOP: code = Code::kPermissionDenied; break;
    case EINVAL: code = Code::kInvalidArgument; break;
    case ENOSPC: code = Code::kResourceExhausted; break;
    default: break;
  }
  return Error(code, std::string(what), err);
}

}  // namespace xbuild::core
