// Layers: create (plain, overlay upper, diff), determinism, compression, apply, and every
// path-escape case we know of. Runs as root in CI; tests needing root skip otherwise.
#include "image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/digest.h"
#include "core/fd.h"
#include "core/fs.h"
#include "unit/test_util.h"

// Designated initializers leave the other members at their defaults, on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace xbuild::image {
namespace {

using core::Code;
using testing::ReadTestFile;
using testing::TempDir;
using testing::WriteTestFile;

bool IsRoot() { return ::geteuid() == 0; }

core::UniqueFd OpenOut(const std::string& path) {
  return core::UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
}
core::UniqueFd OpenIn(const std::string& path) {
  return core::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

LayerResult Create(const std::string& dir, const std::string& out, LayerOptions o = {},
                   DirKind kind = DirKind::kPlain) {
  core::UniqueFd fd = OpenOut(out);
  auto r = CreateLayer(dir, kind, fd.get(), o);
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? *r : LayerResult{};
}

core::Result<ApplyStats> Apply(const std::string& layer, const std::string& target,
                               ApplyOptions o = {}) {
  core::UniqueFd fd = OpenIn(layer);
  return ApplyLayer(fd.get(), target, o);
}

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// ---- reading tars back ----

struct TarEntry {
  std::string name;
  mode_t type = 0;  // AE_IF*
  mode_t perm = 0;
  int64_t uid = 0, gid = 0, size = 0, mtime = 0;
  std::string uname, gname, symlink, hardlink, data;
  std::map<std::string, std::string> xattrs;
  unsigned rmajor = 0, rminor = 0;
};

std::vector<TarEntry> ListTar(const std::string& path) {
  std::vector<TarEntry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 65536), ARCHIVE_OK);
  archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    TarEntry t;
    const char* n8 = archive_entry_pathname_utf8(e);  // the test runs in the "C" locale
    t.name = n8 ? n8 : archive_entry_pathname(e);
    t.type = archive_entry_filetype(e);
    t.perm = archive_entry_perm(e);
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    t.size = archive_entry_size(e);
    t.mtime = archive_entry_mtime(e);
    if (auto* s = archive_entry_uname(e)) t.uname = s;
    if (auto* s = archive_entry_gname(e)) t.gname = s;
    if (auto* s = archive_entry_symlink(e)) t.symlink = s;
    if (auto* s = archive_entry_hardlink(e)) t.hardlink = s;
    t.rmajor = archive_entry_rdevmajor(e);
    t.rminor = archive_entry_rdevminor(e);
    archive_entry_xattr_reset(e);
    const char* xn;
    const void* xv;
    size_t xs;
    while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK) {
      t.xattrs[xn] = std::string(static_cast<const char*>(xv), xs);
    }
    char buf[8192];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) t.data.append(buf, static_cast<size_t>(n));
    out.push_back(std::move(t));
  }
  archive_read_free(a);
  return out;
}

std::vector<std::string> Names(const std::vector<TarEntry>& es) {
  std::vector<std::string> out;
  for (auto& e : es) out.push_back(e.name);
  return out;
}

const TarEntry* Find(const std::vector<TarEntry>& es, const std::string& name) {
  for (auto& e : es) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

// Walk order: compare component by component (each directory's children sorted by name).
bool WalkLess(const std::string& a, const std::string& b) {
  auto strip = [](std::string s) {
    if (!s.empty() && s.back() == '/') s.pop_back();
    return s;
  };
  std::string x = strip(a), y = strip(b);
  size_t i = 0, j = 0;
  while (i <= x.size() && j <= y.size()) {
    size_t ie = x.find('/', i), je = y.find('/', j);
    if (ie == std::string::npos) ie = x.size();
    if (je == std::string::npos) je = y.size();
    std::string_view cx(x.data() + i, ie - i), cy(y.data() + j, je - j);
    if (cx != cy) return cx < cy;
    i = ie + 1;
    j = je + 1;
    if (i > x.size() || j > y.size()) return i > x.size() && j <= y.size();
  }
  return false;
}

// ---- writing (possibly hostile) tars ----

struct Spec {
  std::string name;
  char type = 'f';  // f file, d dir, l symlink, h hardlink, c char dev
  std::string data;
  std::string link;
  int mode = 0644;
  int64_t size = -1;  // declared size when different from data (bombs)
};

void WriteTar(const std::string& path, const std::vector<Spec>& specs, bool gzip = false) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const Spec& s : specs) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, s.name.c_str());
    archive_entry_set_perm(e, static_cast<mode_t>(s.mode));
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (s.type) {
      case 'd': archive_entry_set_filetype(e, AE_IFDIR); break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, s.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, s.link.c_str());
        break;
      case 'c': archive_entry_set_filetype(e, AE_IFCHR); break;
      default:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, s.size >= 0 ? s.size : static_cast<int64_t>(s.data.size()));
    }
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (s.type == 'f') {
      if (s.size >= 0) {
        std::string zeros(1 << 20, '\0');
        for (int64_t left = s.size; left > 0;) {
          size_t n = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(zeros.size())));
          archive_write_data(a, zeros.data(), n);
          left -= static_cast<int64_t>(n);
        }
      } else {
        archive_write_data(a, s.data.data(), s.data.size());
      }
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

// ---- tree snapshots ----

struct Node {
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string content;  // file data or symlink target
  ino_t ino = 0;
  dev_t rdev = 0;
  int64_t mtime = 0;
  std::string xattr;  // user.x
};

