// A container's output log in Docker's json-file format (what `docker logs` reads): one JSON
// object per line of output,
//   {"log":"hello\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}
// `log` is the line with its newline; a last line without one is written as it is when the
// output ends. Bytes that are not UTF-8 are replaced (U+FFFD), as Go's encoder does.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/fd.h"
#include "core/result.h"

namespace xbuild::exec {

class JsonFileLog {
 public:
  // Appends to `path` (created 0640 when missing).
  static core::Result<JsonFileLog> Open(const std::string& path);

  // A chunk of stream 1 (stdout) or 2 (stderr); whole lines are written at once.
  void Write(int stream, std::string_view chunk);
  // Writes what is left of unterminated lines.
  void Flush();

 private:
  explicit JsonFileLog(core::UniqueFd fd) : fd_(std::move(fd)) {}
  void WriteEntry(int stream, std::string_view line);

  core::UniqueFd fd_;
  std::string partial_[2];  // stdout, stderr
};

struct LogEntry {
  int stream = 1;  // 1 stdout, 2 stderr
  std::string log;
  std::string time;  // RFC3339Nano
};

// One line of the log; nullopt when it is not an entry (a torn last line is skipped).
std::optional<LogEntry> ParseLogLine(std::string_view line);

}  // namespace xbuild::exec
