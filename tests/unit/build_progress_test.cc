// Build progress (cli/build_progress): the plain, tty, rawjson and quiet formats driven by
// synthetic solver events into a memory stream; and the step names lowering gives vertices
// ("[2/3] RUN ...", "[build 1/3] FROM ...").
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <set>
#include <thread>

#include "cli/build_progress.h"
#include "core/json.h"
#include "frontend/ast.h"
#include "frontend/lower.h"
#include "registry/auth.h"

namespace xbuild::cli {
namespace {

using solver::SolveEvent;
using solver::Vertex;
using solver::VertexState;

// A FILE* writing into memory.
class MemFile {
 public:
  MemFile() : f_(::open_memstream(&buf_, &size_)) {}
  ~MemFile() {
    std::fclose(f_);
    std::free(buf_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  FILE* get() { return f_; }
  // Safe while another thread writes: the stream's own lock covers the flush and the copy.
  std::string str() {
    ::flockfile(f_);
    std::fflush(f_);
    std::string s(buf_, size_);
    ::funlockfile(f_);
    return s;
  }

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  FILE* f_;
};

// Options writing into m, drawn by hand (no ticker thread) unless a test asks for one.
ProgressOptions Opts(ProgressMode mode, MemFile& m, int width = 0, int height = 0) {
  ProgressOptions o;
  o.mode = mode;
  o.out = m.get();
  o.width = width;
  o.height = height;
  o.ticker = false;
  return o;
}

// A three-vertex chain: an image, a RUN on it, a COPY after it.
struct Chain {
  Chain() {
    solver::SourceOp src;
    src.identifier = "docker-image://docker.io/library/busybox:latest";
    solver::Output base = solver::MakeVertex(src, {}, {"[1/3] FROM docker.io/library/busybox:latest", "", 1, false});
    solver::ExecOp run;
    run.args = {"/bin/sh", "-c", "echo hi"};
    solver::Output r = solver::MakeVertex(run, {base}, {"[2/3] RUN echo hi", "", 2, false});
    solver::ExecOp run2;
    run2.args = {"/bin/sh", "-c", "false"};
    solver::Output c = solver::MakeVertex(run2, {r}, {"[3/3] RUN false", "", 3, false});
    def = solver::Flatten(c);
  }
  const Vertex* at(size_t i) const { return def.vertices.at(i).get(); }
  solver::Definition def;
};

SolveEvent Ev(const Vertex* v, VertexState s, std::string error = "") {
  SolveEvent e;
  e.vertex = v;
  e.state = s;
  e.error = std::move(error);
  return e;
}

// Lines of a tty frame as the terminal shows them: escape sequences and CR dropped.
std::vector<std::string> VisibleLines(const std::string& s) {
  std::string plain = std::regex_replace(s, std::regex("\x1b\\[[0-9;]*[A-Za-z]|\r"), "");
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = plain.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(plain.substr(start, nl - start));
  }
  return lines;
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(ProgressMode, ParsesBuildKitNames) {
  EXPECT_EQ(*ParseProgressMode("auto"), ProgressMode::kAuto);
  EXPECT_EQ(*ParseProgressMode("plain"), ProgressMode::kPlain);
  EXPECT_EQ(*ParseProgressMode("tty"), ProgressMode::kTty);
  EXPECT_EQ(*ParseProgressMode("quiet"), ProgressMode::kQuiet);
  EXPECT_EQ(*ParseProgressMode("rawjson"), ProgressMode::kRawJson);
  auto bad = ParseProgressMode("fancy");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("rawjson"), std::string::npos) << bad.error().message();
}

TEST(ProgressMode, AutoIsTtyOnATerminalElsePlain) {
  MemFile m;
  ProgressOptions o;
  o.out = m.get();
  o.ticker = false;
  o.terminal = true;
  EXPECT_EQ(BuildProgress(o).mode(), ProgressMode::kTty);
  o.terminal = false;
  EXPECT_EQ(BuildProgress(o).mode(), ProgressMode::kPlain);
}

TEST(PlainProgress, NumbersVerticesAndPrintsOutputDoneCachedErrorCanceled) {
  Chain c;
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kPlain, m));
  p.StartStep("[internal] load metadata for docker.io/library/busybox:latest").Done();
  p.Plan(c.def);
  EXPECT_EQ(m.str(), "#1 [internal] load metadata for docker.io/library/busybox:latest\n#1 DONE 0.0s\n\n")
      << "planned vertices print nothing until they start";
  p.Event(Ev(c.at(0), VertexState::kCached));
  p.Event(Ev(c.at(1), VertexState::kStarted));
  p.Output(*c.at(1), 1, "hello\nwor");
  p.Output(*c.at(1), 2, "on stderr\n");
  p.Output(*c.at(1), 1, "ld\nno newline");
  p.Event(Ev(c.at(1), VertexState::kDone));
  p.Event(Ev(c.at(2), VertexState::kStarted));
  p.Output(*c.at(2), 2, "oops\n");
  p.Event(Ev(c.at(2), VertexState::kFailed, "process \"/bin/sh -c false\" did not complete successfully: exit code: 1"));
  ProgressStep exp = p.StartStep("exporting to image");
  exp.Status("exporting layers");
  exp.StatusDone("exporting layers");
  exp.StatusDone("writing image sha256:abc");
  exp.Fail("disk full");
  p.Close(false);
  std::string out = m.str();