std::map<std::string, Node> Snapshot(const std::string& root) {
  std::map<std::string, Node> out;
  for (auto it = std::filesystem::recursive_directory_iterator(root);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    std::string p = it->path().string();
    struct stat st;
    ::lstat(p.c_str(), &st);
    Node n;
    n.mode = st.st_mode;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.ino = st.st_ino;
    n.rdev = st.st_rdev;
    n.mtime = st.st_mtim.tv_sec;
    if (S_ISREG(st.st_mode)) n.content = ReadTestFile(p);
    if (S_ISLNK(st.st_mode)) n.content = std::filesystem::read_symlink(p).string();
    char v[256];
    ssize_t xn = ::lgetxattr(p.c_str(), "user.x", v, sizeof v);
    if (xn > 0) n.xattr.assign(v, static_cast<size_t>(xn));
    out[p.substr(root.size() + 1)] = n;
  }
  return out;
}

void SetMtime(const std::string& path, int64_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  ::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

bool TrySetXattr(const std::string& path, const char* name, std::string_view v) {
  return ::lsetxattr(path.c_str(), name, v.data(), v.size(), 0) == 0;
}

// A tree with one of everything. Returns whether user.x could be set.
bool MakeRichTree(const std::string& d) {
  WriteTestFile(d, "a/b.txt", "hello b");
  WriteTestFile(d, "a-b", "dash");
  WriteTestFile(d, "bin/tool", "#!/bin/sh\necho tool\n", 04755);
  WriteTestFile(d, "z", "zzz");
  WriteTestFile(d, "caf\xc3\xa9.txt", "utf8 name");
  WriteTestFile(d, "big.bin", std::string(300000, 'x') + "end");
  ::mkdir((d + "/empty").c_str(), 0700);
  ::link((d + "/z").c_str(), (d + "/a/hard").c_str());
  ::symlink("a/b.txt", (d + "/link").c_str());
  ::symlink("/nonexistent/abs", (d + "/dangling").c_str());
  ::mkfifo((d + "/fifo").c_str(), 0640);
  if (IsRoot()) {
    ::lchown((d + "/bin/tool").c_str(), 1234, 5678);
    ::chmod((d + "/bin/tool").c_str(), 04755);  // chown cleared setuid
    ::lchown((d + "/link").c_str(), 42, 43);
    ::mkdir((d + "/dev").c_str(), 0755);
    ::mknod((d + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3));
  }
  // A socket: skipped by the layer.
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::string sp = d + "/sock";
  if (sp.size() < sizeof sa.sun_path) {
    std::memcpy(sa.sun_path, sp.c_str(), sp.size() + 1);
    (void)::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  ::close(s);
  return TrySetXattr(d + "/a/b.txt", "user.x", "xval");
}

// =================================== create ===================================

TEST(CreateLayer, EntriesSortedWithMetadata) {
  TempDir t;
  std::string src = t.Sub("src");
  bool xattrs = MakeRichTree(src);
  LayerResult r = Create(src, t.Sub("l.tar"), {.compression = Compression::kNone});
  auto es = ListTar(t.Sub("l.tar"));
  std::vector<std::string> expect = {"a-b", "a/", "a/b.txt", "a/hard", "big.bin", "bin/", "bin/tool",
                                     "caf\xc3\xa9.txt", "dangling"};
  if (IsRoot()) expect.insert(expect.end(), {"dev/", "dev/null"});
  expect.insert(expect.end(), {"empty/", "fifo", "link", "z"});
  // "a-b" < "a/..." in walk order? No: walk order compares names: "a" < "a-b".
  std::sort(expect.begin(), expect.end(), WalkLess);
  EXPECT_EQ(Names(es), expect);
  EXPECT_EQ(es[0].name, "a/");  // parents first, "a" sorts before "a-b"
  for (size_t i = 1; i < es.size(); ++i) EXPECT_TRUE(WalkLess(es[i - 1].name, es[i].name)) << es[i].name;

  for (auto& e : es) {
    EXPECT_EQ(e.uname, "") << e.name;
    EXPECT_EQ(e.gname, "") << e.name;
    EXPECT_FALSE(e.name.starts_with("./") || e.name.starts_with("/")) << e.name;
  }
  const TarEntry* tool = Find(es, "bin/tool");
  ASSERT_TRUE(tool);
  EXPECT_EQ(tool->perm, 04755u);
  EXPECT_EQ(tool->data, "#!/bin/sh\necho tool\n");
  if (IsRoot()) {
    EXPECT_EQ(tool->uid, 1234);
    EXPECT_EQ(tool->gid, 5678);
    EXPECT_EQ(Find(es, "link")->uid, 42);
    const TarEntry* dev = Find(es, "dev/null");
    ASSERT_TRUE(dev);
    EXPECT_EQ(dev->type, static_cast<mode_t>(AE_IFCHR));
    EXPECT_EQ(dev->rmajor, 1u);
    EXPECT_EQ(dev->rminor, 3u);
  }
  EXPECT_EQ(Find(es, "empty/")->perm, 0700u);
  EXPECT_EQ(Find(es, "link")->type, static_cast<mode_t>(AE_IFLNK));
  EXPECT_EQ(Find(es, "link")->symlink, "a/b.txt");
  EXPECT_EQ(Find(es, "dangling")->symlink, "/nonexistent/abs");
  EXPECT_EQ(Find(es, "fifo")->type, static_cast<mode_t>(AE_IFIFO));
  EXPECT_EQ(Find(es, "fifo")->perm, 0640u);
  // "a/hard" comes first in walk order, so it holds the data and "z" links to it.
  EXPECT_EQ(Find(es, "a/hard")->data, "zzz");
  EXPECT_EQ(Find(es, "z")->hardlink, "a/hard");
  EXPECT_EQ(Find(es, "z")->size, 0);
  EXPECT_EQ(Find(es, "big.bin")->data.size(), 300003u);
  EXPECT_EQ(Find(es, "sock"), nullptr);
  if (xattrs) {
    EXPECT_EQ(Find(es, "a/b.txt")->xattrs.at("user.x"), "xval");
    // Recorded as SCHILY.xattr only (no LIBARCHIVE.xattr duplicate).
    std::string raw = ReadTestFile(t.Sub("l.tar"));
    EXPECT_NE(raw.find("SCHILY.xattr.user.x=xval"), std::string::npos);
    EXPECT_EQ(raw.find("LIBARCHIVE.xattr"), std::string::npos);
  }
  EXPECT_EQ(r.diff_id, r.digest);  // uncompressed
}

TEST(CreateLayer, DiffIdIsSha256OfUncompressedTar) {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  LayerResult none = Create(t.Sub("src"), t.Sub("l.tar"), {.compression = Compression::kNone});
  std::string raw = ReadTestFile(t.Sub("l.tar"));
  EXPECT_EQ(none.diff_id, core::Digest::Of(raw));
  EXPECT_EQ(none.digest, core::Digest::Of(raw));
  EXPECT_EQ(none.size, static_cast<int64_t>(raw.size()));
  EXPECT_EQ(raw.size() % 512, 0u);
  EXPECT_EQ(raw.substr(raw.size() - 1024), std::string(1024, '\0'));  // end marker, no padding

  LayerResult gz = Create(t.Sub("src"), t.Sub("l.tar.gz"), {.compression = Compression::kGzip});
  std::string gzraw = ReadTestFile(t.Sub("l.tar.gz"));
  EXPECT_EQ(gz.diff_id, none.diff_id);
  EXPECT_EQ(gz.digest, core::Digest::Of(gzraw));
  EXPECT_EQ(gz.size, static_cast<int64_t>(gzraw.size()));
  EXPECT_NE(gz.digest, gz.diff_id);

  LayerResult zs = Create(t.Sub("src"), t.Sub("l.tar.zst"), {.compression = Compression::kZstd});
  EXPECT_EQ(zs.diff_id, none.diff_id);
  EXPECT_EQ(zs.digest, core::Digest::Of(ReadTestFile(t.Sub("l.tar.zst"))));

  for (auto [file, c] : {std::pair{"l.tar", Compression::kNone}, {"l.tar.gz", Compression::kGzip},
                         {"l.tar.zst", Compression::kZstd}}) {
    core::UniqueFd fd = OpenIn(t.Sub(file));
    auto dc = DetectCompression(fd.get());
    ASSERT_TRUE(dc.ok());
    EXPECT_EQ(*dc, c) << file;
    EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), 0);
    auto id = ComputeDiffId(fd.get());
    ASSERT_TRUE(id.ok()) << id.error().ToString();
    EXPECT_EQ(*id, none.diff_id) << file;
  }
  EXPECT_EQ(CompressionName(Compression::kZstd), "zstd");
}

