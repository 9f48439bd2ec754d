#include "cache/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "unit/test_util.h"

namespace xbuild::cache {
namespace {

using core::Code;
using core::Digest;
using testing::TempDir;

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

std::unique_ptr<ContentStore> MustOpen(const std::string& dir) {
  auto s = ContentStore::Open(dir);
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  return std::move(s).value();
}

// Waits for a child; true when it exited with status 0.
bool ChildOk(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = MustOpen(tmp_.Sub("content")); }
  std::string Blobs() const { return tmp_.Sub("content/blobs/sha256"); }
  std::string Ingest() const { return tmp_.Sub("content/ingest"); }

  TempDir tmp_;
  std::unique_ptr<ContentStore> store_;
};

TEST_F(ContentStoreTest, OpenCreatesLayout) {
  struct stat st;
  ASSERT_EQ(::stat(Blobs().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(::stat(Ingest().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(store_->dir(), tmp_.Sub("content"));
}

TEST_F(ContentStoreTest, WriteReadRoundTrip) {
  auto d = store_->WriteBlob("hello world");
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(*d, Digest::Of("hello world"));
  EXPECT_TRUE(store_->Has(*d));
  EXPECT_EQ(store_->BlobPath(*d), Blobs() + "/" + d->Hex());
  auto size = store_->Size(*d);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 11);
  auto data = store_->ReadBlob(*d, 1024);
  ASSERT_TRUE(data.ok()) << data.error().ToString();
  EXPECT_EQ(*data, "hello world");

  struct stat st;
  ASSERT_EQ(::stat(store_->BlobPath(*d).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);

  auto fd = store_->OpenBlob(*d);
  ASSERT_TRUE(fd.ok());
  auto via_fd = core::ReadFd(fd->get());
  ASSERT_TRUE(via_fd.ok());
  EXPECT_EQ(*via_fd, "hello world");

  // Writing it again is fine and keeps one copy; nothing is left in ingest/.
  auto again = store_->WriteBlob("hello world", Digest::Of("hello world"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *d);
  EXPECT_EQ(DirEntries(Blobs()).size(), 1u);
  EXPECT_TRUE(DirEntries(Ingest()).empty());

  // ReadBlob refuses blobs over the limit.
  auto small = store_->ReadBlob(*d, 5);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().code(), Code::kResourceExhausted);
}

TEST_F(ContentStoreTest, WriteBlobFromFdStreams) {
  std::string big = Pattern(3 * 1024 * 1024 + 17, 1);
  testing::WriteTestFile(tmp_.path(), "src.bin", big);
  auto fd = core::Open(tmp_.Sub("src.bin"), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto d = store_->WriteBlobFromFd(fd->get(), Digest::Of(big), static_cast<int64_t>(big.size()));
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(*d, Digest::Of(big));
  auto back = store_->ReadBlob(*d, big.size());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == big);
  EXPECT_TRUE(DirEntries(Ingest()).empty());
}

TEST_F(ContentStoreTest, WrongExpectedDigestIsDataLossAndInvisible) {
  Digest wrong = Digest::Of("something else");
  auto r = store_->WriteBlob("payload", wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kDataLoss);
  EXPECT_FALSE(store_->Has(Digest::Of("payload")));
  EXPECT_FALSE(store_->Has(wrong));
  EXPECT_TRUE(DirEntries(Blobs()).empty());

  // The same through a streaming writer and through an fd: the ingest is removed too.
  auto w = store_->NewWriter("ref-a", wrong);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("payload").ok());
  auto c = (*w)->Commit();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), Code::kDataLoss);
  EXPECT_TRUE(DirEntries(Blobs()).empty());
  EXPECT_TRUE(DirEntries(Ingest()).empty());
  EXPECT_EQ((*w)->Write("more").error().code(), Code::kFailedPrecondition);

  testing::WriteTestFile(tmp_.path(), "src.bin", "payload");
  auto fd = core::Open(tmp_.Sub("src.bin"), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto f = store_->WriteBlobFromFd(fd->get(), wrong);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), Code::kDataLoss);
  EXPECT_TRUE(DirEntries(Blobs()).empty());
  EXPECT_TRUE(DirEntries(Ingest()).empty());
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(ContentStoreTest, WrongExpectedSizeIsDataLoss) {
  {  // too short
    auto w = store_->NewWriter("short", std::nullopt, 10);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("12345").ok());
    auto c = (*w)->Commit();
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code(), Code::kDataLoss);
  }
  {  // too long: refused at the write that overflows
    auto w = store_->NewWriter("long", std::nullopt, 3);
    ASSERT_TRUE(w.ok());
    auto wr = (*w)->Write("12345");
    ASSERT_FALSE(wr.ok());
    EXPECT_EQ(wr.error().code(), Code::kDataLoss);
    EXPECT_EQ((*w)->Offset(), 0);
    ASSERT_TRUE((*w)->Abort().ok());
  }
  testing::WriteTestFile(tmp_.path(), "src.bin", "12345");
  auto fd = core::Open(tmp_.Sub("src.bin"), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto f = store_->WriteBlobFromFd(fd->get(), std::nullopt, 4);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), Code::kDataLoss);
  EXPECT_FALSE(store_->Has(Digest::Of("12345")));
  EXPECT_TRUE(DirEntries(Blobs()).empty());
  EXPECT_TRUE(DirEntries(Ingest()).empty());
}

