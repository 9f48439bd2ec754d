// JSON helpers over nlohmann_json: bounded parsing with errors as values, canonical output,
// and typed field access that names the field in its errors.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xbuild::core {

using Json = nlohmann::json;
// Keeps the order in which keys were inserted; used where output should follow Docker's order.
using OrderedJson = nlohmann::ordered_json;

// Parses text no larger than max_size. `what` names the document in errors.
Result<Json> ParseJson(std::string_view text, std::string_view what,
                       size_t max_size = 8 * 1024 * 1024);

// Canonical form: compact, keys sorted (nlohmann::json keeps objects in std::map), UTF-8.
// The same value always gives the same bytes.
std::string CanonicalJson(const Json& j);

Result<std::string> GetString(const Json& j, std::string_view key);  // required
std::optional<std::string> GetOptString(const Json& j, std::string_view key);
Result<int64_t> GetInt(const Json& j, std::string_view key);  // required
std::vector<std::string> GetStringList(const Json& j, std::string_view key);
std::map<std::string, std::string> GetStringMap(const Json& j, std::string_view key);

}  // namespace xbuild::core
