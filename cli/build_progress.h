// Progress of `xbuild build`, in BuildKit's formats (`--progress`):
//
//   plain    a log: "#5 [2/3] RUN make", "#5 0.512 <output line>" (seconds since the step
//            started), "#5 DONE 1.2s", "#5 CACHED", "#5 ERROR: ...", "#5 CANCELED"; a step's
//            sub-lines as "#9 naming to docker.io/library/app:1 done".
//   tty      a frame redrawn in place about 10 times a second (ANSI cursor movement):
//              [+] Building 3.2s (5/9)
//               => CACHED [2/3] COPY . .                                   0.0s
//               => [3/3] RUN make                                          1.2s
//               => => # the last 6 lines of a running step's output
//            fitted to the terminal's width; the last frame stays, with " FINISHED".
//   rawjson  one JSON object per line, shaped like BuildKit's client.SolveStatus:
//              {"vertexes":[{"digest","inputs","name","started","completed","cached","error"}],
//               "statuses":[{"id","vertex","name","current","timestamp","started","completed"}],
//               "logs":[{"vertex","stream","data" (base64),"timestamp"}]}
//            times in RFC 3339 with nanoseconds; empty fields and lists are left out, as
//            BuildKit's `omitempty` does. Vertex digests are the solver's.
//   quiet    nothing (errors still reach stderr through the CLI's error path).
// Plain and tty end a failed build with the failed steps' last output lines, as BuildKit does:
//   ------
//    > [3/3] RUN make:
//   0.512 make: *** no rule
//   ------
//
// What is shown is one model: the solver's vertices (Plan, Event, Output) and the steps the CLI
// runs itself (StartStep: "[internal] load metadata for ...", "exporting to image"), each named
// by a digest; a CLI step's sub-lines are BuildKit "statuses". Calls may come from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/result.h"
#include "solver/definition.h"
#include "solver/scheduler.h"

namespace xbuild::cli {

enum class ProgressMode { kAuto, kPlain, kTty, kQuiet, kRawJson };

// "auto", "plain", "tty", "quiet", "rawjson".
core::Result<ProgressMode> ParseProgressMode(std::string_view text);

struct ProgressOptions {
  ProgressMode mode = ProgressMode::kAuto;
  FILE* out = stderr;
  bool terminal = false;  // `out` is a terminal: auto means tty
  int width = 0;          // tty columns; 0: ask the terminal each frame (80 when it cannot say)
  int height = 0;         // tty rows; 0: ask the terminal (no limit when it cannot say)
  bool ticker = true;     // tty: redraw from a thread ~10 times a second (tests call Redraw)
};

using ProgressClock = std::chrono::system_clock;  // wall time: rawjson carries timestamps

struct ProgressStatus {
  std::string id;  // the sub-line's text, e.g. "exporting layers"
  std::optional<ProgressClock::time_point> started, completed;
  bool timed = false;  // it ran a while (started before it completed): plain shows its time
};

struct ProgressLine {
  double seconds = 0;  // since the vertex started
  std::string text;
};

// One vertex as the display knows it: a solver vertex or a step of the CLI.
struct ProgressVertex {
  std::string digest;  // "sha256:<hex>"
  std::vector<std::string> inputs;
  std::string name;
  std::optional<ProgressClock::time_point> started, completed;
  bool cached = false;
  bool canceled = false;
  std::string error;
  std::vector<ProgressStatus> statuses;
  std::deque<ProgressLine> tail;  // the last complete output lines
  std::string partial[3];         // an unfinished line per stream (1 stdout, 2 stderr)
  int number = 0;                 // plain's "#N", given when first printed
};

class BuildProgress;

// A step the CLI runs itself (BuildKit's "exporting to image"), shown as one more vertex.
// Copyable handle; the BuildProgress must outlive it.
class ProgressStep {
 public:
  void Status(const std::string& id);      // a sub-line starts
  void StatusDone(const std::string& id);  // and completes (a sub-line never started: both now)
  // A finished sub-line as BuildKit's plain output writes it: "exporting layers 0.1s done"
  // (it took 0.1s) or "naming to docker.io/library/app:1 done"; without " done" it starts.
  // For code that reports its phases as text lines (the exporter).
  void StatusLine(const std::string& line);
  void Done();
  void Fail(const std::string& error);

 private:
  friend class BuildProgress;
  ProgressStep(BuildProgress* p, size_t index) : p_(p), index_(index) {}
  BuildProgress* p_;
  size_t index_;
};

class BuildProgress {
 public:
  // A format (below, in build_progress.cc); all its calls are made under the BuildProgress lock.
  class Display;

  explicit BuildProgress(const ProgressOptions& opts);
  ~BuildProgress();  // Close(false) if Close was not called
  BuildProgress(const BuildProgress&) = delete;
  BuildProgress& operator=(const BuildProgress&) = delete;

  // The mode auto resolved to.
  ProgressMode mode() const { return mode_; }

  // Everything the solve may run, so the header's total is known from the start.
  void Plan(const solver::Definition& def);
  void Event(const solver::SolveEvent& e);
  // Output of a running vertex: 1 = stdout, 2 = stderr.
  void Output(const solver::Vertex& v, int stream, std::string_view data);
  ProgressStep StartStep(const std::string& name);
  // The end: stops the ticker, draws the final frame (tty) and, on failure, the failed steps'
  // last output lines. Later calls do nothing.
  void Close(bool ok);
  // tty: draws a frame now (what the ticker does).
  void Redraw();

 private:
  friend class ProgressStep;
  // mu_ held for these.
  size_t Find(const solver::Vertex& v);  // adds a vertex first seen here
  void AddLine(ProgressVertex& v, std::string text, ProgressClock::time_point t);
  void FlushPartial(ProgressVertex& v, ProgressClock::time_point t);
  // took: how long a sub-line reported only when done had run.
  void StepStatus(size_t index, const std::string& id, bool done, std::optional<double> took = std::nullopt);
  void StepEnd(size_t index, const std::string& error);
  void Tick();

  ProgressMode mode_;
  std::unique_ptr<Display> display_;
  std::mutex mu_;
  std::vector<std::unique_ptr<ProgressVertex>> vertices_;  // guarded by mu_, in first-seen order
  std::map<std::string, size_t> by_digest_;                // guarded by mu_
  bool closed_ = false;                                    // guarded by mu_
  ProgressClock::time_point start_;
  std::thread ticker_;
  std::condition_variable tick_cv_;
  bool stop_ticker_ = false;  // guarded by mu_
};

}  // namespace xbuild::cli
