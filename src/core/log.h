// Leveled logging to stderr. A Logger is owned by the Context and passed down; there is no
// global logger.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "core/result.h"

namespace xbuild::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kFatal = 4 };

Result<LogLevel> ParseLogLevel(std::string_view name);  // debug|info|warn|error|fatal

class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::kWarn, std::FILE* sink = stderr)
      : level_(level), sink_(sink) {}
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void set_level(LogLevel l) { level_ = l; }
  LogLevel level() const { return level_; }
  bool Enabled(LogLevel l) const { return l >= level_; }

  void Log(LogLevel l, std::string_view msg);
  void Debug(std::string_view m) { Log(LogLevel::kDebug, m); }
  void Info(std::string_view m) { Log(LogLevel::kInfo, m); }
  void Warn(std::string_view m) { Log(LogLevel::kWarn, m); }
  void Error(std::string_view m) { Log(LogLevel::kError, m); }

 private:
  LogLevel level_;
  std::FILE* sink_;
  std::mutex mu_;  // guards writes to sink_
};

}  // namespace xbuild::core
