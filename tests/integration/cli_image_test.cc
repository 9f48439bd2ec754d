// End to end through the xbuild binary, checked by tools nobody here wrote: skopeo and umoci.
// Needs: busybox-static (/bin/busybox), skopeo, umoci, tar (scripts/setup-deps.sh installs them).
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::TempDir;
using testing::WriteTestFile;

struct Out {
  int code;
  std::string out, err;
};

class CliImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"skopeo", "umoci", "tar"}) {
      ASSERT_FALSE(core::LookPath(tool).empty()) << tool << " is missing: run scripts/setup-deps.sh";
    }
    root_ = tmp_.Sub("state");
    rootfs_ = tmp_.Sub("rootfs");
    ASSERT_NO_FATAL_FAILURE(testing::MakeBusyboxRootfs(rootfs_));
  }

  Out Xb(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {XBUILD_BINARY, "--root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    core::RunOptions o;
    o.extra_env = std::move(env);
    auto r = core::RunProcess(argv, o);
    EXPECT_TRUE(r.ok());
    return {r->exit_code, r->out, r->err};
  }

  Out Tool(std::vector<std::string> argv) {
    auto r = core::RunProcess(argv);
    EXPECT_TRUE(r.ok());
    return {r->exit_code, r->out, r->err};
  }

  core::Json Inspect(const std::string& name) {
    Out o = Xb({"inspect", name});
    EXPECT_EQ(o.code, 0) << o.err;
    auto j = core::Json::parse(o.out, nullptr, false);
    EXPECT_TRUE(j.is_array() && j.size() == 1) << o.out;
    return j[0];
  }

  void ImportBase(const std::string& name) {
    Out o = Xb({"import", "--change", "CMD [\"/bin/sh\"]", "-c", "ENV GREETING=hi", rootfs_, name});
    ASSERT_EQ(o.code, 0) << o.err;
    ASSERT_TRUE(o.out.starts_with("sha256:")) << o.out;
  }

  TempDir tmp_;
  std::string root_, rootfs_;
};

TEST_F(CliImageTest, ImportImagesInspect) {
  ImportBase("base:1");
  Out images = Xb({"images"});
  ASSERT_EQ(images.code, 0) << images.err;
  EXPECT_TRUE(images.out.starts_with("REPOSITORY   TAG       IMAGE ID")) << images.out;
  EXPECT_NE(images.out.find("base         1"), std::string::npos) << images.out;
  core::Json j = Inspect("base:1");
  EXPECT_EQ(j["RepoTags"], core::Json::array({"base:1"}));
  EXPECT_EQ(j["Config"]["Cmd"], core::Json::array({"/bin/sh"}));
  EXPECT_EQ(j["Config"]["Env"], core::Json::array({"GREETING=hi"}));
  EXPECT_EQ(j["Os"], "linux");
  EXPECT_EQ(j["RootFS"]["Layers"].size(), 1u);
  Out q = Xb({"images", "-q"});
  EXPECT_EQ(q.out, j["Id"].get<std::string>().substr(7, 12) + "\n");
  Out f = Xb({"inspect", "-f", "{{.Config.Cmd}} {{json .RepoTags}}", "base:1"});
  EXPECT_EQ(f.out, "[/bin/sh] [\"base:1\"]\n");
  Out js = Xb({"images", "--format", "json"});
  auto row = core::Json::parse(js.out, nullptr, false);
  ASSERT_FALSE(row.is_discarded()) << js.out;
  EXPECT_EQ(row["Repository"], "base");
  EXPECT_EQ(row["Tag"], "1");
}

TEST_F(CliImageTest, ImportIsDeterministicWithSourceDateEpoch) {
  // The same tree imported from a directory and from a tarball of it gives the same layer.
  std::string tarball = tmp_.Sub("rootfs.tar");
  ASSERT_EQ(Tool({"tar", "-cf", tarball, "-C", rootfs_, "."}).code, 0);
  std::map<std::string, std::string> env = {{"SOURCE_DATE_EPOCH", "1700000000"}};
  Out a = Xb({"import", rootfs_, "a:1"}, env);
  Out b = Xb({"import", tarball, "b:1"}, env);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(Inspect("a:1")["RootFS"], Inspect("b:1")["RootFS"]);
  EXPECT_EQ(Inspect("a:1")["Created"], "2023-11-14T22:13:20Z");
}

