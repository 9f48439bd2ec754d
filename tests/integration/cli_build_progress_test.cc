// `xbuild build --progress=...` end to end (as root, real runc and overlayfs): the plain log,
// rawjson's SolveStatus lines, quiet, and the tty display on a pseudo-terminal; step names as
// BuildKit gives them in one-stage and multi-stage builds.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "core/json.h"
#include "integration/build_fixture.h"
#include "registry/auth.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::RunTool;
using testing::ToolOut;
using testing::WriteTestFile;

class CliBuildProgressTest : public testing::BuildTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildTest::SetUp());
    WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo hi from the step\nRUN echo second\n");
  }

  // xbuild with stderr on a pseudo-terminal (util-linux script); what the terminal got comes
  // back as `out`.
  ToolOut XbOnPty(const std::string& args) {
    std::string cmd = std::string(XBUILD_BINARY) + " --root " + root_ + " " + args;
    core::RunOptions o;
    o.extra_env = {{"XBUILD_CONFIG", ""}, {"BUILDKIT_PROGRESS", ""}, {"TERM", "xterm"}};
    return RunTool({"script", "-qfec", cmd, "/dev/null"}, o);
  }

  // Each rawjson line parsed; fails the test on a line that is not a JSON object.
  std::vector<core::Json> JsonLines(const std::string& s) {
    std::vector<core::Json> out;
    size_t start = 0;
    for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1) {
      auto j = core::ParseJson(s.substr(start, nl - start), "rawjson line");
      EXPECT_TRUE(j.ok() && j->is_object()) << s.substr(start, nl - start);
      if (j.ok()) out.push_back(*j);
    }
    EXPECT_EQ(start, s.size()) << "the last line ends in a newline";
    return out;
  }

};

TEST_F(CliBuildProgressTest, PlainNamesStepsLikeBuildKit) {
  ToolOut b = Xb({"build", "--progress=plain", "-t", "p:1", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.out, "");
  // The base's metadata, then the steps numbered FROM first, each with its output and time.
  EXPECT_TRUE(std::regex_search(b.err, std::regex("#1 \\[internal\\] load metadata for docker.io/library/base:1\n#1 DONE [0-9.]+s\n")))
      << b.err;
  EXPECT_TRUE(std::regex_search(b.err, std::regex("#[0-9]+ \\[1/3\\] FROM docker.io/library/base:1@sha256:[0-9a-f]{64}\n")))
      << b.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(b.err, m, std::regex("#([0-9]+) \\[2/3\\] RUN echo hi from the step\n"))) << b.err;
  std::string n = m[1];
  EXPECT_TRUE(std::regex_search(b.err, std::regex("#" + n + " [0-9]+\\.[0-9]{3} hi from the step\n#" + n + " DONE [0-9.]+s\n")))
      << b.err;
  EXPECT_NE(b.err.find("] RUN echo second\n"), std::string::npos) << b.err;
  EXPECT_TRUE(std::regex_search(b.err, std::regex("#([0-9]+) exporting to image\n#\\1 exporting layers [0-9.]+s done\n"
                                                  "#\\1 writing image sha256:[0-9a-f]{64} done\n"
                                                  "#\\1 naming to docker.io/library/p:1 done\n#\\1 DONE [0-9.]+s\n")))
      << b.err;
  EXPECT_EQ(b.err.find("stage-0"), std::string::npos) << "one stage: no stage in the names";

  // Warm: every step CACHED under the same names.
  ToolOut w = Xb({"build", "--progress=plain", ctx_});
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_TRUE(std::regex_search(w.err, std::regex("#[0-9]+ \\[2/3\\] RUN echo hi from the step\n#[0-9]+ CACHED\n"))) << w.err;
  EXPECT_TRUE(std::regex_search(w.err, std::regex("#[0-9]+ \\[3/3\\] RUN echo second\n#[0-9]+ CACHED\n"))) << w.err;
  EXPECT_FALSE(std::regex_search(w.err, std::regex("#[0-9]+ [0-9]+\\.[0-9]{3} "))) << "no step ran, none printed output: " << w.err;
}

