// Push, pull, login and manifest inspect against a real registry (Debian's docker-registry 2.8)
// on a loopback port, cross-checked with skopeo. Needs: docker-registry, skopeo, htpasswd
// (apache2-utils), busybox-static (scripts/setup-deps.sh installs them). Talks only to 127.0.0.1.
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <future>
#include <map>

#include <gtest/gtest.h>

#include "cache/content_store.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "integration/registry_fixture.h"
#include "unit/test_util.h"

namespace xbuild {
namespace {

using testing::TempDir;
using testing::WriteTestFile;

struct Out {
  int code;
  std::string out, err;
};

class CliRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"docker-registry", "skopeo", "htpasswd"}) {
      ASSERT_FALSE(core::LookPath(tool).empty()) << tool << " is missing: run scripts/setup-deps.sh";
    }
    rootfs_ = tmp_.Sub("rootfs");
    ASSERT_NO_FATAL_FAILURE(testing::MakeBusyboxRootfs(rootfs_));
    root_ = tmp_.Sub("state");
    docker_config_ = tmp_.Sub("docker-config");
  }

  // Starts docker-registry; `auth` is extra YAML for the top level (htpasswd).
  void StartRegistry(const std::string& auth = "") {
    testing::RegistryProcess::Options o;
    o.extra_yaml = auth;
    ASSERT_NO_FATAL_FAILURE(registry_.Start(tmp_.Sub("registry"), o));
    host_ = registry_.host();
    storage_ = registry_.storage();
  }

  Out Xb(std::vector<std::string> args, const std::string& root = "", const std::string& stdin_data = "") {
    std::vector<std::string> argv = {XBUILD_BINARY, "--root", root.empty() ? root_ : root,
                                     "--insecure-registry", host_};
    argv.insert(argv.end(), args.begin(), args.end());
    core::RunOptions o;
    o.extra_env = {{"DOCKER_CONFIG", docker_config_}, {"XBUILD_CONFIG", ""}};
    for (const auto& [k, v] : env_) o.extra_env[k] = v;
    if (!stdin_data.empty()) o.stdin_data = stdin_data;
    auto r = core::RunProcess(argv, o);
    EXPECT_TRUE(r.ok());
    return {r->exit_code, r->out, r->err};
  }

  Out Tool(std::vector<std::string> argv) {
    auto r = core::RunProcess(argv);
    EXPECT_TRUE(r.ok());
    return {r->exit_code, r->out, r->err};
  }

  void Import(const std::string& name) {
    Out o = Xb({"import", "--change", "CMD [\"/bin/sh\"]", rootfs_, name});
    ASSERT_EQ(o.code, 0) << o.err;
  }

  core::Json Inspect(const std::string& name, const std::string& root = "") {
    Out o = Xb({"inspect", name}, root);
    EXPECT_EQ(o.code, 0) << o.err;
    auto j = core::Json::parse(o.out, nullptr, false);
    return j.is_array() && j.size() == 1 ? j[0] : core::Json();
  }

  TempDir tmp_;
  std::string rootfs_, root_, docker_config_, storage_, host_;
  testing::RegistryProcess registry_;
  std::map<std::string, std::string> env_;  // extra environment for xbuild
};

TEST_F(CliRegistryTest, PushIsReadBySkopeoAndPullsBackIdentical) {
  StartRegistry();
  std::string ref = host_ + "/app:1";
  Import(ref);
  Out p = Xb({"push", ref});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_TRUE(p.out.starts_with("The push refers to repository [" + host_ + "/app]\n")) << p.out;
  EXPECT_NE(p.out.find(": Pushed "), std::string::npos) << p.out;
  std::string digest = testing::LineAfter(p.out, "1: digest: ");
  digest = digest.substr(0, digest.find(' '));
  ASSERT_TRUE(digest.starts_with("sha256:")) << p.out;
  EXPECT_EQ(testing::SkopeoDigest(ref), digest);

  Out again = Xb({"push", ref});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find(": Layer already exists\n"), std::string::npos) << again.out;

  std::string root2 = tmp_.Sub("state2");
  Out pl = Xb({"pull", ref}, root2);
  ASSERT_EQ(pl.code, 0) << pl.err;
  EXPECT_TRUE(pl.out.starts_with("1: Pulling from app\n")) << pl.out;
  EXPECT_NE(pl.out.find(": Pull complete "), std::string::npos) << pl.out;
  EXPECT_EQ(testing::LineAfter(pl.out, "Digest: "), digest);
  EXPECT_NE(pl.out.find("Status: Downloaded newer image for " + ref + "\n"), std::string::npos);
  EXPECT_TRUE(pl.out.ends_with(ref + "\n"));
  core::Json a = Inspect(ref), b = Inspect(ref, root2);
  EXPECT_EQ(a["Id"], b["Id"]);
  EXPECT_EQ(a["Config"], b["Config"]);
  EXPECT_EQ(a["RootFS"], b["RootFS"]);

  Out up = Xb({"pull", "-q", ref}, root2);
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_EQ(up.out, ref + "\n");
  Out up2 = Xb({"pull", ref}, root2);
  EXPECT_NE(up2.out.find("Status: Image is up to date for " + ref), std::string::npos) << up2.out;

  // By digest, into a third root.
  Out bd = Xb({"pull", host_ + "/app@" + digest}, tmp_.Sub("state3"));
  ASSERT_EQ(bd.code, 0) << bd.err;
  EXPECT_EQ(testing::LineAfter(bd.out, "Digest: "), digest);
}

