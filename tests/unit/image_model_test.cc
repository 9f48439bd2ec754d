// image: manifests, indexes, configs, references, platform selection.
#include <gtest/gtest.h>

#include "image/config.h"
#include "image/manifest.h"
#include "image/reference.h"

namespace xbuild::image {
namespace {

using core::Code;
using core::Digest;

const std::string kD1 = "sha256:" + std::string(64, 'a');
const std::string kD2 = "sha256:" + std::string(64, 'b');

std::string OciManifestJson() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kD1 + R"(","size":10},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" + kD2 + R"(","size":20,
    "annotations":{"b":"2","a":"1"}}]})";
}

TEST(Manifest, ParseAndSerializeDeterministic) {
  auto m = ParseManifest(OciManifestJson());
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->config.size, 10);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].digest.String(), kD2);
  std::string a = m->Serialize();
  auto m2 = ParseManifest(a);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(m2->Serialize(), a);
  // Field order follows the spec; annotations sorted; no whitespace.
  EXPECT_TRUE(a.starts_with(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)"));
  EXPECT_NE(a.find(R"("annotations":{"a":"1","b":"2"})"), std::string::npos);
  EXPECT_EQ(a.find(' '), std::string::npos);
}

TEST(Manifest, DigestChecked) {
  std::string bytes = OciManifestJson();
  EXPECT_TRUE(ParseManifest(bytes, Digest::Of(bytes)).ok());
  auto bad = ParseManifest(bytes, Digest::Of("other"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Code::kDataLoss);
}

TEST(Manifest, RejectsIndexInDisguise) {
  std::string j = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"x","digest":")" + kD1 + R"(","size":1},"layers":[],"manifests":[]})";
  auto m = ParseManifest(j);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("manifests"), std::string::npos);
  EXPECT_FALSE(SniffMediaType(j).ok());
}

TEST(Index, RejectsManifestInDisguise) {
  std::string j = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"layers":[]})";
  auto x = ParseIndex(j);
  ASSERT_FALSE(x.ok());
  EXPECT_NE(x.error().message().find("layers"), std::string::npos);
}

TEST(Manifest, RejectsWrongMediaTypeAndSchema) {
  std::string idx = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})";
  EXPECT_FALSE(ParseManifest(idx).ok());
  std::string v1 = R"({"schemaVersion":1,"config":{"digest":")" + kD1 + R"(","size":1},"layers":[]})";
  EXPECT_FALSE(ParseManifest(v1).ok());
}

TEST(Manifest, RejectsBadDescriptorDigest) {
  std::string j = R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../etc/passwd","size":1},"layers":[]})";
  auto m = ParseManifest(j);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("config"), std::string::npos);
  std::string neg = R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kD1 + R"(","size":-5},"layers":[]})";
  EXPECT_FALSE(ParseManifest(neg).ok());
}

TEST(Manifest, SizeLimit) {
  std::string huge = OciManifestJson();
  huge.insert(huge.size() - 1, ",\"pad\":\"" + std::string(kMaxManifestSize, 'x') + "\"");
  auto m = ParseManifest(huge);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), Code::kResourceExhausted);
}

TEST(Manifest, DockerSchema2) {
  std::string j = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
    "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" + kD1 + R"(","size":3},
    "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" + kD2 + R"(","size":4}]})";
  auto m = ParseManifest(j);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->media_type, media::kDockerManifest);
  EXPECT_TRUE(IsLayerType(m->layers[0].media_type));
  EXPECT_EQ(*SniffMediaType(j), media::kDockerManifest);
}

