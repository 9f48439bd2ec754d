// CDI devices, --gpus and --runtime end to end with real runc: a fake vendor's spec (YAML and
// JSON) in a directory named by the config's "cdi-spec-dirs", mapping a device node the test
// made (c 1:3, as /dev/null), an env var and a mount; RUN --device in a build; a configured
// runtime that is a wrapper around runc.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/fs.h"
#include "core/strings.h"
#include "integration/build_fixture.h"

namespace xbuild::testing {
namespace {

class CdiTest : public BuildTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildTest::SetUp());
    std::string devs = tmp_.Sub("devs");
    ASSERT_TRUE(core::MkdirAll(devs).ok());
    node_ = devs + "/xnull";
    ASSERT_EQ(::mknod(node_.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    share_ = tmp_.Sub("share");
    WriteTestFile(share_, "hello.txt", "shared-content\n");
    spec_dir_ = tmp_.Sub("cdi");
    WriteTestFile(spec_dir_, "test.yaml",
                  "cdiVersion: \"0.6.0\"\n"
                  "kind: vendor.example/test\n"
                  "devices:\n"
                  "  - name: dev0\n"
                  "    containerEdits:\n"
                  "      env:\n"
                  "        - FOO=bar\n"
                  "      deviceNodes:\n"
                  "        - path: /dev/xtest\n"
                  "          hostPath: " + node_ + "\n"
                  "containerEdits:\n"
                  "  mounts:\n"
                  "    - hostPath: " + share_ + "\n"
                  "      containerPath: /opt/share\n"
                  "      options: [ro, nosuid, nodev, bind]\n");
    WriteTestFile(spec_dir_, "other.json",
                  R"({"cdiVersion":"0.5.0","kind":"vendor.example/json","devices":[)"
                  R"({"name":"a","containerEdits":{"env":["JA=1"],"deviceNodes":[{"path":"/dev/ja","hostPath":")" + node_ +
                      R"("}]}},{"name":"b","containerEdits":{"env":["JB=2"]}}]})");
    wrapper_log_ = tmp_.Sub("wrapper") + "/calls.log";
    wrapper_ = tmp_.Sub("wrapper") + "/fake-runtime";
    WriteTestFile(core::Dirname(wrapper_), "fake-runtime",
                  "#!/bin/sh\necho \"$*\" >> " + wrapper_log_ + "\nexec runc \"$@\"\n");
    ASSERT_EQ(::chmod(wrapper_.c_str(), 0755), 0);
    config_ = tmp_.Sub("config") + "/config.json";
    WriteTestFile(core::Dirname(config_), "config.json",
                  R"({"cdi-spec-dirs": [")" + spec_dir_ + R"("], "runtimes": {"fake": {"path": ")" + wrapper_ + R"("}}})");
  }

  ToolOut XbC(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    return Xb(args);
  }

  std::string node_, share_, spec_dir_, wrapper_, wrapper_log_, config_;
};

