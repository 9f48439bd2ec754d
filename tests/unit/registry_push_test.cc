// Push against an in-memory registry (a fake Transport): uploads that are cut mid-PATCH resume
// from the offset the registry reports, within one push and in a later process (the session is
// remembered under upload_state_dir), and sessions the registry dropped start over.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "cache/image_store.h"
#include "core/context.h"
#include "core/fs.h"
#include "image/media_types.h"
#include "registry/client.h"
#include "unit/test_util.h"

namespace xbuild::registry {
namespace {

using core::Code;
using core::Digest;

// Just enough of the distribution API for a push: /v2/, HEAD blob, POST/PATCH/GET/PUT upload
// sessions (with Content-Range checks) and PUT manifest.
class FakeRegistry : public Transport {
 public:
  // When set, the next PATCH stores only this many bytes and then "the connection drops".
  int64_t cut_after = -1;
  bool status_unreachable = false;  // GET on a session fails like a dead registry
  bool forget_sessions = false;     // GET on a session answers 404
  std::vector<std::string> patch_ranges;
  std::map<std::string, std::string> blobs;  // digest -> bytes
  std::string manifest;

  Result<Response> Do(const Request& req) override {
    std::lock_guard<std::mutex> l(mu_);
    Response r;
    r.url = req.url;
    std::string path = req.url.substr(std::string("https://reg:5000").size());
    std::string base = path.substr(0, path.find('?'));
    if (path == "/v2/") {
      r.status = 200;
    } else if (req.method == "HEAD") {
      r.status = blobs.count(base.substr(base.rfind('/') + 1)) ? 200 : 404;
    } else if (req.method == "POST") {
      r.status = 202;
      r.headers.emplace("location", "/v2/app/blobs/uploads/s" + std::to_string(++sessions_));
      session_data_["/v2/app/blobs/uploads/s" + std::to_string(sessions_)] = "";
    } else if (req.method == "PATCH") {
      auto it = session_data_.find(base);
      if (it == session_data_.end()) return Status(404);
      patch_ranges.push_back(Header(req, "Content-Range"));
      if (Header(req, "Content-Range").substr(0, Header(req, "Content-Range").find('-')) !=
          std::to_string(it->second.size())) {
        return Status(416);
      }
      std::string body(static_cast<size_t>(req.body_length), '\0');
      EXPECT_EQ(::pread(req.body_fd, body.data(), body.size(), req.body_offset), req.body_length);
      if (cut_after >= 0) {
        it->second += body.substr(0, static_cast<size_t>(cut_after));
        cut_after = -1;
        return core::Error(Code::kUnavailable, "PATCH: connection reset by peer");
      }
      it->second += body;
      r.status = 202;
      r.headers.emplace("location", base);
      r.headers.emplace("range", "0-" + std::to_string(it->second.size() - 1));
    } else if (req.method == "GET" && base.find("/uploads/") != std::string::npos) {
      if (status_unreachable) return core::Error(Code::kUnavailable, "GET: connection refused");
      auto it = session_data_.find(base);
      if (it == session_data_.end() || forget_sessions) return Status(404);
      r.status = 204;
      if (!it->second.empty()) r.headers.emplace("range", "0-" + std::to_string(it->second.size() - 1));
    } else if (req.method == "PUT" && base.find("/uploads/") != std::string::npos) {
      auto it = session_data_.find(base);
      if (it == session_data_.end()) return Status(404);
      std::string digest = "sha256:" + path.substr(path.find("digest=sha256%3A") + 16);
      if (Digest::Of(it->second).String() != digest) return Status(400);
      blobs[digest] = it->second;
      session_data_.erase(it);
      r.status = 201;
    } else if (req.method == "PUT") {
      manifest = req.body;
      r.status = 201;
      r.headers.emplace("docker-content-digest", Digest::Of(req.body).String());
    } else {
      r.status = 404;
    }
    return r;
  }

