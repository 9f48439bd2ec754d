// The examples in examples/Dockerfiles/, built with the xbuild binary exactly as their READMEs
// say, on a fresh state root per test (as root: real runc and overlayfs), offline: busybox:local
// is busybox-static with its applets, toolchain:local is scripts/make-toolchain-rootfs.sh's
// rootfs (made once per test binary, and only when a test needs it). Each image is run and its
// output checked, and its config read back with `xbuild inspect`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "integration/registry_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::RunTool;
using testing::ToolOut;

const std::string kExamples = std::string(XBUILD_SOURCE_DIR) + "/examples/Dockerfiles/";

bool Contains(const core::Json& list, const std::string& item) {
  return list.is_array() && std::find(list.begin(), list.end(), item) != list.end();
}

class ExamplesTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { toolchain_dir_.reset(); }

  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "builds run runc and mount overlayfs: run the tests as root";
    root_ = tmp_.Sub("state");
    // busybox:local as scripts/main-job.sh makes it: every applet linked (the examples call
    // mkdir, wc, tr, find ...), a root user, CMD and PATH set by import.
    std::string rootfs = tmp_.Sub("busybox");
    ASSERT_NO_FATAL_FAILURE(testing::MakeBusyboxRootfs(rootfs));
    ToolOut list = RunTool({rootfs + "/bin/busybox", "--list"});
    ASSERT_EQ(list.code, 0) << list.err;
    for (size_t b = 0, e; b < list.out.size(); b = e + 1) {
      e = list.out.find('\n', b);
      if (e == std::string::npos) e = list.out.size();
      std::string app = list.out.substr(b, e - b);
      if (app.empty() || core::Exists(rootfs + "/bin/" + app)) continue;
      ASSERT_EQ(::symlink("busybox", (rootfs + "/bin/" + app).c_str()), 0) << app;
    }
    testing::WriteTestFile(rootfs, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    ToolOut imp = Xb({"import", "--change", "CMD [\"/bin/sh\"]", "--change", "ENV PATH=/bin",
                      rootfs, "busybox:local"});
    ASSERT_EQ(imp.code, 0) << imp.err;
  }

  // The toolchain rootfs, made by the script on first use and kept until the suite ends.
  static const std::string& ToolchainRootfs(std::string* error) {
    static std::string path, failure;
    if (!toolchain_dir_) {
      toolchain_dir_ = std::make_unique<testing::TempDir>();
      path = toolchain_dir_->Sub("rootfs");
      auto r = core::RunProcess(
          {"bash", std::string(XBUILD_SOURCE_DIR) + "/scripts/make-toolchain-rootfs.sh", path});
      failure = !r.ok()             ? r.error().ToString()
                : r->exit_code != 0 ? "exit " + std::to_string(r->exit_code) + ": " + r->err
                                    : "";
    }
    *error = failure;
    return path;
  }

  void ImportToolchain() {
    std::string error;
    const std::string& rootfs = ToolchainRootfs(&error);
    ASSERT_EQ(error, "") << "scripts/make-toolchain-rootfs.sh";
    ToolOut imp = Xb({"import", rootfs, "toolchain:local"});
    ASSERT_EQ(imp.code, 0) << imp.err;
  }

  ToolOut Xb(const std::vector<std::string>& args) { return testing::RunXbuild(root_, args); }

  core::Json Config(const std::string& name) {
    ToolOut o = Xb({"inspect", name});
    EXPECT_EQ(o.code, 0) << o.err;
    auto j = core::Json::parse(o.out, nullptr, false);
    return j.is_array() && j.size() == 1 ? j[0] : core::Json();
  }

  // The image's stdout when run with its own ENTRYPOINT/CMD plus `args`; the run must succeed.
  std::string RunImage(const std::string& image, std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {"run", "--rm", image};
    argv.insert(argv.end(), args.begin(), args.end());
    ToolOut r = Xb(argv);
    EXPECT_EQ(r.code, 0) << "xbuild run " << image << ": " << r.err;
    return r.out;
  }

  static std::unique_ptr<testing::TempDir> toolchain_dir_;
  testing::TempDir tmp_;
  std::string root_;
};