TEST(CreateLayer, ExternalToolsAgree) {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  LayerResult gz = Create(t.Sub("src"), t.Sub("l.tar.gz"));
  std::string sha = Shell("gzip -dc " + t.Sub("l.tar.gz") + " | sha256sum");
  EXPECT_EQ(sha.substr(0, 64), gz.diff_id.Hex());
  // The gzip header: no mtime, no file name (FLG = 0, MTIME = 0).
  std::string raw = ReadTestFile(t.Sub("l.tar.gz"));
  ASSERT_GT(raw.size(), 10u);
  EXPECT_EQ(raw[3], '\0');
  EXPECT_EQ(raw.substr(4, 4), std::string(4, '\0'));

  std::string listing = Shell("tar -tzf " + t.Sub("l.tar.gz"));
  std::string expect;
  for (auto& e : ListTar(t.Sub("l.tar.gz"))) expect += e.name + "\n";
  EXPECT_EQ(listing, expect);
  std::string verbose = Shell("tar -tvzf " + t.Sub("l.tar.gz") + " bin/tool");
  EXPECT_NE(verbose.find("-rwsr-xr-x"), std::string::npos) << verbose;

  LayerResult zs = Create(t.Sub("src"), t.Sub("l.tar.zst"), {.compression = Compression::kZstd});
  if (!Shell("command -v zstd").empty()) {
    sha = Shell("zstd -dcq " + t.Sub("l.tar.zst") + " | sha256sum");
    EXPECT_EQ(sha.substr(0, 64), zs.diff_id.Hex());
  }
}

