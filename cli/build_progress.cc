#include "cli/build_progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/json.h"
#include "image/config.h"
#include "registry/auth.h"

namespace xbuild::cli {

namespace {

using TimePoint = ProgressClock::time_point;

constexpr size_t kTailLines = 20;       // kept per vertex for the failure report
constexpr size_t kTtyLogLines = 6;      // shown under a running vertex, as BuildKit does
constexpr size_t kMaxPartial = 64 << 10;  // an unterminated line longer than this is shown as is
constexpr int kDefaultWidth = 80;
constexpr int kMinWidth = 20;

double Seconds(TimePoint from, TimePoint to) {
  return std::max(0.0, std::chrono::duration<double>(to - from).count());
}

// "1.2s": step and header times.
std::string Duration(double secs) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", secs);
  return buf;
}

// "0.512": an output line's time since its step started.
std::string Offset(double secs) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", secs);
  return buf;
}

// RFC 3339 with nanoseconds, UTC: Go's time.RFC3339Nano, as BuildKit's JSON has it.
std::string Rfc3339(TimePoint t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  int64_t secs = ns / 1000000000;
  int64_t rem = ns % 1000000000;
  if (rem < 0) rem += 1000000000, --secs;
  return image::FormatTime(secs, static_cast<int32_t>(rem));
}

// Columns a UTF-8 string takes, counting one per code point (wide glyphs are rare in step
// names and output; this keeps lines from wrapping in the common case).
size_t Columns(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The longest prefix of s that fits in `cols` columns, never splitting a code point.
std::string FitColumns(std::string_view s, size_t cols) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == cols) return std::string(s.substr(0, i));
      ++n;
    }
  }
  return std::string(s);
}

// Text safe to draw on one line of a frame: what a carriage return would leave visible, without
// escape sequences or other control characters (they would move the cursor under the frame).
std::string OneLine(std::string_view s) {
  while (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  if (size_t cr = s.rfind('\r'); cr != std::string_view::npos) s.remove_prefix(cr + 1);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b) {
      // CSI: ESC [ parameters, final byte 0x40-0x7e; other escapes: ESC and one byte.
      if (i + 1 < s.size() && s[i + 1] == '[') {
        i += 2;
        while (i < s.size() && !(s[i] >= 0x40 && s[i] <= 0x7e)) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (c == '\t' || c == '\n') {
      out += ' ';
    } else if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// "left<spaces>right" in exactly `width` columns; left is cut to leave one space before right.
std::string Align(std::string left, const std::string& right, size_t width) {
  size_t rcols = Columns(right);
  size_t room = width > rcols + 1 ? width - rcols - 1 : 0;
  if (Columns(left) > room) left = FitColumns(left, room);
  size_t pad = width - Columns(left) - rcols;
  return left + std::string(pad, ' ') + right;
}

core::OrderedJson VertexJson(const ProgressVertex& v) {
  core::OrderedJson j;
  j["digest"] = v.digest;
  if (!v.inputs.empty()) j["inputs"] = v.inputs;
  j["name"] = v.name;
  if (v.started) j["started"] = Rfc3339(*v.started);
  if (v.completed) j["completed"] = Rfc3339(*v.completed);
  if (v.cached) j["cached"] = true;
  // BuildKit's consumers tell a canceled vertex by this error text.
  if (v.canceled) {
    j["error"] = "context canceled";
  } else if (!v.error.empty()) {
    j["error"] = v.error;
  }
  return j;
}

// Names and errors come from Dockerfiles and commands: any bytes. Invalid UTF-8 is replaced
// rather than thrown on.
std::string DumpLine(const core::OrderedJson& j) {
  return j.dump(-1, ' ', false, core::OrderedJson::error_handler_t::replace) + "\n";
}

void Write(FILE* out, const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), out);
  std::fflush(out);
}

// BuildKit's report of failed steps, after the progress: their last output lines.
std::string FailureReport(const std::vector<std::unique_ptr<ProgressVertex>>& vertices) {
  std::string s;
  for (const auto& v : vertices) {
    if (v->error.empty() || v->canceled) continue;
    s += "------\n > " + v->name + ":\n";
    for (const auto& l : v->tail) s += Offset(l.seconds) + " " + l.text + "\n";
    s += "------\n";
  }
  return s;
}

int TerminalSize(FILE* out, bool columns) {
  struct winsize ws {};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &ws) != 0) return 0;
  return columns ? ws.ws_col : ws.ws_row;
}

}  // namespace

