// Small string helpers shared by the parsers of flags, directives and mount specs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace xbuild::core {

// Splits on `sep`; every field is kept, empty ones included ("a,,b" -> "a", "", "b").
std::vector<std::string> Split(std::string_view s, char sep);
// Strips spaces, tabs, CR and LF from both ends.
std::string Trim(std::string_view s);
// ASCII case mapping (keywords, header names, hex).
std::string ToLower(std::string_view s);
std::string ToUpper(std::string_view s);

}  // namespace xbuild::core