TEST_F(CliImageTest, SaveDockerIsReadBySkopeo) {
  ImportBase("localhost:5000/base:1");
  std::string archive = tmp_.Sub("base-docker.tar");
  Out s = Xb({"save", "-o", archive, "localhost:5000/base:1"});
  ASSERT_EQ(s.code, 0) << s.err;
  Out si = Tool({"skopeo", "inspect", "docker-archive:" + archive});
  ASSERT_EQ(si.code, 0) << si.err;
  auto sj = core::Json::parse(si.out);
  EXPECT_EQ(sj["Layers"], Inspect("localhost:5000/base:1")["RootFS"]["Layers"]);
  EXPECT_EQ(sj["Env"], core::Json::array({"GREETING=hi"}));
  Out copy = Tool({"skopeo", "copy", "docker-archive:" + archive, "oci:" + tmp_.Sub("skopeo-oci") + ":base"});
  ASSERT_EQ(copy.code, 0) << copy.err;
  EXPECT_TRUE(core::Exists(tmp_.Sub("skopeo-oci/index.json")));
}

TEST_F(CliImageTest, SaveOciIsUnpackedByUmoci) {
  ImportBase("base:2");
  std::string archive = tmp_.Sub("base-oci.tar");
  Out s = Xb({"save", "--format", "oci", "-o", archive, "base:2"});
  ASSERT_EQ(s.code, 0) << s.err;
  std::string layout = tmp_.Sub("layout");
  ASSERT_TRUE(core::MkdirAll(layout).ok());
  ASSERT_EQ(Tool({"tar", "-xf", archive, "-C", layout}).code, 0);
  std::string bundle = tmp_.Sub("bundle");
  Out u = Tool({"umoci", "unpack", "--image", layout + ":2", bundle});
  ASSERT_EQ(u.code, 0) << u.err;
  EXPECT_EQ(testing::ReadTestFile(bundle + "/rootfs/etc/hello"), "hello from xbuild\n");
  struct stat st;
  ASSERT_EQ(::stat((bundle + "/rootfs/bin/busybox").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  auto cfg = core::Json::parse(testing::ReadTestFile(bundle + "/config.json"));
  EXPECT_EQ(cfg["process"]["args"], core::Json::array({"/bin/sh"}));
}

TEST_F(CliImageTest, LoadsSkopeoOciArchiveWithSameDiffIds) {
  ImportBase("base:3");
  std::string docker_archive = tmp_.Sub("d.tar");
  ASSERT_EQ(Xb({"save", "-o", docker_archive, "base:3"}).code, 0);
  std::string oci_archive = tmp_.Sub("skopeo-oci.tar");
  Out c = Tool({"skopeo", "copy", "docker-archive:" + docker_archive, "oci-archive:" + oci_archive + ":other/img:7"});
  ASSERT_EQ(c.code, 0) << c.err;
  std::string root2 = tmp_.Sub("state2");
  auto r = core::RunProcess({XBUILD_BINARY, "--root", root2, "load", "-i", oci_archive});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "Loaded image: other/img:7\n");
  auto i = core::RunProcess({XBUILD_BINARY, "inspect", "--root", root2, "-f", "{{json .RootFS.Layers}}", "other/img:7"});
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->out, Inspect("base:3")["RootFS"]["Layers"].dump() + "\n");
}

TEST_F(CliImageTest, LoadsSkopeoDockerArchive) {
  ImportBase("base:4");
  std::string oci = tmp_.Sub("o.tar");
  ASSERT_EQ(Xb({"save", "--format", "oci", "-o", oci, "base:4"}).code, 0);
  std::string dock = tmp_.Sub("skopeo-docker.tar");
  Out c = Tool({"skopeo", "copy", "oci-archive:" + oci + ":4", "docker-archive:" + dock + ":fromskopeo:1"});
  ASSERT_EQ(c.code, 0) << c.err;
  std::string root2 = tmp_.Sub("state3");
  auto r = core::RunProcess({XBUILD_BINARY, "--root", root2, "load", "-i", dock});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "Loaded image: fromskopeo:1\n");
}

TEST_F(CliImageTest, SaveLoadBothFormatsRoundTrip) {
  ImportBase("rt:1");
  for (const char* format : {"docker", "oci"}) {
    std::string archive = tmp_.Sub(std::string("rt-") + format + ".tar");
    ASSERT_EQ(Xb({"save", "--format", format, "-o", archive, "rt:1"}).code, 0);
    std::string root2 = tmp_.Sub(std::string("state-") + format);
    auto r = core::RunProcess({XBUILD_BINARY, "--root", root2, "load", "-i", archive});
    ASSERT_EQ(r->exit_code, 0) << r->err;
    auto i = core::RunProcess({XBUILD_BINARY, "--root", root2, "inspect", "-f", "{{.Id}}", "rt:1"});
    EXPECT_EQ(i->out, Inspect("rt:1")["Id"].get<std::string>() + "\n") << format;
  }
}

