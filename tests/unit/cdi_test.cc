// CDI specs (exec/cdi.h): YAML and JSON parsing, name resolution, --gpus, injection into an
// OCI spec; and --runtime selection (exec/runtimes.h).
#include <gtest/gtest.h>

#include "exec/cdi.h"
#include "exec/container.h"
#include "exec/runtimes.h"

namespace xbuild::exec {
namespace {

constexpr const char* kYaml = R"(---
cdiVersion: "0.6.0"
kind: vendor.example/test
containerEdits:
  env: [SHARED=1]
  hooks:
    - hookName: createContainer
      path: /usr/bin/true
      args: ["true", "x"]
devices:
  - name: dev0
    containerEdits:
      env:
        - FOO=bar
      deviceNodes:
        - path: /dev/xtest
          type: c
          major: 1
          minor: 3
          fileMode: 0666
          permissions: rw
      mounts:
        - hostPath: /srv/share
          containerPath: /opt/share
          options: ["ro", "bind"]
  - name: "dev1"
    containerEdits:
      env: ["BAR=baz # not a comment inside quotes"]
)";

TEST(CdiTest, ParsesYamlSpec) {
  auto spec = ParseCdiSpec(kYaml, true, "test.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  EXPECT_EQ(spec->kind, "vendor.example/test");
  ASSERT_EQ(spec->devices.size(), 2u);
  const CdiEdits& d0 = spec->devices.at("dev0");
  EXPECT_EQ(d0.env, std::vector<std::string>{"FOO=bar"});
  ASSERT_EQ(d0.device_nodes.size(), 1u);
  EXPECT_EQ(d0.device_nodes[0].major, 1);
  EXPECT_EQ(d0.device_nodes[0].minor, 3);
  EXPECT_EQ(d0.device_nodes[0].file_mode, 0666u);  // YAML 1.1 octal
  EXPECT_EQ(d0.device_nodes[0].permissions, "rw");
  ASSERT_EQ(d0.mounts.size(), 1u);
  EXPECT_EQ(d0.mounts[0].container_path, "/opt/share");
  EXPECT_EQ(spec->devices.at("dev1").env, std::vector<std::string>{"BAR=baz # not a comment inside quotes"});
  ASSERT_EQ(spec->edits.hooks.size(), 1u);
  EXPECT_EQ(spec->edits.hooks[0].hook_name, "createContainer");
}

TEST(CdiTest, ParsesJsonSpecAndRejectsBadOnes) {
  auto spec = ParseCdiSpec(R"({"cdiVersion":"0.5.0","kind":"a.b/c","devices":[{"name":"x","containerEdits":{"env":["A=1"]}}]})",
                           false, "x.json");
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  EXPECT_EQ(spec->devices.at("x").env, std::vector<std::string>{"A=1"});
  auto bad_kind = ParseCdiSpec(R"({"cdiVersion":"0.5.0","kind":"nokind","devices":[]})", false, "bad.json");
  ASSERT_FALSE(bad_kind.ok());
  EXPECT_NE(bad_kind.error().message().find("nokind"), std::string::npos);
  auto bad_yaml = ParseCdiSpec("kind: [unclosed\n", true, "bad.yaml");
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_NE(bad_yaml.error().message().find("bad.yaml"), std::string::npos);
  auto bad_hook = ParseCdiSpec(
      R"({"cdiVersion":"0.6.0","kind":"a.b/c","containerEdits":{"hooks":[{"hookName":"whenever","path":"/x"}]}})", false,
      "hook.json");
  EXPECT_FALSE(bad_hook.ok());
}

TEST(CdiTest, ResolvesNamesAndAll) {
  CdiRegistry reg;
  auto spec = ParseCdiSpec(kYaml, true, "test.yaml");
  ASSERT_TRUE(spec.ok());
  reg.Add(*spec);
  auto one = reg.Resolve({"vendor.example/test=dev0"});
  ASSERT_TRUE(one.ok()) << one.error().ToString();
  EXPECT_EQ(one->env, (std::vector<std::string>{"SHARED=1", "FOO=bar"}));
  auto all = reg.Resolve({"vendor.example/test=all", "vendor.example/test=dev0"});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->device_nodes.size(), 1u);  // dev0 named twice, added once
  EXPECT_EQ(all->hooks.size(), 1u);         // the spec-wide edits once
  auto unknown = reg.Resolve({"vendor.example/test=nope"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("vendor.example/test=nope"), std::string::npos);
  EXPECT_NE(unknown.error().message().find("dev0, dev1"), std::string::npos);
  auto no_kind = reg.Resolve({"other.example/x=1"});
  ASSERT_FALSE(no_kind.ok());
  EXPECT_NE(no_kind.error().message().find("other.example/x"), std::string::npos);
  EXPECT_FALSE(reg.Resolve({"not-a-cdi-name"}).ok());
}

TEST(CdiTest, GpusValues) {
  using V = std::vector<std::string>;
  EXPECT_EQ(*GpusToCdiNames("all"), V{"nvidia.com/gpu=all"});
  EXPECT_EQ(*GpusToCdiNames("2"), (V{"nvidia.com/gpu=0", "nvidia.com/gpu=1"}));
  EXPECT_EQ(*GpusToCdiNames("\"device=0,2\""), (V{"nvidia.com/gpu=0", "nvidia.com/gpu=2"}));
  EXPECT_EQ(*GpusToCdiNames("device=GPU-3a4b"), V{"nvidia.com/gpu=GPU-3a4b"});
  EXPECT_EQ(*GpusToCdiNames("count=all,capabilities=utility"), V{"nvidia.com/gpu=all"});
  EXPECT_FALSE(GpusToCdiNames("").ok());
  EXPECT_FALSE(GpusToCdiNames("bogus").ok());
  EXPECT_FALSE(GpusToCdiNames("driver=amd,all").ok());
  EXPECT_TRUE(IsCdiName("nvidia.com/gpu=0"));
  EXPECT_FALSE(IsCdiName("/dev/null"));
  EXPECT_FALSE(IsCdiName("nvidia.com/gpu="));
}

TEST(CdiTest, AppliesEditsToOciSpec) {
  auto spec = ParseCdiSpec(kYaml, true, "test.yaml");
  ASSERT_TRUE(spec.ok());
  CdiRegistry reg;
  reg.Add(*spec);
  auto edits = reg.Resolve({"vendor.example/test=dev0"});
  ASSERT_TRUE(edits.ok());
  core::Json oci = {{"process", {{"env", {"PATH=/bin", "FOO=old"}}}},
                    {"mounts", core::Json::array()},
                    {"linux", {{"devices", core::Json::array()}, {"resources", {{"devices", core::Json::array()}}}}}};
  ASSERT_TRUE(ApplyCdiEdits(*edits, oci).ok());
  EXPECT_EQ(oci["process"]["env"], core::Json({"PATH=/bin", "SHARED=1", "FOO=bar"}));
  ASSERT_EQ(oci["linux"]["devices"].size(), 1u);
  EXPECT_EQ(oci["linux"]["devices"][0]["path"], "/dev/xtest");
  EXPECT_EQ(oci["linux"]["devices"][0]["fileMode"], 0666);
  EXPECT_EQ(oci["linux"]["resources"]["devices"][0]["access"], "rw");
  ASSERT_EQ(oci["mounts"].size(), 1u);
  EXPECT_EQ(oci["mounts"][0]["destination"], "/opt/share");
  EXPECT_EQ(oci["mounts"][0]["type"], "bind");
  EXPECT_EQ(oci["hooks"]["createContainer"][0]["path"], "/usr/bin/true");
}

TEST(CdiTest, HostNodeNumbersAndMissingNode) {
  CdiEdits e;
  CdiDeviceNode n;
  n.path = "/dev/mynull";
  n.host_path = "/dev/null";
  e.device_nodes.push_back(n);
  core::Json oci = {{"process", {{"env", core::Json::array()}}}, {"linux", core::Json::object()}};
  ASSERT_TRUE(ApplyCdiEdits(e, oci).ok());
  EXPECT_EQ(oci["linux"]["devices"][0]["type"], "c");
  EXPECT_EQ(oci["linux"]["devices"][0]["major"], 1);
  EXPECT_EQ(oci["linux"]["devices"][0]["minor"], 3);
  e.device_nodes[0].host_path = "/nonexistent/node";
  auto s = ApplyCdiEdits(e, oci);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("/nonexistent/node"), std::string::npos);
}

TEST(CdiTest, NvidiaDiscoveryWithoutGpu) {
  auto found = DiscoverNvidia("/nonexistent-root");
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.error().message().find("could not select device driver"), std::string::npos);
}

