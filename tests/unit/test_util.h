// Helpers shared by the tests: temporary directories removed at the end of the test, and
// small file-tree builders.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace xbuild::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(std::string_view rel) const { return path_ + "/" + std::string(rel); }

 private:
  std::string path_;
};

// The live slirp4netns processes whose arguments name a path below `dir`: a network's, which
// outlives the xbuild process that started it (exec/outbound.h). ~TempDir kills those below it.
std::vector<int> SlirpProcessesBelow(const std::string& dir);

// Writes `content` to root/rel, creating parent directories.
void WriteTestFile(const std::string& root, std::string_view rel, std::string_view content,
                   int mode = 0644);
std::string ReadTestFile(const std::string& path);

// A minimal root filesystem from Debian's busybox-static: bin/busybox, bin/sh -> busybox,
// etc/hello. Fails the calling test when busybox is missing.
void MakeBusyboxRootfs(const std::string& dir);

}  // namespace xbuild::testing
