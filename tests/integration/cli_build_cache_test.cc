// --cache-to / --cache-from end to end (as root, real runc and docker-registry): the CI scenario
// (runner A exports its cache, a fresh runner B reuses it without running a step and fetches only
// the final image's layers; one changed file reruns exactly what depends on it), with a registry
// (mode=max) and a local directory (mode=min); and the faults: a missing blob, a cache config that
// does not parse, and a layer that does not verify make the build run the step instead, with a
// warning, and never give a wrong result.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/digest.h"
#include "core/json.h"
#include "integration/cache_fixture.h"

namespace xbuild {
namespace {

using testing::ToolOut;
using testing::WriteTestFile;

class CliBuildCacheTest : public testing::CacheRunnersTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(CacheRunnersTest::SetUp());
    WriteTestFile(ctx_, "src.txt", "v1\n");
    WriteTestFile(ctx_, "Dockerfile",
                  "FROM base:1 AS build\n"
                  "RUN echo compiling && mkdir -p /out && echo binary > /out/app\n"
                  "COPY src.txt /src.txt\n"
                  "RUN echo appending && cat /src.txt >> /out/app\n"
                  "FROM base:1\n"
                  "COPY --from=build /out/app /app\n"
                  "RUN echo final-step && echo final-step > /final\n"
                  "CMD [\"sh\", \"-c\", \"cat /app\"]\n");
  }

  // The layers (blob digests) of the cache manifest in a local cache directory.
  static std::vector<std::string> CacheLayers(const std::string& dir, core::Json* config = nullptr,
                                              std::string* manifest_digest = nullptr) {
    auto index = core::Json::parse(testing::ReadTestFile(dir + "/index.json"), nullptr, false);
    std::string md = index["manifests"][0]["digest"];
    if (manifest_digest) *manifest_digest = md;
    auto m = core::Json::parse(testing::ReadTestFile(dir + "/blobs/sha256/" + md.substr(7)), nullptr, false);
    if (config) {
      std::string cd = m["config"]["digest"];
      *config = core::Json::parse(testing::ReadTestFile(dir + "/blobs/sha256/" + cd.substr(7)), nullptr, false);
    }
    std::vector<std::string> out;
    for (const auto& l : m["layers"]) out.push_back(l["digest"]);
    return out;
  }
};

