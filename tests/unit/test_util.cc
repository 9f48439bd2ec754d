#include "unit/test_util.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/fs.h"

namespace xbuild::testing {

TempDir::TempDir() {
  const char* t = std::getenv("TMPDIR");
  auto r = core::MakeTempDir(t && *t ? t : "/tmp", "xbuild-test-");
  if (!r.ok()) std::abort();
  path_ = *r;
}

TempDir::~TempDir() { (void)core::RemoveAll(path_); }

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

}  // namespace xbuild::testing
