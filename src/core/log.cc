#include "core/log.h"

#include <ctime>
#include <sys/time.h>

namespace xbuild::core {

Result<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  if (name == "fatal") return LogLevel::kFatal;
  return core::Error(Code::kInvalidArgument,
                     "invalid log level \"" + std::string(name) +
                         "\": want debug, info, warn, error or fatal");
}

void Logger::Log(LogLevel l, std::string_view msg) {
  if (!Enabled(l)) return;
  static constexpr const char* kNames[] = {"DEBU", "INFO", "WARN", "ERRO", "FATA"};
  struct timeval tv;
  ::gettimeofday(&tv, nullptr);
  struct tm tm;
  ::gmtime_r(&tv.tv_sec, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard lock(mu_);
  std::fprintf(sink_, "%s[%s.%03ldZ] %.*s\n", kNames[static_cast<int>(l)], ts,
               static_cast<long>(tv.tv_usec / 1000), static_cast<int>(msg.size()), msg.data());
}

}  // namespace xbuild::core
