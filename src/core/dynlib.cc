#include "core/dynlib.h"

#include <dlfcn.h>

namespace xbuild::core {

Result<DynLib> DynLib::Open(const std::string& soname, const std::string& package) {
  // RTLD_LOCAL: its symbols serve only the calls made through Bind, never other lookups.
  void* h = ::dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    return Error(Code::kUnavailable, "load " + soname + ": " + (why ? why : "unknown error") +
                                         " (install the " + package + " package)");
  }
  return DynLib(h, soname);
}

Result<void*> DynLib::Symbol(const char* name) const {
  ::dlerror();
  void* p = ::dlsym(handle_, name);
  if (!p) {
    const char* why = ::dlerror();
    return Error(Code::kUnavailable,
                 soname_ + ": no symbol " + name + (why ? std::string(": ") + why : ""));
  }
  return p;
}

}  // namespace xbuild::core
