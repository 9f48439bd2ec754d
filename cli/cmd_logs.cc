// xbuild logs [-f] [--tail N] [-t] [--since DURATION|TIME] CONTAINER: a container's output from
// its json-file log (exec/container_log.h), stdout to stdout and stderr to stderr. -f follows
// the log until the container has stopped.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <thread>

#include "cli/cli.h"
#include "core/fd.h"
#include "core/fs.h"
#include "exec/container_log.h"

namespace xbuild::cli {

namespace {

constexpr auto kFollowPoll = std::chrono::milliseconds(100);

// --since: a Go duration of one unit ("10s", "5m", "2h") before now, an RFC3339 time, or unix
// seconds. Returned as an RFC3339Nano UTC string, which orders as the log's times do.
core::Result<std::string> SinceTime(const std::string& v) {
  int64_t t = 0;
  char* end = nullptr;
  double n = std::strtod(v.c_str(), &end);
  std::string unit = end ? std::string(end) : "";
  if (end != v.c_str() && (unit == "s" || unit == "m" || unit == "h" || unit == "ms")) {
    double secs = unit == "h" ? n * 3600 : unit == "m" ? n * 60 : unit == "ms" ? n / 1000 : n;
    t = std::time(nullptr) - static_cast<int64_t>(secs);
  } else if (end != v.c_str() && unit.empty()) {
    t = static_cast<int64_t>(n);
  } else if ((t = ParseTime(v)) == 0) {
    return core::Error(core::Code::kInvalidArgument, "invalid value for \"since\": " + v);
  }
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  ::gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000000Z", &tm);
  return std::string(buf);
}

class LogPrinter {
 public:
  LogPrinter(bool timestamps, std::string since) : timestamps_(timestamps), since_(std::move(since)) {}

  // Entries of the complete lines read so far (the rest waits for its newline).
  std::vector<exec::LogEntry> Take(std::string_view data) {
    pending_.append(data);
    std::vector<exec::LogEntry> out;
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      auto e = exec::ParseLogLine(std::string_view(pending_).substr(start, nl - start));
      if (e && (since_.empty() || e->time >= since_)) out.push_back(std::move(*e));
    }
    pending_.erase(0, start);
    return out;
  }

  void Print(const exec::LogEntry& e) const {
    std::FILE* out = e.stream == 2 ? stderr : stdout;
    if (timestamps_) std::fprintf(out, "%s ", e.time.c_str());
    std::fwrite(e.log.data(), 1, e.log.size(), out);
    std::fflush(out);
  }

 private:
  bool timestamps_;
  std::string since_;
  std::string pending_;
};

core::Result<std::string> ReadSome(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return core::SysError("read log");
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

int RunLogs(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("follow", 'f', "Follow log output");
  f.String("tail", 'n', "all", "Number of lines to show from the end of the logs");
  f.Bool("timestamps", 't', "Show timestamps");
  f.String("since", 0, "", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "logs", "logs [OPTIONS] CONTAINER", args, pos, code, 1, 1)) return code;
  long tail = -1;
  if (f.GetString("tail") != "all") {
    char* end = nullptr;
    tail = std::strtol(f.GetString("tail").c_str(), &end, 10);
    if (*end != '\0' || f.GetString("tail").empty()) return cli.UsageError("logs", "invalid --tail " + f.GetString("tail"));
  }
  std::string since;
  if (f.Changed("since")) {
    auto s = SinceTime(f.GetString("since"));
    if (!s.ok()) return cli.UsageError("logs", s.error().message());
    since = *s;
  }
  auto containers = cli.Containers();
  if (!containers.ok()) return cli.Fail(containers.error());
  auto r = (*containers)->Find(pos[0]);
  if (!r.ok()) return cli.Fail(r.error());
  LogPrinter printer(f.GetBool("timestamps"), since);
  auto fd = core::Open((*containers)->LogPath(r->id), O_RDONLY | O_CLOEXEC);
  if (!fd.ok() && fd.error().sys_errno() != ENOENT) return cli.Fail(fd.error());
  core::UniqueFd log = fd.ok() ? std::move(fd).value() : core::UniqueFd();
  if (log.valid()) {
    auto data = ReadSome(log.get());
    if (!data.ok()) return cli.Fail(data.error());
    std::vector<exec::LogEntry> entries = printer.Take(*data);
    size_t first = tail >= 0 && entries.size() > static_cast<size_t>(tail) ? entries.size() - static_cast<size_t>(tail) : 0;
    for (size_t i = first; i < entries.size(); ++i) printer.Print(entries[i]);
  }
  if (!f.GetBool("follow")) return kExitOk;
  for (;;) {
    // Whether it still runs is read before the log, so output written just before it stopped
    // is read after: nothing is lost at the end.
    auto now = (*containers)->Get(r->id);
    bool running = now.ok() && (now->status == exec::kStatusRunning || (*containers)->MonitorAlive(r->id));
    if (!log.valid()) {
      auto opened = core::Open((*containers)->LogPath(r->id), O_RDONLY | O_CLOEXEC);
      if (opened.ok()) log = std::move(opened).value();
    }
    if (log.valid()) {
      auto data = ReadSome(log.get());
      if (!data.ok()) return cli.Fail(data.error());
      for (const auto& e : printer.Take(*data)) printer.Print(e);
    }
    if (!running) return kExitOk;
    std::this_thread::sleep_for(kFollowPoll);
  }
}

}  // namespace xbuild::cli