TEST_F(CliBuildCacheTest, RunnerBReusesRunnerAsRegistryCache) {
  testing::RegistryProcess reg;
  ASSERT_NO_FATAL_FAILURE(reg.Start(tmp_.Sub("registry")));
  std::string cache_ref = reg.host() + "/ci/cache:main";
  ToolOut a = Xb({"build", "--progress=plain", "-t", "app:1", "--cache-to", "type=registry,ref=" + cache_ref + ",mode=max", ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.err.find("5 records, 5 layers (mode=max)"), std::string::npos) << a.err;
  ToolOut raw = testing::RunTool({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + cache_ref});
  ASSERT_EQ(raw.code, 0) << raw.err;
  auto manifest = core::Json::parse(raw.out, nullptr, false);
  EXPECT_EQ(manifest["config"]["mediaType"], "application/vnd.xbuild.cache.config.v1+json") << raw.out;

  ToolOut b = B({"build", "--progress=plain", "-t", "app:1", "--cache-from", "type=registry,ref=" + cache_ref, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find(" compiling\n"), std::string::npos) << "no RUN step ran on B:\n" << b.err;
  EXPECT_EQ(b.err.find(" appending\n"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find("WARNING"), std::string::npos) << b.err;
  EXPECT_EQ(RunOutput(root_b_, "app:1"), "binary\nv1\n");
  EXPECT_EQ(Layers(root_b_, "app:1"), Layers(root_, "app:1")) << "B's image has A's layers";
  // Only the final image's two step layers came down; the build stage's three did not.
  size_t fetched = 0;
  for (const auto& l : manifest["layers"]) {
    std::string d = l["digest"];
    fetched += std::filesystem::exists(root_b_ + "/content/blobs/sha256/" + d.substr(7));
  }
  EXPECT_EQ(fetched, 2u);

  // One source file changes: the steps that read it (and what follows) run, the first RUN not.
  WriteTestFile(ctx_, "src.txt", "v2\n");
  b = B({"build", "--progress=plain", "-t", "app:2", "--cache-from", "type=registry,ref=" + cache_ref, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find(" compiling\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" appending\n"), std::string::npos) << b.err;
  EXPECT_EQ(RunOutput(root_b_, "app:2"), "binary\nv2\n");
}

TEST_F(CliBuildCacheTest, LocalCacheModeMinNeedsNoBuildStage) {
  std::string dir = tmp_.Sub("cache-dir");
  ToolOut a = Xb({"build", "--progress=plain", "-t", "app:1", "--cache-to", "type=local,dest=" + dir, ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.err.find("2 records, 2 layers (mode=min)"), std::string::npos) << a.err;
  EXPECT_EQ(testing::ReadTestFile(dir + "/oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
  // skopeo reads the directory as an OCI layout.
  ToolOut sk = testing::RunTool({"skopeo", "inspect", "--raw", "oci:" + dir + ":latest"});
  EXPECT_EQ(sk.code, 0) << sk.err;

  ToolOut b = B({"build", "--progress=plain", "-t", "app:1", "--cache-from", "type=local,src=" + dir, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find(" compiling\n"), std::string::npos) << "the build stage is not needed:\n" << b.err;
  EXPECT_EQ(b.err.find(" final-step\n"), std::string::npos) << b.err;
  EXPECT_EQ(RunOutput(root_b_, "app:1"), "binary\nv1\n");
  EXPECT_EQ(Layers(root_b_, "app:1"), Layers(root_, "app:1"));
  // The cache holds the final image's two step layers, and B took both as they were.
  std::vector<std::string> layers = CacheLayers(dir);
  ASSERT_EQ(layers.size(), 2u);
  for (const auto& l : layers) EXPECT_TRUE(std::filesystem::exists(root_b_ + "/content/blobs/sha256/" + l.substr(7))) << l;

  // mode=min has no build stage: a change there runs the stage whole. With a mode=max
  // directory beside it, only the steps that read the changed file (and what follows) run.
  std::string max_dir = tmp_.Sub("cache-max");
  ASSERT_EQ(Xb({"build", "-t", "app:1", "--cache-to", "type=local,dest=" + max_dir + ",mode=max", ctx_}).code, 0);
  WriteTestFile(ctx_, "src.txt", "v2\n");
  b = B({"build", "--progress=plain", "-t", "app:2", "--cache-from", "type=local,src=" + dir, "--cache-from",
         "type=local,src=" + max_dir, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find(" compiling\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" appending\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" final-step\n"), std::string::npos) << b.err;
  EXPECT_EQ(RunOutput(root_b_, "app:2"), "binary\nv2\n");
}

TEST_F(CliBuildCacheTest, BrokenCachesFallBackToRunningTheSteps) {
  std::string dir = tmp_.Sub("cache-dir");
  ASSERT_EQ(Xb({"build", "-t", "app:1", "--cache-to", "type=local,dest=" + dir + ",mode=max", ctx_}).code, 0);
  core::Json config;
  std::vector<std::string> layers = CacheLayers(dir, &config);
  ASSERT_EQ(layers.size(), 5u);

  // A layer that does not verify (same name, other bytes): not used; the step runs.
  std::string some = dir + "/blobs/sha256/" + layers.back().substr(7);
  std::string kept = testing::ReadTestFile(some);
  WriteTestFile(dir, "blobs/sha256/" + layers.back().substr(7), "not the layer");
  ToolOut b = B({"build", "--progress=plain", "-t", "app:1", "--cache-from", "type=local,src=" + dir, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("WARNING: "), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("running the step"), std::string::npos) << b.err;
  EXPECT_EQ(RunOutput(root_b_, "app:1"), "binary\nv1\n");

  // A missing blob: the same.
  std::filesystem::remove(some);
  std::string root_c = NewRunner("runner-c");
  ToolOut c = testing::RunXbuild(root_c, {"build", "--progress=plain", "-t", "app:1", "--cache-from", "type=local,src=" + dir, ctx_});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.err.find("running the step"), std::string::npos) << c.err;
  EXPECT_EQ(RunOutput(root_c, "app:1"), "binary\nv1\n");

  // A cache config that does not parse (a consistent layout around it): the cache is ignored
  // with a warning and every step runs.
  std::string bad = "{\"layers\": 7}";
  std::string bad_digest = core::Digest::Of(bad).String();
  WriteTestFile(dir, "blobs/sha256/" + bad_digest.substr(7), bad);
  std::string md;
  CacheLayers(dir, nullptr, &md);
  auto m = core::Json::parse(testing::ReadTestFile(dir + "/blobs/sha256/" + md.substr(7)), nullptr, false);
  m["config"]["digest"] = bad_digest;
  m["config"]["size"] = bad.size();
  std::string mbytes = m.dump();
  std::string mdigest = core::Digest::Of(mbytes).String();
  WriteTestFile(dir, "blobs/sha256/" + mdigest.substr(7), mbytes);
  auto index = core::Json::parse(testing::ReadTestFile(dir + "/index.json"), nullptr, false);
  index["manifests"][0]["digest"] = mdigest;
  index["manifests"][0]["size"] = mbytes.size();
  WriteTestFile(dir, "index.json", index.dump());
  std::string root_d = NewRunner("runner-d");
  ToolOut d = testing::RunXbuild(root_d, {"build", "--progress=plain", "-t", "app:1", "--cache-from", "type=local,src=" + dir, ctx_});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_NE(d.err.find("WARNING: cache from " + dir + " not used"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find(" compiling\n"), std::string::npos) << d.err;
  EXPECT_EQ(RunOutput(root_d, "app:1"), "binary\nv1\n");
}

TEST_F(CliBuildCacheTest, BadCacheFlagsAreRefused) {
  struct Case {
    std::string flag, value, says;
  } cases[] = {
      {"--cache-to", "type=registry", "ref= is required"},
      {"--cache-to", "type=local", "dest= is required"},
      {"--cache-to", "type=local,dest=x,mode=most", "mode must be min or max"},
      {"--cache-from", "type=s3,bucket=x", "unknown attribute \"bucket\""},
  };
  for (const auto& c : cases) {
    ToolOut b = Xb({"build", c.flag, c.value, ctx_});
    EXPECT_NE(b.code, 0) << c.value;
    EXPECT_NE(b.err.find(c.says), std::string::npos) << c.value << ": " << b.err;
  }
}

}  // namespace
}  // namespace xbuild
