#include "core/units.h"

#include <cctype>
#include <cmath>
#include <string>

namespace xbuild::core {

namespace {

// A decimal number at the front of s ("1", "1.5", ".5"); advances s. False when there is none.
bool TakeNumber(std::string_view& s, double& out) {
  size_t i = 0;
  bool digits = false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, digits = true;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, digits = true;
  }
  if (!digits) return false;
  out = std::stod(std::string(s.substr(0, i)));
  s.remove_prefix(i);
  return true;
}

}  // namespace

Result<int64_t> ParseByteSize(std::string_view text) {
  Error bad(Code::kInvalidArgument, "invalid size: '" + std::string(text) + "'");
  std::string_view s = text;
  double n = 0;
  if (!TakeNumber(s, n)) return bad;
  if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
  double mult = 1;
  if (!s.empty()) {
    const std::string_view kUnits = "kmgtp";
    size_t u = kUnits.find(static_cast<char>(std::tolower(static_cast<unsigned char>(s[0]))));
    if (u != std::string_view::npos) {
      mult = std::pow(1024.0, static_cast<double>(u + 1));
      s.remove_prefix(1);
      if (!s.empty() && (s[0] == 'i' || s[0] == 'I')) s.remove_prefix(1);
    }
    if (!s.empty() && (s[0] == 'b' || s[0] == 'B')) s.remove_prefix(1);
  }
  if (!s.empty()) return bad;
  double bytes = n * mult;
  if (bytes >= 9.2e18) return bad;
  return static_cast<int64_t>(bytes);
}

Result<int64_t> ParseGoDuration(std::string_view text) {
  Error bad(Code::kInvalidArgument, "invalid duration: '" + std::string(text) + "' (want e.g. 90s, 10m, 1h30m)");
  std::string_view s = text;
  double sign = 1;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    if (s[0] == '-') sign = -1;
    s.remove_prefix(1);
  }
  if (s == "0") return int64_t{0};
  if (s.empty()) return bad;
  double total = 0;
  while (!s.empty()) {
    double n = 0;
    if (!TakeNumber(s, n)) return bad;
    size_t i = 0;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i])) && s[i] != '.') ++i;
    std::string_view unit = s.substr(0, i);
    s.remove_prefix(i);
    double ns;
    if (unit == "ns") ns = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") ns = 1e3;
    else if (unit == "ms") ns = 1e6;
    else if (unit == "s") ns = 1e9;
    else if (unit == "m") ns = 60e9;
    else if (unit == "h") ns = 3600e9;
    else return bad;
    total += n * ns;
  }
  if (total >= 9.2e18) return bad;
  return static_cast<int64_t>(sign * total);
}

}  // namespace xbuild::core
