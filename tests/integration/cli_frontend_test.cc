// The frontend through the xbuild binary: debug parse, build --call=targets|outline|check,
// over BuildKit's parser data and 40 real-world Dockerfiles read in place.
#include <dirent.h>

#include <gtest/gtest.h>

#include <cstdlib>

#include "core/fs.h"
#include "core/subprocess.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

std::string ConformanceDir() {
  if (const char* e = std::getenv("XBUILD_CONFORMANCE_DIR"); e && *e) return e;
  return std::string(XBUILD_SOURCE_DIR) + "/../shared/conformance";
}

std::vector<std::string> Subdirs(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && core::Exists(dir + "/" + n + "/Dockerfile")) out.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

core::RunResult Xb(const std::vector<std::string>& args, const std::string& root) {
  std::vector<std::string> argv = {XBUILD_BINARY, "--root", root};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = core::RunProcess(argv);
  EXPECT_TRUE(r.ok());
  return *r;
}

TEST(CliFrontend, DebugParseMatchesBuildKitDumps) {
  std::string dir = ConformanceDir() + "/buildkit-parser/testfiles";
  auto cases = Subdirs(dir);
  if (cases.empty()) GTEST_SKIP() << "conformance data not found at " << dir;
  testing::TempDir tmp;
  for (auto& c : cases) {
    auto r = Xb({"debug", "parse", dir + "/" + c + "/Dockerfile"}, tmp.path());
    EXPECT_EQ(r.exit_code, 0) << c << ": " << r.err;
    EXPECT_EQ(r.out, testing::ReadTestFile(dir + "/" + c + "/result")) << c;
  }
}

TEST(CliFrontend, DebugParseFailsOnNegativeCases) {
  std::string dir = ConformanceDir() + "/buildkit-parser/testfiles-negative";
  auto cases = Subdirs(dir);
  if (cases.empty()) GTEST_SKIP() << "conformance data not found at " << dir;
  testing::TempDir tmp;
  for (auto& c : cases) {
    auto r = Xb({"debug", "parse", dir + "/" + c + "/Dockerfile"}, tmp.path());
    EXPECT_EQ(r.exit_code, 1) << c;
    EXPECT_TRUE(r.err.starts_with("Error: Dockerfile:")) << c << ": " << r.err;
  }
}

TEST(CliFrontend, CheckRunsOnEveryRealWorldDockerfile) {
  std::string dir = ConformanceDir() + "/real-world";
  auto cases = Subdirs(dir);
  if (cases.empty()) GTEST_SKIP() << "conformance data not found at " << dir;
  EXPECT_EQ(cases.size(), 40u);
  testing::TempDir tmp;
  for (auto& c : cases) {
    auto parse = Xb({"debug", "parse", dir + "/" + c + "/Dockerfile"}, tmp.path());
    EXPECT_EQ(parse.exit_code, 0) << c << ": " << parse.err;
    auto check = Xb({"build", "--call=check", dir + "/" + c}, tmp.path());
    EXPECT_EQ(check.term_signal, 0) << c;
    // Findings exit 1, a clean file exits 0; either way the check completes.
    EXPECT_TRUE(check.exit_code == 0 || check.exit_code == 1) << c;
    EXPECT_NE(check.out.find("Check complete"), std::string::npos) << c << ": " << check.out << check.err;
    auto targets = Xb({"build", "--call=targets", dir + "/" + c}, tmp.path());
    EXPECT_EQ(targets.exit_code, 0) << c << ": " << targets.err;
    EXPECT_NE(targets.out.find("(default)"), std::string::npos) << c;
  }
}

TEST(CliFrontend, CheckReportsFindingsAndHonoursDirective) {
  testing::TempDir tmp;
  testing::WriteTestFile(tmp.path(), "ctx/Dockerfile", "FROM scratch as Build\nCMD echo hi\n");
  auto r = Xb({"build", "--call=check", tmp.Sub("ctx")}, tmp.Sub("root"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("WARNING: StageNameCasing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("WARNING: FromAsCasing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Dockerfile:2: JSON arguments recommended"), std::string::npos) << r.out;
  testing::WriteTestFile(tmp.path(), "ctx2/Dockerfile",
                         "# check=skip=StageNameCasing,FromAsCasing,JSONArgsRecommended\nFROM scratch as Build\nCMD echo hi\n");
  auto skipped = Xb({"build", "--check", tmp.Sub("ctx2")}, tmp.Sub("root"));
  EXPECT_EQ(skipped.exit_code, 0) << skipped.out;
  EXPECT_NE(skipped.out.find("no warnings found"), std::string::npos);
}

TEST(CliFrontend, ErrorsNameTheDockerfileLine) {
  testing::TempDir tmp;
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"FROM scratch\nRUN <<EOF\necho never closed\n", "unterminated heredoc"},
      {"FROM scratch\nFROBNICATE\n", "Dockerfile:2: unknown instruction: FROBNICATE"},
      {"FROM scratch\nCOPY --from=later /a /b\nFROM scratch AS later\n", "Dockerfile:2: COPY --from: stage \"later\" needs to be defined before current stage"},
      {"FROM scratch AS me\nCOPY --from=me /a /b\n", "circular dependency detected on stage: me"},
      {"", "file with no instructions"},
      {"ENV A=1\nFROM scratch\n", "Dockerfile:1: ENV"},
      {"FROM scratch\nCOPY --bogus a b\n", "Dockerfile:2: COPY: unknown flag --bogus"},
  };
  int i = 0;
  for (auto& c : cases) {
    std::string ctx = tmp.Sub("c" + std::to_string(i++));
    testing::WriteTestFile(ctx, "Dockerfile", c.text);
    auto r = Xb({"build", "--call=check", ctx}, tmp.Sub("root"));
    EXPECT_EQ(r.exit_code, 1) << c.text;
    EXPECT_NE(r.err.find(c.want), std::string::npos) << c.text << " -> " << r.err;
  }
}

TEST(CliFrontend, OutlineListsArgsWithDefaults) {
  testing::TempDir tmp;
  testing::WriteTestFile(tmp.path(), "ctx/Dockerfile", "ARG BASE=busybox\nFROM $BASE AS app\nARG VERSION\nARG MODE=fast\n");
  auto r = Xb({"build", "--call=outline", tmp.Sub("ctx")}, tmp.Sub("root"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("TARGET:      app"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("BASE"), std::string::npos);
  EXPECT_NE(r.out.find("<UNSET>"), std::string::npos);
  EXPECT_NE(r.out.find("fast"), std::string::npos);
}

}  // namespace
}  // namespace xbuild
