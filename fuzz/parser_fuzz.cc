// libFuzzer target: the Dockerfile parser must return a Result (never crash, hang or throw) on any
// bytes, and a successful parse must dump.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "frontend/parser/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = xbuild::frontend::Parse(text);
  if (r.ok()) (void)xbuild::frontend::Dump(*r);
  return 0;
}
