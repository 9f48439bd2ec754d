#include "unit/test_util.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "core/dir.h"
#include "core/fs.h"
#include "core/strings.h"
#include "core/subprocess.h"

namespace xbuild::testing {

namespace {

// The arguments of a live process; empty once it is gone (or a zombie).
std::vector<std::string> Cmdline(const std::string& pid) {
  auto text = core::ReadFile("/proc/" + pid + "/cmdline", 1 << 16);
  if (!text.ok() || text->empty()) return {};
  return core::Split(std::string_view(*text).substr(0, text->size() - 1), '\0');
}

// Kills the slirp4netns processes below `dir` and waits until they are gone: a test leaves
// no process behind.
void KillSlirpBelow(const std::string& dir) {
  std::vector<int> killed;
  for (int pid : SlirpProcessesBelow(dir)) {
    if (::kill(pid, SIGKILL) == 0) killed.push_back(pid);
  }
  for (int pid : killed) {
    std::string name = std::to_string(pid);
    for (int i = 0; i < 500 && !Cmdline(name).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::vector<int> SlirpProcessesBelow(const std::string& dir) {
  std::vector<int> pids;
  for (const std::string& pid : core::DirNames("/proc")) {
    std::vector<std::string> args = Cmdline(pid);
    if (args.empty() || core::Basename(args[0]) != "slirp4netns") continue;
    bool below = std::any_of(args.begin(), args.end(), [&](const std::string& a) { return a.starts_with(dir + "/"); });
    if (below) pids.push_back(std::stoi(pid));
  }
  return pids;
}

TempDir::TempDir() {
  const char* t = std::getenv("TMPDIR");
  auto r = core::MakeTempDir(t && *t ? t : "/tmp", "xbuild-test-");
  if (!r.ok()) std::abort();
  path_ = *r;
}

// Whatever is still mounted below the directory goes first (deepest first), so that nothing a
// test left (a network's namespace, which lives as long as its network) keeps it in place;
// before that, the slirp4netns processes serving those namespaces.
TempDir::~TempDir() {
  KillSlirpBelow(path_);
  std::ifstream mounts("/proc/self/mounts");
  std::vector<std::string> below;
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string device, point;
    fields >> device >> point;
    if (point.starts_with(path_ + "/")) below.push_back(point);
  }
  std::sort(below.rbegin(), below.rend());
  for (const std::string& point : below) ::umount2(point.c_str(), MNT_DETACH);
  (void)core::RemoveAll(path_);
}

void WriteTestFile(const std::string& root, std::string_view rel, std::string_view content, int mode) {
  std::string p = root + "/" + std::string(rel);
  (void)core::MkdirAll(core::Dirname(p));
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  f.close();
  ::chmod(p.c_str(), static_cast<mode_t>(mode));
}

std::string ReadTestFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void MakeBusyboxRootfs(const std::string& dir) {
  std::string busybox = core::Exists("/bin/busybox") ? "/bin/busybox" : core::LookPath("busybox");
  ASSERT_FALSE(busybox.empty()) << "busybox-static is missing: run scripts/setup-deps.sh";
  ASSERT_TRUE(core::MkdirAll(dir + "/bin").ok());
  ASSERT_TRUE(core::RunChecked({"cp", busybox, dir + "/bin/busybox"}).ok());
  ASSERT_EQ(::symlink("busybox", (dir + "/bin/sh").c_str()), 0);
  WriteTestFile(dir, "etc/hello", "hello from xbuild\n");
}

}  // namespace xbuild::testing