  EXPECT_NE(out.find("#2 [1/3] FROM docker.io/library/busybox:latest\n#2 CACHED\n\n"), std::string::npos) << out;
  EXPECT_NE(out.find("#3 [2/3] RUN echo hi\n"), std::string::npos) << out;
  // Output lines carry the seconds since the step started; a line split across chunks is
  // printed whole; an unterminated last line is printed when the step ends, before DONE.
  std::regex lines("#3 [0-9]+\\.[0-9]{3} hello\n"
                   "#3 [0-9]+\\.[0-9]{3} on stderr\n"
                   "#3 [0-9]+\\.[0-9]{3} world\n"
                   "#3 [0-9]+\\.[0-9]{3} no newline\n"
                   "#3 DONE [0-9]+\\.[0-9]s\n\n");
  EXPECT_TRUE(std::regex_search(out, lines)) << out;
  EXPECT_NE(out.find("#4 ERROR: process \"/bin/sh -c false\" did not complete successfully: exit code: 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("#5 exporting to image\n"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("#5 exporting layers [0-9]+\\.[0-9]s done\n"))) << out;
  EXPECT_NE(out.find("#5 writing image sha256:abc done\n"), std::string::npos) << out;
  EXPECT_NE(out.find("#5 ERROR: disk full\n"), std::string::npos) << out;
  // The report of failed steps closes the output: each with its last lines.
  EXPECT_TRUE(std::regex_search(out, std::regex("------\n > \\[3/3\\] RUN false:\n[0-9]+\\.[0-9]{3} oops\n------\n"))) << out;
  EXPECT_NE(out.find("------\n > exporting to image:\n------\n"), std::string::npos) << out;
  EXPECT_EQ(Count(out, "------\n > "), 2u) << out;

  // Nothing after Close.
  p.Event(Ev(c.at(2), VertexState::kStarted));
  EXPECT_EQ(m.str(), out);
}

TEST(PlainProgress, StatusLinesInBuildKitsTextForm) {
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kPlain, m));
  ProgressStep s = p.StartStep("exporting to image");
  s.StatusLine("exporting layers 2.5s done");
  s.StatusLine("naming to docker.io/library/app:1 done");
  s.StatusLine("pushing layers");
  s.StatusLine("pushing layers 0.3s done");
  s.StatusLine("size 10s of files done");
  s.Done();
  p.Close(true);
  std::string out = m.str();
  EXPECT_TRUE(std::regex_match(out, std::regex("#1 exporting to image\n"
                                               "#1 exporting layers 2\\.5s done\n"
                                               "#1 naming to docker.io/library/app:1 done\n"
                                               "#1 pushing layers [0-9]+\\.[0-9]s done\n"
                                               "#1 size 10s of files done\n"
                                               "#1 DONE [0-9]+\\.[0-9]s\n\n")))
      << out;
}

TEST(PlainProgress, CanceledStepsSayCanceledAndAreNotReported) {
  Chain c;
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kPlain, m));
  p.Plan(c.def);
  p.Event(Ev(c.at(0), VertexState::kStarted));
  p.Event(Ev(c.at(0), VertexState::kCancelled, "cancelled"));
  p.Close(false);
  EXPECT_EQ(m.str(), "#1 [1/3] FROM docker.io/library/busybox:latest\n#1 CANCELED\n\n");
}