TEST_F(ContentStoreTest, ConcurrentThreadsSameDigest) {
  const std::string data = Pattern(2 * 1024 * 1024, 7);
  const Digest want = Digest::Of(data);
  constexpr int kThreads = 8;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // Half through WriteBlob, half through their own writer refs committing the same digest.
      if (i % 2 == 0) {
        auto d = store_->WriteBlob(data, want);
        if (d.ok() && *d == want) ++ok;
      } else {
        auto w = store_->NewWriter("thread-" + std::to_string(i), want,
                                   static_cast<int64_t>(data.size()));
        if (!w.ok()) return;
        for (size_t off = 0; off < data.size(); off += 100000) {
          if (!(*w)->Write(std::string_view(data).substr(off, 100000)).ok()) return;
        }
        auto d = (*w)->Commit();
        if (d.ok() && *d == want) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  EXPECT_EQ(DirEntries(Blobs()), std::vector<std::string>{want.Hex()});
  EXPECT_TRUE(DirEntries(Ingest()).empty());
  auto back = store_->ReadBlob(want, data.size());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == data);
}

TEST_F(ContentStoreTest, ConcurrentProcessesSameDigest) {
  const std::string data = Pattern(4 * 1024 * 1024, 9);
  const Digest want = Digest::Of(data);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      char c;
      if (::read(go[0], &c, 1) != 0) ::_exit(3);  // wait for the parent to release everyone
      auto s = ContentStore::Open(tmp_.Sub("content"));
      if (!s.ok()) ::_exit(1);
      auto d = (*s)->WriteBlob(data, want);
      ::_exit(d.ok() && *d == want ? 0 : 2);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);  // EOF starts them all at once
  for (pid_t pid : kids) EXPECT_TRUE(ChildOk(pid));
  EXPECT_EQ(DirEntries(Blobs()), std::vector<std::string>{want.Hex()});
  EXPECT_TRUE(DirEntries(Ingest()).empty());
  auto back = store_->ReadBlob(want, data.size());
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_TRUE(*back == data);
}

