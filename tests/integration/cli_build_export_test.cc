// Build outputs (as root, real runc and overlayfs): a build that only tags stores its step
// layers uncompressed; -o type=oci|docker|tar|local and --push export the result, compressing
// step layers once (gzip, or zstd with --compression) and reusing that on the next export;
// --metadata-file; bad -o values; removing the images frees the compressed variants too.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/json.h"
#include "integration/build_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::RunTool;
using testing::ToolOut;
using testing::WriteTestFile;

constexpr std::string_view kOciTar = "application/vnd.oci.image.layer.v1.tar";
constexpr std::string_view kOciGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr std::string_view kOciZstd = "application/vnd.oci.image.layer.v1.tar+zstd";

class CliBuildExportTest : public testing::BuildTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BuildTest::SetUp());
    WriteTestFile(ctx_, "Dockerfile",
                  "FROM base:1\n"
                  "RUN mkdir -p /out/sub && echo built > /out/hello && ln -s hello /out/link && echo deep > /out/sub/f\n"
                  "CMD [\"cat\", \"/out/hello\"]\n");
  }

  core::Json ReadJson(const std::string& path) {
    auto j = core::Json::parse(testing::ReadTestFile(path), nullptr, false);
    EXPECT_TRUE(j.is_object()) << path;
    return j;
  }

  // The blob files of the content store.
  std::set<std::string> Blobs() {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root_ + "/content/blobs/sha256", ec)) {
      out.insert(e.path().filename().string());
    }
    return out;
  }

  // Layer media types of a manifest (JSON text).
  static std::vector<std::string> LayerTypes(const std::string& manifest) {
    std::vector<std::string> out;
    auto j = core::Json::parse(manifest, nullptr, false);
    if (!j.is_object() || !j.contains("layers")) return out;
    for (const auto& l : j["layers"]) out.push_back(l.value("mediaType", ""));
    return out;
  }

};