TEST(TtyProgress, FrameHasHeaderCachedAndRunningLinesAndTheLastSixOutputLines) {
  Chain c;
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kTty, m, 70));
  p.Plan(c.def);
  p.Event(Ev(c.at(0), VertexState::kCached));
  p.Event(Ev(c.at(1), VertexState::kStarted));
  for (int i = 1; i <= 8; ++i) p.Output(*c.at(1), 1, "line " + std::to_string(i) + "\n");
  p.Output(*c.at(1), 1, "\x1b[31mred\x1b[0m\tand\r progress 50%\r progress 100%\n");
  p.Redraw();
  std::string first = m.str();
  std::vector<std::string> lines = VisibleLines(first);
  ASSERT_GE(lines.size(), 3u) << first;
  EXPECT_TRUE(std::regex_match(lines[0], std::regex("\\[\\+\\] Building [0-9]+\\.[0-9]s \\(1/3\\)"))) << lines[0];
  EXPECT_TRUE(std::regex_match(lines[1], std::regex(" => CACHED \\[1/3\\] FROM docker.io/library/busybox:latest +0\\.0s")))
      << lines[1];
  EXPECT_TRUE(std::regex_match(lines[2], std::regex(" => \\[2/3\\] RUN echo hi +[0-9]+\\.[0-9]s"))) << lines[2];
  // The window: the last 6 lines; what a carriage return overwrote and escape sequences are gone.
  std::vector<std::string> window(lines.begin() + 3, lines.end());
  EXPECT_EQ(window, (std::vector<std::string>{" => => # line 4", " => => # line 5", " => => # line 6", " => => # line 7",
                                              " => => # line 8", " => => #  progress 100%"}))
      << first;
  EXPECT_EQ(first.find("[3/3]"), std::string::npos) << "not started: not shown";
  EXPECT_EQ(lines[1].size(), 69u) << "timers end at the width less one column";
  EXPECT_EQ(lines[2].size(), 69u);

  // The next frame is drawn over this one.
  p.Event(Ev(c.at(1), VertexState::kDone));
  p.Event(Ev(c.at(2), VertexState::kCached));
  ProgressStep exporting = p.StartStep("exporting to image");
  exporting.StatusDone("naming to docker.io/library/app:1");
  p.Redraw();
  std::string second = m.str().substr(first.size());
  EXPECT_EQ(second.rfind("\x1b[" + std::to_string(lines.size()) + "A", 0), 0u) << "cursor back to the frame's top";
  EXPECT_NE(second.find("\x1b[J"), std::string::npos) << "the frame shrank: the rest is cleared";
  std::vector<std::string> l2 = VisibleLines(second);
  EXPECT_NE(l2[0].find("(3/4)"), std::string::npos) << l2[0];
  EXPECT_EQ(second.find("=> => #"), std::string::npos) << "finished steps show no output window";
  EXPECT_TRUE(std::regex_match(l2.back(), std::regex(" => => naming to docker.io/library/app:1 +[0-9]+\\.[0-9]s"))) << second;

  exporting.Done();
  p.Close(true);
  std::string last = m.str().substr(first.size() + second.size());
  std::vector<std::string> l3 = VisibleLines(last);
  EXPECT_TRUE(std::regex_match(l3[0], std::regex("\\[\\+\\] Building [0-9]+\\.[0-9]s \\(4/4\\) FINISHED"))) << l3[0];
  EXPECT_EQ(last.find("------"), std::string::npos) << "no report after a success";
}

TEST(TtyProgress, LinesFitTheWidth) {
  solver::ExecOp run;
  run.args = {"true"};
  std::string long_name = "[2/3] RUN " + std::string(200, 'x');
  solver::Definition def = solver::Flatten(solver::MakeVertex(run, {}, {long_name, "", 2, false}));
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kTty, m, 40));
  p.Plan(def);
  p.Event(Ev(def.vertices[0].get(), VertexState::kStarted));
  p.Output(*def.vertices[0], 1, std::string(300, 'y') + "\n" + "ünïcödé " + std::string(100, 'z') + "\n");
  p.Redraw();
  std::vector<std::string> lines = VisibleLines(m.str());
  ASSERT_EQ(lines.size(), 4u) << m.str();
  for (const auto& l : lines) {
    size_t cols = 0;
    for (unsigned char ch : l) cols += (ch & 0xC0) != 0x80;
    EXPECT_LE(cols, 39u) << "one column is left free: " << l;
  }
  // The name is cut, the timer kept.
  EXPECT_TRUE(std::regex_match(lines[1], std::regex(" => \\[2/3\\] RUN x+ [0-9]+\\.[0-9]s"))) << lines[1];
  EXPECT_EQ(lines[2], " => => # " + std::string(30, 'y'));
  EXPECT_EQ(lines[3], " => => # ünïcödé " + std::string(22, 'z')) << "cut by characters, not bytes";
}