TEST_F(ContentStoreTest, OneLiveWriterPerRef) {
  auto w1 = store_->NewWriter("pull-x");
  ASSERT_TRUE(w1.ok());
  auto w2 = store_->NewWriter("pull-x");
  ASSERT_FALSE(w2.ok());
  EXPECT_EQ(w2.error().code(), Code::kUnavailable);
  // A different ref is independent.
  EXPECT_TRUE(store_->NewWriter("pull-y").ok());

  // A waiting writer blocks until the first one commits, then starts fresh.
  ASSERT_TRUE((*w1)->Write("abc").ok());
  std::atomic<bool> got{false};
  int64_t waited_offset = -1;
  std::thread t([&] {
    auto w = store_->NewWriter("pull-x", std::nullopt, -1, /*wait=*/true);
    if (w.ok()) {
      waited_offset = (*w)->Offset();
      got = true;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(got.load());
  auto d = (*w1)->Commit();
  ASSERT_TRUE(d.ok());
  t.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(waited_offset, 0);
}

TEST_F(ContentStoreTest, ResumeAfterWriterDestroyed) {
  const std::string data = Pattern(300000, 3);
  const size_t half = data.size() / 2;
  {
    auto w = store_->NewWriter("pull-resume", Digest::Of(data), static_cast<int64_t>(data.size()));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(std::string_view(data).substr(0, half)).ok());
    EXPECT_EQ((*w)->Offset(), static_cast<int64_t>(half));
  }  // destroyed without commit: data stays
  EXPECT_EQ(DirEntries(Ingest()).size(), 1u);
  EXPECT_FALSE(store_->Has(Digest::Of(data)));

  auto w = store_->NewWriter("pull-resume", Digest::Of(data), static_cast<int64_t>(data.size()));
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  ASSERT_EQ((*w)->Offset(), static_cast<int64_t>(half));
  ASSERT_TRUE((*w)->Write(std::string_view(data).substr(half)).ok());
  auto d = (*w)->Commit();
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(*d, Digest::Of(data));
  auto back = store_->ReadBlob(*d, data.size());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == data);
  EXPECT_TRUE(DirEntries(Ingest()).empty());
}

TEST_F(ContentStoreTest, ResumeDiscardsDataLongerThanExpected) {
  {
    auto w = store_->NewWriter("r");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("0123456789").ok());
  }
  auto w = store_->NewWriter("r", Digest::Of("abc"), 3);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->Offset(), 0);
  ASSERT_TRUE((*w)->Write("abc").ok());
  auto d = (*w)->Commit();
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(*d, Digest::Of("abc"));
}

TEST_F(ContentStoreTest, AbortRemovesIngest) {
  auto w = store_->NewWriter("r");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("partial").ok());
  ASSERT_TRUE((*w)->Abort().ok());
  EXPECT_TRUE(DirEntries(Ingest()).empty());
  EXPECT_EQ((*w)->Write("x").error().code(), Code::kFailedPrecondition);
  auto w2 = store_->NewWriter("r");
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ((*w2)->Offset(), 0);
}

// A child writing a large blob is SIGKILLed mid-ingest.
class KilledWriterTest : public ContentStoreTest {
 protected:
  static constexpr size_t kSize = 16 * 1024 * 1024;
  static constexpr size_t kChunk = 64 * 1024;

  // Forks a writer for `ref`, waits until it has written at least half, kills it.
  void KillWriterMidway(const std::string& ref) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(ready[0]);
      auto s = ContentStore::Open(tmp_.Sub("content"));
      if (!s.ok()) ::_exit(1);
      auto w = (*s)->NewWriter(ref, Digest::Of(data_), static_cast<int64_t>(kSize));
      if (!w.ok()) ::_exit(2);
      for (size_t off = 0; off < kSize; off += kChunk) {
        if (!(*w)->Write(std::string_view(data_).substr(off, kChunk)).ok()) ::_exit(3);
        if (off + kChunk == kSize / 2) {
          if (::write(ready[1], "x", 1) != 1) ::_exit(4);
        }
        if (off + kChunk >= kSize / 2) ::usleep(2000);  // keep writing, slowly, until killed
      }
      ::_exit(5);  // should never get here: 128 chunks * 2ms is far longer than the kill
    }
    ::close(ready[1]);
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGKILL);
  }

  void ExpectStoreUsableWithoutBlob() {
    EXPECT_FALSE(store_->Has(Digest::Of(data_)));
    auto list = store_->List();
    ASSERT_TRUE(list.ok());
    EXPECT_TRUE(std::find(list->begin(), list->end(), Digest::Of(data_)) == list->end());
    auto other = store_->WriteBlob("other blob");
    ASSERT_TRUE(other.ok());
    auto back = store_->ReadBlob(*other, 100);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, "other blob");
    ASSERT_TRUE(store_->Delete(*other).ok());
    EXPECT_TRUE(DirEntries(Blobs()).empty());
  }

  const std::string data_ = Pattern(kSize, 11);
};

