// Inline build cache end to end (as root, real runc and docker-registry): runner A pushes an
// image that carries its own cache (`--cache-to type=inline`, or BuildKit's
// `--build-arg BUILDKIT_INLINE_CACHE=1`); a fresh runner B builds with `--cache-from IMAGE`, runs
// no step, and fetches only the final stage's step layers; a changed file reruns exactly the
// steps that read it. Several --cache-from of both kinds combine. An image without inline cache
// is a warning, and the config of a build without inline cache has no trace of it.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/json.h"
#include "integration/cache_fixture.h"

namespace xbuild {
namespace {

using testing::StepCached;
using testing::StepRan;
using testing::ToolOut;
using testing::WriteTestFile;

constexpr const char* kInlineKey = "xbuild.cache.v1";

class CliBuildInlineCacheTest : public testing::CacheRunnersTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(CacheRunnersTest::SetUp());
    WriteTestFile(ctx_, "src.txt", "v1\n");
    WriteTestFile(ctx_, "conf.txt", "c1\n");
    WriteTestFile(ctx_, "Dockerfile",
                  "FROM base:1 AS build\n"
                  "RUN echo compiling && mkdir -p /out && echo binary > /out/app\n"
                  "COPY src.txt /src.txt\n"
                  "RUN echo appending && cat /src.txt >> /out/app\n"
                  "FROM base:1\n"
                  "COPY --from=build /out/app /app\n"
                  "COPY conf.txt /conf.txt\n"
                  "RUN echo final-step && cat /conf.txt > /final\n"
                  "CMD [\"sh\", \"-c\", \"cat /app /final\"]\n");
    ASSERT_NO_FATAL_FAILURE(reg_.Start(tmp_.Sub("registry")));
  }

  // The image config of a local image, as stored.
  static core::Json LocalConfig(const std::string& root, const std::string& image) {
    std::string id = testing::RunXbuild(root, {"inspect", "-f", "{{.Id}}", image}).out;
    while (!id.empty() && id.back() == '\n') id.pop_back();
    EXPECT_TRUE(id.starts_with("sha256:")) << image << ": " << id;
    if (!id.starts_with("sha256:")) return core::Json();
    return core::Json::parse(testing::ReadTestFile(root + "/content/blobs/sha256/" + id.substr(7)), nullptr, false);
  }