TEST_F(CliRegistryTest, PullsWhatSkopeoPushed) {
  StartRegistry();
  Import("src:1");
  std::string archive = tmp_.Sub("src-oci.tar");
  ASSERT_EQ(Xb({"save", "--format", "oci", "-o", archive, "src:1"}).code, 0);
  std::string ref = host_ + "/copied:2";
  // v2s2: skopeo writes a Docker schema2 manifest, which xbuild then reads back.
  Out c = Tool({"skopeo", "copy", "--format", "v2s2", "--dest-tls-verify=false",
                "oci-archive:" + archive, "docker://" + ref});
  ASSERT_EQ(c.code, 0) << c.err;
  std::string digest = testing::SkopeoDigest(ref);
  ASSERT_FALSE(digest.empty());
  std::string root2 = tmp_.Sub("state2");
  Out pl = Xb({"pull", ref}, root2);
  ASSERT_EQ(pl.code, 0) << pl.err;
  EXPECT_EQ(testing::LineAfter(pl.out, "Digest: "), digest);
  core::Json j = Inspect(ref, root2);
  EXPECT_EQ(j["Config"]["Cmd"], core::Json::array({"/bin/sh"}));
  EXPECT_EQ(j["RootFS"], Inspect("src:1")["RootFS"]);
}

TEST_F(CliRegistryTest, CorruptBlobFailsPullAndLeavesNothing) {
  StartRegistry();
  std::string ref = host_ + "/bad:1";
  Import(ref);
  ASSERT_EQ(Xb({"push", ref}).code, 0);
  core::Json j = Inspect(ref);
  Out m = Xb({"manifest", "inspect", ref});
  ASSERT_EQ(m.code, 0) << m.err;
  auto man = core::Json::parse(m.out);
  std::string layer = man["layers"][0]["digest"].get<std::string>().substr(7);
  std::string data = registry_.BlobPath(layer);
  ASSERT_TRUE(core::Exists(data));
  std::string bytes = testing::ReadTestFile(data);
  bytes[bytes.size() / 2] ^= 0x55;
  ::chmod(data.c_str(), 0644);
  WriteTestFile(core::Dirname(data), "data", bytes);

  std::string root2 = tmp_.Sub("state2");
  Out pl = Xb({"pull", ref}, root2);
  EXPECT_NE(pl.code, 0);
  EXPECT_NE(pl.err.find("digest mismatch"), std::string::npos) << pl.err;
  EXPECT_NE(pl.err.find(layer), std::string::npos) << pl.err;
  Out q = Xb({"images", "-q"}, root2);
  EXPECT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(q.out, "");
  // Nothing but the (empty) blob dir is left in the fresh root's content store.
  EXPECT_EQ(core::DiskUsage(root2 + "/content/blobs"), 0u);
}

TEST_F(CliRegistryTest, ResumesAnInterruptedLayerDownload) {
  StartRegistry();
  std::string ref = host_ + "/resume:1";
  Import(ref);
  ASSERT_EQ(Xb({"push", ref}).code, 0);
  auto man = core::Json::parse(Xb({"manifest", "inspect", ref}).out);
  std::string hex = man["layers"][0]["digest"].get<std::string>().substr(7);
  int64_t size = man["layers"][0]["size"].get<int64_t>();
  std::string bytes = testing::ReadTestFile(registry_.BlobPath(hex));
  ASSERT_EQ(static_cast<int64_t>(bytes.size()), size);
  // A pull that died halfway: its ingest holds the first half of the layer.
  std::string root2 = tmp_.Sub("state2");
  {
    auto cs = cache::ContentStore::Open(root2 + "/content");
    ASSERT_TRUE(cs.ok()) << cs.error().ToString();
    auto d = core::Digest::FromHex(hex);
    ASSERT_TRUE(d.ok());
    auto w = (*cs)->NewWriter("pull-sha256:" + hex, *d, size);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    ASSERT_TRUE((*w)->Write(std::string_view(bytes).substr(0, bytes.size() / 2)).ok());
  }
  Out pl = Xb({"pull", ref}, root2);
  ASSERT_EQ(pl.code, 0) << pl.err;
  EXPECT_EQ(Inspect(ref, root2)["RootFS"], Inspect(ref)["RootFS"]);
  EXPECT_FALSE(core::Exists(root2 + "/content/ingest/" + core::Digest::Of("pull-sha256:" + hex).Hex()));
}