TEST(CreateLayer, Deterministic) {
  TempDir t;
  std::string src = t.Sub("src");
  MakeRichTree(src);
  LayerResult a = Create(src, t.Sub("1.tar.gz"));
  LayerResult b = Create(src, t.Sub("2.tar.gz"));
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(ReadTestFile(t.Sub("1.tar.gz")), ReadTestFile(t.Sub("2.tar.gz")));

  // With SOURCE_DATE_EPOCH, touching mtimes (to later times) does not change the output.
  LayerOptions o{.compression = Compression::kGzip, .source_date_epoch = 1000000000};
  LayerResult c = Create(src, t.Sub("3.tar.gz"), o);
  for (auto& p : std::filesystem::recursive_directory_iterator(src)) {
    SetMtime(p.path().string(), 1700000000 + 17);
  }
  LayerResult d = Create(src, t.Sub("4.tar.gz"), o);
  EXPECT_EQ(c.digest, d.digest);
  EXPECT_EQ(c.diff_id, d.diff_id);
  EXPECT_NE(a.diff_id, c.diff_id);
  for (auto& e : ListTar(t.Sub("4.tar.gz"))) EXPECT_EQ(e.mtime, 1000000000) << e.name;

  // Clamped only down: an mtime older than the epoch is kept.
  SetMtime(src + "/z", 500);
  Create(src, t.Sub("5.tar"), {.compression = Compression::kNone, .source_date_epoch = 1000000000});
  auto es = ListTar(t.Sub("5.tar"));
  EXPECT_EQ(Find(es, "a/hard")->mtime, 500);  // z's inode; a/hard holds the data
  EXPECT_EQ(Find(es, "a-b")->mtime, 1000000000);

  // zstd, levels: also reproducible.
  LayerOptions z{.compression = Compression::kZstd, .level = 19};
  EXPECT_EQ(Create(src, t.Sub("6.zst"), z).digest, Create(src, t.Sub("7.zst"), z).digest);
}

