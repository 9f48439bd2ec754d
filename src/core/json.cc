#include "core/json.h"

namespace xbuild::core {

Result<Json> ParseJson(std::string_view text, std::string_view what, size_t max_size) {
  if (text.size() > max_size) {
    return Error(Code::kResourceExhausted, std::string(what) + ": " + std::to_string(text.size()) +
                                               " bytes is over the limit of " +
                                               std::to_string(max_size));
  }
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(Code::kInvalidArgument, std::string(what) + ": invalid JSON");
  return j;
}

std::string CanonicalJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::string> GetString(const Json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return Error(Code::kInvalidArgument, "field \"" + std::string(key) + "\": missing or not a string");
  }
  return it->get<std::string>();
}

std::optional<std::string> GetOptString(const Json& j, std::string_view key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

Result<int64_t> GetInt(const Json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) {
    return Error(Code::kInvalidArgument, "field \"" + std::string(key) + "\": missing or not an integer");
  }
  return it->get<int64_t>();
}

std::vector<std::string> GetStringList(const Json& j, std::string_view key) {
  std::vector<std::string> out;
  if (!j.is_object()) return out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (auto& v : *it)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::map<std::string, std::string> GetStringMap(const Json& j, std::string_view key) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (auto& [k, v] : it->items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

}  // namespace xbuild::core