TEST_F(CliRegistryTest, ManifestInspectPrintsTheManifest) {
  StartRegistry();
  std::string ref = host_ + "/mi:1";
  Import(ref);
  ASSERT_EQ(Xb({"push", ref}).code, 0);
  Out m = Xb({"manifest", "inspect", ref});
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_TRUE(m.out.starts_with("{\n   \"schemaVersion\": 2,\n")) << m.out;
  Out raw = Tool({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref});
  ASSERT_EQ(raw.code, 0) << raw.err;
  EXPECT_EQ(core::Json::parse(m.out), core::Json::parse(raw.out));
  Out missing = Xb({"manifest", "inspect", host_ + "/nope:1"});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("MANIFEST_UNKNOWN"), std::string::npos) << missing.err;
}

TEST_F(CliRegistryTest, BasicAuthLoginPushLogout) {
  Out h = Tool({"htpasswd", "-Bbn", "user", "pass"});
  ASSERT_EQ(h.code, 0) << h.err;
  WriteTestFile(tmp_.path(), "htpasswd", h.out);
  StartRegistry("auth:\n  htpasswd:\n    realm: test\n    path: " + tmp_.Sub("htpasswd") + "\n");
  std::string ref = host_ + "/private:1";
  Import(ref);

  Out noauth = Xb({"push", ref});
  EXPECT_NE(noauth.code, 0);
  EXPECT_NE(noauth.err.find("requires authentication"), std::string::npos) << noauth.err;

  Out bad = Xb({"login", "-u", "user", "-p", "wrong", host_});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("incorrect username or password"), std::string::npos) << bad.err;
  EXPECT_FALSE(core::Exists(docker_config_ + "/config.json"));

  Out ok = Xb({"login", "-u", "user", "--password-stdin", host_}, "", "pass\n");
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "Login Succeeded\n");
  auto cfg = core::Json::parse(testing::ReadTestFile(docker_config_ + "/config.json"));
  EXPECT_EQ(cfg["auths"][host_]["auth"], "dXNlcjpwYXNz");  // base64("user:pass")

  Out p = Xb({"push", ref});
  ASSERT_EQ(p.code, 0) << p.err;
  Out pl = Xb({"pull", ref}, tmp_.Sub("state2"));
  ASSERT_EQ(pl.code, 0) << pl.err;

  Out lo = Xb({"logout", host_});
  ASSERT_EQ(lo.code, 0) << lo.err;
  cfg = core::Json::parse(testing::ReadTestFile(docker_config_ + "/config.json"));
  EXPECT_FALSE(cfg["auths"].contains(host_));
  Out after = Xb({"pull", ref}, tmp_.Sub("state3"));
  EXPECT_NE(after.code, 0);
}

TEST_F(CliRegistryTest, MountsBlobsFromAnotherRepositoryOfTheSameRegistry) {
  StartRegistry();
  Import(host_ + "/team/base:1");
  ASSERT_EQ(Xb({"push", host_ + "/team/base:1"}).code, 0);
  // Pulled into a fresh store, then pushed under another name: the registry mounts the blobs.
  std::string root2 = tmp_.Sub("state2");
  ASSERT_EQ(Xb({"pull", host_ + "/team/base:1"}, root2).code, 0);
  ASSERT_EQ(Xb({"tag", host_ + "/team/base:1", host_ + "/team/app:1"}, root2).code, 0);
  Out p = Xb({"push", host_ + "/team/app:1"}, root2);
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find(": Mounted from team/base\n"), std::string::npos) << p.out;
  EXPECT_EQ(p.out.find(": Pushed"), std::string::npos) << p.out;
  EXPECT_EQ(testing::SkopeoDigest(host_ + "/team/app:1"), testing::SkopeoDigest(host_ + "/team/base:1"));
}