TEST(CreateLayer, OverlayUpperWhiteouts) {
  if (!IsRoot()) GTEST_SKIP() << "mknod and trusted.* xattrs need root";
  TempDir t;
  std::string up = t.Sub("upper");
  WriteTestFile(up, "etc/new.conf", "x");
  ASSERT_EQ(::mknod((up + "/etc/gone").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);
  ASSERT_EQ(::mknod((up + "/tty").c_str(), S_IFCHR | 0600, makedev(5, 0)), 0);  // a real device
  WriteTestFile(up, "opq/fresh", "y");
  WriteTestFile(up, "uopq/f", "u");
  ASSERT_TRUE(TrySetXattr(up + "/opq", "trusted.overlay.opaque", "y"));
  bool user_opq = TrySetXattr(up + "/uopq", "user.overlay.opaque", "y");
  TrySetXattr(up + "/etc/new.conf", "trusted.overlay.origin", "zz");

  Create(up, t.Sub("l.tar"), {.compression = Compression::kNone}, DirKind::kOverlayUpper);
  auto es = ListTar(t.Sub("l.tar"));
  std::vector<std::string> expect = {"etc/", "etc/.wh.gone", "etc/new.conf", "opq/",
                                     "opq/.wh..wh..opq", "opq/fresh", "tty", "uopq/"};
  if (user_opq) expect.push_back("uopq/.wh..wh..opq");
  expect.push_back("uopq/f");
  EXPECT_EQ(Names(es), expect);
  const TarEntry* wo = Find(es, "etc/.wh.gone");
  ASSERT_TRUE(wo);
  EXPECT_EQ(wo->type, static_cast<mode_t>(AE_IFREG));
  EXPECT_EQ(wo->size, 0);
  EXPECT_EQ(Find(es, "tty")->type, static_cast<mode_t>(AE_IFCHR));
  for (auto& e : es) {
    for (auto& [k, v] : e.xattrs) EXPECT_FALSE(k.find("overlay") != std::string::npos) << e.name;
  }
  // Plain mode keeps the device as a device.
  Create(up, t.Sub("p.tar"), {.compression = Compression::kNone}, DirKind::kPlain);
  auto ps = ListTar(t.Sub("p.tar"));
  ASSERT_TRUE(Find(ps, "etc/gone"));
  EXPECT_EQ(Find(ps, "etc/gone")->type, static_cast<mode_t>(AE_IFCHR));
  EXPECT_EQ(Find(ps, "opq/.wh..wh..opq"), nullptr);
}

TEST(CreateDiffLayer, AddModifyDelete) {
  TempDir t;
  std::string low = t.Sub("lower"), up = t.Sub("upper");
  WriteTestFile(low, "keep.txt", "same");
  WriteTestFile(low, "mod.txt", "old");
  WriteTestFile(low, "chmod.txt", "c");
  WriteTestFile(low, "del.txt", "bye");
  WriteTestFile(low, "deldir/x", "x");
  WriteTestFile(low, "deldir/y/z", "z");
  WriteTestFile(low, "sub/keep2", "k");
  WriteTestFile(low, "sub/del2", "d");
  WriteTestFile(low, "untouched/a", "a");
  WriteTestFile(low, "typechg", "file becomes dir");
  ::symlink("keep.txt", (low + "/ln").c_str());
  ASSERT_EQ(std::system(("cp -a " + low + " " + up).c_str()), 0);
  WriteTestFile(up, "mod.txt", "new content");
  SetMtime(up + "/mod.txt", 1600000000);
  ::chmod((up + "/chmod.txt").c_str(), 0600);
  std::filesystem::remove(up + "/del.txt");
  std::filesystem::remove_all(up + "/deldir");
  std::filesystem::remove(up + "/sub/del2");
  WriteTestFile(up, "sub/new2", "n2");
  WriteTestFile(up, "new/deep/file", "nd");
  std::filesystem::remove(up + "/typechg");
  WriteTestFile(up, "typechg/inner", "i");
  std::filesystem::remove(up + "/ln");
  ::symlink("mod.txt", (up + "/ln").c_str());

  core::UniqueFd fd = OpenOut(t.Sub("d.tar"));
  auto r = CreateDiffLayer(low, up, fd.get(), {.compression = Compression::kNone});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  auto es = ListTar(t.Sub("d.tar"));
  std::vector<std::string> expect = {".wh.del.txt", ".wh.deldir", "chmod.txt", "ln", "mod.txt",
                                     "new/", "new/deep/", "new/deep/file", "sub/", "sub/.wh.del2",
                                     "sub/new2", "typechg/", "typechg/inner"};
  EXPECT_EQ(Names(es), expect);
  EXPECT_EQ(Find(es, "mod.txt")->data, "new content");
  EXPECT_EQ(Find(es, "chmod.txt")->perm, 0600u);
  EXPECT_EQ(Find(es, "ln")->symlink, "mod.txt");
  EXPECT_EQ(Find(es, ".wh.deldir")->size, 0);

  // Applying the diff onto a copy of lower gives upper.
  ASSERT_EQ(std::system(("cp -a " + low + " " + t.Sub("applied")).c_str()), 0);
  auto ap = Apply(t.Sub("d.tar"), t.Sub("applied"));
  ASSERT_TRUE(ap.ok()) << ap.error().ToString();
  EXPECT_EQ(ap->diff_id, r->diff_id);
  auto want = Snapshot(up), got = Snapshot(t.Sub("applied"));
  ASSERT_EQ(want.size(), got.size());
  for (auto& [k, n] : want) {
    ASSERT_TRUE(got.count(k)) << k;
    EXPECT_EQ(got[k].mode, n.mode) << k;
    EXPECT_EQ(got[k].content, n.content) << k;
  }

  // Same content, same size, whole-second mtimes: content is compared.
  TempDir t2;
  WriteTestFile(t2.Sub("l"), "f", "aaaa");
  WriteTestFile(t2.Sub("u"), "f", "bbbb");
  WriteTestFile(t2.Sub("u"), "g", "same");
  WriteTestFile(t2.Sub("l"), "g", "same");
  for (auto* p : {"l/f", "u/f", "l/g", "u/g", "l", "u"}) SetMtime(t2.Sub(p), 1500000000);
  core::UniqueFd fd2 = OpenOut(t2.Sub("d.tar"));
  ASSERT_TRUE(CreateDiffLayer(t2.Sub("l"), t2.Sub("u"), fd2.get(), {.compression = Compression::kNone}).ok());
  EXPECT_EQ(Names(ListTar(t2.Sub("d.tar"))), std::vector<std::string>{"f"});
}

// =================================== apply ===================================

TEST(ApplyLayer, RoundTrip) {
  TempDir t;
  std::string src = t.Sub("src"), dst = t.Sub("dst");
  bool xattrs = MakeRichTree(src);
  ::mkdir(dst.c_str(), 0755);
  ::chmod((src + "/a").c_str(), 0750);
  SetMtime(src + "/a", 1234567890);
  LayerResult lr = Create(src, t.Sub("l.tar.gz"));
  auto st = Apply(t.Sub("l.tar.gz"), dst);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(st->diff_id, lr.diff_id);
  EXPECT_GT(st->entries, 10u);

  auto want = Snapshot(src), got = Snapshot(dst);
  want.erase("sock");
  ASSERT_EQ(want.size(), got.size());
  for (auto& [k, n] : want) {
    ASSERT_TRUE(got.count(k)) << k;
    const Node& g = got[k];
    EXPECT_EQ(g.mode, n.mode) << k;
    EXPECT_EQ(g.uid, n.uid) << k;
    EXPECT_EQ(g.gid, n.gid) << k;
    EXPECT_EQ(g.content, n.content) << k;
    EXPECT_EQ(g.rdev, n.rdev) << k;
    EXPECT_EQ(g.mtime, n.mtime) << k;  // dirs too: set after their content
    if (xattrs) {
      EXPECT_EQ(g.xattr, n.xattr) << k;
    }
  }
  EXPECT_EQ(got["z"].ino, got["a/hard"].ino);
  EXPECT_NE(got["z"].ino, got["a/b.txt"].ino);
  EXPECT_EQ(got["bin/tool"].mode & 07777, 04755u);
}

TEST(ApplyLayer, ZstdAndPipe) {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  LayerResult lr = Create(t.Sub("src"), t.Sub("l.zst"), {.compression = Compression::kZstd});
  std::string data = ReadTestFile(t.Sub("l.zst"));
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::thread writer([&] {
    (void)core::WriteAll(p[1], data);
    ::close(p[1]);
  });
  ::mkdir(t.Sub("dst").c_str(), 0755);
  auto st = ApplyLayer(p[0], t.Sub("dst"), {});
  writer.join();
  ::close(p[0]);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(st->diff_id, lr.diff_id);
  EXPECT_EQ(ReadTestFile(t.Sub("dst/a/b.txt")), "hello b");
}

TEST(ApplyLayer, WhiteoutsAndOpaqueDirs) {
  TempDir t;
  std::string dst = t.Sub("dst");
  WriteTestFile(dst, "a/old1", "1");
  WriteTestFile(dst, "a/old2/deep", "2");
  WriteTestFile(dst, "b/keep", "k");
  WriteTestFile(dst, "c/x", "x");
  WriteTestFile(dst, "d/lower", "l");
  WriteTestFile(dst, "d/sub/lower", "l");
  WriteTestFile(dst, "e", "file");
  WriteTestFile(dst, "f/g", "g");
  ::symlink("b", (dst + "/lnk").c_str());
  WriteTar(t.Sub("l.tar"), {
      {.name = "a/", .type = 'd', .mode = 0755},
      {.name = "a/.wh..wh..opq"},
      {.name = "a/new", .data = "n"},
      {.name = ".wh.c"},
      {.name = "b/.wh.nothere"},
      {.name = "x/.wh.nothere"},  // missing parent: nothing to do
      // Same-layer entries written before the opaque marker survive it; a re-declared lower
      // dir is emptied of its lower content.
      {.name = "d/", .type = 'd', .mode = 0755},
      {.name = "d/new", .data = "dn"},
      {.name = "d/sub/", .type = 'd', .mode = 0755},
      {.name = "d/sub/new", .data = "sn"},
      {.name = "d/.wh..wh..opq"},
      // Whiteout of something this layer wrote does not delete it.
      {.name = "g", .data = "mine"},
      {.name = ".wh.g"},
      {.name = ".wh.lnk"},  // removes the symlink, not its target
      {.name = "e/", .type = 'd', .mode = 0700},  // file replaced by a dir
      {.name = "f", .data = "dir replaced by file"},
      {.name = ".wh..wh.plnk"},  // AUFS metadata: ignored
  });
  auto st = Apply(t.Sub("l.tar"), dst);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  auto snap = Snapshot(dst);
  std::vector<std::string> names;
  for (auto& [k, v] : snap) names.push_back(k);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "a/new", "b", "b/keep", "d", "d/new", "d/sub",
                                              "d/sub/new", "e", "f", "g"}));
  EXPECT_TRUE(S_ISDIR(snap["e"].mode));
  EXPECT_EQ(snap["e"].mode & 0777, 0700u);
  EXPECT_EQ(snap["f"].content, "dir replaced by file");
  EXPECT_EQ(snap["g"].content, "mine");
  EXPECT_EQ(st->entries, 17u);
}