TEST_F(CliImageTest, TagAndRmiLikeDocker) {
  ImportBase("one:1");
  ASSERT_EQ(Xb({"tag", "one:1", "two:2"}).code, 0);
  std::string id = Inspect("one:1")["Id"].get<std::string>().substr(7, 12);
  Out refused = Xb({"rmi", id});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("must be forced"), std::string::npos) << refused.err;
  Out untag = Xb({"rmi", "one:1"});
  EXPECT_EQ(untag.code, 0) << untag.err;
  EXPECT_EQ(untag.out, "Untagged: one:1\n");
  Out del = Xb({"rmi", "two:2"});
  EXPECT_EQ(del.code, 0);
  EXPECT_NE(del.out.find("Untagged: two:2\nDeleted: sha256:"), std::string::npos) << del.out;
  EXPECT_EQ(Xb({"images", "-q"}).out, "");
  // Every blob went with it.
  EXPECT_EQ(Tool({"find", root_ + "/content/blobs/sha256", "-type", "f"}).out, "");
}

TEST_F(CliImageTest, ErrorsAndExitCodes) {
  Out missing = Xb({"inspect", "nope:1"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("nope:1"), std::string::npos);
  Out rmi = Xb({"rmi", "nope:1"});
  EXPECT_EQ(rmi.code, 1);
  EXPECT_NE(rmi.err.find("No such image"), std::string::npos) << rmi.err;
  Out flag = Xb({"images", "--bogus"});
  EXPECT_EQ(flag.code, 125);
  EXPECT_NE(flag.err.find("unknown flag: --bogus"), std::string::npos);
  Out cmd = Xb({"frobnicate"});
  EXPECT_EQ(cmd.code, 125);
  Out badref = Xb({"import", rootfs_, "Bad:Ref"});
  EXPECT_EQ(badref.code, 1);
  EXPECT_NE(badref.err.find("invalid reference \"Bad:Ref\""), std::string::npos) << badref.err;
  Out nosrc = Xb({"import", tmp_.Sub("absent"), "x:1"});
  EXPECT_EQ(nosrc.code, 1);
  EXPECT_NE(nosrc.err.find(tmp_.Sub("absent")), std::string::npos);
  Out badchange = Xb({"import", "-c", "RUN true", rootfs_, "x:1"});
  EXPECT_EQ(badchange.code, 1);
  EXPECT_NE(badchange.err.find("RUN is not a valid change command"), std::string::npos);
  Out args = Xb({"tag", "only-one"});
  EXPECT_EQ(args.code, 125);
  // A failed save leaves no partial file behind.
  Out save = Xb({"save", "-o", tmp_.Sub("never.tar"), "nope:1"});
  EXPECT_EQ(save.code, 1);
  EXPECT_FALSE(core::Exists(tmp_.Sub("never.tar")));
  // Nothing was stored by the failures.
  EXPECT_EQ(Xb({"images", "-q"}).out, "");
}

TEST_F(CliImageTest, GlobalFlagsBeforeAndAfterAndEnv) {
  ImportBase("g:1");
  auto after = core::RunProcess({XBUILD_BINARY, "images", "-q", "--root", root_});
  auto env = core::RunProcess({XBUILD_BINARY, "images", "-q"}, {std::nullopt, true, true, std::nullopt, std::nullopt, {{"XBUILD_ROOT", root_}}});
  EXPECT_EQ(after->out, Xb({"images", "-q"}).out);
  EXPECT_EQ(env->out, Xb({"images", "-q"}).out);
  EXPECT_FALSE(after->out.empty());
  Out lvl = Xb({"--log-level", "debug", "images"});
  EXPECT_EQ(lvl.code, 0);
  EXPECT_NE(lvl.err.find("state root " + root_), std::string::npos) << lvl.err;
  Out badlvl = Xb({"--log-level", "loud", "images"});
  EXPECT_EQ(badlvl.code, 125);
  EXPECT_NE(badlvl.err.find("invalid log level"), std::string::npos);
}

TEST_F(CliImageTest, ConcurrentImportsOnOneRoot) {
  std::vector<std::thread> threads;
  std::vector<int> codes(4, -1);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { codes[i] = Xb({"import", rootfs_, "par:" + std::to_string(i)}).code; });
  }
  for (auto& t : threads) t.join();
  for (int c : codes) EXPECT_EQ(c, 0);
  Out images = Xb({"images", "par"});
  for (int i = 0; i < 4; ++i) EXPECT_NE(images.out.find("par          " + std::to_string(i) + " "), std::string::npos) << images.out;
  Out info = Xb({"info", "--format", "json"});
  auto j = core::Json::parse(info.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << info.out;
  EXPECT_EQ(j["Tags"], 4);
}

}  // namespace
}  // namespace xbuild