TEST_F(CliRegistryTest, PullsDockerHubNamesThroughMirrorsWithFallback) {
  StartRegistry();
  // The mirror holds library/busybox:mirrored; the first mirror listed is down.
  Import(host_ + "/library/busybox:mirrored");
  ASSERT_EQ(Xb({"push", host_ + "/library/busybox:mirrored"}).code, 0);
  int dead = testing::FreePort();
  WriteTestFile(tmp_.path(), "config.json",
                "{\"registry-mirrors\": [\"http://127.0.0.1:" + std::to_string(dead) + "\", \"http://" + host_ + "\"]}");
  env_["XBUILD_CONFIG"] = tmp_.Sub("config.json");
  std::string root2 = tmp_.Sub("state2");
  Out pl = Xb({"pull", "busybox:mirrored"}, root2);
  ASSERT_EQ(pl.code, 0) << pl.err;
  EXPECT_NE(pl.out.find("Status: Downloaded newer image for busybox:mirrored\n"), std::string::npos) << pl.out;
  EXPECT_EQ(Inspect("busybox:mirrored", root2)["RootFS"], Inspect(host_ + "/library/busybox:mirrored")["RootFS"]);
  // Not on any mirror: the upstream (unreachable here) is tried last, and the error says so.
  Out miss = Xb({"pull", "busybox:not-mirrored"}, root2);
  EXPECT_NE(miss.code, 0);
  EXPECT_NE(miss.err.find("registry-1.docker.io"), std::string::npos) << miss.err;
  EXPECT_NE(miss.err.find("mirrors failed"), std::string::npos) << miss.err;
}

TEST_F(CliRegistryTest, PullAllTags) {
  StartRegistry();
  Import(host_ + "/multi:a");
  ASSERT_EQ(Xb({"push", host_ + "/multi:a"}).code, 0);
  ASSERT_EQ(Xb({"tag", host_ + "/multi:a", host_ + "/multi:b"}).code, 0);
  ASSERT_EQ(Xb({"push", host_ + "/multi:b"}).code, 0);
  std::string root2 = tmp_.Sub("state2");
  Out pl = Xb({"pull", "-a", host_ + "/multi"}, root2);
  ASSERT_EQ(pl.code, 0) << pl.err;
  Out imgs = Xb({"images", "--format", "json"}, root2);
  EXPECT_NE(imgs.out.find("\"Tag\":\"a\""), std::string::npos) << imgs.out;
  EXPECT_NE(imgs.out.find("\"Tag\":\"b\""), std::string::npos) << imgs.out;
  Out bad = Xb({"pull", "-a", host_ + "/multi:a"}, root2);
  EXPECT_EQ(bad.code, 125);
  EXPECT_NE(bad.err.find("tag can't be used with --all-tags"), std::string::npos) << bad.err;
}

TEST_F(CliRegistryTest, PushCompletesAfterTheRegistryIsKilledMidUpload) {
  StartRegistry();
  // A 24 MB incompressible layer, uploaded in 256 KiB PATCH chunks so the upload takes a while.
  std::string big = rootfs_ + "/big";
  {
    std::string data(24 << 20, '\0');
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < data.size(); i += 8) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      std::memcpy(&data[i], &x, 8);
    }
    WriteTestFile(rootfs_, "big", data);
  }
  std::string ref = host_ + "/crash:1";
  Import(ref);
  env_["XBUILD_UPLOAD_CHUNK_SIZE"] = std::to_string(256 << 10);
  auto first = std::async(std::launch::async, [&] { return Xb({"--log-level", "info", "push", ref}); });
  // Freeze the registry once part of the layer reached its disk, then kill it: the in-flight
  // PATCH dies with it.
  std::string uploads = storage_ + "/docker/registry/v2/repositories/crash/_uploads";
  bool caught = false;
  for (int i = 0; i < 20000 && !caught; ++i) {
    if (first.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) break;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(uploads, ec)) {
      if (core::DiskUsage(e.path().string()) > (2 << 20)) caught = true;
    }
    if (!caught) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(caught) << "the upload finished before it could be interrupted";
  ::kill(registry_.pid(), SIGSTOP);
  registry_.Stop(SIGKILL);
  Out o1 = first.get();
  EXPECT_NE(o1.code, 0) << o1.out;
  EXPECT_NE(o1.err.find("crash:1"), std::string::npos) << o1.err;

  ASSERT_NO_FATAL_FAILURE(registry_.Restart());
  Out o2 = Xb({"--log-level", "info", "push", ref});
  ASSERT_EQ(o2.code, 0) << o2.err;
  // The registry cannot continue a session cut mid-request (docker-registry cancels it as
  // "resumed at wrong offset"): xbuild asks, and starts that blob over.
  EXPECT_NE(o2.err.find("upload of sha256:"), std::string::npos) << o2.err;
  std::string digest = testing::LineAfter(o2.out, "1: digest: ");
  EXPECT_EQ(testing::SkopeoDigest(ref), digest.substr(0, digest.find(' ')));
  Out pl = Xb({"pull", ref}, tmp_.Sub("state2"));
  ASSERT_EQ(pl.code, 0) << pl.err;
  EXPECT_EQ(Inspect(ref, tmp_.Sub("state2"))["RootFS"], Inspect(ref)["RootFS"]);
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/uploads", ec)) << "an upload session was left behind";
}

