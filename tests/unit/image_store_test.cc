// cache: the local image store (resolve, tag, remove, GC) and save/load archives.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>

#include "cache/archive.h"
#include "cache/image_store.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "image/layer.h"
#include "unit/test_util.h"

namespace xbuild::cache {
namespace {

using core::Code;
using core::Digest;
using testing::TempDir;
using testing::WriteTestFile;

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenStore(tmp_.Sub("root")); }

  std::unique_ptr<ImageStore> OpenStore(const std::string& root) {
    core::Context ctx;
    ctx.root = root;
    auto s = ImageStore::Open(ctx);
    EXPECT_TRUE(s.ok()) << s.error().ToString();
    return std::move(s).value();
  }

  // Makes a one-layer image from a tree holding `content` and returns its manifest digest.
  Digest MakeImage(ImageStore& store, const std::string& content, std::string cmd = "sh") {
    std::string dir = tmp_.Sub("tree-" + std::to_string(counter_++));
    WriteTestFile(dir, "etc/data", content);
    std::string layer_path = dir + ".tgz";
    auto fd = core::Open(layer_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    EXPECT_TRUE(fd.ok());
    image::LayerOptions lo;
    lo.source_date_epoch = 0;
    auto layer = image::CreateLayer(dir, image::DirKind::kPlain, fd->get(), lo);
    EXPECT_TRUE(layer.ok()) << layer.error().ToString();
    ::lseek(fd->get(), 0, SEEK_SET);
    EXPECT_TRUE(store.content().WriteBlobFromFd(fd->get(), layer->digest).ok());
    image::ImageConfig cfg;
    cfg.architecture = "amd64";
    cfg.os = "linux";
    cfg.created = "2024-01-01T00:00:00Z";
    cfg.config.cmd = std::vector<std::string>{cmd};
    cfg.diff_ids = {layer->diff_id};
    std::string cb = cfg.Serialize();
    auto cd = store.content().WriteBlob(cb);
    EXPECT_TRUE(cd.ok());
    image::Manifest m;
    m.media_type = std::string(image::media::kOciManifest);
    m.config = {std::string(image::media::kOciConfig), *cd, static_cast<int64_t>(cb.size()), {}, {}, {}, ""};
    m.layers.push_back({std::string(image::media::kOciLayerGzip), layer->digest, layer->size, {}, {}, {}, ""});
    auto rec = store.CommitImage(m);
    EXPECT_TRUE(rec.ok()) << rec.error().ToString();
    return rec->digest;
  }

  void Tag(ImageStore& store, const std::string& name, const Digest& d) {
    ASSERT_TRUE(store.Tag(*image::ParseReference(name), d).ok());
  }

  TempDir tmp_;
  std::unique_ptr<ImageStore> store_;
  int counter_ = 0;
};

TEST_F(ImageStoreTest, ResolveByTagIdAndDigest) {
  Digest d = MakeImage(*store_, "one");
  Tag(*store_, "app:1", d);
  auto byTag = store_->Resolve("app:1");
  ASSERT_TRUE(byTag.ok()) << byTag.error().ToString();
  EXPECT_EQ(byTag->record.digest, d);
  EXPECT_EQ(byTag->tags, std::vector<std::string>{"docker.io/library/app:1"});
  std::string id = byTag->record.config.Hex();
  EXPECT_EQ(store_->Resolve(id.substr(0, 12))->record.digest, d);
  EXPECT_EQ(store_->Resolve("sha256:" + id)->record.digest, d);
  EXPECT_EQ(store_->Resolve("app@" + d.String())->record.digest, d);
  auto missing = store_->Resolve("app:2");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_NE(missing.error().message().find("app:2"), std::string::npos);
}

TEST_F(ImageStoreTest, AddImageRefusesMissingLayer) {
  image::ImageConfig cfg;
  cfg.architecture = "amd64";
  cfg.os = "linux";
  cfg.diff_ids = {Digest::Of("x")};
  std::string cb = cfg.Serialize();
  auto cd = store_->content().WriteBlob(cb);
  ASSERT_TRUE(cd.ok());
  image::Manifest m;
  m.media_type = std::string(image::media::kOciManifest);
  m.config = {std::string(image::media::kOciConfig), *cd, static_cast<int64_t>(cb.size()), {}, {}, {}, ""};
  m.layers.push_back({std::string(image::media::kOciLayerGzip), Digest::Of("absent"), 6, {}, {}, {}, ""});
  auto rec = store_->CommitImage(m);
  ASSERT_FALSE(rec.ok());
  EXPECT_NE(rec.error().message().find("missing"), std::string::npos);
  EXPECT_TRUE(store_->db().ListImages()->empty());
}

TEST_F(ImageStoreTest, RemoveUntagsThenDeletesAndCollects) {
  Digest d = MakeImage(*store_, "two");
  Tag(*store_, "a:1", d);
  Tag(*store_, "b:1", d);
  // By ID with two tags: refused without force.
  std::string id = store_->Resolve("a:1")->record.config.Hex().substr(0, 12);
  auto refused = store_->Remove(id, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Code::kFailedPrecondition);
  // By tag: only untags.
  auto r1 = store_->Remove("a:1", false);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->untagged, std::vector<std::string>{"docker.io/library/a:1"});
  EXPECT_TRUE(r1->deleted.empty());
  size_t blobs_before = store_->content().List()->size();
  EXPECT_EQ(blobs_before, 3u);  // manifest, config, layer
  // Last tag: deletes the image and its blobs.
  auto r2 = store_->Remove("b:1", false);
  ASSERT_TRUE(r2.ok());
  ASSERT_EQ(r2->deleted.size(), 1u);
  EXPECT_EQ(r2->deleted[0].digest, d);
  EXPECT_TRUE(store_->content().List()->empty());
  EXPECT_TRUE(store_->db().ListImages()->empty());
}