// All calls are made under BuildProgress::mu_.
class BuildProgress::Display {
 public:
  struct View {
    const std::vector<std::unique_ptr<ProgressVertex>>& vertices;
    TimePoint start;
    TimePoint now;
  };
  virtual ~Display() = default;
  virtual void Planned(const std::vector<const ProgressVertex*>&) {}
  // Started, cached or completed (done, failed, canceled).
  virtual void Changed(ProgressVertex&) {}
  // Output as it arrived, and each complete line of it.
  virtual void Chunk(const ProgressVertex&, int /*stream*/, std::string_view, TimePoint) {}
  virtual void Line(ProgressVertex&, const ProgressLine&) {}
  virtual void StatusChanged(ProgressVertex&, const ProgressStatus&, TimePoint) {}
  virtual void Draw(const View&, bool /*final*/) {}
  virtual void Closed(const View&, bool /*ok*/) {}
};

namespace {

using Display = BuildProgress::Display;

class QuietDisplay : public Display {};

class PlainDisplay : public Display {
 public:
  explicit PlainDisplay(FILE* out) : out_(out) {}

  void Changed(ProgressVertex& v) override {
    std::string s = Header(v);
    int n = v.number;
    if (v.canceled) {
      s += "#" + std::to_string(n) + " CANCELED\n\n";
    } else if (!v.error.empty()) {
      s += "#" + std::to_string(n) + " ERROR: " + v.error + "\n\n";
    } else if (v.cached) {
      s += "#" + std::to_string(n) + " CACHED\n\n";
    } else if (v.completed) {
      s += "#" + std::to_string(n) + " DONE " + Duration(Seconds(v.started.value_or(*v.completed), *v.completed)) + "\n\n";
    }
    Write(out_, s);
  }

  void Line(ProgressVertex& v, const ProgressLine& l) override {
    std::string s = Header(v);
    Write(out_, s + "#" + std::to_string(v.number) + " " + Offset(l.seconds) + " " + l.text + "\n");
  }

  void StatusChanged(ProgressVertex& v, const ProgressStatus& st, TimePoint) override {
    if (!st.completed) return;  // shown once, when it completes
    std::string s = Header(v) + "#" + std::to_string(v.number) + " " + st.id;
    if (st.timed && st.started) s += " " + Duration(Seconds(*st.started, *st.completed));
    Write(out_, s + " done\n");
  }

  void Closed(const View& view, bool ok) override {
    if (!ok) Write(out_, FailureReport(view.vertices));
  }

 private:
  // "#N name" the first time a vertex shows up.
  std::string Header(ProgressVertex& v) {
    if (v.number) return "";
    v.number = next_++;
    return "#" + std::to_string(v.number) + " " + v.name + "\n";
  }

  FILE* out_;
  int next_ = 1;
};

class TtyDisplay : public Display {
 public:
  TtyDisplay(FILE* out, int width, int height) : out_(out), width_(width), height_(height) {}

  void Draw(const View& view, bool final) override {
    int width = width_ > 0 ? width_ : TerminalSize(out_, true);
    if (width <= 0) width = kDefaultWidth;
    width = std::max(width, kMinWidth);
    int height = height_ > 0 ? height_ : TerminalSize(out_, false);
    // One column and one row are left free: a line that fills the last column makes some
    // terminals wrap at once, and the cursor needs a row below the frame.
    std::vector<std::string> lines = Frame(view, final, static_cast<size_t>(width - 1), final ? 0 : height - 1);
    std::string s;
    if (drawn_ > 0) s += "\x1b[" + std::to_string(drawn_) + "A";
    s += "\r";
    for (const auto& l : lines) s += "\x1b[2K" + l + "\n";
    if (lines.size() < drawn_) s += "\x1b[J";
    drawn_ = lines.size();
    Write(out_, s);
  }

  void Closed(const View& view, bool ok) override {
    Draw(view, true);
    if (!ok) Write(out_, FailureReport(view.vertices));
  }

 private:
  struct Block {
    std::vector<std::string> lines;
    bool completed = false;
  };