TEST(ApplyLayer, ExistingDirKeptMetadataUpdated) {
  TempDir t;
  std::string dst = t.Sub("dst");
  WriteTestFile(dst, "d/child", "c");
  ::chmod((dst + "/d").c_str(), 0700);
  WriteTar(t.Sub("l.tar"), {{.name = "d", .type = 'd', .mode = 0751}, {.name = "d/x", .data = "x"}});
  ASSERT_TRUE(Apply(t.Sub("l.tar"), dst).ok());
  EXPECT_EQ(ReadTestFile(dst + "/d/child"), "c");
  struct stat st;
  ASSERT_EQ(::stat((dst + "/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000000);
}

TEST(ApplyLayer, LimitsEntries) {
  TempDir t;
  ::mkdir(t.Sub("dst").c_str(), 0755);
  WriteTar(t.Sub("l.tar"), {{.name = "1"}, {.name = "2"}, {.name = "3"}, {.name = "4"}});
  auto st = Apply(t.Sub("l.tar"), t.Sub("dst"), {.max_entries = 3});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kResourceExhausted);
  EXPECT_FALSE(core::Exists(t.Sub("dst/4")));
}

// ============================== breakout attempts ==============================
//
// Layout: <tmp>/target (the root) and <tmp>/outside holding a sentinel. After each attempt the
// outside dir must hold exactly the sentinel, unchanged, and nothing new may appear in <tmp>.

class Breakout : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(target().c_str(), 0755);
    WriteTestFile(outside(), "sentinel", "precious");
  }
  std::string target() const { return t_.Sub("target"); }
  std::string outside() const { return t_.Sub("outside"); }
  std::string layer() const { return t_.Sub("layer.tar"); }

  core::Result<ApplyStats> ApplySpecs(const std::vector<Spec>& specs) {
    WriteTar(layer(), specs);
    return Apply(layer(), target());
  }

  void ExpectOutsideUntouched() {
    std::vector<std::string> out;
    for (auto& e : std::filesystem::directory_iterator(outside())) out.push_back(e.path().filename());
    EXPECT_EQ(out, std::vector<std::string>{"sentinel"});
    EXPECT_EQ(ReadTestFile(outside() + "/sentinel"), "precious");
    struct stat st;
    ASSERT_EQ(::lstat((outside() + "/sentinel").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u);
    std::vector<std::string> top;
    for (auto& e : std::filesystem::directory_iterator(t_.path())) top.push_back(e.path().filename());
    std::sort(top.begin(), top.end());
    EXPECT_EQ(top, (std::vector<std::string>{"layer.tar", "outside", "target"}));
  }

  static void ExpectRefused(const core::Result<ApplyStats>& r, std::string_view name) {
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().ToString().find(name), std::string::npos) << r.error().ToString();
  }

  TempDir t_;
};

TEST_F(Breakout, DotDotName) {
  auto r = ApplySpecs({{.name = "../x", .data = "pwned"}});
  ExpectRefused(r, "\"../x\"");
  EXPECT_EQ(r.error().code(), Code::kPermissionDenied);
  ExpectOutsideUntouched();
}

TEST_F(Breakout, InnerDotDotName) {
  auto r = ApplySpecs({{.name = "a/../../x", .data = "pwned"}});
  ExpectRefused(r, "\"a/../../x\"");
  EXPECT_EQ(r.error().code(), Code::kPermissionDenied);
  ExpectOutsideUntouched();
  auto r2 = ApplySpecs({{.name = "a/../../outside/sentinel", .data = "pwned"}});
  ExpectRefused(r2, "climbs out");
  ExpectOutsideUntouched();
}