TEST_F(KilledWriterTest, NewWriterResumesToCorrectBlob) {
  KillWriterMidway("pull-big");
  ExpectStoreUsableWithoutBlob();

  auto w = store_->NewWriter("pull-big", Digest::Of(data_), static_cast<int64_t>(kSize));
  ASSERT_TRUE(w.ok()) << w.error().ToString();  // the dead child's lock is free
  int64_t off = (*w)->Offset();
  EXPECT_GE(off, static_cast<int64_t>(kSize / 2));
  EXPECT_LT(off, static_cast<int64_t>(kSize));
  ASSERT_TRUE((*w)->Write(std::string_view(data_).substr(static_cast<size_t>(off))).ok());
  auto d = (*w)->Commit();
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(*d, Digest::Of(data_));
  auto back = store_->ReadBlob(*d, kSize);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == data_);
  EXPECT_TRUE(DirEntries(Ingest()).empty());
}

TEST_F(KilledWriterTest, CleanIngestsRemovesLeftovers) {
  KillWriterMidway("pull-big");
  ExpectStoreUsableWithoutBlob();
  ASSERT_EQ(DirEntries(Ingest()).size(), 1u);

  // A live writer's ingest survives cleaning, whatever its age; a large age spares fresh ones.
  auto live = store_->NewWriter("live");
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE((*live)->Write("abc").ok());
  ASSERT_TRUE(store_->CleanIngests(std::chrono::hours(1)).ok());
  EXPECT_EQ(DirEntries(Ingest()).size(), 2u);

  ASSERT_TRUE(store_->CleanIngests(std::chrono::seconds(0)).ok());
  EXPECT_EQ(DirEntries(Ingest()), std::vector<std::string>{Digest::Of("live").Hex()});
  auto d = (*live)->Commit();
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(*d, Digest::Of("abc"));
  EXPECT_TRUE(DirEntries(Ingest()).empty());

  auto w = store_->NewWriter("pull-big", Digest::Of(data_), static_cast<int64_t>(kSize));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->Offset(), 0);
}

TEST(ContentStoreDigest, ParseRejectsTraversal) {
  EXPECT_FALSE(Digest::Parse("sha256:../../etc").ok());
  EXPECT_FALSE(Digest::Parse("sha256:../../etc/passwd" + std::string(41, 'a')).ok());
  EXPECT_FALSE(Digest::Parse("sha256:" + std::string(64, 'A')).ok());
  EXPECT_FALSE(Digest::Parse("sha512:" + std::string(64, 'a')).ok());
  EXPECT_FALSE(Digest::FromHex("../../etc").ok());
  auto ok = Digest::Parse("sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->Hex(), std::string(64, 'a'));
}

TEST_F(ContentStoreTest, ReadBlobDetectsTampering) {
  auto d = store_->WriteBlob("original");
  ASSERT_TRUE(d.ok());
  std::string p = store_->BlobPath(*d);
  ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
  testing::WriteTestFile(Blobs(), d->Hex(), "tampered");  // same length
  EXPECT_TRUE(store_->Has(*d));
  auto r = store_->ReadBlob(*d, 1024);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kDataLoss);
}

TEST_F(ContentStoreTest, Delete) {
  auto d = store_->WriteBlob("to delete");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(store_->Delete(*d).ok());
  EXPECT_FALSE(store_->Has(*d));
  EXPECT_EQ(store_->Delete(*d).error().code(), Code::kNotFound);
  EXPECT_EQ(store_->Size(*d).error().code(), Code::kNotFound);
  EXPECT_EQ(store_->OpenBlob(*d).error().code(), Code::kNotFound);
  EXPECT_EQ(store_->ReadBlob(*d, 100).error().code(), Code::kNotFound);
  EXPECT_TRUE(DirEntries(Blobs()).empty());
}

TEST_F(ContentStoreTest, ListIgnoresJunk) {
  auto a = store_->WriteBlob("a");
  auto b = store_->WriteBlob("b");
  ASSERT_TRUE(a.ok() && b.ok());
  testing::WriteTestFile(Blobs(), "junk", "x");
  testing::WriteTestFile(Blobs(), std::string(64, 'A'), "x");  // uppercase: not canonical
  testing::WriteTestFile(Blobs(), a->Hex() + ".tmp", "x");
  ASSERT_TRUE(core::MkdirAll(Blobs() + "/" + std::string(64, 'c')).ok());  // a dir, not a blob
  ASSERT_EQ(::symlink(store_->BlobPath(*a).c_str(), (Blobs() + "/" + std::string(64, 'd')).c_str()),
            0);
  auto list = store_->List();
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  std::vector<Digest> want{*a, *b};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*list, want);
}

}  // namespace
}  // namespace xbuild::cache