TEST_F(ImageStoreTest, SharedBlobsSurviveRemoval) {
  Digest a = MakeImage(*store_, "same", "a");
  Digest b = MakeImage(*store_, "same", "b");  // same layer, different config
  ASSERT_NE(a, b);
  Tag(*store_, "a:1", a);
  Tag(*store_, "b:1", b);
  auto layer = store_->Resolve("b:1")->manifest.layers[0].digest;
  ASSERT_TRUE(store_->Remove("a:1", false).ok());
  EXPECT_TRUE(store_->content().Has(layer));
  EXPECT_TRUE(store_->Resolve("b:1").ok());
}

TEST_F(ImageStoreTest, LeasedImageNeedsForce) {
  Digest d = MakeImage(*store_, "leased");
  Tag(*store_, "l:1", d);
  auto lease = store_->db().CreateLease(std::chrono::seconds(600));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(store_->db().AddLeaseResource(lease->id, "image", d.String()).ok());
  auto r = store_->Remove("l:1", false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("in use"), std::string::npos);
  EXPECT_TRUE(store_->Resolve("l:1").ok());
  EXPECT_TRUE(store_->Remove("l:1", true).ok());
}

TEST_F(ImageStoreTest, GcKeepsLeasedContent) {
  auto d = store_->content().WriteBlob("in flight");
  ASSERT_TRUE(d.ok());
  auto lease = store_->db().CreateLease(std::chrono::seconds(600));
  ASSERT_TRUE(store_->db().AddLeaseResource(lease->id, "content", d->String()).ok());
  auto junk = store_->content().WriteBlob("garbage");
  ASSERT_TRUE(store_->CollectGarbage().ok());
  EXPECT_TRUE(store_->content().Has(*d));
  EXPECT_FALSE(store_->content().Has(*junk));
}

TEST_F(ImageStoreTest, GcWaitsForWritersInFlight) {
  auto junk = store_->content().WriteBlob("not yet recorded");
  ASSERT_TRUE(junk.ok());
  {
    auto writer = store_->LockGc(false);  // as a writer in another process would
    ASSERT_TRUE(writer.ok());
    auto freed = store_->CollectGarbage();
    ASSERT_TRUE(freed.ok());
    EXPECT_EQ(*freed, 0);
    EXPECT_TRUE(store_->content().Has(*junk));
  }
  auto freed = store_->CollectGarbage();
  ASSERT_TRUE(freed.ok());
  EXPECT_GT(*freed, 0);
  EXPECT_FALSE(store_->content().Has(*junk));
}

