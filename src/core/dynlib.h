// Shared libraries opened on first use instead of at process start.
//
// libcurl (registries) and libgit2 (git sources) each pull in dozens of libraries of their own
// (TLS, Kerberos, LDAP, ssh, HTTP/2, ...). Linked at start, loading and relocating them took
// about 6 ms of every command, `xbuild run` and `xbuild ps` included, that never talks to a
// registry or clones a repository. The code that needs one opens it through DynLib and calls it
// through a table of function pointers typed from the library's own header
// (decltype(&::curl_easy_init)), so the compiler still checks every call.
#pragma once
#include <string>

#include "core/result.h"

namespace xbuild::core {

class DynLib {
 public:
  // dlopen(soname) for the life of the process. The error names the library and says which
  // package provides it (`package`, e.g. "libcurl4").
  static Result<DynLib> Open(const std::string& soname, const std::string& package);

  // Sets fn to the library's symbol `name`.
  template <class F>
  Status Bind(F& fn, const char* name) const {
    XB_ASSIGN(void* p, Symbol(name));
    fn = reinterpret_cast<F>(p);
    return Ok();
  }

 private:
  DynLib(void* handle, std::string soname) : handle_(handle), soname_(std::move(soname)) {}
  Result<void*> Symbol(const char* name) const;

  void* handle_ = nullptr;
  std::string soname_;
};

}  // namespace xbuild::core