TEST(Index, SelectPlatform) {
  std::string j = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
    {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":")" + kD1 + R"(","size":1,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
    {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":")" + kD2 + R"(","size":1,"platform":{"architecture":"amd64","os":"linux"}}]})";
  auto x = ParseIndex(j);
  ASSERT_TRUE(x.ok()) << x.error().ToString();
  EXPECT_EQ(SelectPlatform(*x, *ParsePlatform("linux/amd64"))->digest.String(), kD2);
  EXPECT_EQ(SelectPlatform(*x, *ParsePlatform("linux/arm64"))->digest.String(), kD1);
  auto none = SelectPlatform(*x, *ParsePlatform("linux/s390x"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("linux/s390x"), std::string::npos);
  EXPECT_EQ(*SniffMediaType(j), media::kDockerManifestList);
}

TEST(Platform, Parse) {
  EXPECT_EQ(ParsePlatform("linux/x86_64")->architecture, "amd64");
  EXPECT_EQ(ParsePlatform("linux/arm/v7")->variant, "v7");
  EXPECT_FALSE(ParsePlatform("linux").ok());
  EXPECT_FALSE(ParsePlatform("a/b/c/d").ok());
}

TEST(Config, RoundTripKeepsUnknownFields) {
  std::string j = R"({"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z",
    "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,"ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"},
    "Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Retries":3}},
    "rootfs":{"type":"layers","diff_ids":[")" + kD1 + R"("]},
    "history":[{"created_by":"x","empty_layer":true}],"os.version":"10.0","moby.buildkit.cache.v0":"abc"})";
  auto c = ParseImageConfig(j);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->config.cmd, std::vector<std::string>{"sh"});
  EXPECT_FALSE(c->config.entrypoint.has_value());
  EXPECT_EQ(c->config.healthcheck->retries, 3);
  EXPECT_EQ(c->GetEnv("PATH"), "/bin");
  EXPECT_TRUE(c->history[0].empty_layer);
  std::string out = c->Serialize();
  EXPECT_NE(out.find(R"("moby.buildkit.cache.v0":"abc")"), std::string::npos);
  EXPECT_NE(out.find(R"("os.version":"10.0")"), std::string::npos);
  auto c2 = ParseImageConfig(out);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->Serialize(), out);
}

TEST(Config, EmptyCmdDiffersFromUnset) {
  auto c = ParseImageConfig(R"({"architecture":"amd64","os":"linux","config":{"Cmd":[]},"rootfs":{"type":"layers","diff_ids":[]}})");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->config.cmd.has_value());
  EXPECT_TRUE(c->config.cmd->empty());
  EXPECT_NE(c->Serialize().find(R"("Cmd":[])"), std::string::npos);
}

TEST(Config, RejectsBadDiffIdAndManifestShape) {
  EXPECT_FALSE(ParseImageConfig(R"({"rootfs":{"diff_ids":["sha256:nothex"]}})").ok());
  EXPECT_FALSE(ParseImageConfig(R"({"layers":[]})").ok());
  EXPECT_FALSE(ParseImageConfig("[]").ok());
}

TEST(Config, SetEnvReplaces) {
  ImageConfig c;
  c.SetEnv("A", "1");
  c.SetEnv("AB", "2");
  c.SetEnv("A", "3");
  EXPECT_EQ(c.config.env, (std::vector<std::string>{"A=3", "AB=2"}));
}

TEST(Time, Format) {
  EXPECT_EQ(FormatTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(1700000000, 500000000), "2023-11-14T22:13:20.5Z");
}

struct RefCase {
  const char* in;
  const char* full;
  const char* familiar;
};

TEST(Reference, Normalises) {
  RefCase cases[] = {
      {"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
      {"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
      {"user/app", "docker.io/user/app:latest", "user/app:latest"},
      {"docker.io/library/alpine:3", "docker.io/library/alpine:3", "alpine:3"},
      {"index.docker.io/library/alpine", "docker.io/library/alpine:latest", "alpine:latest"},
      {"localhost/app", "localhost/app:latest", "localhost/app:latest"},
      {"localhost:5000/a/b/c:v1", "localhost:5000/a/b/c:v1", "localhost:5000/a/b/c:v1"},
      {"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest"},
      {"ghcr.io/org/app@sha256:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       "ghcr.io/org/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       "ghcr.io/org/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
      {"a__b-c---d/x.y", "docker.io/a__b-c---d/x.y:latest", "a__b-c---d/x.y:latest"},
  };
  for (auto& c : cases) {
    auto r = ParseReference(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().ToString();
    EXPECT_EQ(r->String(), c.full) << c.in;
    EXPECT_EQ(r->Familiar(), c.familiar) << c.in;
  }
}

TEST(Reference, RejectsInvalid) {
  const char* bad[] = {"", "UPPER", "app:", "app:-bad", "a//b", "-a", "a-", "app@sha256:abc",
                       "app:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                       "host:port/app", "a/../b", "app name"};
  for (const char* b : bad) {
    auto r = ParseReference(b);
    EXPECT_FALSE(r.ok()) << b;
    if (!r.ok()) {
      EXPECT_NE(r.error().message().find("invalid reference"), std::string::npos) << r.error().message();
    }
  }
}

TEST(Reference, UppercaseMessage) {
  auto r = ParseReference("MyApp:1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("lowercase"), std::string::npos);
}

}  // namespace
}  // namespace xbuild::image