std::unique_ptr<testing::TempDir> ExamplesTest::toolchain_dir_;

TEST_F(ExamplesTest, CMultistageCompilesInTheToolchainAndShipsOnlyTheBinary) {
  ASSERT_NO_FATAL_FAILURE(ImportToolchain());
  ToolOut b = Xb({"build", "-t", "primes:1", kExamples + "c-multistage"});
  ASSERT_EQ(b.code, 0) << b.err;
  // The build stage ran the freshly compiled binary.
  EXPECT_NE(b.err.find("primes below 30: 10 (sum 129, largest 29)"), std::string::npos) << b.err;

  // Its output: the sieve's figures, the USER's uid and the WORKDIR.
  EXPECT_EQ(
      RunImage("primes:1"),
      "primes below 100: 25 (sum 1060, largest 97)\nprimes 1.0 running as uid 1000 in /data\n");
  EXPECT_EQ(
      RunImage("primes:1", {"1000"}),
      "primes below 1000: 168 (sum 76127, largest 997)\nprimes 1.0 running as uid 1000 in /data\n");
  // The HEALTHCHECK's command works in the image.
  EXPECT_EQ(
      Xb({"run", "--rm", "--entrypoint", "/usr/local/bin/primes", "primes:1", "--check"}).code, 0);

  core::Json cfg = Config("primes:1");
  const core::Json& c = cfg["Config"];
  EXPECT_EQ(c["User"], "app");
  EXPECT_EQ(c["WorkingDir"], "/data");
  EXPECT_EQ(c["Entrypoint"], core::Json::array({"/usr/local/bin/primes"}));
  EXPECT_EQ(c["Cmd"], core::Json::array({"100"}));
  EXPECT_TRUE(c["ExposedPorts"].contains("8080/tcp")) << c.dump();
  EXPECT_TRUE(c["ExposedPorts"].contains("9090/udp")) << c.dump();
  EXPECT_EQ(c["Labels"]["org.opencontainers.image.title"], "primes");
  const core::Json& hc = c["Healthcheck"];
  EXPECT_EQ(hc["Test"], core::Json::array({"CMD", "/usr/local/bin/primes", "--check"})) << c.dump();
  EXPECT_EQ(hc["Interval"], 30'000'000'000LL);
  EXPECT_EQ(hc["Timeout"], 3'000'000'000LL);
  EXPECT_EQ(hc["StartPeriod"], 1'000'000'000LL);
  EXPECT_EQ(hc["Retries"], 2);

  // Only the final stage ships: busybox's layer is the first, no toolchain layer is there, and
  // the image has no compiler.
  const core::Json& layers = cfg["RootFS"]["Layers"];
  EXPECT_EQ(layers[0], Config("busybox:local")["RootFS"]["Layers"][0]);
  const core::Json toolchain = Config("toolchain:local");
  for (const auto& l : toolchain["RootFS"]["Layers"]) EXPECT_FALSE(Contains(layers, l)) << l;
  ToolOut gcc = Xb({"run", "--rm", "--entrypoint", "/bin/sh", "primes:1", "-c",
                    "ls /usr/bin/gcc /usr/lib/gcc 2>&1; echo done"});
  EXPECT_EQ(gcc.code, 0) << gcc.err;
  EXPECT_EQ(gcc.out.find("/usr/bin/gcc\n"), std::string::npos) << gcc.out;
  EXPECT_NE(gcc.out.find("done\n"), std::string::npos) << gcc.out;

  // A build arg reaches the compiler: the binary is rebuilt and reports it.
  ToolOut v2 =
      Xb({"build", "-t", "primes:2", "--build-arg", "VERSION=2.0", kExamples + "c-multistage"});
  ASSERT_EQ(v2.code, 0) << v2.err;
  EXPECT_EQ(RunImage("primes:2", {"10"}),
            "primes below 10: 4 (sum 17, largest 7)\nprimes 2.0 running as uid 1000 in /data\n");
}

TEST_F(ExamplesTest, HeredocsWriteScriptsAndFiles) {
  ToolOut b = Xb({"build", "-t", "heredocs:1", kExamples + "heredocs"});
  ASSERT_EQ(b.code, 0) << b.err;
  // `show` prints each file the build wrote, its newlines as '|'.
  EXPECT_EQ(RunImage("heredocs:1"),
            "script.txt: loop 1|loop 2|loop 3|sum 6|\n"
            "tabs.txt: tabs stripped|\n"
            "shebang.txt: shebang script ran|\n"
            "first.txt: first heredoc|\n"
            "second.txt: SECOND HEREDOC|\n"
            "greeting.txt: hello from a COPY heredoc|\n"
            "literal.txt: ${GREETING} stays literal|\n"
            "copy-tabs.txt: indented with a tab|\n"
            "multi/one.txt: file one|\n"
            "multi/two.txt: file two|\n");
  core::Json c = Config("heredocs:1")["Config"];
  EXPECT_EQ(c["Cmd"], core::Json::array({"/usr/local/bin/show"}));
  EXPECT_EQ(c["WorkingDir"], "/heredocs");
  // The script's mode came from --chmod.
  ToolOut mode = Xb({"run", "--rm", "heredocs:1", "stat", "-c", "%a", "/usr/local/bin/show"});
  EXPECT_EQ(mode.out, "755\n") << mode.err;

  // A build arg reaches an expanding COPY heredoc only.
  ToolOut hi =
      Xb({"build", "-t", "heredocs:2", "--build-arg", "GREETING=hi", kExamples + "heredocs"});
  ASSERT_EQ(hi.code, 0) << hi.err;
  EXPECT_EQ(RunImage("heredocs:2", {"cat", "greeting.txt", "literal.txt"}),
            "hi from a COPY heredoc\n${GREETING} stays literal\n");
}

TEST_F(ExamplesTest, OnbuildTriggersRunInTheChildOnly) {
  std::string dir = kExamples + "onbuild";
  ToolOut base = Xb({"build", "-f", dir + "/Dockerfile.base", "-t", "onbuild-base:local", dir});
  ASSERT_EQ(base.code, 0) << base.err;
  core::Json bc = Config("onbuild-base:local")["Config"];
  EXPECT_EQ(bc["OnBuild"], core::Json::array({"ARG APP_NAME=unnamed", "COPY app.conf /app/app.conf",
                                              "RUN echo \"configured ${APP_NAME} from $(wc -l < "
                                              "/app/app.conf) lines\" > /app/onbuild.txt"}))
      << bc.dump();
  // The base ran none of its triggers.
  ToolOut none = Xb({"run", "--rm", "onbuild-base:local", "ls", "/app"});
  EXPECT_EQ(none.code, 0) << none.err;
  EXPECT_EQ(none.out, "");

  ToolOut child = Xb({"build", "-t", "onbuild-app:1", "--build-arg", "APP_NAME=demo", dir});
  ASSERT_EQ(child.code, 0) << child.err;
  EXPECT_EQ(RunImage("onbuild-app:1"),
            "configured demo from 2 lines\n"
            "child step saw: configured demo from 2 lines\n"
            "name=demo\nport=8080\n");
  core::Json cc = Config("onbuild-app:1")["Config"];
  EXPECT_TRUE(!cc.contains("OnBuild") || cc["OnBuild"].is_null() || cc["OnBuild"].empty())
      << "triggers are not inherited: " << cc.dump();
  EXPECT_EQ(cc["Labels"]["org.example.role"], "onbuild-base");
  EXPECT_EQ(cc["WorkingDir"], "/app");
  // The trigger's ARG default applies when no build arg is given.
  ToolOut plain = Xb({"build", "-t", "onbuild-app:2", dir});
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(RunImage("onbuild-app:2", {"cat", "/app/onbuild.txt"}),
            "configured unnamed from 2 lines\n");
}

TEST_F(ExamplesTest, ArgsEnvExpandAndDockerignoreFilters) {
  std::string dir = kExamples + "args-env";
  // Defaults.
  ToolOut b = Xb({"build", "-t", "args:1", dir});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(RunImage("args:1"),
            "tag=1.0 flavor=plain suffix=unset home=/opt/app-plain\n"
            "runtime: APP_TAG=1.0 SUFFIX=unset\n"
            // .dockerignore: no *.log, no secrets/, docs/ only keep.md, no Dockerfile or README.
            "./build-info.txt\n./config.txt\n./docs/keep.md\n");
  core::Json c = Config("args:1")["Config"];
  EXPECT_TRUE(Contains(c["Env"], "APP_VERSION=1.0")) << c["Env"].dump();
  EXPECT_TRUE(Contains(c["Env"], "APP_FLAVOR=plain")) << c["Env"].dump();
  EXPECT_TRUE(Contains(c["Env"], "APP_HOME=/opt/app-plain")) << c["Env"].dump();
  EXPECT_TRUE(Contains(c["Env"], "APP_TAG=1.0")) << c["Env"].dump();
  for (const auto& e : c["Env"]) {
    std::string s = e.get<std::string>();
    EXPECT_FALSE(s.starts_with("VERSION=") || s.starts_with("FLAVOR=") || s.starts_with("SUFFIX="))
        << "a build arg kept in the image: " << s;
  }
  EXPECT_EQ(c["Labels"]["org.example.version"], "1.0");
  EXPECT_EQ(c["Labels"]["org.example.flavor"], "plain");
  EXPECT_EQ(c["Labels"]["org.example.suffix"], "none");
  EXPECT_EQ(c["WorkingDir"], "/opt/app-plain");

  // Overrides, the global VERSION included.
  ToolOut o = Xb({"build", "-t", "args:2", "--build-arg", "VERSION=2.0", "--build-arg",
                  "FLAVOR=fancy", "--build-arg", "SUFFIX=rc1", dir});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(RunImage("args:2"),
            "tag=2.0-rc1 flavor=fancy suffix=rc1 home=/opt/app-fancy\n"
            "runtime: APP_TAG=2.0-rc1 SUFFIX=unset\n"
            "./build-info.txt\n./config.txt\n./docs/keep.md\n");
  core::Json c2 = Config("args:2")["Config"];
  EXPECT_TRUE(Contains(c2["Env"], "APP_TAG=2.0-rc1")) << c2["Env"].dump();
  EXPECT_TRUE(Contains(c2["Env"], "APP_FLAVOR=fancy")) << c2["Env"].dump();
  EXPECT_EQ(c2["Labels"]["org.example.version"], "2.0");
  EXPECT_EQ(c2["Labels"]["org.example.suffix"], "rc1");
  EXPECT_EQ(c2["WorkingDir"], "/opt/app-fancy");

  // ARG before FROM chooses the base: another one, told apart by a file.
  std::string other_rootfs = tmp_.Sub("other");
  ASSERT_NO_FATAL_FAILURE(testing::MakeBusyboxRootfs(other_rootfs));
  testing::WriteTestFile(other_rootfs, "etc/base-name", "other\n");
  ASSERT_EQ(Xb({"import", other_rootfs, "otherbase:7"}).code, 0);
  ToolOut other = Xb({"build", "-t", "args:3", "--build-arg", "BASE=otherbase:7", dir});
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_EQ(RunImage("args:3", {"/bin/busybox", "cat", "/etc/base-name", "build-info.txt"}),
            "other\ntag=1.0 flavor=plain suffix=unset home=/opt/app-plain\n");
}


TEST_F(ExamplesTest, RunMountsEveryTypeAndNoNetwork) {
  testing::WriteTestFile(tmp_.path(), "token.txt", "s3cret");
  std::string secret = "id=token,src=" + tmp_.Sub("token.txt");
  ToolOut b = Xb({"build", "--secret", secret, "-t", "run-mounts:1", kExamples + "run-mounts"});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(RunImage("run-mounts:1"),
            "banner.txt: an asset from another stage\nbuilds-seen: 1\nscratch-bytes: 1048576\n"
            "token-bytes: 6\nssh: none\ninterfaces: lo\n");
  // The cache mount outlives the build: a second build from scratch sees the first one's entry.
  b = Xb({"build", "--no-cache", "--secret", secret, "-t", "run-mounts:2", kExamples + "run-mounts"});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(RunImage("run-mounts:2").find("builds-seen: 2\n"), std::string::npos);
  // The secret is required by the Dockerfile: without it the build stops and says how to pass it.
  ToolOut no = Xb({"build", "--no-cache", kExamples + "run-mounts"});
  EXPECT_NE(no.code, 0);
  EXPECT_NE(no.err.find("--secret id=token"), std::string::npos) << no.err;
  EXPECT_EQ(Xb({"history", "--no-trunc", "run-mounts:1"}).out.find("s3cret"), std::string::npos);
}

TEST_F(ExamplesTest, CopyLinkParentsExclude) {
  ToolOut b = Xb({"build", "-t", "copy-flags:1", kExamples + "copy-link-parents"});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(RunImage("copy-flags:1"),
            "base 1\nmode = production\n/code/pkg/a/a.go\n/code/pkg/b/c/c.go\n/docs/guide.txt\n");
  ToolOut b2 = Xb({"build", "--progress=plain", "-t", "copy-flags:2", "--build-arg", "BASE_MARK=2",
                   kExamples + "copy-link-parents"});
  ASSERT_EQ(b2.code, 0) << b2.err;
  EXPECT_EQ(RunImage("copy-flags:2").substr(0, 7), "base 2\n");
  // The linked COPY was not rerun, and its layer is the same bytes over the new base step.
  std::string step = "COPY --link app/config.txt /etc/app/config.txt\n#";
  size_t at = b2.err.find(step);
  ASSERT_NE(at, std::string::npos) << b2.err;
  std::string n = b2.err.substr(at + step.size() - 1);
  n = n.substr(0, n.find(' '));
  EXPECT_NE(b2.err.find(n + " CACHED\n"), std::string::npos) << b2.err;
  const core::Json l1 = Config("copy-flags:1")["RootFS"]["Layers"], l2 = Config("copy-flags:2")["RootFS"]["Layers"];
  ASSERT_EQ(l1.size(), l2.size());
  EXPECT_NE(l1[1], l2[1]);
  EXPECT_EQ(l1[2], l2[2]);
}

TEST_F(ExamplesTest, ReproducibleGivesOneDigestOnTwoRoots) {
  // Two fresh roots with the same base (loaded from one archive), the example built on both.
  std::string base = tmp_.Sub("busybox.tar");
  ASSERT_EQ(Xb({"save", "-o", base, "busybox:local"}).code, 0);
  std::vector<std::string> digests, ids;
  const std::string first = tmp_.Sub("root-a");
  for (const std::string& root : {first, tmp_.Sub("root-b")}) {
    ASSERT_EQ(testing::RunXbuild(root, {"load", "-i", base}).code, 0);
    std::string meta = root + ".json";
    core::RunOptions o;
    o.extra_env = {{"XBUILD_CONFIG", ""}, {"SOURCE_DATE_EPOCH", "1700000000"}};
    ToolOut b = RunTool({XBUILD_BINARY, "--root", root, "build", "--metadata-file", meta, "-t", "repro:1",
                         kExamples + "reproducible"}, o);
    ASSERT_EQ(b.code, 0) << b.err;
    auto m = core::Json::parse(testing::ReadTestFile(meta), nullptr, false);
    digests.push_back(m.value("containerimage.digest", ""));
    ids.push_back(m.value("containerimage.config.digest", ""));
    ::sleep(1);  // the second build runs at another second
  }
  EXPECT_FALSE(digests[0].empty());
  EXPECT_EQ(digests[0], digests[1]);
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(testing::RunXbuild(first, {"run", "--rm", "repro:1"}).out,
            "built for epoch 1700000000\nhello from a reproducible image\n");
  EXPECT_EQ(testing::RunXbuild(first, {"inspect", "-f", "{{.Created}}", "repro:1"}).out, "2023-11-14T22:13:20Z\n");
}

}  // namespace
}  // namespace xbuild