 private:
  static Response Status(long s) {
    Response r;
    r.status = s;
    return r;
  }
  static std::string Header(const Request& req, const std::string& name) {
    for (const auto& [k, v] : req.headers) {
      if (k == name) return v;
    }
    return "";
  }
  std::mutex mu_;
  int sessions_ = 0;
  std::map<std::string, std::string> session_data_;
};

class RegistryPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.root = tmp_.Sub("root");
    auto s = cache::ImageStore::Open(ctx_);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    store_ = std::move(*s);
    layer_.resize(300000);
    for (size_t i = 0; i < layer_.size(); ++i) layer_[i] = static_cast<char>((i * 7919) >> 3);
    auto ld = store_->content().WriteBlob(layer_);
    ASSERT_TRUE(ld.ok());
    std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[")" +
                         Digest::Of("x").String() + R"("]}})";
    auto cd = store_->content().WriteBlob(config);
    ASSERT_TRUE(cd.ok());
    image::Manifest m;
    m.media_type = std::string(image::media::kOciManifest);
    m.config.media_type = std::string(image::media::kOciConfig);
    m.config.digest = *cd;
    m.config.size = static_cast<int64_t>(config.size());
    image::Descriptor l;
    l.media_type = std::string(image::media::kOciLayerGzip);
    l.digest = *ld;
    l.size = static_cast<int64_t>(layer_.size());
    m.layers.push_back(l);
    auto rec = store_->CommitImage(m);
    ASSERT_TRUE(rec.ok()) << rec.error().ToString();
    auto ref = image::ParseReference("reg:5000/app:1");
    ASSERT_TRUE(ref.ok());
    ref_ = *ref;
    ASSERT_TRUE(store_->Tag(ref_, rec->digest).ok());
    layer_digest_ = *ld;
  }

  Client MakeClient() {
    ClientOptions o;
    o.upload_state_dir = tmp_.Sub("uploads");
    o.push_concurrency = 1;  // layer first, then config: PATCHes in a known order
    return Client(reg_, nullptr, o);
  }

  testing::TempDir tmp_;
  core::Context ctx_;
  std::unique_ptr<cache::ImageStore> store_;
  FakeRegistry reg_;
  image::Reference ref_;
  std::string layer_;
  Digest layer_digest_;
};

TEST_F(RegistryPushTest, ResumesACutPatchFromTheRegistrysOffset) {
  reg_.cut_after = 100000;
  Client c = MakeClient();
  auto r = c.Push(*store_, "reg:5000/app:1", ref_, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(reg_.blobs[layer_digest_.String()], layer_);
  // One PATCH cut at 100000 bytes, then one from there to the end.
  std::vector<std::string> want = {"0-299999", "100000-299999"};
  std::vector<std::string> layer_patches(reg_.patch_ranges.begin(), reg_.patch_ranges.begin() + 2);
  EXPECT_EQ(layer_patches, want);
  EXPECT_EQ(reg_.manifest, store_->Resolve("reg:5000/app:1")->manifest_bytes);
}

TEST_F(RegistryPushTest, ALaterPushContinuesTheRememberedSession) {
  reg_.cut_after = 120000;
  reg_.status_unreachable = true;  // the registry "died": this push fails
  {
    Client c = MakeClient();
    auto r = c.Push(*store_, "reg:5000/app:1", ref_, nullptr);
    ASSERT_FALSE(r.ok());
  }
  EXPECT_FALSE(std::filesystem::is_empty(tmp_.Sub("uploads")));
  reg_.status_unreachable = false;  // back up, with the session's 120000 bytes
  reg_.patch_ranges.clear();
  Client c = MakeClient();
  auto r = c.Push(*store_, "reg:5000/app:1", ref_, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(reg_.blobs[layer_digest_.String()], layer_);
  ASSERT_FALSE(reg_.patch_ranges.empty());
  EXPECT_EQ(reg_.patch_ranges[0], "120000-299999");
  EXPECT_TRUE(std::filesystem::is_empty(tmp_.Sub("uploads")));
}

TEST_F(RegistryPushTest, ADroppedSessionStartsOver) {
  reg_.cut_after = 50000;
  reg_.forget_sessions = true;
  Client c = MakeClient();
  auto r = c.Push(*store_, "reg:5000/app:1", ref_, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(reg_.blobs[layer_digest_.String()], layer_);
  ASSERT_GE(reg_.patch_ranges.size(), 2u);
  EXPECT_EQ(reg_.patch_ranges[1], "0-299999");  // a new session, from the start
}

}  // namespace
}  // namespace xbuild::registry