TEST_F(CliRegistryTest, RedirectToAnotherHostGetsNoCredentials) {
  Out h = Tool({"htpasswd", "-Bbn", "user", "pass"});
  ASSERT_EQ(h.code, 0) << h.err;
  WriteTestFile(tmp_.path(), "htpasswd", h.out);
  StartRegistry("auth:\n  htpasswd:\n    realm: test\n    path: " + tmp_.Sub("htpasswd") + "\n");
  std::string registry_host = host_;
  // Another loopback host that answers 401 to everything and records what it got.
  testing::TestHttpServer other;
  ASSERT_NO_FATAL_FAILURE(other.Start("127.0.0.2", [](const testing::HttpRequest&) {
    return testing::TestHttpServer::Response(401, "Unauthorized", "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
                                             {"WWW-Authenticate: Basic realm=\"other\""});
  }));
  // A front for the registry that sends blob downloads to the other host, like a registry
  // redirecting to its storage.
  testing::TestHttpServer front;
  ASSERT_NO_FATAL_FAILURE(front.Start("127.0.0.1", [&](const testing::HttpRequest& r) {
    if (r.method == "GET" && r.target.find("/blobs/sha256:") != std::string::npos) {
      return testing::TestHttpServer::Response(307, "Temporary Redirect", "",
                                               {"Location: http://" + other.host() + r.target});
    }
    return testing::TestHttpServer::Forward(registry_host, r);
  }));
  host_ = front.host();
  std::string ref = host_ + "/private:1";
  Import(ref);
  ASSERT_EQ(Xb({"login", "-u", "user", "-p", "pass", host_}).code, 0);
  Out p = Xb({"push", ref});
  ASSERT_EQ(p.code, 0) << p.err;

  Out pl = Xb({"pull", ref}, tmp_.Sub("state2"));
  EXPECT_NE(pl.code, 0);
  EXPECT_NE(pl.err.find("401"), std::string::npos) << pl.err;
  auto got = other.requests();
  ASSERT_FALSE(got.empty()) << "the redirect was not followed";
  for (const auto& r : got) {
    EXPECT_EQ(r.headers.count("authorization"), 0u) << r.raw;
    EXPECT_EQ(r.raw.find("dXNlcjpwYXNz"), std::string::npos) << r.raw;
  }
  // The front did see credentials: they were sent where they belong.
  bool front_saw_auth = false;
  for (const auto& r : front.requests()) front_saw_auth |= r.headers.count("authorization") > 0;
  EXPECT_TRUE(front_saw_auth);
}

TEST_F(CliRegistryTest, OversizedManifestIsRefusedWithABoundedRead) {
  // A registry whose manifest is 64 MiB (the limit is 4 MiB); it streams until the client hangs up.
  testing::TestHttpServer fake;
  ASSERT_NO_FATAL_FAILURE(fake.Start("127.0.0.1", [](const testing::HttpRequest& r) {
    if (r.target == "/v2/") return testing::TestHttpServer::Response(200, "OK", "{}");
    std::string body = "{\"schemaVersion\":2,\"x\":\"" + std::string(64 << 20, 'a') + "\"}";
    return testing::TestHttpServer::Response(
        200, "OK", body, {"Content-Type: application/vnd.oci.image.manifest.v1+json"});
  }));
  host_ = fake.host();
  Out pl = Xb({"pull", host_ + "/huge:1"});
  EXPECT_NE(pl.code, 0);
  EXPECT_NE(pl.err.find("limit"), std::string::npos) << pl.err;
  EXPECT_NE(pl.err.find("huge:1"), std::string::npos) << pl.err;
  EXPECT_EQ(Xb({"images", "-q"}).out, "");
  Out mi = Xb({"manifest", "inspect", host_ + "/huge:1"});
  EXPECT_NE(mi.code, 0);
  EXPECT_NE(mi.err.find("limit"), std::string::npos) << mi.err;
}

}  // namespace
}  // namespace xbuild