TEST_F(ImageStoreTest, FailedWorkUnderLeaseLeavesNoBlobs) {
  auto r = store_->WithLease<int>([&](const Lease& lease) -> core::Result<int> {
    auto d = store_->content().WriteBlob("half-done work");
    EXPECT_TRUE(store_->db().AddLeaseResource(lease.id, "content", d->String()).ok());
    return core::Error(Code::kInternal, "interrupted");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(store_->content().List()->empty());
}

class ArchiveTest : public ImageStoreTest, public ::testing::WithParamInterface<ArchiveFormat> {};

TEST_P(ArchiveTest, SaveLoadRoundTrip) {
  Digest d = MakeImage(*store_, "payload");
  Tag(*store_, "localhost:5000/app:v1", d);
  auto src = store_->Resolve("localhost:5000/app:v1");
  std::string path = tmp_.Sub("out.tar");
  {
    auto fd = core::Open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_TRUE(SaveImages(*store_, {"localhost:5000/app:v1"}, GetParam(), fd->get()).ok());
  }
  auto other = OpenStore(tmp_.Sub("root2"));
  auto fd = core::Open(path, O_RDONLY);
  auto loaded = LoadImages(*other, fd->get());
  ASSERT_TRUE(loaded.ok()) << loaded.error().ToString();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].tags, std::vector<std::string>{"localhost:5000/app:v1"});
  auto got = other->Resolve("localhost:5000/app:v1");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->record.config, src->record.config);  // same config bytes: same image ID
  EXPECT_EQ(got->config.diff_ids, src->config.diff_ids);
  // Nothing but the image's blobs is left behind (archive metadata files are collected).
  EXPECT_EQ(other->content().List()->size(), 3u);
  // Saving is deterministic.
  std::string path2 = tmp_.Sub("out2.tar");
  auto fd2 = core::Open(path2, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_TRUE(SaveImages(*store_, {"localhost:5000/app:v1"}, GetParam(), fd2->get()).ok());
  EXPECT_EQ(testing::ReadTestFile(path), testing::ReadTestFile(path2));
}

INSTANTIATE_TEST_SUITE_P(Formats, ArchiveTest, ::testing::Values(ArchiveFormat::kDocker, ArchiveFormat::kOci));

// Builds a tar from a directory with the system tar, for hand-made (hostile) archives.
std::string TarOf(const std::string& dir, const std::string& out, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {"tar", "-cf", out, "-C", dir};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(".");
  EXPECT_TRUE(core::RunChecked(argv).ok());
  return out;
}

TEST_F(ImageStoreTest, LoadRejectsBlobWhoseNameLies) {
  std::string dir = tmp_.Sub("evil");
  WriteTestFile(dir, "blobs/sha256/" + Digest::Of("claimed").Hex(), "actual");
  WriteTestFile(dir, "index.json", R"({"schemaVersion":2,"manifests":[]})");
  std::string tar = TarOf(dir, tmp_.Sub("evil.tar"));
  auto fd = core::Open(tar, O_RDONLY);
  auto r = LoadImages(*store_, fd->get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kDataLoss);
  EXPECT_NE(r.error().message().find("blobs/sha256/"), std::string::npos);
}

TEST_F(ImageStoreTest, LoadRejectsDiffIdMismatch) {
  // A docker archive whose config lists a diff_id that does not match the layer.
  std::string dir = tmp_.Sub("bad");
  WriteTestFile(dir, "layer.tar", std::string(1024, '\0'));
  std::string cfg = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[")" +
                    Digest::Of("not the layer").String() + R"("]}})";
  WriteTestFile(dir, "config.json", cfg);
  WriteTestFile(dir, "manifest.json", R"([{"Config":"config.json","RepoTags":["bad:1"],"Layers":["layer.tar"]}])");
  std::string tar = TarOf(dir, tmp_.Sub("bad.tar"));
  auto fd = core::Open(tar, O_RDONLY);
  auto r = LoadImages(*store_, fd->get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kDataLoss);
  EXPECT_NE(r.error().message().find("diff_id"), std::string::npos);
  EXPECT_FALSE(store_->Resolve("bad:1").ok());
}

TEST_F(ImageStoreTest, LoadRejectsNonTarAndEmpty) {
  WriteTestFile(tmp_.path(), "junk", std::string(4096, 'j'));
  auto fd = core::Open(tmp_.Sub("junk"), O_RDONLY);
  auto r = LoadImages(*store_, fd->get());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("tar"), std::string::npos);
  WriteTestFile(tmp_.path(), "empty", "");
  auto fd2 = core::Open(tmp_.Sub("empty"), O_RDONLY);
  EXPECT_FALSE(LoadImages(*store_, fd2->get()).ok());
}

TEST_F(ImageStoreTest, LoadRefusesEntriesLeavingTheArchive) {
  std::string dir = tmp_.Sub("trav");
  WriteTestFile(dir, "x", "x");
  std::string tar = tmp_.Sub("trav.tar");
  ASSERT_TRUE(core::RunChecked({"tar", "-cf", tar, "-C", dir, "--transform", "s,^x,../../escape,", "-P", "x"}).ok());
  auto fd = core::Open(tar, O_RDONLY);
  auto r = LoadImages(*store_, fd->get());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("leaves the archive"), std::string::npos);
  EXPECT_FALSE(core::Exists(tmp_.Sub("escape")));
}

}  // namespace
}  // namespace xbuild::cache