TEST_F(CliBuildExportTest, TagOnlyBuildStoresUncompressedLayersAndOciOutputCompressesOnce) {
  std::string meta = tmp_.Sub("meta.json");
  ToolOut b = Xb({"build", "-t", "app:1", "--metadata-file", meta, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  core::Json m = ReadJson(meta);
  std::string manifest_digest = m.value("containerimage.digest", "");
  ASSERT_EQ(manifest_digest.rfind("sha256:", 0), 0u) << m.dump();
  EXPECT_EQ(m.value("image.name", ""), "docker.io/library/app:1");
  EXPECT_EQ(m["containerimage.descriptor"].value("digest", ""), manifest_digest);
  std::string local = testing::ReadTestFile(root_ + "/content/blobs/sha256/" + manifest_digest.substr(7));
  std::vector<std::string> types = LayerTypes(local);
  ASSERT_EQ(types.size(), 2u) << local;
  EXPECT_EQ(types[1], kOciTar) << "the step layer is stored uncompressed: " << local;
  std::set<std::string> before = Blobs();

  // An OCI archive: the step layer gzip-compressed, checked by skopeo.
  std::string oci1 = tmp_.Sub("app1.tar");
  b = Xb({"build", "-t", "app:1", "-o", "type=oci,dest=" + oci1, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("CACHED"), std::string::npos) << b.err;
  ToolOut raw = RunTool({"skopeo", "inspect", "--raw", "oci-archive:" + oci1});
  ASSERT_EQ(raw.code, 0) << raw.err;
  types = LayerTypes(raw.out);
  ASSERT_EQ(types.size(), 2u) << raw.out;
  EXPECT_EQ(types[1], kOciGzip) << raw.out;
  std::set<std::string> after = Blobs();
  EXPECT_EQ(after.size(), before.size() + 1) << "one compressed variant of the step layer";

  // Again to another file: the variant is reused (same manifest, no new blob).
  std::string oci2 = tmp_.Sub("app2.tar");
  b = Xb({"build", "-t", "app:1", "-o", "type=oci,dest=" + oci2, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  ToolOut raw2 = RunTool({"skopeo", "inspect", "--raw", "oci-archive:" + oci2});
  EXPECT_EQ(raw2.out, raw.out);
  EXPECT_EQ(Blobs(), after);

  // zstd: skopeo copies it out (verifying every blob digest) and sees zstd.
  std::string oci3 = tmp_.Sub("app3.tar");
  b = Xb({"build", "--compression=zstd", "-o", "type=oci,dest=" + oci3, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  raw = RunTool({"skopeo", "inspect", "--raw", "oci-archive:" + oci3});
  types = LayerTypes(raw.out);
  ASSERT_EQ(types.size(), 2u) << raw.out;
  EXPECT_EQ(types[1], kOciZstd) << raw.out;
  ToolOut copy = RunTool({"skopeo", "copy", "oci-archive:" + oci3, "dir:" + tmp_.Sub("copied")});
  EXPECT_EQ(copy.code, 0) << copy.err;

  // Removing the image frees the uncompressed layers and their variants alike.
  ASSERT_EQ(Xb({"rmi", "app:1"}).code, 0);
  ASSERT_EQ(Xb({"rmi", "base:1"}).code, 0);
  EXPECT_TRUE(Blobs().empty()) << Blobs().size() << " blobs left";
}

TEST_F(CliBuildExportTest, DockerTarAndLocalOutputs) {
  std::string docker = tmp_.Sub("app-docker.tar"), fs = tmp_.Sub("fs.tar"), dir = tmp_.Sub("out-dir");
  std::string iid = tmp_.Sub("iid");
  ToolOut b = Xb({"build", "-t", "app:2", "--iidfile", iid, "-o", "type=docker,dest=" + docker, "-o",
                  "type=tar,dest=" + fs, "-o", "type=local,dest=" + dir, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  std::string id = testing::ReadTestFile(iid);

  ToolOut ins = RunTool({"skopeo", "inspect", "--config", "docker-archive:" + docker});
  ASSERT_EQ(ins.code, 0) << ins.err;
  auto cfg = core::Json::parse(ins.out, nullptr, false);
  ASSERT_TRUE(cfg.is_object()) << ins.out;
  EXPECT_EQ(cfg["config"]["Cmd"], core::Json::array({"cat", "/out/hello"}));
  ToolOut sha = RunTool({"sh", "-c", "skopeo inspect --raw --config docker-archive:" + docker + " | sha256sum"});
  EXPECT_EQ("sha256:" + sha.out.substr(0, 64), id) << "the archive's config is the image's";

  ToolOut list = RunTool({"tar", "tf", fs});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find("bin/busybox\n"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("out/sub/f\n"), std::string::npos) << list.out;
  ToolOut hello = RunTool({"tar", "xOf", fs, "out/hello"});
  EXPECT_EQ(hello.out, "built\n");

  EXPECT_EQ(testing::ReadTestFile(dir + "/out/hello"), "built\n");
  EXPECT_EQ(testing::ReadTestFile(dir + "/out/sub/f"), "deep\n");
  EXPECT_EQ(std::filesystem::read_symlink(dir + "/out/link"), "hello");
  EXPECT_TRUE(std::filesystem::is_regular_file(dir + "/bin/busybox"));

  // `-o DIR` alone means type=local, and makes no image; --load makes one besides.
  std::string bare = tmp_.Sub("bare"), meta = tmp_.Sub("meta.json");
  b = Xb({"build", "-o", bare, "--metadata-file", meta, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(testing::ReadTestFile(bare + "/out/hello"), "built\n");
  EXPECT_FALSE(ReadJson(meta).contains("containerimage.config.digest")) << testing::ReadTestFile(meta);
  b = Xb({"build", "--load", "-o", bare, "--metadata-file", meta, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(ReadJson(meta).value("containerimage.config.digest", ""), id);
}

TEST_F(CliBuildExportTest, PushSendsEveryTagCompressed) {
  testing::RegistryProcess reg;
  ASSERT_NO_FATAL_FAILURE(reg.Start(tmp_.Sub("registry")));
  std::string t1 = reg.host() + "/team/app:1", t2 = reg.host() + "/team/app:2";
  std::string meta = tmp_.Sub("meta.json");
  ToolOut b = Xb({"build", "-t", t1, "-t", t2, "--push", "--metadata-file", meta, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("pushing manifest for " + t1), std::string::npos) << b.err;
  std::string d1 = testing::SkopeoDigest(t1), d2 = testing::SkopeoDigest(t2);
  EXPECT_FALSE(d1.empty());
  EXPECT_EQ(d1, d2);
  core::Json m = ReadJson(meta);
  EXPECT_EQ(m.value("containerimage.digest", ""), d1) << "the metadata names what the registry holds";
  EXPECT_EQ(m.value("image.name", ""), t1 + "," + t2);
  ToolOut raw = RunTool({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + t1});
  std::vector<std::string> types = LayerTypes(raw.out);
  ASSERT_EQ(types.size(), 2u) << raw.out;
  for (const auto& t : types) EXPECT_EQ(t, kOciGzip) << raw.out;
  // What the registry holds runs: pull it into a fresh root and read the file.
  ToolOut copy = RunTool({"skopeo", "copy", "--src-tls-verify=false", "docker://" + t1, "dir:" + tmp_.Sub("pulled")});
  EXPECT_EQ(copy.code, 0) << copy.err;

  // type=registry with its own name; Docker media types on request.
  std::string t3 = reg.host() + "/team/app:3";
  b = Xb({"build", "-o", "type=registry,name=" + t3 + ",oci-mediatypes=false", ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  raw = RunTool({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + t3});
  EXPECT_NE(raw.out.find("application/vnd.docker.distribution.manifest.v2+json"), std::string::npos) << raw.out;
  EXPECT_NE(raw.out.find("application/vnd.docker.image.rootfs.diff.tar.gzip"), std::string::npos) << raw.out;

  b = Xb({"build", "--push", ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("-t NAME:TAG"), std::string::npos) << b.err;
}

TEST_F(CliBuildExportTest, BadOutputsAreRefusedBeforeBuilding) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"-o", "type=floppy,dest=x"}, "unknown type \"floppy\""},
      {{"-o", "type=oci"}, "type=oci needs dest="},
      {{"-o", "type=local"}, "type=local needs dest=DIR"},
      {{"-o", "type=tar,dest=x,colour=red"}, "unknown attribute \"colour\""},
      {{"-o", "type=oci,dest=x,compression=lz4"}, "invalid compression \"lz4\""},
      {{"--compression=brotli"}, "invalid compression \"brotli\""},
      {{"--compression=zstd", "--oci-mediatypes=false"}, "needs OCI media types"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"build"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.push_back(ctx_);
    ToolOut b = Xb(args);
    EXPECT_NE(b.code, 0) << c.says;
    EXPECT_NE(b.err.find(c.says), std::string::npos) << b.err;
    EXPECT_EQ(b.err.find("RUN mkdir"), std::string::npos) << "nothing ran: " << b.err;
  }
  // A destination that cannot be written fails the build and leaves no partial file.
  ToolOut b = Xb({"build", "-o", "type=tar,dest=" + tmp_.Sub("no/such/dir/fs.tar"), ctx_});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("no/such/dir"), std::string::npos) << b.err;
}

}  // namespace
}  // namespace xbuild

namespace xbuild {
namespace {

// SOURCE_DATE_EPOCH (from the environment, as buildx passes it) makes the build reproducible:
// two fresh roots, loaded with the same base archive, build the same image digest and the same
// pushed-form (gzip) OCI archive manifest, although the steps ran at different times.
TEST_F(CliBuildExportTest, SourceDateEpochGivesTheSameDigestOnTwoRoots) {
  std::string base = tmp_.Sub("base.tar");
  ASSERT_EQ(Xb({"save", "-o", base, "base:1"}).code, 0);
  WriteTestFile(ctx_, "f.txt", "context file\n");
  WriteTestFile(ctx_, "Dockerfile",
                "FROM base:1\n"
                "RUN echo hello > /f && mkdir -p /d/e && touch /d/e/g\n"
                "COPY f.txt /copied\n"
                "WORKDIR /w\n"
                "CMD [\"cat\", \"/f\"]\n");
  std::vector<std::string> ids, digests, archives;
  for (int i = 0; i < 2; ++i) {
    std::string root = tmp_.Sub("repro-" + std::to_string(i));
    ASSERT_EQ(testing::RunXbuild(root, {"load", "-i", base}).code, 0);
    std::string meta = tmp_.Sub("meta-" + std::to_string(i) + ".json");
    std::string oci = tmp_.Sub("oci-" + std::to_string(i) + ".tar");
    std::vector<std::string> argv = {XBUILD_BINARY, "--root", root, "build", "-q", "--metadata-file", meta,
                                     "--load", "-o", "type=oci,dest=" + oci, ctx_};
    core::RunOptions o;
    o.extra_env = {{"XBUILD_CONFIG", ""}, {"SOURCE_DATE_EPOCH", "1700000000"}};
    ToolOut b = testing::RunTool(argv, o);
    ASSERT_EQ(b.code, 0) << b.err;
    ids.push_back(b.out);
    digests.push_back(ReadJson(meta).value("containerimage.digest", ""));
    archives.push_back(RunTool({"skopeo", "inspect", "--raw", "oci-archive:" + oci}).out);
    if (i == 0) ::sleep(1);  // the second build runs at another second
  }
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_FALSE(digests[0].empty());
  EXPECT_EQ(digests[0], digests[1]);
  EXPECT_FALSE(archives[0].empty());
  EXPECT_EQ(archives[0], archives[1]);
  ToolOut ins = testing::RunXbuild(tmp_.Sub("repro-0"), {"inspect", "-f", "{{.Created}}", ids[0].substr(0, 19)});
  EXPECT_EQ(ins.out, "2023-11-14T22:13:20Z\n") << ins.err;

  // A bad value is refused before anything runs.
  std::vector<std::string> argv = {XBUILD_BINARY, "--root", root_, "build", "--build-arg", "SOURCE_DATE_EPOCH=yesterday", ctx_};
  ToolOut bad = testing::RunTool(argv);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("SOURCE_DATE_EPOCH=\"yesterday\": not a unix time"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace xbuild