TEST(TtyProgress, ATallFrameDropsFinishedStepsFirst) {
  std::vector<solver::Output> outs;
  solver::Output prev;
  for (int i = 1; i <= 10; ++i) {
    solver::ExecOp run;
    run.args = {"step", std::to_string(i)};
    prev = solver::MakeVertex(run, prev.scratch() ? std::vector<solver::Output>{} : std::vector<solver::Output>{prev},
                              {"[" + std::to_string(i) + "/10] RUN step " + std::to_string(i), "", i, false});
  }
  solver::Definition def = solver::Flatten(prev);
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kTty, m, 60, 6));
  p.Plan(def);
  for (size_t i = 0; i + 1 < def.vertices.size(); ++i) p.Event(Ev(def.vertices[i].get(), VertexState::kCached));
  p.Event(Ev(def.vertices.back().get(), VertexState::kStarted));
  p.Output(*def.vertices.back(), 1, "working\n");
  p.Redraw();
  std::vector<std::string> lines = VisibleLines(m.str());
  ASSERT_EQ(lines.size(), 5u) << "height 6: five lines and the cursor's row\n" << m.str();
  EXPECT_NE(lines[0].find("(9/10)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[3].find("[10/10] RUN step 10"), std::string::npos) << m.str();
  EXPECT_EQ(lines[4], " => => # working");
  EXPECT_NE(lines[2].find("CACHED [9/10]"), std::string::npos) << "the newest finished ones stay: " << m.str();
  // The final frame keeps everything.
  p.Event(Ev(def.vertices.back().get(), VertexState::kDone));
  p.Close(true);
  std::string all = m.str();
  std::string last = all.substr(all.rfind("[+] Building"));
  EXPECT_EQ(Count(last, " => "), 10u) << last;
}

TEST(TtyProgress, AFailureEndsWithTheFailedStepsOutput) {
  Chain c;
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kTty, m, 80));
  p.Plan(c.def);
  p.Event(Ev(c.at(0), VertexState::kCached));
  p.Event(Ev(c.at(1), VertexState::kCached));
  p.Event(Ev(c.at(2), VertexState::kStarted));
  for (int i = 1; i <= 9; ++i) p.Output(*c.at(2), 2, "err " + std::to_string(i) + "\n");
  p.Event(Ev(c.at(2), VertexState::kFailed, "exit code: 1"));
  p.Close(false);
  std::string out = m.str();
  EXPECT_TRUE(std::regex_search(out, std::regex(" => ERROR \\[3/3\\] RUN false +[0-9]+\\.[0-9]s\n"))) << out;
  EXPECT_NE(out.find("(3/3) FINISHED"), std::string::npos) << out;
  size_t report = out.find("------\n > [3/3] RUN false:\n");
  ASSERT_NE(report, std::string::npos) << out;
  // All nine lines (more than the 6 of the live window).
  EXPECT_TRUE(std::regex_search(out.substr(report), std::regex("[0-9]+\\.[0-9]{3} err 1\n(.*\n){7}[0-9]+\\.[0-9]{3} err 9\n------\n")))
      << out;
}

TEST(TtyProgress, TheTickerRedrawsOnItsOwn) {
  Chain c;
  MemFile m;
  ProgressOptions o = Opts(ProgressMode::kTty, m, 80);
  o.ticker = true;
  BuildProgress p(o);
  p.Plan(c.def);
  p.Event(Ev(c.at(0), VertexState::kStarted));
  // Frames come from the ticker thread alone; wait (up to a minute, no timing asserted) for one
  // that shows the started step.
  bool seen = false;
  for (int i = 0; i < 6000 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    seen = m.str().find(" => [1/3] FROM") != std::string::npos;
  }
  EXPECT_TRUE(seen) << m.str();
  EXPECT_EQ(m.str().find("FINISHED"), std::string::npos) << "live frames only, before Close";
  p.Close(true);
  EXPECT_NE(m.str().find("FINISHED"), std::string::npos);
}

