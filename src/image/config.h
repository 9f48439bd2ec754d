// The image configuration (OCI image-spec config.md; Docker's image JSON is the same shape).
// Unknown top-level fields are kept in `extra` and written back, so reading and writing a
// config from another tool loses nothing we do not understand.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/json.h"
#include "image/manifest.h"

namespace xbuild::image {

struct HealthConfig {
  std::vector<std::string> test;  // ["NONE"], ["CMD", ...], ["CMD-SHELL", "..."]
  int64_t interval_ns = 0;
  int64_t timeout_ns = 0;
  int64_t start_period_ns = 0;
  int64_t start_interval_ns = 0;
  int retries = 0;
};

struct ContainerConfig {
  std::string user;
  std::set<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> env;         // "K=V"
  std::optional<std::vector<std::string>> entrypoint;  // nullopt is JSON null: "not set"
  std::optional<std::vector<std::string>> cmd;
  std::set<std::string> volumes;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  bool args_escaped = false;
  std::vector<std::string> on_build;
  std::vector<std::string> shell;
  std::optional<HealthConfig> healthcheck;
};

struct HistoryEntry {
  std::string created;  // RFC 3339
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;
};

struct ImageConfig {
  std::string created;  // RFC 3339, may be empty
  std::string author;
  std::string architecture;
  std::string os;
  std::string variant;
  ContainerConfig config;
  std::vector<core::Digest> diff_ids;  // rootfs.diff_ids, in order
  std::vector<HistoryEntry> history;
  core::Json extra = core::Json::object();  // unknown top-level fields

  std::string Serialize() const;  // canonical bytes
  // Env as a map, and lookup by key.
  std::optional<std::string> GetEnv(std::string_view key) const;
  void SetEnv(std::string_view key, std::string_view value);
};

Result<ImageConfig> ParseImageConfig(std::string_view bytes,
                                     std::optional<core::Digest> expected = std::nullopt);

// Formats a unix time as RFC 3339 with nanoseconds trimmed, UTC ("2024-01-02T03:04:05Z").
std::string FormatTime(int64_t unix_seconds, int32_t nanos = 0);

}  // namespace xbuild::image