TEST(RuntimesTest, SelectsConfiguredAndListsKnown) {
  core::Config c;
  c.runtimes["crun"] = core::RuntimeConfig{"/usr/bin/crun", {"--debug"}};
  auto def = SelectRuntime(c, "");
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->path, "runc");
  auto crun = SelectRuntime(c, "crun");
  ASSERT_TRUE(crun.ok());
  EXPECT_EQ(crun->path, "/usr/bin/crun");
  EXPECT_EQ(crun->args, std::vector<std::string>{"--debug"});
  auto bad = SelectRuntime(c, "nvidia");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("nvidia"), std::string::npos);
  EXPECT_NE(bad.error().message().find("crun"), std::string::npos);
  c.default_runtime = "crun";
  EXPECT_EQ(SelectRuntime(c, "")->name, "crun");
}

TEST(ContainerRecordTest, KeepsTtyStdinDevicesAndRuntime) {
  ContainerRecord r;
  r.id = "abc";
  r.name = "n";
  r.snapshot = "s";
  r.process.terminal = true;
  r.open_stdin = true;
  r.devices = {"vendor.example/test=dev0", "nvidia.com/gpu=all"};
  r.runtime = "crun";
  auto back = RecordFromJson(RecordToJson(r));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_TRUE(back->process.terminal);
  EXPECT_TRUE(back->open_stdin);
  EXPECT_EQ(back->devices, r.devices);
  EXPECT_EQ(back->runtime, "crun");
  // A record from before these fields: no tty, stdin closed, no devices, the default runtime.
  core::Json old = RecordToJson(ContainerRecord{});
  for (const char* key : {"tty", "open_stdin", "devices", "runtime"}) old.erase(key);
  old["id"] = "x";
  auto legacy = RecordFromJson(old);
  ASSERT_TRUE(legacy.ok());
  EXPECT_FALSE(legacy->process.terminal);
  EXPECT_FALSE(legacy->open_stdin);
  EXPECT_TRUE(legacy->devices.empty());
  EXPECT_EQ(legacy->runtime, "");
}

}  // namespace
}  // namespace xbuild::exec