TEST(RawJsonProgress, LinesAreSolveStatusObjects) {
  Chain c;
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kRawJson, m));
  p.Plan(c.def);
  p.Event(Ev(c.at(0), VertexState::kCached));
  p.Event(Ev(c.at(1), VertexState::kStarted));
  const char kBinary[] = "bytes \x00\xff\x01 and text\n";
  std::string binary(kBinary, sizeof kBinary - 1);
  p.Output(*c.at(1), 1, binary);
  p.Output(*c.at(1), 2, "err\n");
  p.Event(Ev(c.at(1), VertexState::kDone));
  p.Event(Ev(c.at(2), VertexState::kStarted));
  p.Event(Ev(c.at(2), VertexState::kFailed, "exit code: 1 \xff"));
  ProgressStep s = p.StartStep("exporting to image");
  s.StatusDone("writing image sha256:abc");
  s.Done();
  p.Close(false);

  std::string out = m.str();
  std::regex rfc3339("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z");
  std::map<std::string, core::Json> last;  // latest state of each vertex, by digest
  std::string logs;
  std::vector<core::Json> statuses;
  size_t n = 0;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1, ++n) {
    auto j = core::ParseJson(out.substr(start, nl - start), "rawjson line");
    ASSERT_TRUE(j.ok()) << out.substr(start, nl - start);
    ASSERT_TRUE(j->is_object());
    for (const auto& [key, value] : j->items()) {
      EXPECT_TRUE(key == "vertexes" || key == "statuses" || key == "logs") << key;
      EXPECT_TRUE(value.is_array() && !value.empty()) << "empty lists are left out: " << j->dump();
    }
    for (const auto& v : j->value("vertexes", core::Json::array())) {
      ASSERT_TRUE(v.contains("digest") && v.contains("name")) << v.dump();
      for (const char* t : {"started", "completed"}) {
        if (v.contains(t)) {
          EXPECT_TRUE(std::regex_match(v[t].get<std::string>(), rfc3339)) << v.dump();
        }
      }
      last[v["digest"].get<std::string>()] = v;
    }
    for (const auto& l : j->value("logs", core::Json::array())) {
      EXPECT_EQ(l["vertex"], c.at(1)->digest.String());
      EXPECT_TRUE(std::regex_match(l["timestamp"].get<std::string>(), rfc3339)) << l.dump();
      auto data = registry::Base64Decode(l["data"].get<std::string>());
      ASSERT_TRUE(data.ok());
      logs += std::to_string(l["stream"].get<int>()) + ":" + *data;
    }
    for (const auto& st : j->value("statuses", core::Json::array())) statuses.push_back(st);
  }
  EXPECT_EQ(start, out.size()) << "every line ends in a newline";
  EXPECT_GE(n, 8u);
  // The first line announces every planned vertex, with its inputs, before anything runs.
  auto first = core::Json::parse(out.substr(0, out.find('\n')));
  ASSERT_EQ(first["vertexes"].size(), 3u) << first.dump();
  EXPECT_EQ(first["vertexes"][1]["inputs"], core::Json::array({c.at(0)->digest.String()}));
  EXPECT_FALSE(first["vertexes"][0].contains("started"));

  EXPECT_EQ(logs, "1:" + binary + "2:err\n") << "log data decodes back to the exact bytes";
  const core::Json& cached = last[c.at(0)->digest.String()];
  EXPECT_EQ(cached["cached"], true);
  EXPECT_EQ(cached["name"], "[1/3] FROM docker.io/library/busybox:latest");
  const core::Json& done = last[c.at(1)->digest.String()];
  EXPECT_TRUE(done.contains("started") && done.contains("completed")) << done.dump();
  EXPECT_FALSE(done.contains("cached"));
  EXPECT_FALSE(done.contains("error"));
  const core::Json& failed = last[c.at(2)->digest.String()];
  EXPECT_EQ(failed["error"].get<std::string>().rfind("exit code: 1", 0), 0u) << failed.dump();
  ASSERT_EQ(last.size(), 4u) << "three solver vertices and the export step";
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0]["id"], "writing image sha256:abc");
  EXPECT_TRUE(statuses[0].contains("completed"));
  EXPECT_TRUE(last.count(statuses[0]["vertex"].get<std::string>())) << "a status names its step's vertex";
  EXPECT_EQ(out.find("------"), std::string::npos) << "rawjson is JSON only";
}