TEST_F(Breakout, AbsoluteNameLandsInside) {
  auto r = ApplySpecs({{.name = "/etc/x", .data = "in"}, {.name = outside() + "/sentinel", .data = "in2"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(ReadTestFile(target() + "/etc/x"), "in");
  EXPECT_EQ(ReadTestFile(target() + outside() + "/sentinel"), "in2");
  ExpectOutsideUntouched();
}

TEST_F(Breakout, SymlinkToAbsoluteOutsideThenWriteThrough) {
  auto r = ApplySpecs({{.name = "evil", .type = 'l', .link = outside()},
                       {.name = "evil/pwned", .data = "pwned"},
                       {.name = "evil/sentinel", .data = "overwritten?"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  // Resolved as if target were "/": lands at target/<outside path>.
  EXPECT_EQ(ReadTestFile(target() + outside() + "/pwned"), "pwned");
  EXPECT_EQ(ReadTestFile(target() + outside() + "/sentinel"), "overwritten?");
  ExpectOutsideUntouched();
}

TEST_F(Breakout, SymlinkDotDotThenWriteThrough) {
  auto r = ApplySpecs({{.name = "evil", .type = 'l', .link = "../../../../.."},
                       {.name = "evil/x", .data = "x"},
                       {.name = "deep/evil2", .type = 'l', .link = "../../outside"},
                       {.name = "deep/evil2/sentinel", .data = "y"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(ReadTestFile(target() + "/x"), "x");  // ".." stops at the root
  EXPECT_EQ(ReadTestFile(target() + "/outside/sentinel"), "y");
  ExpectOutsideUntouched();
}

TEST_F(Breakout, PreexistingSymlinkInTarget) {
  ASSERT_EQ(::symlink(outside().c_str(), (target() + "/evil").c_str()), 0);
  auto r = ApplySpecs({{.name = "evil/sentinel", .data = "pwned"}, {.name = "evil/.wh.sentinel"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ExpectOutsideUntouched();
}

TEST_F(Breakout, HardlinkDotDot) {
  auto r = ApplySpecs({{.name = "l", .type = 'h', .link = "../outside/sentinel"}});
  ExpectRefused(r, "../outside/sentinel");
  EXPECT_EQ(r.error().code(), Code::kPermissionDenied);
  EXPECT_FALSE(core::Exists(target() + "/l"));
  ExpectOutsideUntouched();
}

TEST_F(Breakout, HardlinkAbsolute) {
  auto r = ApplySpecs({{.name = "l", .type = 'h', .link = outside() + "/sentinel"}});
  // Resolved inside the root, where it does not exist: refused, never the real file.
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("hardlink target"), std::string::npos) << r.error().ToString();
  ExpectOutsideUntouched();
  // When it does exist inside the root, the link is to the in-root file.
  WriteTestFile(target() + outside(), "sentinel", "inner");
  auto r2 = ApplySpecs({{.name = "l", .type = 'h', .link = outside() + "/sentinel"}});
  ASSERT_TRUE(r2.ok()) << r2.error().ToString();
  EXPECT_EQ(ReadTestFile(target() + "/l"), "inner");
  ExpectOutsideUntouched();
}

TEST_F(Breakout, HardlinkThroughSymlinkDir) {
  auto r = ApplySpecs({{.name = "d", .type = 'l', .link = outside()},
                       {.name = "l", .type = 'h', .link = "d/sentinel"}});
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(core::Exists(target() + "/l"));
  ExpectOutsideUntouched();
  auto r2 = ApplySpecs({{.name = "d2", .type = 'l', .link = "../outside"},
                        {.name = "l2", .type = 'h', .link = "d2/sentinel"}});
  ASSERT_FALSE(r2.ok());
  ExpectOutsideUntouched();
}

TEST_F(Breakout, HardlinkToSymlinkLinksTheSymlink) {
  auto r = ApplySpecs({{.name = "s", .type = 'l', .link = outside() + "/sentinel"},
                       {.name = "l", .type = 'h', .link = "s"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  struct stat st;
  ASSERT_EQ(::lstat((target() + "/l").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ExpectOutsideUntouched();
}

TEST_F(Breakout, WhiteoutDotDot) {
  auto r = ApplySpecs({{.name = "a/.wh.."}});
  ExpectRefused(r, ".wh..");
  ExpectOutsideUntouched();
  EXPECT_TRUE(core::Exists(target()));
}

TEST_F(Breakout, WhiteoutDotDotDot) {
  WriteTestFile(target(), "a/keep", "k");
  auto r = ApplySpecs({{.name = "a/.wh..."}});
  ExpectRefused(r, ".wh...");
  EXPECT_EQ(ReadTestFile(target() + "/a/keep"), "k");
  ExpectOutsideUntouched();
  auto r2 = ApplySpecs({{.name = ".wh..."}});
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(core::Exists(target() + "/a/keep"));
  ExpectOutsideUntouched();
}

TEST_F(Breakout, WhiteoutInsideSymlinkDir) {
  auto r = ApplySpecs({{.name = "evil", .type = 'l', .link = outside()},
                       {.name = "evil/.wh.sentinel"},
                       {.name = "rel", .type = 'l', .link = "../outside"},
                       {.name = "rel/.wh.sentinel"},
                       {.name = "rel/.wh..wh..opq"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ExpectOutsideUntouched();
}

TEST_F(Breakout, WhiteoutOfSymlinkRemovesLinkOnly) {
  ASSERT_EQ(::symlink(outside().c_str(), (target() + "/evil").c_str()), 0);
  auto r = ApplySpecs({{.name = ".wh.evil"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_FALSE(std::filesystem::is_symlink(target() + "/evil"));
  ExpectOutsideUntouched();
}

TEST_F(Breakout, SymlinkThenFileSameName) {
  auto r = ApplySpecs({{.name = "f", .type = 'l', .link = outside() + "/sentinel"},
                       {.name = "f", .data = "pwned"},
                       {.name = "g", .type = 'l', .link = "../outside/sentinel"},
                       {.name = "g", .data = "pwned2"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_FALSE(std::filesystem::is_symlink(target() + "/f"));
  EXPECT_EQ(ReadTestFile(target() + "/f"), "pwned");
  EXPECT_EQ(ReadTestFile(target() + "/g"), "pwned2");
  ExpectOutsideUntouched();
}

TEST_F(Breakout, SymlinkThenDirSameName) {
  auto r = ApplySpecs({{.name = "d", .type = 'l', .link = outside()},
                       {.name = "d", .type = 'd', .mode = 0777},
                       {.name = "d/sentinel", .data = "pwned"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_TRUE(std::filesystem::is_directory(std::filesystem::symlink_status(target() + "/d")));
  ExpectOutsideUntouched();
  struct stat st;
  ASSERT_EQ(::stat(outside().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);  // the dir's mode went to the new dir, not outside
}

// ============================== bad input ==============================

TEST(ApplyLayer, DecompressionBomb) {
  TempDir t;
  std::string src = t.Sub("src");
  ::mkdir(src.c_str(), 0755);
  {
    core::UniqueFd f = OpenOut(src + "/zeros");
    ASSERT_EQ(::ftruncate(f.get(), 200 << 20), 0);  // 200 MB of zeros (sparse on disk)
  }
  LayerResult lr = Create(src, t.Sub("bomb.tar.gz"), {.compression = Compression::kGzip, .level = 1});
  EXPECT_LT(lr.size, 2 << 20);
  ::mkdir(t.Sub("dst").c_str(), 0755);
  auto st = Apply(t.Sub("bomb.tar.gz"), t.Sub("dst"), {.max_uncompressed_bytes = 10 << 20});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Code::kResourceExhausted) << st.error().ToString();
  EXPECT_LE(core::DiskUsage(t.Sub("dst")), 10u << 20);

  // Many files, each under the limit: stopped by the running total, partial file removed.
  std::vector<Spec> specs;
  for (int i = 0; i < 30; ++i) specs.push_back({.name = "f" + std::to_string(i), .size = 1 << 20});
  WriteTar(t.Sub("many.tar.gz"), specs, /*gzip=*/true);
  ::mkdir(t.Sub("dst2").c_str(), 0755);
  auto st2 = Apply(t.Sub("many.tar.gz"), t.Sub("dst2"), {.max_uncompressed_bytes = 10 << 20});
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.error().code(), Code::kResourceExhausted) << st2.error().ToString();
  EXPECT_LE(core::DiskUsage(t.Sub("dst2")), 10u << 20);

  // The stream bound alone (ComputeDiffId has none; apply does).
  core::UniqueFd fd = OpenIn(t.Sub("bomb.tar.gz"));
  auto id = ComputeDiffId(fd.get());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, lr.diff_id);
}

TEST(ApplyLayer, TruncatedGzip) {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  Create(t.Sub("src"), t.Sub("l.tar.gz"));
  std::string raw = ReadTestFile(t.Sub("l.tar.gz"));
  WriteTestFile(t.path(), "half.tar.gz", raw.substr(0, raw.size() / 2));
  ::mkdir(t.Sub("dst").c_str(), 0755);
  auto st = Apply(t.Sub("half.tar.gz"), t.Sub("dst"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().ToString().find("apply layer: truncated tar"), std::string::npos)
      << st.error().ToString();
}

TEST(ApplyLayer, TruncatedTar) {
  TempDir t;
  MakeRichTree(t.Sub("src"));
  Create(t.Sub("src"), t.Sub("l.tar"), {.compression = Compression::kNone});
  std::string raw = ReadTestFile(t.Sub("l.tar"));
  WriteTestFile(t.path(), "half.tar", raw.substr(0, raw.size() / 2 + 100));
  ::mkdir(t.Sub("dst").c_str(), 0755);
  auto st = Apply(t.Sub("half.tar"), t.Sub("dst"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().ToString().find("apply layer: truncated tar"), std::string::npos)
      << st.error().ToString();
}

TEST(ApplyLayer, NotATar) {
  TempDir t;
  std::mt19937 rng(42);
  std::string junk(65536, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  junk[0] = 'J';  // not a gzip/zstd magic
  WriteTestFile(t.path(), "junk", junk);
  ::mkdir(t.Sub("dst").c_str(), 0755);
  auto st = Apply(t.Sub("junk"), t.Sub("dst"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().ToString().find("apply layer: not a tar archive"), std::string::npos)
      << st.error().ToString();
  EXPECT_TRUE(std::filesystem::is_empty(t.Sub("dst")));

  // An empty stream is an empty layer; a lone gzip magic is a truncated one.
  WriteTestFile(t.path(), "empty", "");
  auto e = Apply(t.Sub("empty"), t.Sub("dst"));
  ASSERT_TRUE(e.ok()) << e.error().ToString();
  EXPECT_EQ(e->entries, 0u);
  EXPECT_EQ(e->diff_id, core::Digest::Of(""));
  WriteTestFile(t.path(), "magic", "\x1f\x8b");
  auto m = Apply(t.Sub("magic"), t.Sub("dst"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().ToString().find("truncated"), std::string::npos) << m.error().ToString();

  // gzip magic then garbage.
  WriteTestFile(t.path(), "badgz", "\x1f\x8b" + junk);
  auto st2 = Apply(t.Sub("badgz"), t.Sub("dst"));
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.error().ToString().find("apply layer: bad gzip data"), std::string::npos)
      << st2.error().ToString();
}

}  // namespace
}  // namespace xbuild::image
