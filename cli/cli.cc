#include "cli/cli.h"

#include <cerrno>
#include <iostream>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <ctime>

#include "core/fs.h"
#include "core/path.h"
#include "exec/netns_pool.h"
#include "exec/sandbox.h"
#include "exec/snapshot.h"
#include "solver/ops/context_archive.h"

namespace xbuild::cli {

void Cli::AddGlobalFlags(Flags& f) const {
  f.String("root", 0, "", "Root directory of xbuild state (env XBUILD_ROOT)");
  f.String("config", 0, "", "Location of the config file");
  f.Bool("debug", 'D', "Enable debug output");
  f.String("log-level", 'l', "", "Set the logging level (debug, info, warn, error, fatal)");
  f.List("insecure-registry", 0, "Registry (HOST:PORT) to reach over plain HTTP or unverified TLS");
}

core::Status Cli::ApplyGlobalFlags(const Flags& f) {
  if (f.Changed("root")) root_flag = f.GetString("root");
  if (f.Changed("config")) config_flag = f.GetString("config");
  if (f.GetBool("debug")) logger_.set_level(core::LogLevel::kDebug);
  if (f.Changed("log-level")) {
    XB_ASSIGN(core::LogLevel l, core::ParseLogLevel(f.GetString("log-level")));
    logger_.set_level(l);
  }
  for (auto& r : f.GetList("insecure-registry")) insecure_registries.push_back(r);
  return core::Ok();
}

core::Status Cli::Setup() {
  if (setup_done_) return core::Ok();
  std::string config_path = config_flag;
  bool required = !config_path.empty();
  if (config_path.empty()) {
    if (const char* e = std::getenv("XBUILD_CONFIG"); e && *e) {
      config_path = e;
      required = true;
    } else {
      config_path = core::DefaultConfigPath();
    }
  }
  XB_ASSIGN(ctx_.config, core::LoadConfig(config_path, required));
  for (auto& r : insecure_registries) ctx_.config.insecure_registries.push_back(r);
  std::string root = root_flag;
  if (root.empty()) {
    if (const char* e = std::getenv("XBUILD_ROOT"); e && *e) root = e;
  }
  if (root.empty()) root = ctx_.config.data_root;
  if (root.empty()) root = core::DefaultStateRoot();
  if (root.front() != '/') {
    char* cwd = ::getcwd(nullptr, 0);
    root = core::JoinPath(cwd ? cwd : "/", root);
    std::free(cwd);
  }
  ctx_.root = core::CleanPath(root);
  ctx_.log = &logger_;
  logger_.Debug("state root " + ctx_.root + ", config " + config_path);
  setup_done_ = true;
  return core::Ok();
}

core::Result<cache::ImageStore*> Cli::Store() {
  if (!store_) {
    XB_TRY(Setup());
    XB_ASSIGN(store_, cache::ImageStore::Open(ctx_));
    // What a killed xbuild left (containers, mounts, half-made snapshots) goes first. Only
    // leftovers of dead processes are touched, so concurrent xbuilds are safe.
    if (::geteuid() == 0) {
      core::Status s = exec::CleanupStale(ctx_.root);
      if (s.ok()) {
        exec::Snapshotter snaps(*store_);
        s = snaps.CleanupStale();
      }
      if (s.ok()) s = solver::ops::CleanupStaleContexts(ctx_.root);
      if (s.ok()) s = exec::CleanupStaleNetns(ctx_.root);
      if (!s.ok() && ctx_.log) ctx_.log->Warn("cleaning up after a killed xbuild: " + s.error().ToString());
    }
  }
  return store_.get();
}

core::Result<exec::Containers*> Cli::Containers() {
  if (!containers_) {
    XB_ASSIGN(cache::ImageStore * store, Store());
    snapshots_ = std::make_unique<exec::Snapshotter>(*store);
    containers_ = std::make_unique<exec::Containers>(ctx_.root, *snapshots_);
    containers_->Configure(ctx_.config);  // --runtime, CDI spec dirs
  }
  return containers_.get();
}

void WriteToStdio(int stream, std::string_view data) {
  std::FILE* out = stream == 2 ? stderr : stdout;
  std::fwrite(data.data(), 1, data.size(), out);
  std::fflush(out);
}

int Cli::Fail(const core::Error& e, int code) {
  std::fprintf(stderr, "Error: %s\n", e.ToString().c_str());
  return code;
}

int Cli::UsageError(const std::string& command, const std::string& msg) {
  std::fprintf(stderr, "xbuild %s: %s\nSee 'xbuild %s --help'.\n", command.c_str(), msg.c_str(), command.c_str());
  return kExitUsage;
}

bool ParseCommand(Cli& cli, Flags& flags, const std::string& command, const std::string& usage,
                  const std::vector<std::string>& args, std::vector<std::string>& pos, int& exit_code,
                  int min_args, int max_args) {
  cli.AddGlobalFlags(flags);
  flags.Bool("help", 'h', "Print usage");
  auto r = flags.Parse(args);
  if (!r.ok()) {
    exit_code = cli.UsageError(command, r.error().message());
    return false;
  }
  if (flags.GetBool("help")) {
    std::printf("Usage:  xbuild %s\n\n%s", usage.c_str(), flags.Usage().c_str());
    exit_code = kExitOk;
    return false;
  }
  pos = std::move(r).value();
  if (static_cast<int>(pos.size()) < min_args || (max_args >= 0 && static_cast<int>(pos.size()) > max_args)) {
    std::string want = max_args == min_args ? "exactly " + std::to_string(min_args)
                       : max_args < 0       ? "at least " + std::to_string(min_args)
                                            : std::to_string(min_args) + " to " + std::to_string(max_args);
    std::fprintf(stderr, "xbuild %s: requires %s argument%s, got %zu\nUsage:  xbuild %s\n", command.c_str(),
                 want.c_str(), (max_args == 1 || min_args == 1) && max_args == min_args ? "" : "s", pos.size(),
                 usage.c_str());
    exit_code = kExitUsage;
    return false;
  }
  if (auto s = cli.ApplyGlobalFlags(flags); !s.ok()) {
    exit_code = cli.Fail(s.error(), kExitUsage);
    return false;
  }
  return true;
}

std::string HumanSize(double size) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int i = 0;
  while (size >= 1000.0 && i < 5) {
    size /= 1000.0;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g%s", std::round(size * 100) / 100, kUnits[i]);
  return buf;
}

std::string HumanDuration(int64_t seconds) {
  auto plural = [](int64_t n, const char* unit) { return std::to_string(n) + " " + unit; };
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return plural(seconds, "seconds");
  int64_t minutes = seconds / 60;
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return plural(minutes, "minutes");
  int64_t hours = static_cast<int64_t>(static_cast<double>(seconds) / 3600.0 + 0.5);
  if (hours == 1) return "About an hour";
  if (hours < 48) return plural(hours, "hours");
  if (hours < 24 * 7 * 2) return plural(hours / 24, "days");
  if (hours < 24 * 30 * 2) return plural(hours / 24 / 7, "weeks");
  if (hours < 24 * 365 * 2) return plural(hours / 24 / 30, "months");
  return plural(seconds / 3600 / 24 / 365, "years");
}

int64_t ParseTime(const std::string& s) {
  struct tm tm = {};
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return 0;
  int64_t t = static_cast<int64_t>(::timegm(&tm));
  // Skip fractional seconds, then apply a numeric offset if present.
  while (*end == '.' || (*end >= '0' && *end <= '9')) ++end;
  if ((*end == '+' || *end == '-') && std::strlen(end) >= 6) {
    int sign = *end == '-' ? -1 : 1;
    int oh = std::atoi(std::string(end + 1, 2).c_str()), om = std::atoi(std::string(end + 4, 2).c_str());
    t -= sign * (oh * 3600 + om * 60);
  }
  return t;
}

core::Result<std::optional<int64_t>> ParseSourceDateEpoch(const char* value, const std::string& what) {
  if (!value || !*value) return std::optional<int64_t>();
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(value, &end, 10);
  if (*end != '\0' || v < 0 || errno == ERANGE) {
    return core::Error(core::Code::kInvalidArgument, what + "=\"" + std::string(value) + "\": not a unix time");
  }
  return std::optional<int64_t>(v);
}

bool Confirm(const std::string& warning) {
  std::printf("%s\nAre you sure you want to continue? [y/N] ", warning.c_str());
  std::fflush(stdout);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y";
}

}  // namespace xbuild::cli