  static std::vector<std::string> Frame(const View& view, bool final, size_t width, int max_lines) {
    size_t done = 0;
    for (const auto& v : view.vertices) done += v->completed.has_value();
    std::string header = "[+] Building " + Duration(Seconds(view.start, view.now)) + " (" + std::to_string(done) +
                         "/" + std::to_string(view.vertices.size()) + ")" + (final ? " FINISHED" : "");
    std::vector<Block> blocks;
    for (const auto& vp : view.vertices) {
      const ProgressVertex& v = *vp;
      if (!v.started) continue;
      Block b;
      b.completed = v.completed.has_value();
      std::string prefix = v.canceled ? "CANCELED " : !v.error.empty() ? "ERROR " : v.cached ? "CACHED " : "";
      double secs = v.cached ? 0 : Seconds(*v.started, v.completed.value_or(view.now));
      b.lines.push_back(Align(" => " + prefix + OneLine(v.name), Duration(secs), width));
      for (const auto& st : v.statuses) {
        TimePoint from = st.started.value_or(view.now);
        b.lines.push_back(Align(" => => " + OneLine(st.id), Duration(Seconds(from, st.completed.value_or(view.now))), width));
      }
      if (!v.completed) {
        size_t first = v.tail.size() > kTtyLogLines ? v.tail.size() - kTtyLogLines : 0;
        for (size_t i = first; i < v.tail.size(); ++i) b.lines.push_back(FitColumns(" => => # " + OneLine(v.tail[i].text), width));
      }
      blocks.push_back(std::move(b));
    }
    size_t count = 1;
    for (const auto& b : blocks) count += b.lines.size();
    // Too tall for the terminal (the frame could not be redrawn in place): finished vertices
    // go first, oldest first, as in BuildKit; then the frame keeps its newest lines.
    if (max_lines > 0) {
      for (auto it = blocks.begin(); it != blocks.end() && count > static_cast<size_t>(max_lines);) {
        if (it->completed) {
          count -= it->lines.size();
          it = blocks.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::vector<std::string> lines{FitColumns(header, width)};
    for (const auto& b : blocks) lines.insert(lines.end(), b.lines.begin(), b.lines.end());
    if (max_lines > 0 && lines.size() > static_cast<size_t>(max_lines)) {
      size_t keep = std::max<size_t>(static_cast<size_t>(max_lines), 1) - 1;
      lines.erase(lines.begin() + 1, lines.end() - static_cast<std::ptrdiff_t>(keep));
    }
    return lines;
  }

  FILE* out_;
  int width_, height_;
  size_t drawn_ = 0;  // lines of the last frame, to move back over
};

class RawJsonDisplay : public Display {
 public:
  explicit RawJsonDisplay(FILE* out) : out_(out) {}

  void Planned(const std::vector<const ProgressVertex*>& vs) override {
    if (vs.empty()) return;
    core::OrderedJson list = core::OrderedJson::array();
    for (const auto* v : vs) list.push_back(VertexJson(*v));
    core::OrderedJson j;
    j["vertexes"] = std::move(list);
    Write(out_, DumpLine(j));
  }

  void Changed(ProgressVertex& v) override {
    core::OrderedJson j;
    j["vertexes"] = core::OrderedJson::array({VertexJson(v)});
    Write(out_, DumpLine(j));
  }

  void Chunk(const ProgressVertex& v, int stream, std::string_view data, TimePoint t) override {
    core::OrderedJson log;
    log["vertex"] = v.digest;
    log["stream"] = stream;
    log["data"] = registry::Base64Encode(data);  // Go marshals []byte as base64
    log["timestamp"] = Rfc3339(t);
    core::OrderedJson j;
    j["logs"] = core::OrderedJson::array({log});
    Write(out_, DumpLine(j));
  }

  void StatusChanged(ProgressVertex& v, const ProgressStatus& st, TimePoint t) override {
    core::OrderedJson s;
    s["id"] = st.id;
    s["vertex"] = v.digest;
    s["name"] = st.id;
    s["current"] = 0;
    s["timestamp"] = Rfc3339(t);
    if (st.started) s["started"] = Rfc3339(*st.started);
    if (st.completed) s["completed"] = Rfc3339(*st.completed);
    core::OrderedJson j;
    j["statuses"] = core::OrderedJson::array({s});
    Write(out_, DumpLine(j));
  }

 private:
  FILE* out_;
};

}  // namespace

core::Result<ProgressMode> ParseProgressMode(std::string_view text) {
  if (text == "auto") return ProgressMode::kAuto;
  if (text == "plain") return ProgressMode::kPlain;
  if (text == "tty") return ProgressMode::kTty;
  if (text == "quiet") return ProgressMode::kQuiet;
  if (text == "rawjson") return ProgressMode::kRawJson;
  return core::Error(core::Code::kInvalidArgument,
                     "invalid progress mode \"" + std::string(text) + "\": want auto, plain, tty, quiet or rawjson");
}

void ProgressStep::Status(const std::string& id) { p_->StepStatus(index_, id, false); }
void ProgressStep::StatusDone(const std::string& id) { p_->StepStatus(index_, id, true); }
void ProgressStep::StatusLine(const std::string& line) {
  std::string_view id = line;
  if (!id.ends_with(" done")) {
    Status(line);
    return;
  }
  id.remove_suffix(5);
  std::optional<double> took;
  // A last word like "0.1s" is the time it took.
  if (size_t sp = id.rfind(' '); sp != std::string_view::npos && id.size() > sp + 2 && id.back() == 's') {
    std::string_view word = id.substr(sp + 1, id.size() - sp - 2);
    bool number = !word.empty() && word.find_first_not_of("0123456789.") == std::string_view::npos;
    if (number) {
      took = std::strtod(std::string(word).c_str(), nullptr);
      id = id.substr(0, sp);
    }
  }
  p_->StepStatus(index_, std::string(id), true, took);
}

void ProgressStep::Done() { p_->StepEnd(index_, ""); }
void ProgressStep::Fail(const std::string& error) { p_->StepEnd(index_, error.empty() ? "failed" : error); }

BuildProgress::BuildProgress(const ProgressOptions& opts) : start_(ProgressClock::now()) {
  mode_ = opts.mode == ProgressMode::kAuto ? (opts.terminal ? ProgressMode::kTty : ProgressMode::kPlain) : opts.mode;
  switch (mode_) {
    case ProgressMode::kTty:
      display_ = std::make_unique<TtyDisplay>(opts.out, opts.width, opts.height);
      break;
    case ProgressMode::kRawJson:
      display_ = std::make_unique<RawJsonDisplay>(opts.out);
      break;
    case ProgressMode::kQuiet:
      display_ = std::make_unique<QuietDisplay>();
      break;
    case ProgressMode::kAuto:
    case ProgressMode::kPlain:
      display_ = std::make_unique<PlainDisplay>(opts.out);
      break;
  }
  if (mode_ == ProgressMode::kTty && opts.ticker) ticker_ = std::thread([this] { Tick(); });
}

BuildProgress::~BuildProgress() { Close(false); }

void BuildProgress::Tick() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_ticker_) {
    display_->Draw(Display::View{vertices_, start_, ProgressClock::now()}, false);
    tick_cv_.wait_for(l, std::chrono::milliseconds(100), [this] { return stop_ticker_; });
  }
}

void BuildProgress::Redraw() {
  std::lock_guard<std::mutex> l(mu_);
  if (!closed_) display_->Draw(Display::View{vertices_, start_, ProgressClock::now()}, false);
}

size_t BuildProgress::Find(const solver::Vertex& vx) {
  std::string digest = vx.digest.String();
  auto it = by_digest_.find(digest);
  if (it != by_digest_.end()) return it->second;
  auto v = std::make_unique<ProgressVertex>();
  v->digest = digest;
  v->name = vx.meta.description.empty() ? std::string(solver::OpKind(vx.op)) : vx.meta.description;
  for (const auto& in : vx.inputs) {
    if (!in.scratch()) v->inputs.push_back(in.vertex->digest.String());
  }
  by_digest_[digest] = vertices_.size();
  vertices_.push_back(std::move(v));
  return vertices_.size() - 1;
}

void BuildProgress::Plan(const solver::Definition& def) {
  std::lock_guard<std::mutex> l(mu_);
  if (closed_) return;
  std::vector<const ProgressVertex*> added;
  for (const auto& vx : def.vertices) {
    size_t before = vertices_.size();
    size_t i = Find(*vx);
    if (i >= before) added.push_back(vertices_[i].get());
  }
  display_->Planned(added);
}

void BuildProgress::AddLine(ProgressVertex& v, std::string text, TimePoint t) {
  ProgressLine line{Seconds(v.started.value_or(start_), t), std::move(text)};
  v.tail.push_back(line);
  if (v.tail.size() > kTailLines) v.tail.pop_front();
  display_->Line(v, v.tail.back());
}

void BuildProgress::FlushPartial(ProgressVertex& v, TimePoint t) {
  for (auto& p : v.partial) {
    if (p.empty()) continue;
    AddLine(v, std::move(p), t);
    p.clear();
  }
}

void BuildProgress::Event(const solver::SolveEvent& e) {
  if (!e.vertex) return;
  std::lock_guard<std::mutex> l(mu_);
  if (closed_) return;
  ProgressVertex& v = *vertices_[Find(*e.vertex)];
  TimePoint now = ProgressClock::now();
  switch (e.state) {
    case solver::VertexState::kStarted:
      v.started = now;
      v.completed.reset();
      break;
    case solver::VertexState::kCached:
      if (!v.started) v.started = now;
      v.completed = now;
      v.cached = true;
      break;
    case solver::VertexState::kDone:
    case solver::VertexState::kFailed:
    case solver::VertexState::kCancelled:
      if (!v.started) v.started = now - std::chrono::duration_cast<ProgressClock::duration>(e.elapsed);
      v.completed = now;
      if (e.state == solver::VertexState::kFailed) v.error = e.error.empty() ? "failed" : e.error;
      if (e.state == solver::VertexState::kCancelled) {
        v.canceled = true;
        v.error = e.error.empty() ? "canceled" : e.error;
      }
      FlushPartial(v, now);
      break;
  }
  display_->Changed(v);
}

void BuildProgress::Output(const solver::Vertex& vx, int stream, std::string_view data) {
  if (data.empty()) return;
  std::lock_guard<std::mutex> l(mu_);
  if (closed_) return;
  ProgressVertex& v = *vertices_[Find(vx)];
  TimePoint now = ProgressClock::now();
  int s = stream == 2 ? 2 : 1;
  display_->Chunk(v, s, data, now);
  std::string& buf = v.partial[s];
  buf.append(data);
  size_t start = 0;
  for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
    AddLine(v, buf.substr(start, nl - start), now);
  }
  buf.erase(0, start);
  if (buf.size() > kMaxPartial) {
    AddLine(v, std::move(buf), now);
    buf.clear();
  }
}

