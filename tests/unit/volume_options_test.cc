// Parsing of run's -v/--mount/--tmpfs, sizes, capabilities and CPUs, and what HostOptions do to
// an OCI spec.
#include <gtest/gtest.h>

#include <algorithm>

#include "exec/host_options.h"
#include "exec/spec.h"
#include "exec/volume.h"

namespace xbuild::exec {
namespace {

TEST(VolumeFlags, VolumeSyntax) {
  auto bind = ParseVolumeFlag("/host/dir:/ctr/./x:ro");
  ASSERT_TRUE(bind.ok());
  EXPECT_EQ(bind->type, "bind");
  EXPECT_EQ(bind->source, "/host/dir");
  EXPECT_EQ(bind->target, "/ctr/x");
  EXPECT_TRUE(bind->readonly);
  auto named = ParseVolumeFlag("data:/data");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->type, "volume");
  EXPECT_EQ(named->source, "data");
  EXPECT_FALSE(named->anonymous);
  auto anon = ParseVolumeFlag("/anon");
  ASSERT_TRUE(anon.ok());
  EXPECT_TRUE(anon->anonymous);
  EXPECT_EQ(anon->target, "/anon");
  for (const char* bad : {"data:rel", "a:b:c:d", "data:/x:bogus", "/", "bad$name:/x", "x:/"}) {
    auto r = ParseVolumeFlag(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto err = ParseVolumeFlag("data:/x:bogus");
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.error().message().find("data:/x:bogus"), std::string::npos);
}

TEST(VolumeFlags, MountAndTmpfsSyntax) {
  auto m = ParseMountFlag("type=bind,src=/h,dst=/c,readonly");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, "bind");
  EXPECT_EQ(m->source, "/h");
  EXPECT_EQ(m->target, "/c");
  EXPECT_TRUE(m->readonly);
  auto v = ParseMountFlag("source=vol,target=/v,ro=false");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->type, "volume");
  EXPECT_FALSE(v->readonly);
  auto t = ParseMountFlag("type=tmpfs,destination=/t,tmpfs-size=2m");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->tmpfs_size, 2 * 1024 * 1024);
  EXPECT_TRUE(ParseMountFlag("type=volume,target=/anon")->anonymous);
  for (const char* bad : {"type=nfs,target=/x", "type=bind,target=/x", "source=v", "type=bind,src=rel,dst=/x",
                          "type=tmpfs,src=/a,dst=/b", "target=/x,color=red", "target=/x,ro=maybe"}) {
    EXPECT_FALSE(ParseMountFlag(bad).ok()) << bad;
  }
  auto tmp = ParseTmpfsFlag("/run:size=64k,ro");
  ASSERT_TRUE(tmp.ok());
  EXPECT_EQ(tmp->tmpfs_size, 64 * 1024);
  EXPECT_TRUE(tmp->readonly);
  EXPECT_FALSE(ParseTmpfsFlag("run").ok());
}

TEST(VolumeFlags, RamSizes) {
  EXPECT_EQ(ParseRamSize("16m").value_or(0), 16 << 20);
  EXPECT_EQ(ParseRamSize("1G").value_or(0), int64_t{1} << 30);
  EXPECT_EQ(ParseRamSize("512k").value_or(0), 512 << 10);
  EXPECT_EQ(ParseRamSize("100b").value_or(0), 100);
  EXPECT_EQ(ParseRamSize("2048").value_or(0), 2048);
  EXPECT_EQ(ParseRamSize("1.5m").value_or(0), 3 << 19);
  for (const char* bad : {"", "m", "12x", "-1m", "1mm"}) {
    auto r = ParseRamSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("'" + std::string(bad) + "'"), std::string::npos);
  }
  Resources r;
  r.memory = 1 << 20;
  EXPECT_FALSE(ValidateResources(r).ok());
  r.memory = 64 << 20;
  r.memory_swap = 32 << 20;
  EXPECT_FALSE(ValidateResources(r).ok());
  r.memory_swap = -1;
  EXPECT_TRUE(ValidateResources(r).ok());
}

TEST(HostOptionsTest, Capabilities) {
  HostOptions h;
  EXPECT_EQ(EffectiveCapabilities(h).value(), DefaultCapabilities());
  h.cap_drop = {"ALL"};
  h.cap_add = {"chown", "CAP_KILL"};
  EXPECT_EQ(EffectiveCapabilities(h).value(), (std::vector<std::string>{"CAP_CHOWN", "CAP_KILL"}));
  h.cap_drop = {"net_raw"};
  h.cap_add = {};
  auto caps = EffectiveCapabilities(h).value();
  EXPECT_EQ(std::count(caps.begin(), caps.end(), "CAP_NET_RAW"), 0);
  EXPECT_EQ(caps.size(), DefaultCapabilities().size() - 1);
  h.cap_add = {"bogus"};
  auto bad = EffectiveCapabilities(h);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("bogus"), std::string::npos);
  HostOptions p;
  p.privileged = true;
  EXPECT_EQ(EffectiveCapabilities(p).value(), AllCapabilities());
}

TEST(HostOptionsTest, CpusAndDevices) {
  EXPECT_EQ(ParseCpus("0.5").value_or(0), 500000000);
  EXPECT_FALSE(ParseCpus("abc").ok());
  EXPECT_FALSE(ParseCpus("100000").ok());
  auto d = ParseDevice("/dev/null:/dev/x:rw");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->container, "/dev/x");
  EXPECT_EQ(d->permissions, "rw");
  EXPECT_EQ(ParseDevice("/dev/null:r")->permissions, "r");
  EXPECT_FALSE(ParseDevice("/dev/nonexistent-xb").ok());
  EXPECT_FALSE(ParseDevice("/etc/hostname").ok());  // not a device node
}

TEST(HostOptionsTest, AppliedToTheSpec) {
  ProcessSpec proc;
  proc.args = {"sh"};
  ExecUser user;
  SandboxOptions opts;
  opts.rootfs = "/rootfs";
  opts.security = Security::kInsecure;  // no seccomp profile file needed here
  auto spec = BuildSpec(proc, user, opts, "abc");
  ASSERT_TRUE(spec.ok());
  HostOptions h;
  h.resources.memory = 64 << 20;
  h.resources.nano_cpus = 1500000000;
  h.resources.pids_limit = 10;
  h.cap_drop = {"ALL"};
  h.devices.push_back({"/dev/null", "/dev/n2", "rw"});
  ASSERT_TRUE(ApplyHostOptions(h, *spec).ok());
  const auto& res = (*spec)["linux"]["resources"];
  EXPECT_EQ(res["memory"]["limit"], 64 << 20);
  EXPECT_EQ(res["memory"]["swap"], 128 << 20);
  EXPECT_EQ(res["cpu"]["quota"], 150000);
  EXPECT_EQ(res["cpu"]["period"], 100000);
  EXPECT_EQ(res["pids"]["limit"], 10);
  EXPECT_EQ((*spec)["linux"]["cgroupsPath"], "/xbuild/abc/ctr");
  EXPECT_TRUE((*spec)["process"]["capabilities"]["effective"].empty());
  EXPECT_EQ((*spec)["linux"]["devices"].back()["path"], "/dev/n2");
  EXPECT_EQ(res["devices"].back()["access"], "rw");
}

}  // namespace
}  // namespace xbuild::exec