namespace xbuild {
namespace {

TEST_F(CliImageTest, HostileImportTarballIsRefusedAndWritesNothingOutside) {
  // A tarball whose entry climbs out of the rootfs: the import fails naming the entry, stores
  // no image, and writes nothing next to the state root.
  std::string dir = tmp_.Sub("evil");
  WriteTestFile(dir, "payload", "pwned");
  std::string tarball = tmp_.Sub("evil.tar");
  ASSERT_EQ(Tool({"tar", "-cf", tarball, "-C", dir, "-P", "--transform", "s,^payload,../../../escaped,", "payload"}).code, 0);
  Out o = Xb({"import", tarball, "evil:1"});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("escaped"), std::string::npos) << o.err;
  EXPECT_EQ(Xb({"images", "-q"}).out, "");
  EXPECT_EQ(Tool({"find", tmp_.path(), "-name", "escaped"}).out, "");
  EXPECT_EQ(Tool({"find", "/tmp", "-maxdepth", "2", "-name", "escaped"}).out, "");
  // The store still works.
  ImportBase("after:1");
  EXPECT_EQ(Xb({"images", "-q"}).out.size(), 13u);
}

TEST_F(CliImageTest, StdinImportAndLoad) {
  std::string tarball = tmp_.Sub("rootfs.tar");
  ASSERT_EQ(Tool({"tar", "-cf", tarball, "-C", rootfs_, "."}).code, 0);
  core::RunOptions o;
  o.stdin_data = testing::ReadTestFile(tarball);
  auto imp = core::RunProcess({XBUILD_BINARY, "--root", root_, "import", "-", "fromstdin:1"}, o);
  ASSERT_EQ(imp->exit_code, 0) << imp->err;
  std::string archive = tmp_.Sub("s.tar");
  ASSERT_EQ(Xb({"save", "-o", archive, "fromstdin:1"}).code, 0);
  core::RunOptions lo;
  lo.stdin_data = testing::ReadTestFile(archive);
  auto load = core::RunProcess({XBUILD_BINARY, "--root", tmp_.Sub("other"), "load"}, lo);
  ASSERT_EQ(load->exit_code, 0) << load->err;
  EXPECT_EQ(load->out, "Loaded image: fromstdin:1\n");
}

TEST_F(CliImageTest, LoadWithMissingBlobLeavesStoreConsistent) {
  ImportBase("m:1");
  std::string archive = tmp_.Sub("m.tar");
  ASSERT_EQ(Xb({"save", "--format", "oci", "-o", archive, "m:1"}).code, 0);
  std::string layout = tmp_.Sub("mlayout");
  ASSERT_TRUE(core::MkdirAll(layout).ok());
  ASSERT_EQ(Tool({"tar", "-xf", archive, "-C", layout}).code, 0);
  // Drop the layer blob (the largest file) and re-pack.
  Out big = Tool({"sh", "-c", "ls -S " + layout + "/blobs/sha256 | head -1"});
  std::string layer = big.out.substr(0, big.out.find('\n'));
  ASSERT_EQ(::unlink((layout + "/blobs/sha256/" + layer).c_str()), 0);
  std::string broken = tmp_.Sub("broken.tar");
  ASSERT_EQ(Tool({"tar", "-cf", broken, "-C", layout, "."}).code, 0);
  std::string root2 = tmp_.Sub("state-broken");
  auto r = core::RunProcess({XBUILD_BINARY, "--root", root2, "load", "-i", broken});
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_NE(r->err.find(layer), std::string::npos) << r->err;
  auto images = core::RunProcess({XBUILD_BINARY, "--root", root2, "images", "-q"});
  EXPECT_EQ(images->out, "");
  // Nothing the failed load wrote is left in the content store.
  EXPECT_EQ(Tool({"find", root2 + "/content/blobs/sha256", "-type", "f"}).out, "");
}

}  // namespace
}  // namespace xbuild
