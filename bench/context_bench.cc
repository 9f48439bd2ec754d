// Checksumming a build context: the cold first build (every file read) against later builds of
// the unchanged context (the stat-keyed cache loaded from its file, one lstat per entry, no
// reads), and a build after one file changed.
//
//   xbuild-context-bench DIR [FILES] [RUNS]
//
// DIR is created with FILES small files (default 100000; 100 to a directory, 40-200 bytes
// each) when it does not exist, and kept for the next run. The cache file lives in DIR.cache/
// and is removed first, so the cold run starts from nothing. Times are wall clock, one
// process, page cache warm (the files were just written or read).
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "core/fs.h"
#include "solver/ops/checksum_cache.h"
#include "solver/ops/context_tree.h"

namespace {

using Clock = std::chrono::steady_clock;
using xbuild::solver::ops::ChecksumCache;
using xbuild::solver::ops::ChecksumContext;
using xbuild::solver::ops::ChecksumStats;
using xbuild::solver::ops::ContextSelection;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "context-bench: %s\n", what.c_str());
  return 1;
}

bool MakeTree(const std::string& dir, int files) {
  std::string content;
  for (int i = 0; i < files; ++i) {
    std::string sub = dir + "/d" + std::to_string(i / 100);
    if (i % 100 == 0 && !xbuild::core::MkdirAll(sub).ok()) return false;
    content.assign(40 + static_cast<size_t>(i * 7919 % 160), static_cast<char>('a' + i % 26));
    content += "\n" + std::to_string(i) + "\n";
    auto fd = xbuild::core::Open(sub + "/f" + std::to_string(i) + ".txt",
                                 O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!fd.ok() || !xbuild::core::WriteAll(fd->get(), content).ok()) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Fail("usage: xbuild-context-bench DIR [FILES] [RUNS]");
  std::string dir = std::filesystem::absolute(argv[1]).lexically_normal().string();
  int files = argc > 2 ? std::atoi(argv[2]) : 100000;
  int runs = argc > 3 ? std::atoi(argv[3]) : 5;
  if (!std::filesystem::exists(dir)) {
    auto t0 = Clock::now();
    if (!MakeTree(dir, files)) return Fail("could not create " + dir);
    std::printf("created %d files in %.1fs\n", files, Since(t0));
    // Files whose ctime is in the current clock tick are not cached (see checksum_cache.h).
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string cache_dir = dir + ".cache";
  (void)xbuild::core::RemoveAll(ChecksumCache::FileFor(cache_dir, dir));
  ContextSelection all;
  ChecksumStats stats;

  auto t0 = Clock::now();
  auto cold = ChecksumCache::Open(cache_dir, dir);
  auto m = ChecksumContext(dir, all, *cold, &stats);
  if (!m.ok()) return Fail(m.error().ToString());
  double cold_s = Since(t0);
  t0 = Clock::now();
  if (auto s = cold->Save(); !s.ok()) return Fail(s.error().ToString());
  double save_s = Since(t0);
  struct stat st {};
  ::stat(ChecksumCache::FileFor(cache_dir, dir).c_str(), &st);
  std::printf("entries=%zu files=%zu\n", stats.entries, stats.files);
  std::printf("cold:  %.3fs (read %zu files, %.1f MB), save %.3fs, cache file %.1f MB\n", cold_s,
              stats.hashed, static_cast<double>(stats.bytes_hashed) / 1e6, save_s,
              static_cast<double>(st.st_size) / 1e6);

  double best = 1e9, total = 0, best_load = 1e9;
  for (int i = 0; i < runs; ++i) {
    t0 = Clock::now();
    auto warm = ChecksumCache::Open(cache_dir, dir);
    double load = Since(t0);
    auto w = ChecksumContext(dir, all, *warm, &stats);
    double s = Since(t0);
    if (!w.ok()) return Fail(w.error().ToString());
    if (w->key != m->key) return Fail("the warm key differs from the cold one");
    if (stats.hashed != 0) std::printf("warning: warm run %d read %zu files\n", i, stats.hashed);
    best = std::min(best, s);
    best_load = std::min(best_load, load);
    total += s;
  }
  std::printf(
      "warm:  best %.3fs mean %.3fs over %d runs (load of the cache file: best %.3fs), 0 files "
      "read\n",
      best, total / runs, runs, best_load);

  // One file edited: read again, and only it.
  std::string edited = dir + "/d0/f0.txt";
  auto old = xbuild::core::ReadFile(edited);
  if (!old.ok() || !xbuild::core::WriteFileAtomic(edited, "edited\n").ok())
    return Fail("edit " + edited);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  t0 = Clock::now();
  auto after = ChecksumCache::Open(cache_dir, dir);
  auto e = ChecksumContext(dir, all, *after, &stats);
  double edit_s = Since(t0);
  if (!e.ok()) return Fail(e.error().ToString());
  std::printf("edit:  %.3fs after one file changed (read %zu files), key changed: %s\n", edit_s,
              stats.hashed, e->key != m->key ? "yes" : "NO");
  (void)xbuild::core::WriteFileAtomic(edited, *old);
  return 0;
}