TEST_F(CdiTest, RunWithYamlSpecDevice) {
  ToolOut r = XbC({"run", "--rm", "--device", "vendor.example/test=dev0", "base:1", "sh", "-c",
                   "echo $FOO; [ -c /dev/xtest ] && echo ok; echo x > /dev/xtest && echo wrote; read l < /opt/share/hello.txt; "
                   "echo $l; echo y > /opt/share/new 2>/dev/null || echo ro"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "bar\nok\nwrote\nshared-content\nro\n");
  EXPECT_FALSE(core::Exists(share_ + "/new"));
}

TEST_F(CdiTest, RunWithJsonSpecAll) {
  ToolOut r = XbC({"run", "--rm", "--device", "vendor.example/json=all", "base:1", "sh", "-c",
                   "echo $JA $JB; [ -c /dev/ja ] && echo ok"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1 2\nok\n");
  // Without the device, nothing of it.
  ToolOut plain = XbC({"run", "--rm", "base:1", "sh", "-c", "echo [$JA]; [ -e /dev/ja ] || echo none"});
  EXPECT_EQ(plain.out, "[]\nnone\n");
}

TEST_F(CdiTest, UnknownDevicesFail) {
  ToolOut r = XbC({"run", "--rm", "--device", "vendor.example/test=nope", "base:1", "sh", "-c", "true"});
  EXPECT_EQ(r.code, 125);
  EXPECT_NE(r.err.find("vendor.example/test=nope"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dev0"), std::string::npos) << r.err;
  ToolOut kind = XbC({"run", "--rm", "--device", "nobody.example/x=1", "base:1", "sh", "-c", "true"});
  EXPECT_EQ(kind.code, 125);
  EXPECT_NE(kind.err.find("nobody.example/x"), std::string::npos) << kind.err;
  // Nothing was created.
  EXPECT_EQ(XbC({"ps", "-aq"}).out, "");
}

TEST_F(CdiTest, GpusWithoutGpuFailsClearly) {
  if (core::Exists("/dev/nvidia0")) GTEST_SKIP() << "this host has an NVIDIA GPU (tests/gpu/check-gpu.sh covers it)";
  for (const char* gpus : {"all", "1", "\"device=0\""}) {
    ToolOut r = XbC({"run", "--rm", "--gpus", gpus, "base:1", "sh", "-c", "true"});
    EXPECT_EQ(r.code, 125) << gpus;
    EXPECT_NE(r.err.find("could not select device driver"), std::string::npos) << r.err;
  }
  ToolOut bad = XbC({"run", "--rm", "--gpus", "bogus", "base:1", "sh", "-c", "true"});
  EXPECT_EQ(bad.code, 125);
  EXPECT_NE(bad.err.find("bogus"), std::string::npos) << bad.err;
  EXPECT_EQ(XbC({"ps", "-aq"}).out, "");
}

TEST_F(CdiTest, BuildRunDevice) {
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN --device=vendor.example/test=dev0 sh -c 'echo $FOO > /foo; [ -c /dev/xtest ] && echo ok > /devok'\n");
  ToolOut b = XbC({"build", "--progress=plain", "-t", "cdi:1", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  ToolOut r = XbC({"run", "--rm", "cdi:1", "sh", "-c",
                   "read a < /foo; read b < /devok; echo $a $b; [ -e /opt/share ] || echo no-mount-point"});
  EXPECT_EQ(r.out, "bar ok\nno-mount-point\n") << r.err;
  // Another device name is another cache key: the step runs again.
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN --device=vendor.example/test=all sh -c 'echo $FOO > /foo; [ -c /dev/xtest ] && echo ok > /devok'\n");
  ToolOut again = XbC({"build", "--progress=plain", "-t", "cdi:2", ctx_});
  ASSERT_EQ(again.code, 0) << again.err;
  const std::string step = "sh -c 'echo $FOO > /foo; [ -c /dev/xtest ] && echo ok > /devok'";
  EXPECT_TRUE(StepRan(again.err, step)) << again.err;
  ToolOut same = XbC({"build", "--progress=plain", "-t", "cdi:2", ctx_});
  EXPECT_TRUE(StepCached(same.err, step)) << same.err;
  // An unknown device fails the step, naming it.
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --device=vendor.example/test=zzz true\n");
  ToolOut bad = XbC({"build", "--progress=plain", ctx_});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("vendor.example/test=zzz"), std::string::npos) << bad.err;
  // ... unless it is not required (BuildKit's ",required=false").
  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN --device=vendor.example/test=zzz,required=false true\n");
  ToolOut optional = XbC({"build", "--progress=plain", ctx_});
  EXPECT_EQ(optional.code, 0) << optional.err;
}

TEST_F(CdiTest, RuntimeFromConfig) {
  ToolOut r = XbC({"run", "--rm", "--runtime", "fake", "base:1", "sh", "-c", "echo via-fake"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "via-fake\n");
  auto calls = core::ReadFile(wrapper_log_);
  ASSERT_TRUE(calls.ok()) << "the configured runtime was not used";
  EXPECT_NE(calls->find(" run "), std::string::npos) << *calls;

  // Kept in the record: stop goes through it too.
  ToolOut d = XbC({"run", "-d", "--name", "rt", "--runtime", "fake", "base:1", "sh", "-c", "while :; do /bin/busybox sleep 1; done"});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(core::Trim(XbC({"inspect", "-f", "{{.HostConfig.Runtime}}", "rt"}).out), "fake");
  ASSERT_EQ(XbC({"stop", "-t", "1", "rt"}).code, 0);
  calls = core::ReadFile(wrapper_log_);
  ASSERT_TRUE(calls.ok());
  EXPECT_NE(calls->find(" kill "), std::string::npos) << *calls;
  EXPECT_EQ(XbC({"rm", "rt"}).code, 0);

  ToolOut unknown = XbC({"run", "--rm", "--runtime", "nvidia", "base:1", "sh", "-c", "true"});
  EXPECT_EQ(unknown.code, 125);
  EXPECT_NE(unknown.err.find("unknown or invalid runtime name: nvidia"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("fake"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace xbuild::testing
