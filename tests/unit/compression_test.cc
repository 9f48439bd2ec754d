// image::Compress: gzip as 16 MiB members deflated in parallel (the bytes do not depend on the
// thread count; gzip(1) and our own reader take the members as one stream), zstd through its
// workers; the digests it reports are those of what it read and wrote.
#include "image/compression.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/digest.h"
#include "core/fd.h"
#include "core/fs.h"
#include "unit/test_util.h"

namespace xbuild::image {
namespace {

using testing::ReadTestFile;
using testing::TempDir;

// 40 MiB of half-compressible bytes: three gzip members (16 + 16 + 8 MiB).
std::string Input() {
  std::mt19937 rng(7);
  std::string s(40u << 20, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = (i / 512) % 2 ? static_cast<char>(rng() & 0xff) : 'a';
  return s;
}

LayerResult CompressFile(const std::string& in_path, const std::string& out_path, Compression c, int threads) {
  auto in = core::Open(in_path, O_RDONLY | O_CLOEXEC);
  auto out = core::Open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_TRUE(in.ok() && out.ok());
  CompressOptions o;
  o.compression = c;
  o.threads = threads;
  auto r = Compress(in->get(), out->get(), o);
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? *r : LayerResult{};
}

TEST(Compress, ParallelGzipIsDeterministicAndReadsBackAsOneStream) {
  TempDir tmp;
  std::string data = Input();
  std::string in = tmp.Sub("in");
  ASSERT_TRUE(core::WriteFileAtomic(in, data).ok());
  LayerResult one = CompressFile(in, tmp.Sub("one.gz"), Compression::kGzip, 1);
  LayerResult two = CompressFile(in, tmp.Sub("two.gz"), Compression::kGzip, 2);
  EXPECT_EQ(one.digest, two.digest) << "member boundaries do not depend on the threads";
  EXPECT_EQ(one.diff_id, core::Digest::Of(data));
  EXPECT_EQ(one.digest, core::Digest::Of(ReadTestFile(tmp.Sub("two.gz"))));
  EXPECT_LT(one.size, static_cast<int64_t>(data.size()));

  auto gz = core::Open(tmp.Sub("two.gz"), O_RDONLY | O_CLOEXEC);
  auto back = core::Open(tmp.Sub("back"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  auto d = Decompress(gz->get(), back->get());
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(d->digest, one.diff_id);
  EXPECT_EQ(d->bytes, data.size());

  std::string cmd = "gzip -dc " + tmp.Sub("two.gz") + " | cmp -s - " + in;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << "gzip(1) reads every member";
}

TEST(Compress, ZstdAndEmptyInput) {
  TempDir tmp;
  std::string in = tmp.Sub("in");
  ASSERT_TRUE(core::WriteFileAtomic(in, std::string(3u << 20, 'z')).ok());
  LayerResult z1 = CompressFile(in, tmp.Sub("a.zst"), Compression::kZstd, 1);
  LayerResult z2 = CompressFile(in, tmp.Sub("b.zst"), Compression::kZstd, 2);
  EXPECT_EQ(z1.digest, z2.digest);
  EXPECT_EQ(std::system(("zstd -qdc " + tmp.Sub("b.zst") + " | cmp -s - " + in).c_str()), 0);

  std::string empty = tmp.Sub("empty");
  ASSERT_TRUE(core::WriteFileAtomic(empty, "").ok());
  LayerResult e = CompressFile(empty, tmp.Sub("e.gz"), Compression::kGzip, 2);
  EXPECT_EQ(e.diff_id, core::Digest::Of(""));
  EXPECT_GT(e.size, 0) << "an empty input is still a valid gzip stream";
  EXPECT_EQ(std::system(("gzip -t " + tmp.Sub("e.gz")).c_str()), 0);
}

}  // namespace
}  // namespace xbuild::image
