// Volumes, run -v/--mount/--tmpfs, rm -v / run --rm, and cp, end to end with real runc.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/fs.h"
#include "core/json.h"
#include "core/strings.h"
#include "integration/build_fixture.h"

namespace xbuild::testing {
namespace {

namespace fs = std::filesystem;

class VolumeTest : public BuildTest {
 protected:
  core::Json InspectJson(const std::vector<std::string>& args) {
    ToolOut r = Xb(args);
    EXPECT_EQ(r.code, 0) << r.err;
    core::Json j = core::Json::parse(r.out, nullptr, false);
    return j.is_array() && !j.empty() ? j[0] : core::Json();
  }

  std::vector<std::string> Lines(const std::string& s) {
    std::vector<std::string> out;
    for (const std::string& l : core::Split(s, '\n')) {
      if (!l.empty()) out.push_back(l);
    }
    return out;
  }

  std::vector<std::string> VolumeNames() { return Lines(Xb({"volume", "ls", "-q"}).out); }

  size_t Count(const std::string& dir) {
    std::error_code ec;
    size_t n = 0;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it) {
      if (it->path().filename().string() != "locks") ++n;
    }
    return n;
  }

  // `sh -c SCRIPT` on the host with XB set to "xbuild --root ROOT".
  ToolOut Shell(const std::string& script) {
    return RunTool({"sh", "-c", "XB='" + std::string(XBUILD_BINARY) + " --root " + root_ + "'; " + script});
  }
};

TEST_F(VolumeTest, NamedVolumeOutlivesItsContainerAndIsSharedByTheNext) {
  ToolOut w = Xb({"run", "--name", "writer", "-v", "data:/data", "base:1", "sh", "-c", "echo kept > /data/f"});
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_EQ(VolumeNames(), std::vector<std::string>{"data"});
  ASSERT_EQ(Xb({"rm", "writer"}).code, 0);
  ToolOut r = Xb({"run", "--rm", "--mount", "type=volume,source=data,target=/mnt,readonly", "base:1", "sh", "-c",
                  "busybox cat /mnt/f; echo x > /mnt/g || echo read-only"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "kept\nread-only\n");

  core::Json v = InspectJson({"volume", "inspect", "data"});
  EXPECT_EQ(v["Name"], "data");
  EXPECT_EQ(v["Driver"], "local");
  EXPECT_EQ(v["Scope"], "local");
  EXPECT_EQ(v["Mountpoint"], root_ + "/volumes/data/_data");
  EXPECT_TRUE(v["Labels"].is_object());
  EXPECT_TRUE(v["Options"].is_object());
  EXPECT_FALSE(v["CreatedAt"].get<std::string>().empty());
  EXPECT_EQ(core::ReadFile(root_ + "/volumes/data/_data/f").value_or(""), "kept\n");

  // In use by a stopped container: refused, even with -f, naming the container.
  ToolOut keep = Xb({"run", "-d", "--name", "user", "-v", "data:/data", "base:1", "sh", "-c", "true"});
  ASSERT_EQ(keep.code, 0) << keep.err;
  std::string id = core::Trim(keep.out);
  for (int i = 0; i < 300 && core::Trim(Xb({"inspect", "-f", "{{.State.Status}}", "user"}).out) != "exited"; ++i) {
    usleep(100000);
  }
  ToolOut rm_used = Xb({"volume", "rm", "-f", "data"});
  EXPECT_NE(rm_used.code, 0);
  EXPECT_NE(rm_used.err.find("volume is in use - [" + id + "]"), std::string::npos) << rm_used.err;
  core::Json c = InspectJson({"inspect", "user"});
  ASSERT_EQ(c["Mounts"].size(), 1u) << c.dump();
  EXPECT_EQ(c["Mounts"][0]["Type"], "volume");
  EXPECT_EQ(c["Mounts"][0]["Name"], "data");
  EXPECT_EQ(c["Mounts"][0]["Destination"], "/data");
  EXPECT_EQ(c["Mounts"][0]["Source"], root_ + "/volumes/data/_data");
  EXPECT_EQ(c["Mounts"][0]["RW"], true);
  EXPECT_EQ(Lines(Xb({"volume", "ls", "-q", "-f", "dangling=true"}).out), std::vector<std::string>{});
  ASSERT_EQ(Xb({"rm", "user"}).code, 0);
  EXPECT_EQ(Lines(Xb({"volume", "ls", "-q", "-f", "dangling=true"}).out), std::vector<std::string>{"data"});
  ToolOut rm = Xb({"volume", "rm", "data"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_FALSE(fs::exists(root_ + "/volumes/data"));
  ToolOut again = Xb({"volume", "rm", "data"});
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("no such volume"), std::string::npos) << again.err;
}

TEST_F(VolumeTest, RunRmRemovesRecordNameLayerAndAnonymousVolumes) {
  ASSERT_EQ(Xb({"run", "--rm", "base:1", "sh", "-c", "true"}).code, 0);  // the image's own snapshot, made once
  size_t snapshots = Count(root_ + "/snapshots");
  ToolOut r = Xb({"run", "--rm", "--name", "gone", "-v", "/anon", "-v", "named:/named", "base:1", "sh", "-c",
                  "echo a > /anon/f; echo n > /named/f"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(Xb({"ps", "-a", "-q"}).out), std::vector<std::string>{});
  EXPECT_FALSE(fs::exists(root_ + "/container-names/gone"));
  EXPECT_EQ(Count(root_ + "/snapshots"), snapshots);
  // The anonymous volume went with it; the named one stays.
  EXPECT_EQ(VolumeNames(), std::vector<std::string>{"named"});
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/containers", ec)) {
    EXPECT_FALSE(fs::exists(e.path() / "config.json")) << e.path();
  }
}

TEST_F(VolumeTest, RmDashVAndPruneTakeOnlyAnonymousVolumes) {
  ASSERT_EQ(Xb({"run", "--name", "ca", "-v", "/x", "base:1", "sh", "-c", "true"}).code, 0);
  ASSERT_EQ(Xb({"run", "--name", "cb", "-v", "/y", "-v", "keep:/k", "base:1", "sh", "-c", "true"}).code, 0);
  ASSERT_EQ(VolumeNames().size(), 3u);
  ASSERT_EQ(Xb({"rm", "-v", "ca"}).code, 0);
  EXPECT_EQ(VolumeNames().size(), 2u);
  ASSERT_EQ(Xb({"rm", "cb"}).code, 0);  // without -v its anonymous volume stays, dangling
  ASSERT_EQ(VolumeNames().size(), 2u);
  ToolOut prune = Xb({"volume", "prune", "-f"});
  EXPECT_EQ(prune.code, 0) << prune.err;
  EXPECT_NE(prune.out.find("Deleted Volumes:"), std::string::npos) << prune.out;
  EXPECT_EQ(VolumeNames(), std::vector<std::string>{"keep"});
  ASSERT_EQ(Xb({"volume", "create", "--label", "a=b", "other"}).code, 0);
  EXPECT_EQ(InspectJson({"volume", "inspect", "other"})["Labels"], core::Json({{"a", "b"}}));
  ToolOut all = Xb({"volume", "prune", "-a", "-f"});
  EXPECT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(VolumeNames(), std::vector<std::string>{});

  ToolOut bad = Xb({"volume", "create", "bad/name"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("bad/name"), std::string::npos) << bad.err;
  ToolOut anon = Xb({"volume", "create"});
  EXPECT_EQ(anon.code, 0) << anon.err;
  EXPECT_EQ(core::Trim(anon.out).size(), 64u);
}

TEST_F(VolumeTest, NewVolumeIsFilledFromTheImageAndImageVolumesAreAnonymous) {
  ToolOut r = Xb({"run", "--rm", "-v", "etc:/etc", "base:1", "sh", "-c", "busybox cat /etc/hello"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from xbuild\n");
  EXPECT_TRUE(fs::exists(root_ + "/volumes/etc/_data/hello"));

  WriteTestFile(ctx_, "Dockerfile", "FROM base:1\nRUN busybox mkdir /vol && echo seed > /vol/s\nVOLUME /vol\n");
  ToolOut b = Xb({"build", "-q", "-t", "withvol:1", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  ToolOut v = Xb({"run", "--name", "iv", "withvol:1", "sh", "-c", "busybox cat /vol/s"});
  ASSERT_EQ(v.code, 0) << v.err;
  EXPECT_EQ(v.out, "seed\n");
  core::Json c = InspectJson({"inspect", "iv"});
  ASSERT_EQ(c["Mounts"].size(), 1u) << c.dump();
  EXPECT_EQ(c["Mounts"][0]["Destination"], "/vol");
  EXPECT_EQ(c["Mounts"][0]["Name"].get<std::string>().size(), 64u);
  ASSERT_EQ(Xb({"rm", "-v", "iv"}).code, 0);
  EXPECT_EQ(VolumeNames(), std::vector<std::string>{"etc"});
}

TEST_F(VolumeTest, BindMountsTmpfsAndBadSpecs) {
  std::string host = tmp_.Sub("host");
  WriteTestFile(host, "in.txt", "from host\n");
  ToolOut r = Xb({"run", "--rm", "-v", host + ":/h", "base:1", "sh", "-c", "busybox cat /h/in.txt; echo out > /h/out.txt"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "from host\n");
  EXPECT_EQ(core::ReadFile(host + "/out.txt").value_or(""), "out\n");
  ToolOut ro = Xb({"run", "--rm", "-v", host + ":/h:ro", "base:1", "sh", "-c", "echo x > /h/new || echo denied"});
  EXPECT_EQ(ro.out, "denied\n") << ro.err;
  EXPECT_FALSE(fs::exists(host + "/new"));

  ToolOut t = Xb({"run", "--rm", "--tmpfs", "/t:size=1m", "--mount", "type=tmpfs,target=/u", "base:1", "sh", "-c",
                  "busybox grep -E ' /(t|u) ' /proc/mounts | busybox cut -d' ' -f2,3 | busybox sort"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(t.out, "/t tmpfs\n/u tmpfs\n");

  ToolOut missing = Xb({"run", "--rm", "-v", host + "/nope:/n", "base:1", "sh", "-c", "true"});
  EXPECT_EQ(missing.code, 125);
  EXPECT_NE(missing.err.find(host + "/nope"), std::string::npos) << missing.err;
  ToolOut rel = Xb({"run", "--rm", "-v", "data:rel", "base:1", "sh", "-c", "true"});
  EXPECT_EQ(rel.code, 125);
  EXPECT_NE(rel.err.find("data:rel"), std::string::npos) << rel.err;
  ToolOut badtype = Xb({"run", "--rm", "--mount", "type=nfs,target=/x", "base:1", "sh", "-c", "true"});
  EXPECT_EQ(badtype.code, 125);
  EXPECT_NE(badtype.err.find("nfs"), std::string::npos) << badtype.err;
  EXPECT_EQ(Lines(Xb({"ps", "-a", "-q"}).out), std::vector<std::string>{});
}

TEST_F(VolumeTest, MountsAreAppliedOnEveryStart) {
  ASSERT_EQ(Xb({"run", "--name", "again", "-v", "runs:/runs", "base:1", "sh", "-c", "echo run >> /runs/log"}).code, 0);
  ToolOut start = Xb({"start", "again"});
  ASSERT_EQ(start.code, 0) << start.err;
  std::string log;
  for (int i = 0; i < 300 && log != "run\nrun\n"; ++i) {
    usleep(100000);
    log = core::ReadFile(root_ + "/volumes/runs/_data/log").value_or("");
  }
  EXPECT_EQ(log, "run\nrun\n");
}

TEST_F(VolumeTest, CpBothWaysOnStoppedAndRunningContainers) {
  ASSERT_EQ(Xb({"run", "--name", "cc", "base:1", "sh", "-c", "busybox mkdir -p /d/sub && echo one > /d/sub/f && echo top > /d/t"}).code, 0);
  std::string out = tmp_.Sub("out");
  ASSERT_TRUE(core::MkdirAll(out).ok());
  // A directory onto a missing path becomes it; onto an existing directory goes in by name.
  ToolOut a = Xb({"cp", "cc:/d", out + "/d1"});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(core::ReadFile(out + "/d1/sub/f").value_or(""), "one\n");
  ASSERT_EQ(Xb({"cp", "cc:/d", out}).code, 0);
  EXPECT_EQ(core::ReadFile(out + "/d/t").value_or(""), "top\n");
  ASSERT_EQ(Xb({"cp", "cc:/d/.", out + "/d1"}).code, 0);  // content only
  EXPECT_FALSE(fs::exists(out + "/d1/d"));
  ASSERT_EQ(Xb({"cp", "cc:/d/t", out + "/file"}).code, 0);
  EXPECT_EQ(core::ReadFile(out + "/file").value_or(""), "top\n");
  ToolOut dir_to_file = Xb({"cp", "cc:/d", out + "/file"});
  EXPECT_NE(dir_to_file.code, 0);
  ToolOut no_dir = Xb({"cp", "cc:/d/t", out + "/nodir/"});
  EXPECT_NE(no_dir.code, 0);
  ToolOut missing = Xb({"cp", "cc:/nothing", out});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("/nothing"), std::string::npos) << missing.err;

  // Into the stopped container, then seen by its next start.
  WriteTestFile(out, "in/x.txt", "into\n");
  ASSERT_EQ(Xb({"cp", out + "/in", "cc:/d"}).code, 0);
  ASSERT_EQ(Xb({"cp", out + "/in/x.txt", "cc:/renamed"}).code, 0);
  ToolOut start = Xb({"start", "cc"});
  ASSERT_EQ(start.code, 0) << start.err;

  // A running one, and tar streams both ways.
  ASSERT_EQ(Xb({"run", "-d", "--name", "live", "base:1", "/bin/busybox", "sleep", "1000"}).code, 0);
  ASSERT_EQ(Xb({"cp", out + "/in/x.txt", "live:/x.txt"}).code, 0);
  ToolOut cat = Xb({"exec", "live", "/bin/busybox", "cat", "/x.txt"});
  EXPECT_EQ(cat.out, "into\n") << cat.err;
  ToolOut tar = Shell("$XB cp live:/etc - | tar -tf - | sort");
  ASSERT_EQ(tar.code, 0) << tar.err;
  EXPECT_NE(tar.out.find("etc/hello"), std::string::npos) << tar.out;
  ToolOut untar = Shell("cd " + out + " && tar -cf - in | $XB cp - live:/tmp/");
  EXPECT_NE(untar.code, 0);  // /tmp does not exist in the image: a missing directory is an error
  ToolOut untar2 = Shell("cd " + out + " && tar -cf - in | $XB cp - live:/etc");
  ASSERT_EQ(untar2.code, 0) << untar2.err;
  EXPECT_EQ(Xb({"exec", "live", "/bin/busybox", "cat", "/etc/in/x.txt"}).out, "into\n");
  ASSERT_EQ(Xb({"rm", "-f", "live"}).code, 0);

  // Paths under a volume are copied in the volume.
  ASSERT_EQ(Xb({"run", "--name", "vv", "-v", "cpvol:/data", "base:1", "sh", "-c", "echo vol > /data/f"}).code, 0);
  ASSERT_EQ(Xb({"cp", "vv:/data/f", out + "/volf"}).code, 0);
  EXPECT_EQ(core::ReadFile(out + "/volf").value_or(""), "vol\n");
  ASSERT_EQ(Xb({"cp", out + "/in/x.txt", "vv:/data/"}).code, 0);
  EXPECT_EQ(core::ReadFile(root_ + "/volumes/cpvol/_data/x.txt").value_or(""), "into\n");
}

// As in Docker: no copy into a read-only bind or volume, nor into a --read-only rootfs, whether
// the container runs or not (a stopped one's bind would be written in its host directory).
TEST_F(VolumeTest, CpRefusesReadOnlyMountsAndRootfs) {
  std::string host = tmp_.Sub("rohost");
  WriteTestFile(host, "f", "host\n");
  std::string out = tmp_.Sub("out");
  WriteTestFile(out, "payload", "new\n");
  ASSERT_EQ(Xb({"run", "--name", "ro", "-v", host + ":/h:ro", "-v", "rwvol:/w", "base:1", "sh", "-c", "true"}).code, 0);
  ASSERT_EQ(Xb({"run", "--name", "rofs", "--read-only", "base:1", "sh", "-c", "true"}).code, 0);
  ASSERT_EQ(Xb({"run", "-d", "--name", "rolive", "-v", host + ":/h:ro", "base:1", "/bin/busybox", "sleep", "1000"})
                .code,
            0);
  for (const char* dest : {"ro:/h/", "ro:/h/sub/../x", "rolive:/h/"}) {
    ToolOut c = Xb({"cp", out + "/payload", dest});
    EXPECT_NE(c.code, 0) << dest;
    EXPECT_NE(c.err.find("mounted volume is marked read-only"), std::string::npos) << dest << ": " << c.err;
  }
  ToolOut tar = Shell("cd " + out + " && tar -cf - payload | $XB cp - ro:/h");
  EXPECT_NE(tar.code, 0);
  EXPECT_NE(tar.err.find("read-only"), std::string::npos) << tar.err;
  EXPECT_FALSE(fs::exists(host + "/payload"));
  EXPECT_FALSE(fs::exists(host + "/x"));
  EXPECT_EQ(core::ReadFile(host + "/f").value_or(""), "host\n");

  ToolOut rootfs = Xb({"cp", out + "/payload", "rofs:/etc/"});
  EXPECT_NE(rootfs.code, 0);
  EXPECT_NE(rootfs.err.find("container rootfs is marked read-only"), std::string::npos) << rootfs.err;

  // Reading from them is fine, and a writable volume of the same container takes the copy.
  ASSERT_EQ(Xb({"cp", "ro:/h/f", out + "/back"}).code, 0);
  EXPECT_EQ(core::ReadFile(out + "/back").value_or(""), "host\n");
  ASSERT_EQ(Xb({"cp", "rofs:/etc/hello", out + "/hello"}).code, 0);
  ToolOut rw = Xb({"cp", out + "/payload", "ro:/w/"});
  ASSERT_EQ(rw.code, 0) << rw.err;
  EXPECT_EQ(core::ReadFile(root_ + "/volumes/rwvol/_data/payload").value_or(""), "new\n");
  ASSERT_EQ(Xb({"rm", "-f", "rolive"}).code, 0);
}

TEST_F(VolumeTest, CpNeverFollowsContainerSymlinksToTheHost) {
  std::string host = tmp_.Sub("hostside");
  WriteTestFile(host, "secret", "host secret\n");
  WriteTestFile(host, "victim", "untouched\n");
  // Links to host paths, absolute and climbing, planted by the container.
  std::string script = "busybox ln -s " + host + "/secret /abs; busybox ln -s " + host + " /absdir; " +
                       "busybox ln -s ../../../../../../../../.." + host + " /up; " +
                       "busybox ln -s " + host + "/victim /wfile";
  ToolOut r = Xb({"run", "--name", "evil", "base:1", "sh", "-c", script});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string out = tmp_.Sub("out");
  ASSERT_TRUE(core::MkdirAll(out).ok());

  // Reading: a followed link resolves inside the container, where there is no such file.
  for (const char* src : {"evil:/absdir/secret", "evil:/up/secret"}) {
    ToolOut c = Xb({"cp", src, out + "/got"});
    EXPECT_NE(c.code, 0) << src;
    EXPECT_FALSE(fs::exists(out + "/got")) << src;
  }
  ToolOut follow = Xb({"cp", "-L", "evil:/abs", out + "/got"});
  EXPECT_NE(follow.code, 0);
  EXPECT_FALSE(fs::exists(out + "/got"));
  // Without -L the link itself is copied, never its target's content.
  ASSERT_EQ(Xb({"cp", "evil:/abs", out + "/link"}).code, 0);
  EXPECT_TRUE(fs::is_symlink(out + "/link"));
  ToolOut tar = Shell("$XB cp evil:/absdir/ - | tar -tvf -");
  EXPECT_EQ(tar.out.find("secret"), std::string::npos) << tar.out;

  // Writing: through a link to a host directory or file, nothing on the host changes.
  WriteTestFile(out, "payload", "pwned\n");
  Xb({"cp", out + "/payload", "evil:/absdir/planted"});
  Xb({"cp", out + "/payload", "evil:/up/planted2"});
  ToolOut over = Xb({"cp", out + "/payload", "evil:/wfile"});
  EXPECT_FALSE(fs::exists(host + "/planted"));
  EXPECT_FALSE(fs::exists(host + "/planted2"));
  EXPECT_EQ(core::ReadFile(host + "/victim").value_or(""), "untouched\n");
  ToolOut untar = Shell("cd " + out + " && tar -cf - payload | $XB cp - evil:/absdir");
  EXPECT_FALSE(fs::exists(host + "/payload"));
  EXPECT_EQ(core::ReadFile(host + "/secret").value_or(""), "host secret\n");
}

}  // namespace
}  // namespace xbuild::testing