TEST(QuietProgress, PrintsNothing) {
  Chain c;
  MemFile m;
  BuildProgress p(Opts(ProgressMode::kQuiet, m));
  p.Plan(c.def);
  p.Event(Ev(c.at(0), VertexState::kStarted));
  p.Output(*c.at(0), 1, "hi\n");
  p.Event(Ev(c.at(0), VertexState::kFailed, "boom"));
  p.StartStep("exporting to image").Done();
  p.Close(false);
  EXPECT_EQ(m.str(), "");
}

// Step names from lowering, as BuildKit's dockerfile2llb writes them.
class DigestResolver : public frontend::ImageResolver {
 public:
  core::Result<image::ImageConfig> ResolveImageConfig(const image::Reference&, const image::Platform&) override {
    return image::ImageConfig{};
  }
  std::optional<core::Digest> ResolvedDigest(const image::Reference& ref) override {
    if (ref.path != "library/busybox") return std::nullopt;
    return core::Digest::Of("busybox manifest");
  }
};

std::set<std::string> Names(const std::string& dockerfile, frontend::ImageResolver* r = nullptr,
                            frontend::LowerOptions o = {}) {
  auto df = frontend::ParseDockerfile(dockerfile);
  EXPECT_TRUE(df.ok()) << df.error().ToString();
  if (!df.ok()) return {};
  auto l = frontend::Lower(*df, o, r);
  EXPECT_TRUE(l.ok()) << l.error().ToString();
  if (!l.ok()) return {};
  std::set<std::string> names;
  for (const auto& v : l->definition.vertices) names.insert(v->meta.description);
  return names;
}

TEST(StepNames, OneStageCountsFromAndEveryStepThatMakesAVertex) {
  DigestResolver r;
  EXPECT_EQ(Names("FROM busybox\nENV A=1\nrun echo hi\nCOPY a.txt /a\nCMD [\"sh\"]\n", &r),
            (std::set<std::string>{"[1/3] FROM docker.io/library/busybox:latest@" + core::Digest::Of("busybox manifest").String(),
                                   "[2/3] RUN echo hi", "[3/3] COPY a.txt /a", "[internal] load build context"}));
  // Without a resolver that knows the digest: the reference as written, normalised.
  EXPECT_EQ(Names("FROM alpine:3\nWORKDIR /src\nRUN make\n"),
            (std::set<std::string>{"[1/3] FROM docker.io/library/alpine:3", "[2/3] WORKDIR /src", "[3/3] RUN make"}));
  // Ten or more steps: the index is padded to the total's width.
  std::string many = "FROM scratch\n";
  for (int i = 0; i < 11; ++i) many += "COPY f" + std::to_string(i) + " /\n";
  auto names = Names(many);
  EXPECT_TRUE(names.count("[ 1/11] COPY f0 /")) << *names.begin();
  EXPECT_TRUE(names.count("[11/11] COPY f10 /"));
}

TEST(StepNames, StagesAreNamedOrNumbered) {
  auto names = Names(
      "FROM busybox AS build\nWORKDIR /src\nRUN make\n"
      "FROM scratch\nCOPY --from=build /src/x /x\nCOPY --from=alpine /etc/os-release /\n");
  EXPECT_EQ(names, (std::set<std::string>{"[build 1/3] FROM docker.io/library/busybox:latest", "[build 2/3] WORKDIR /src",
                                          "[build 3/3] RUN make", "[stage-1 1/2] COPY --from=build /src/x /x",
                                          "[stage-1 2/2] COPY --from=alpine /etc/os-release /",
                                          "FROM docker.io/library/alpine:latest"}));
  // One stage, but it reads another image: BuildKit counts that as a second stage.
  names = Names("FROM busybox\nCOPY --from=alpine / /alpine\n");
  EXPECT_TRUE(names.count("[stage-0 2/2] COPY --from=alpine / /alpine")) << *names.begin();
}

TEST(StepNames, OnbuildTriggersAreMarked) {
  class OnbuildResolver : public frontend::ImageResolver {
   public:
    core::Result<image::ImageConfig> ResolveImageConfig(const image::Reference&, const image::Platform&) override {
      image::ImageConfig c;
      c.config.on_build = {"RUN echo triggered"};
      return c;
    }
  } r;
  EXPECT_EQ(Names("FROM base\nRUN echo mine\n", &r),
            (std::set<std::string>{"[1/3] FROM docker.io/library/base:latest", "[2/3] ONBUILD RUN echo triggered",
                                   "[3/3] RUN echo mine"}));
}

}  // namespace
}  // namespace xbuild::cli