ProgressStep BuildProgress::StartStep(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  TimePoint now = ProgressClock::now();
  auto v = std::make_unique<ProgressVertex>();
  // Not a solver vertex: a digest of its own, unique within this build (BuildKit gives such
  // progress-only vertices random ones).
  v->digest = core::Digest::Of("xbuild progress step\n" + name + "\n" + std::to_string(vertices_.size()) + "\n" +
                               std::to_string(now.time_since_epoch().count()) + "\n" + std::to_string(::getpid()))
                  .String();
  v->name = name;
  v->started = now;
  by_digest_[v->digest] = vertices_.size();
  vertices_.push_back(std::move(v));
  if (!closed_) display_->Changed(*vertices_.back());
  return ProgressStep(this, vertices_.size() - 1);
}

void BuildProgress::StepStatus(size_t index, const std::string& id, bool done, std::optional<double> took) {
  std::lock_guard<std::mutex> l(mu_);
  if (closed_ || index >= vertices_.size()) return;
  ProgressVertex& v = *vertices_[index];
  TimePoint now = ProgressClock::now();
  auto it = std::find_if(v.statuses.begin(), v.statuses.end(), [&](const ProgressStatus& s) { return s.id == id; });
  if (it == v.statuses.end()) {
    TimePoint started = now;
    if (took) started -= std::chrono::duration_cast<ProgressClock::duration>(std::chrono::duration<double>(*took));
    v.statuses.push_back(ProgressStatus{id, started, std::nullopt, !done || took.has_value()});
    it = v.statuses.end() - 1;
  }
  if (done) it->completed = now;
  display_->StatusChanged(v, *it, now);
}

void BuildProgress::StepEnd(size_t index, const std::string& error) {
  std::lock_guard<std::mutex> l(mu_);
  if (closed_ || index >= vertices_.size()) return;
  ProgressVertex& v = *vertices_[index];
  if (v.completed) return;
  TimePoint now = ProgressClock::now();
  // Sub-lines still open end with their step.
  for (auto& st : v.statuses) {
    if (!st.completed) {
      st.completed = now;
      display_->StatusChanged(v, st, now);
    }
  }
  v.completed = now;
  v.error = error;
  display_->Changed(v);
}

void BuildProgress::Close(bool ok) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return;
    closed_ = true;
    stop_ticker_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::lock_guard<std::mutex> l(mu_);
  TimePoint now = ProgressClock::now();
  for (auto& v : vertices_) FlushPartial(*v, now);
  display_->Closed(Display::View{vertices_, start_, now}, ok);
}

}  // namespace xbuild::cli
