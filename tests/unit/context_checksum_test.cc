// The build context's checksums (solver/ops/context_tree.h, checksum_cache.h): a cached digest
// is used, without reading the file, only while the file's stat is exactly what it was; a
// corrupt cache file is ignored; a context source's key covers what its COPY names and nothing
// else; the snapshot copy refuses content that differs from what was checksummed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/fs.h"
#include "solver/ops/checksum_cache.h"
#include "solver/ops/context_tree.h"
#include "unit/test_util.h"

namespace xbuild::solver::ops {
namespace {

using testing::TempDir;
using testing::WriteTestFile;

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

// Waits until the kernel's coarse clock has moved past the file's ctime: only then does the
// checksummer trust (and record) the file's digest. This waits for a condition; it asserts no
// timing.
void WaitSettled(const std::string& path) {
  struct stat st = Lstat(path);
  for (;;) {
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec > st.st_ctim.tv_sec ||
        (now.tv_sec == st.st_ctim.tv_sec && now.tv_nsec > st.st_ctim.tv_nsec))
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void SetMtime(const std::string& path, const struct timespec& mtime) {
  struct timespec ts[2] = {mtime, mtime};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

const ContextEntry* Find(const ContextManifest& m, const std::string& path) {
  for (const auto& e : m.entries)
    if (e.path == path) return &e;
  return nullptr;
}

std::vector<std::string> Paths(const ContextManifest& m) {
  std::vector<std::string> out;
  for (const auto& e : m.entries) out.push_back(e.path);
  return out;
}

class ContextChecksumTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_ = tmp_.Sub("ctx");
    cache_dir_ = tmp_.Sub("checksums");
    WriteTestFile(ctx_, "a.txt", "one\n");
    WriteTestFile(ctx_, "sub/b.txt", "bee\n");
    WaitSettled(ctx_ + "/a.txt");
    WaitSettled(ctx_ + "/sub/b.txt");
  }

  ContextManifest Sum(ChecksumCache& cache, ChecksumStats* stats, ContextSelection sel = {}) {
    auto m = ChecksumContext(ctx_, sel, cache, stats);
    EXPECT_TRUE(m.ok()) << m.error().ToString();
    return m.ok() ? *m : ContextManifest{};
  }

  TempDir tmp_;
  std::string ctx_, cache_dir_;
};

TEST_F(ContextChecksumTest, ACachedDigestIsUsedOnlyWhileTheStatMatches) {
  ChecksumStats stats;
  core::Digest first;
  {
    auto cache = ChecksumCache::Open(cache_dir_, ctx_);
    EXPECT_FALSE(cache->loaded());
    ContextManifest m = Sum(*cache, &stats);
    EXPECT_EQ(stats.files, 2u);
    EXPECT_EQ(stats.hashed, 2u);
    EXPECT_EQ(Find(m, "a.txt")->digest, core::Digest::Of("one\n"));
    first = m.key;
    ASSERT_TRUE(cache->Save().ok());
  }
  // A later build: the digests come from the file, nothing is read, the key is the same.
  auto cache = ChecksumCache::Open(cache_dir_, ctx_);
  EXPECT_TRUE(cache->loaded());
  EXPECT_EQ(cache->size(), 2u);
  EXPECT_EQ(Sum(*cache, &stats).key, first);
  EXPECT_EQ(stats.hashed, 0u);

  // Proof that the file is not read: a digest recorded for its exact stat is taken as it is.
  FileStat st = FileStat::Of(Lstat(ctx_ + "/a.txt"));
  cache->Record("a.txt", st, core::Digest::Of("planted"));
  ContextManifest planted = Sum(*cache, &stats);
  EXPECT_EQ(stats.hashed, 0u);
  EXPECT_EQ(Find(planted, "a.txt")->digest, core::Digest::Of("planted"));

  // New content of the same size with the old mtime put back: the ctime moved, so the planted
  // digest no longer applies and the file is read.
  struct timespec mtime = Lstat(ctx_ + "/a.txt").st_mtim;
  WriteTestFile(ctx_, "a.txt", "two\n");
  SetMtime(ctx_ + "/a.txt", mtime);
  struct stat now = Lstat(ctx_ + "/a.txt");
  ASSERT_EQ(static_cast<uint64_t>(now.st_size), st.size);
  ASSERT_EQ(FileStat::Of(now).mtime_ns, st.mtime_ns);
  WaitSettled(ctx_ + "/a.txt");
  ContextManifest changed = Sum(*cache, &stats);
  EXPECT_EQ(stats.hashed, 1u);
  EXPECT_EQ(Find(changed, "a.txt")->digest, core::Digest::Of("two\n"));
  EXPECT_NE(changed.key, first);

  // Same content, size and mtime in a new inode (a rename over it, as editors save): read again.
  WriteTestFile(ctx_, "a.tmp", "two\n");
  SetMtime(ctx_ + "/a.tmp", mtime);
  ASSERT_EQ(::rename((ctx_ + "/a.tmp").c_str(), (ctx_ + "/a.txt").c_str()), 0);
  WaitSettled(ctx_ + "/a.txt");
  EXPECT_EQ(Sum(*cache, &stats).key, changed.key);
  EXPECT_EQ(stats.hashed, 1u);
  EXPECT_EQ(Sum(*cache, &stats).key, changed.key);
  EXPECT_EQ(stats.hashed, 0u) << "settled again";
}

TEST_F(ContextChecksumTest, EveryStatFieldIsPartOfTheCacheKey) {
  ChecksumCache cache;
  FileStat st{4, 1000, 2000, 77, 5, S_IFREG | 0644};
  core::Digest d = core::Digest::Of("x");
  cache.Record("f", st, d);
  EXPECT_EQ(cache.Lookup("f", st), d);
  EXPECT_FALSE(cache.Lookup("g", st));
  auto differs = [&](auto change) {
    FileStat other = st;
    change(other);
    return !cache.Lookup("f", other).has_value();
  };
  EXPECT_TRUE(differs([](FileStat& s) { s.size = 5; }));
  EXPECT_TRUE(differs([](FileStat& s) { s.mtime_ns += 1; }));
  EXPECT_TRUE(differs([](FileStat& s) { s.ctime_ns += 1; }));
  EXPECT_TRUE(differs([](FileStat& s) { s.ino = 78; }));
  EXPECT_TRUE(differs([](FileStat& s) { s.dev = 6; }));
  EXPECT_TRUE(differs([](FileStat& s) { s.mode = S_IFREG | 0755; }));
}

TEST_F(ContextChecksumTest, ACorruptCacheFileIsIgnoredAndRewritten) {
  ChecksumStats stats;
  core::Digest key;
  {
    auto cache = ChecksumCache::Open(cache_dir_, ctx_);
    key = Sum(*cache, &stats).key;
    ASSERT_TRUE(cache->Save().ok());
  }
  std::string file = ChecksumCache::FileFor(cache_dir_, ctx_);
  auto good = core::ReadFile(file);
  ASSERT_TRUE(good.ok());
  std::string flipped = *good;
  flipped[flipped.size() / 2] ^= 0x5a;
  std::string other_context;
  {  // a valid file of another context, copied to this context's name
    auto other = ChecksumCache::Open(cache_dir_, ctx_ + "/sub");
    other->Record("b.txt", FileStat{}, core::Digest::Of("b"));
    ASSERT_TRUE(other->Save().ok());
    other_context = *core::ReadFile(ChecksumCache::FileFor(cache_dir_, ctx_ + "/sub"));
  }
  for (const std::string& bad : {flipped, good->substr(0, good->size() - 7), std::string("garbage"),
                                 std::string(), other_context}) {
    ASSERT_TRUE(core::WriteFileAtomic(file, bad).ok());
    auto cache = ChecksumCache::Open(cache_dir_, ctx_);
    EXPECT_FALSE(cache->loaded());
    EXPECT_EQ(cache->size(), 0u);
    EXPECT_EQ(Sum(*cache, &stats).key, key) << "the checksum never depends on the cache file";
    EXPECT_EQ(stats.hashed, 2u);
    ASSERT_TRUE(cache->Save().ok());
    auto again = ChecksumCache::Open(cache_dir_, ctx_);
    EXPECT_TRUE(again->loaded()) << "rewritten whole";
    EXPECT_EQ(again->size(), 2u);
  }
}

TEST_F(ContextChecksumTest, ConcurrentSavesOfOneContextLeaveAnIntactFile) {
  auto writer = [&](int n) {
    for (int i = 0; i < 30; ++i) {
      auto cache = ChecksumCache::Open(cache_dir_, ctx_);
      cache->Record("w" + std::to_string(n) + "-" + std::to_string(i), FileStat{},
                    core::Digest::Of("x"));
      EXPECT_TRUE(cache->Save().ok());
    }
  };
  std::thread a(writer, 1), b(writer, 2);
  a.join();
  b.join();
  auto cache = ChecksumCache::Open(cache_dir_, ctx_);
  EXPECT_TRUE(cache->loaded());
  EXPECT_GE(cache->size(), 1u);
}

TEST_F(ContextChecksumTest, ASelectionIsKeyedByWhatItNamesOnly) {
  WriteTestFile(ctx_, "dir/c.txt", "see\n");
  WriteTestFile(ctx_, "ignored.txt", "secret\n");
  ASSERT_EQ(::symlink("dir", (ctx_ + "/link").c_str()), 0);
  ChecksumCache cache;
  auto ignore = frontend::DockerIgnore::Parse("ignored.txt\n");
  ASSERT_TRUE(ignore.ok());
  auto key = [&](std::vector<std::string> includes) {
    return Sum(cache, nullptr, ContextSelection{std::move(includes), *ignore}).key;
  };
  auto all = Sum(cache, nullptr, ContextSelection{{}, *ignore});
  EXPECT_EQ(Paths(all),
            (std::vector<std::string>{"a.txt", "dir", "dir/c.txt", "link", "sub", "sub/b.txt"}))
      << "walk order, .dockerignore applied";
  auto through_link = Sum(cache, nullptr, ContextSelection{{"link/c.txt"}, *ignore});
  EXPECT_EQ(Paths(through_link), (std::vector<std::string>{"dir", "dir/c.txt", "link"}))
      << "the symlink COPY follows is kept, with what it leads to";

  core::Digest a = key({"a.txt"}), star = key({"*.txt"}), sub = key({"sub"}),
               linked = key({"link/c.txt"});
  WriteTestFile(ctx_, "sub/b.txt", "BEE\n");
  EXPECT_EQ(key({"a.txt"}), a) << "another file changed";
  EXPECT_EQ(key({"*.txt"}), star) << "sub/b.txt is not matched by *.txt";
  EXPECT_NE(key({"sub"}), sub);
  WriteTestFile(ctx_, "ignored.txt", "other secret\n");
  EXPECT_EQ(key({"*.txt"}), star) << "ignored files are not in the context";
  WriteTestFile(ctx_, "dir/c.txt", "SEE\n");
  EXPECT_NE(key({"link/c.txt"}), linked);
  EXPECT_EQ(key({"a.txt"}), a);

  // Metadata: mode counts, mtime does not.
  struct stat before = Lstat(ctx_ + "/a.txt");
  SetMtime(ctx_ + "/a.txt", {12345, 0});
  EXPECT_EQ(key({"a.txt"}), a) << "mtime is not part of the key";
  SetMtime(ctx_ + "/a.txt", before.st_mtim);
  ASSERT_EQ(::chmod((ctx_ + "/a.txt").c_str(), 0600), 0);
  EXPECT_NE(key({"a.txt"}), a) << "mode is";
  // A new file matching the wildcard changes its key, not a.txt's.
  ASSERT_EQ(::chmod((ctx_ + "/a.txt").c_str(), before.st_mode & 07777), 0);
  WriteTestFile(ctx_, "new.txt", "new\n");
  EXPECT_NE(key({"*.txt"}), star);
  EXPECT_EQ(key({"a.txt"}), a);
}

TEST_F(ContextChecksumTest, SymlinksResolveInsideTheContext) {
  // The host has /etc/passwd; the context has no etc/: a link to /etc selects nothing below it.
  ASSERT_EQ(::symlink("/etc", (ctx_ + "/abs").c_str()), 0);
  ASSERT_EQ(::symlink("../../../../../etc", (ctx_ + "/rel").c_str()), 0);
  ChecksumCache cache;
  for (const char* p : {"abs/passwd", "rel/passwd"}) {
    ContextManifest m = Sum(cache, nullptr, ContextSelection{{p}, {}});
    ASSERT_EQ(m.entries.size(), 1u) << p;
    EXPECT_EQ(m.entries[0].path, std::string(p).substr(0, 3)) << "only the link itself";
  }
  // With an etc/ in the context, that is what the links lead to.
  WriteTestFile(ctx_, "etc/passwd", "ctx\n");
  ContextManifest m = Sum(cache, nullptr, ContextSelection{{"abs/passwd"}, {}});
  EXPECT_EQ(Paths(m), (std::vector<std::string>{"abs", "etc", "etc/passwd"}));
  EXPECT_EQ(Find(m, "etc/passwd")->digest, core::Digest::Of("ctx\n"));
}

TEST_F(ContextChecksumTest, TheSnapshotCopyIsWhatWasChecksummed) {
  WriteTestFile(ctx_, "x/run.sh", "#!/bin/sh\n", 0755);
  ASSERT_EQ(::symlink("../a.txt", (ctx_ + "/x/link").c_str()), 0);
  ASSERT_EQ(::link((ctx_ + "/a.txt").c_str(), (ctx_ + "/x/hard").c_str()), 0);
  ChecksumCache cache;
  ContextManifest m = Sum(cache, nullptr, ContextSelection{});
  std::string out = tmp_.Sub("out");
  ASSERT_TRUE(core::MkdirAll(out).ok());
  core::Status s = TransferContext(ctx_, m, out);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(testing::ReadTestFile(out + "/a.txt"), "one\n");
  EXPECT_EQ(testing::ReadTestFile(out + "/sub/b.txt"), "bee\n");
  EXPECT_EQ(Lstat(out + "/x/run.sh").st_mode & 07777, 0755u);
  EXPECT_EQ(std::filesystem::read_symlink(out + "/x/link"), "../a.txt");
  EXPECT_EQ(Lstat(out + "/x/hard").st_ino, Lstat(out + "/a.txt").st_ino) << "hardlinks stay linked";
  EXPECT_EQ(Lstat(out + "/sub").st_mtim.tv_sec, Lstat(ctx_ + "/sub").st_mtim.tv_sec);
  // Checksummed with the old content, the copy meets the new one: refused.
  WriteTestFile(ctx_, "sub/b.txt", "BEE\n");
  std::string out2 = tmp_.Sub("out2");
  ASSERT_TRUE(core::MkdirAll(out2).ok());
  s = TransferContext(ctx_, m, out2);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), core::Code::kAborted);
  EXPECT_NE(s.error().message().find("sub/b.txt"), std::string::npos) << s.error().ToString();
  // A file removed since: refused too.
  ContextManifest m2 = Sum(cache, nullptr, ContextSelection{});
  ASSERT_EQ(::unlink((ctx_ + "/a.txt").c_str()), 0);
  std::string out3 = tmp_.Sub("out3");
  ASSERT_TRUE(core::MkdirAll(out3).ok());
  EXPECT_FALSE(TransferContext(ctx_, m2, out3).ok());
}

}  // namespace
}  // namespace xbuild::solver::ops
