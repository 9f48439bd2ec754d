#include "exec/container_log.h"

#include <fcntl.h>

#include "core/fs.h"
#include "core/json.h"
#include "exec/container.h"

namespace xbuild::exec {

core::Result<JsonFileLog> JsonFileLog::Open(const std::string& path) {
  XB_ASSIGN(core::UniqueFd fd,
            core::Open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640));
  return JsonFileLog(std::move(fd));
}

void JsonFileLog::WriteEntry(int stream, std::string_view line) {
  core::Json j = {{"log", std::string(line)},
                  {"stream", stream == 2 ? "stderr" : "stdout"},
                  {"time", NowRfc3339Nano()}};
  // One write per entry (O_APPEND), so a reader following the file sees whole lines.
  std::string text = j.dump(-1, ' ', false, core::Json::error_handler_t::replace) + "\n";
  (void)core::WriteAll(fd_.get(), text);  // a full disk must not stop the container
}

void JsonFileLog::Write(int stream, std::string_view chunk) {
  std::string& partial = partial_[stream == 2 ? 1 : 0];
  partial.append(chunk);
  size_t start = 0;
  for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
    WriteEntry(stream, std::string_view(partial).substr(start, nl + 1 - start));
  }
  partial.erase(0, start);
}

void JsonFileLog::Flush() {
  for (int i = 0; i < 2; ++i) {
    if (!partial_[i].empty()) WriteEntry(i + 1, partial_[i]);
    partial_[i].clear();
  }
}

std::optional<LogEntry> ParseLogLine(std::string_view line) {
  core::Json j = core::Json::parse(line, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto log = core::GetOptString(j, "log");
  if (!log) return std::nullopt;
  LogEntry e;
  e.log = *log;
  e.stream = core::GetOptString(j, "stream") == "stderr" ? 2 : 1;
  e.time = core::GetOptString(j, "time").value_or("");
  return e;
}

}  // namespace xbuild::exec