  // A pushed image's manifest and config, as the registry serves them.
  static core::Json Remote(const std::string& ref, bool config) {
    std::vector<std::string> argv = {"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref};
    if (config) argv.insert(argv.begin() + 2, "--config");
    ToolOut r = testing::RunTool(argv);
    EXPECT_EQ(r.code, 0) << ref << ": " << r.err;
    return core::Json::parse(r.out, nullptr, false);
  }

  bool InStoreB(const std::string& digest) const {
    return std::filesystem::exists(root_b_ + "/content/blobs/sha256/" + digest.substr(7));
  }

  testing::RegistryProcess reg_;
};

TEST_F(CliBuildInlineCacheTest, RunnerBReusesThePushedImagesOwnCache) {
  std::string image = reg_.host() + "/ci/app:1";
  ToolOut a = Xb({"build", "--progress=plain", "--cache-to", "type=inline", "--push", "-t", image, ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.err.find("inline cache: 3 records (mode=min)"), std::string::npos) << a.err;
  // The pushed config carries the final stage's three steps, by layer position (0 is the base).
  core::Json cfg = Remote(image, true);
  ASSERT_TRUE(cfg.contains(kInlineKey)) << cfg.dump();
  const core::Json& records = cfg[kInlineKey]["records"];
  ASSERT_EQ(records.size(), 3u) << cfg.dump();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(records[i]["layer"], static_cast<int>(i) + 1) << cfg.dump();
  EXPECT_TRUE(records[0].contains("base")) << cfg.dump();
  EXPECT_EQ(records[1]["parent"], records[0]["key"]) << cfg.dump();
  EXPECT_EQ(records[2]["parent"], records[1]["key"]) << cfg.dump();

  ToolOut b = B({"build", "--progress=plain", "-t", "app:1", "--cache-from", image, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find("WARNING"), std::string::npos) << b.err;
  for (const char* ran : {" compiling\n", " appending\n", " final-step\n"}) {
    EXPECT_EQ(b.err.find(ran), std::string::npos) << "no RUN step ran on B:\n" << b.err;
  }
  for (const char* step : {"COPY --from=build /out/app /app", "COPY conf.txt /conf.txt",
                           "RUN echo final-step && cat /conf.txt > /final"}) {
    EXPECT_TRUE(StepCached(b.err, step)) << step << ":\n" << b.err;
  }
  EXPECT_EQ(RunOutput(root_b_, "app:1"), "binary\nv1\nc1\n");
  EXPECT_EQ(Layers(root_b_, "app:1"), Layers(root_, image)) << "B's image has A's layers";
  // Only the three step layers came down: the base's (compressed) layer did not, the local
  // base served, and the build stage has no layer in the image at all.
  core::Json manifest = Remote(image, false);
  ASSERT_EQ(manifest["layers"].size(), 4u) << manifest.dump();
  EXPECT_FALSE(InStoreB(manifest["layers"][0]["digest"])) << "the base layer was not pulled";
  for (size_t i = 1; i < 4; ++i) EXPECT_TRUE(InStoreB(manifest["layers"][i]["digest"])) << i;

  // A file of the final stage changes: the steps that read it run, nothing else.
  WriteTestFile(ctx_, "conf.txt", "c2\n");
  b = B({"build", "--progress=plain", "-t", "app:2", "--cache-from", image, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find(" compiling\n"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find(" appending\n"), std::string::npos) << b.err;
  EXPECT_TRUE(StepCached(b.err, "COPY --from=build /out/app /app")) << b.err;
  EXPECT_TRUE(StepRan(b.err, "COPY conf.txt /conf.txt")) << b.err;
  EXPECT_NE(b.err.find(" final-step\n"), std::string::npos) << b.err;
  EXPECT_EQ(RunOutput(root_b_, "app:2"), "binary\nv1\nc2\n");
}

TEST_F(CliBuildInlineCacheTest, BuildArgSpellingAndAnImageWithoutCache) {
  // BuildKit's spelling, with -o type=registry.
  std::string image = reg_.host() + "/ci/app:arg";
  ToolOut a = Xb({"build", "--build-arg", "BUILDKIT_INLINE_CACHE=1", "-t", "app:inline", "-o",
                  "type=registry,name=" + image, ctx_});
  ASSERT_EQ(a.code, 0) << a.err;
  core::Json with = LocalConfig(root_, "app:inline");
  ASSERT_TRUE(with.contains(kInlineKey)) << with.dump();
  EXPECT_EQ(Remote(image, true), with) << "the pushed config is the local one";

  // The same build without it (every step cached): the config differs by the key alone.
  ToolOut plain = Xb({"build", "--build-arg", "BUILDKIT_INLINE_CACHE=0", "-t", "app:plain", ctx_});
  ASSERT_EQ(plain.code, 0) << plain.err;
  core::Json without = LocalConfig(root_, "app:plain");
  EXPECT_FALSE(without.contains(kInlineKey)) << without.dump();
  with.erase(kInlineKey);
  EXPECT_EQ(with, without);

  // An image built from an image with inline cache does not inherit it.
  std::string child = tmp_.Sub("child");
  WriteTestFile(child, "Dockerfile", "FROM app:inline\nRUN echo child > /child\n");
  ToolOut c = Xb({"build", "-t", "child:1", child});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_FALSE(LocalConfig(root_, "child:1").contains(kInlineKey));

  ToolOut b = B({"build", "--progress=plain", "-t", "app:1", "--cache-from", "type=registry,ref=" + image, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find(" final-step\n"), std::string::npos) << b.err;
  EXPECT_EQ(RunOutput(root_b_, "app:1"), "binary\nv1\nc1\n");

  // A pushed image without inline cache: a warning, and the steps run.
  std::string bare = reg_.host() + "/ci/bare:1";
  ASSERT_EQ(Xb({"tag", "app:plain", bare}).code, 0);
  ASSERT_EQ(Xb({"push", bare}).code, 0);
  std::string root_c = NewRunner("runner-c");
  ToolOut w = testing::RunXbuild(root_c, {"build", "--progress=plain", "-t", "app:1", "--cache-from", bare, ctx_});
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_NE(w.err.find("WARNING: cache from " + bare + " not used: the image has no inline cache"), std::string::npos)
      << w.err;
  EXPECT_NE(w.err.find(" compiling\n"), std::string::npos) << w.err;
  EXPECT_EQ(RunOutput(root_c, "app:1"), "binary\nv1\nc1\n");
}

TEST_F(CliBuildInlineCacheTest, InlineAndRegistryCachesCombine) {
  // The image carries the final stage's cache; a registry cache (mode=max) the build stage's.
  std::string image = reg_.host() + "/ci/app:1";
  std::string cache_ref = reg_.host() + "/ci/cache:main";
  ToolOut a = Xb({"build", "--cache-to", "type=inline", "--cache-to", "type=registry,ref=" + cache_ref + ",mode=max",
                  "--push", "-t", image, ctx_});
  ASSERT_EQ(a.code, 0) << a.err;

  // A build-stage file changes: the steps that read it, and those after them, run; not the first.
  WriteTestFile(ctx_, "src.txt", "v2\n");
  ToolOut b = B({"build", "--progress=plain", "-t", "app:2", "--cache-from", image, "--cache-from",
                 "type=registry,ref=" + cache_ref, ctx_});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find("WARNING"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find(" compiling\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" appending\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(" final-step\n"), std::string::npos) << b.err;
  EXPECT_EQ(RunOutput(root_b_, "app:2"), "binary\nv2\nc1\n");
}

TEST_F(CliBuildInlineCacheTest, BadInlineFlagsAreRefused) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"--cache-to", "type=inline,mode=max"}, "inline cache holds the image's own layers only"},
      {{"--cache-from", "type=inline"}, "an image's inline cache is read with type=registry,ref=IMAGE"},
      {{"--build-arg", "BUILDKIT_INLINE_CACHE=maybe"}, "invalid --build-arg BUILDKIT_INLINE_CACHE=maybe"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"build", "-t", "bad:1"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.push_back(ctx_);
    ToolOut b = Xb(args);
    EXPECT_NE(b.code, 0) << c.says;
    EXPECT_NE(b.err.find(c.says), std::string::npos) << c.says << ": " << b.err;
    EXPECT_NE(Xb({"inspect", "bad:1"}).code, 0) << "nothing was built";
  }
  // Inline cache with no image to carry it: a warning, not a failure.
  ToolOut l = Xb({"build", "--cache-to", "type=inline", "-o", "type=local,dest=" + tmp_.Sub("out"), ctx_});
  ASSERT_EQ(l.code, 0) << l.err;
  EXPECT_NE(l.err.find("no image was made to carry the cache"), std::string::npos) << l.err;
}

}  // namespace
}  // namespace xbuild