TEST_F(CliBuildProgressTest, MultiStageNamesCarryTheStage) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1 AS build\nWORKDIR /src\nRUN echo built > /src/out\n"
                "FROM base:1\nCOPY --from=build /src/out /out\nRUN cat /out\n");
  ToolOut b = Xb({"build", "--progress=plain", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find(" [build 2/3] WORKDIR /src\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" [build 3/3] RUN echo built > /src/out\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" [stage-1 2/3] COPY --from=build /src/out /out\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" [stage-1 3/3] RUN cat /out\n"), std::string::npos) << b.err;
  // Both stages start from the same image: one vertex, under one of the two names.
  EXPECT_TRUE(std::regex_search(b.err, std::regex("\\[(build|stage-1) 1/3\\] FROM docker.io/library/base:1@sha256:"))) << b.err;
}

TEST_F(CliBuildProgressTest, RawJsonLinesAreSolveStatuses) {
  ToolOut b = Xb({"build", "--progress=rawjson", "-t", "j:1", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.out, "");
  std::map<std::string, core::Json> vertices;  // latest state by digest
  std::map<std::string, std::string> logs;     // by vertex digest
  std::set<std::string> status_ids;
  for (const auto& j : JsonLines(b.err)) {
    for (const auto& v : j.value("vertexes", core::Json::array())) {
      std::string d = v["digest"].get<std::string>();
      EXPECT_TRUE(std::regex_match(d, std::regex("sha256:[0-9a-f]{64}"))) << v.dump();
      vertices[d] = v;
    }
    for (const auto& l : j.value("logs", core::Json::array())) {
      auto data = registry::Base64Decode(l["data"].get<std::string>());
      ASSERT_TRUE(data.ok()) << l.dump();
      logs[l["vertex"].get<std::string>()] += *data;
      EXPECT_EQ(l["stream"], 1) << l.dump();
    }
    for (const auto& s : j.value("statuses", core::Json::array())) status_ids.insert(s["id"].get<std::string>());
  }
  std::map<std::string, std::string> by_name;
  for (const auto& [d, v] : vertices) {
    by_name[v["name"].get<std::string>()] = d;
    EXPECT_TRUE(v.contains("started") && v.contains("completed")) << "everything ran or was cached: " << v.dump();
    EXPECT_FALSE(v.contains("error")) << v.dump();
    for (const auto& in : v.value("inputs", core::Json::array())) {
      EXPECT_TRUE(vertices.count(in.get<std::string>())) << "inputs are vertices: " << v.dump();
    }
  }
  ASSERT_TRUE(by_name.count("[2/3] RUN echo hi from the step")) << b.err;
  ASSERT_TRUE(by_name.count("exporting to image")) << b.err;
  EXPECT_TRUE(by_name.count("[internal] load metadata for docker.io/library/base:1")) << b.err;
  EXPECT_EQ(logs[by_name["[2/3] RUN echo hi from the step"]], "hi from the step\n");
  EXPECT_TRUE(status_ids.count("naming to docker.io/library/j:1")) << b.err;

  // The solver's digests: a rebuild names the same vertices, now cached.
  ToolOut w = Xb({"build", "--progress=rawjson", ctx_});
  ASSERT_EQ(w.code, 0) << w.err;
  std::map<std::string, core::Json> again;
  for (const auto& j : JsonLines(w.err)) {
    for (const auto& v : j.value("vertexes", core::Json::array())) again[v["digest"].get<std::string>()] = v;
  }
  for (const char* name : {"[1/3] FROM", "[2/3] RUN echo hi from the step", "[3/3] RUN echo second"}) {
    auto it = std::find_if(by_name.begin(), by_name.end(), [&](const auto& kv) { return kv.first.starts_with(name); });
    ASSERT_NE(it, by_name.end()) << name;
    ASSERT_TRUE(again.count(it->second)) << name << ": same digest on a rebuild";
    EXPECT_EQ(again[it->second].value("cached", false), true) << again[it->second].dump();
  }
}

TEST_F(CliBuildProgressTest, QuietPrintsNothingAndAFailureStillReportsItsError) {
  ToolOut q = Xb({"build", "--progress=quiet", ctx_});
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(q.err, "");
  EXPECT_EQ(q.out, "");
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN echo oops >&2 && exit 3\n");
  ToolOut f = Xb({"build", "--progress=quiet", ctx_});
  EXPECT_NE(f.code, 0);
  EXPECT_NE(f.err.find("exit code: 3"), std::string::npos) << f.err;
  EXPECT_FALSE(std::regex_search(f.err, std::regex("[0-9]\\.[0-9]{3} oops"))) << "quiet shows no step output: " << f.err;
  // Plain ends with BuildKit's report of the failed step's output, then where it is.
  ToolOut p = Xb({"build", "--progress=plain", ctx_});
  EXPECT_NE(p.code, 0);
  EXPECT_TRUE(std::regex_search(p.err, std::regex("------\n > \\[2/2\\] RUN echo oops >&2 && exit 3:\n[0-9]+\\.[0-9]{3} oops\n------\n"
                                                  "------\nDockerfile:2\n")))
      << p.err;
  EXPECT_NE(Xb({"build", "--progress=fancy", ctx_}).code, 0);
}

TEST_F(CliBuildProgressTest, TtyRedrawsInPlaceAndLeavesTheFinalFrame) {
  for (const char* mode : {"--progress=tty", "--progress=auto"}) {
    ToolOut t = XbOnPty(std::string("build ") + mode + " -t t:1 " + ctx_);
    ASSERT_EQ(t.code, 0) << mode << "\n" << t.out << t.err;
    // The final frame: header with every vertex done, the steps with their times.
    EXPECT_TRUE(std::regex_search(t.out, std::regex("\\[\\+\\] Building [0-9]+\\.[0-9]s \\(([0-9]+)/\\1\\) FINISHED"))) << mode << "\n" << t.out;
    EXPECT_TRUE(std::regex_search(t.out, std::regex(" => (CACHED )?\\[2/3\\] RUN echo hi from the step +[0-9]+\\.[0-9]s"))) << t.out;
    EXPECT_TRUE(std::regex_search(t.out, std::regex(" => exporting to image +[0-9]+\\.[0-9]s"))) << t.out;
    EXPECT_TRUE(std::regex_search(t.out, std::regex(" => => naming to docker.io/library/t:1 +[0-9]+\\.[0-9]s"))) << t.out;
    EXPECT_NE(t.out.find("\x1b[2K"), std::string::npos) << "lines are redrawn in place";
    EXPECT_EQ(t.out.find("#1 "), std::string::npos) << "not the plain log: " << t.out;
  }
  // Not a terminal: auto is plain.
  ToolOut a = Xb({"build", "--progress=auto", ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.err.find("#1 [internal] load metadata"), std::string::npos) << a.err;
  EXPECT_EQ(a.err.find("\x1b["), std::string::npos) << a.err;
}

}  // namespace
}  // namespace xbuild
