// run's resource limits and privileges end to end with real runc: --memory (OOM kill, 137,
// State.OOMKilled), --pids-limit, --cap-add/--cap-drop, --privileged, --init, --add-host,
// --device, --security-opt, and errors naming bad values.
#include <gtest/gtest.h>

#include <string>

#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "integration/build_fixture.h"

namespace xbuild::testing {
namespace {

using RunOptionsTest = BuildTest;

// Docker's default bounding set as CapEff (chown, dac_override, fowner, fsetid, kill, setgid,
// setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap).
constexpr const char* kDefaultCapEff = "00000000a80425fb";

std::string CapEff(const std::string& status) {
  std::string v = LineAfter(status, "CapEff:");
  return core::Trim(v);
}

TEST_F(RunOptionsTest, MemoryLimitOomKillIs137AndRecorded) {
  ToolOut r = Xb({"run", "--name", "oom", "-m", "16m", "base:1", "sh", "-c",
                  "busybox dd if=/dev/zero of=/dev/null bs=64M count=1"});
  EXPECT_EQ(r.code, 137) << r.out << r.err;
  EXPECT_EQ(core::Trim(Xb({"inspect", "-f", "{{.State.OOMKilled}}", "oom"}).out), "true");
  EXPECT_EQ(core::Trim(Xb({"inspect", "-f", "{{.State.ExitCode}}", "oom"}).out), "137");
  EXPECT_EQ(core::Trim(Xb({"inspect", "-f", "{{.HostConfig.Memory}}", "oom"}).out), "16777216");
  // The same command fits without the limit (and so is not OOM-killed).
  ToolOut fits = Xb({"run", "--name", "fits", "-m", "256m", "base:1", "sh", "-c",
                     "busybox dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null && echo ok"});
  EXPECT_EQ(fits.code, 0) << fits.err;
  EXPECT_EQ(fits.out, "ok\n");
  EXPECT_EQ(core::Trim(Xb({"inspect", "-f", "{{.State.OOMKilled}}", "fits"}).out), "false");
  // The cgroup parents that OOM detection uses are gone afterwards.
  ToolOut ids = Xb({"inspect", "-f", "{{.Id}}", "oom"});
  EXPECT_FALSE(core::Exists("/sys/fs/cgroup/memory/xbuild/" + core::Trim(ids.out)));

  ToolOut small = Xb({"run", "--rm", "-m", "1m", "base:1", "true"});
  EXPECT_EQ(small.code, 125);
  EXPECT_NE(small.err.find("Minimum memory limit"), std::string::npos) << small.err;
  ToolOut bad = Xb({"run", "--rm", "-m", "12x", "base:1", "true"});
  EXPECT_EQ(bad.code, 125);
  EXPECT_NE(bad.err.find("12x"), std::string::npos) << bad.err;
}

TEST_F(RunOptionsTest, PidsLimitCpusAndSharesReachTheCgroup) {
  // The limit also counts runc init's threads while it starts the container (a Go runtime), so it
  // is not set below what that needs: 12, and the script forks twice as many.
  ToolOut r = Xb({"run", "--rm", "--pids-limit", "12", "--cpus", "0.5", "--cpu-shares", "512", "base:1", "sh", "-c",
                  "i=0; while [ $i -lt 24 ]; do /bin/busybox sleep 5 & i=$((i+1)); done 2>&1; echo done"});
  // The shell could not fork past the limit (ash gives up the script there).
  EXPECT_NE((r.out + r.err).find("fork"), std::string::npos) << r.out << r.err;
  ToolOut ok = Xb({"run", "--rm", "--pids-limit", "100", "base:1", "sh", "-c",
                   "for i in 1 2 3 4 5 6 7 8; do /bin/busybox true & done; wait; echo fine"});
  EXPECT_EQ(ok.out, "fine\n") << ok.err;
  ToolOut cpus = Xb({"run", "--rm", "--cpus", "abc", "base:1", "true"});
  EXPECT_EQ(cpus.code, 125);
  EXPECT_NE(cpus.err.find("abc"), std::string::npos) << cpus.err;
}

TEST_F(RunOptionsTest, CapabilitiesDropAddAndPrivileged) {
  ToolOut def = Xb({"run", "--rm", "base:1", "sh", "-c", "busybox cat /proc/self/status; busybox chown 1:1 /etc/hello && echo chowned"});
  ASSERT_EQ(def.code, 0) << def.err;
  EXPECT_EQ(CapEff(def.out), kDefaultCapEff);
  EXPECT_NE(def.out.find("chowned"), std::string::npos);

  ToolOut none = Xb({"run", "--rm", "--cap-drop", "ALL", "base:1", "sh", "-c",
                     "busybox grep CapEff /proc/self/status; busybox chown 1:1 /etc/hello && echo chowned"});
  EXPECT_NE(none.code, 0);
  EXPECT_EQ(CapEff(none.out), "0000000000000000");
  EXPECT_EQ(none.out.find("chowned"), std::string::npos);

  ToolOut some = Xb({"run", "--rm", "--cap-drop", "all", "--cap-add", "chown", "base:1", "sh", "-c",
                     "busybox grep CapEff /proc/self/status; busybox chown 1:1 /etc/hello && echo chowned"});
  EXPECT_EQ(some.code, 0) << some.err;
  EXPECT_EQ(CapEff(some.out), "0000000000000001");
  ToolOut admin = Xb({"run", "--rm", "--cap-add", "CAP_SYS_ADMIN", "base:1", "sh", "-c", "busybox grep CapEff /proc/self/status"});
  EXPECT_EQ(CapEff(admin.out), "00000000a82425fb") << admin.err;

  ToolOut bad = Xb({"run", "--rm", "--cap-add", "CAP_NOPE", "base:1", "true"});
  EXPECT_EQ(bad.code, 125);
  EXPECT_NE(bad.err.find("CAP_NOPE"), std::string::npos) << bad.err;

  // --privileged: every capability, host devices, /sys writable, no masked paths.
  ToolOut priv = Xb({"run", "--rm", "--privileged", "base:1", "sh", "-c",
                     "busybox grep CapEff /proc/self/status; busybox test -e /dev/loop-control && echo loop; "
                     "busybox grep ' /sys ' /proc/mounts | busybox cut -d' ' -f4 | busybox cut -d, -f1; "
                     "busybox grep -c kcore /proc/mounts"});
  EXPECT_EQ(priv.code, 1) << priv.err;  // grep -c found no masked /proc/kcore
  EXPECT_NE(CapEff(priv.out), kDefaultCapEff);
  EXPECT_NE(priv.out.find("\nloop\nrw\n0\n"), std::string::npos) << priv.out;
  ToolOut plain = Xb({"run", "--rm", "base:1", "sh", "-c", "busybox test -e /dev/loop-control && echo loop; true"});
  EXPECT_EQ(plain.out, "");
}

TEST_F(RunOptionsTest, InitAddHostDeviceAndSecurityOpt) {
  ToolOut init = Xb({"run", "--rm", "--init", "base:1", "sh", "-c", "busybox tr '\\0' ' ' < /proc/1/cmdline"});
  ASSERT_EQ(init.code, 0) << init.err;
  EXPECT_TRUE(init.out.starts_with("/sbin/docker-init -- sh -c")) << init.out;
  ToolOut noinit = Xb({"run", "--rm", "base:1", "sh", "-c", "busybox tr '\\0' ' ' < /proc/1/cmdline"});
  EXPECT_TRUE(noinit.out.starts_with("busybox tr")) << noinit.out;  // sh exec'd its last command

  ToolOut hosts = Xb({"run", "--rm", "--add-host", "db:10.1.2.3", "--add-host", "cache=10.1.2.4", "base:1", "sh", "-c",
                      "busybox grep 10.1.2 /etc/hosts"});
  EXPECT_EQ(hosts.out, "10.1.2.3\tdb\n10.1.2.4\tcache\n") << hosts.err;
  ToolOut badhost = Xb({"run", "--rm", "--add-host", "nocolon", "base:1", "true"});
  EXPECT_EQ(badhost.code, 125);
  EXPECT_NE(badhost.err.find("nocolon"), std::string::npos) << badhost.err;

  ToolOut dev = Xb({"run", "--rm", "--device", "/dev/null:/dev/mynull", "base:1", "sh", "-c",
                    "busybox test -c /dev/mynull && echo dev > /dev/mynull && echo ok"});
  EXPECT_EQ(dev.out, "ok\n") << dev.err;
  ToolOut nodev = Xb({"run", "--rm", "--device", "/dev/nosuchdevice", "base:1", "true"});
  EXPECT_EQ(nodev.code, 125);
  EXPECT_NE(nodev.err.find("/dev/nosuchdevice"), std::string::npos) << nodev.err;

  ToolOut seccomp = Xb({"run", "--rm", "--security-opt", "seccomp=unconfined", "base:1", "sh", "-c",
                        "busybox grep Seccomp: /proc/self/status"});
  EXPECT_EQ(core::Trim(LineAfter(seccomp.out, "Seccomp:")), "0") << seccomp.out << seccomp.err;
  ToolOut badopt = Xb({"run", "--rm", "--security-opt", "apparmor=x", "base:1", "true"});
  EXPECT_EQ(badopt.code, 125);
  EXPECT_NE(badopt.err.find("apparmor=x"), std::string::npos) << badopt.err;
}

}  // namespace
}  // namespace xbuild::testing
