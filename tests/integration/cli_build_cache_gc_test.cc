// Build-cache garbage collection end to end (as root, real runc; docker-registry for the pull):
// `builder prune` without and with -a, --keep-storage, --filter until=, the config file's
// builder.gc after a build, `system df [-v]`, prunes beside a build in flight (its base image,
// its earlier steps and its image survive, and the image is right), and `system prune -a -f`
// on an idle root leaving the content store, the snapshots and every DB table empty.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "core/digest.h"
#include "core/fs.h"
#include "integration/build_fixture.h"

namespace xbuild {
namespace {

using testing::ToolOut;
using testing::WriteTestFile;

namespace fs = std::filesystem;

class CliBuildCacheGcTest : public testing::BuildTest {
 protected:
  // Builds `dockerfile` from its own context directory; plain progress in .err.
  ToolOut Build(const std::string& name, const std::string& dockerfile, std::vector<std::string> extra = {}) {
    std::string dir = tmp_.Sub("ctx-" + name);
    WriteTestFile(dir, "Dockerfile", dockerfile);
    std::vector<std::string> args = {"build", "--progress=plain"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(dir);
    return Xb(args);
  }

  // Rows of a metadata.db table.
  int64_t Rows(const std::string& table) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((root_ + "/metadata.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    std::string sql = "SELECT COUNT(*) FROM " + table;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    int64_t n = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
  }

  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((root_ + "/metadata.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // Snapshot directories (snapshots/locks holds lock files, not snapshots).
  size_t SnapshotDirs() {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ + "/snapshots", ec)) n += e.path().filename() != "locks";
    return n;
  }

  static std::vector<std::string> DeletedIds(const std::string& out) {
    std::vector<std::string> ids;
    auto lines = core::Split(out, '\n');
    bool in = false;
    for (const auto& l : lines) {
      if (l == "Deleted build cache objects:") {
        in = true;
      } else if (l.empty()) {
        in = false;
      } else if (in) {
        ids.push_back(l);
      }
    }
    return ids;
  }

  std::string CacheMountData(const std::string& id) {
    return root_ + "/cache-mounts/" + core::Digest::Of(id).Hex().substr(0, 32) + "-0/data";
  }

  const std::string kKeep = "FROM base:1\nRUN echo keep > /keep\n";
  const std::string kDrop = "FROM base:1\nRUN echo drop > /drop\n";
  const std::string kMount = "FROM base:1\nRUN --mount=type=cache,id=gc-cm,target=/c sh -c 'echo x > /c/f'\n";
};

TEST_F(CliBuildCacheGcTest, BuilderPruneDanglingThenAll) {
  ASSERT_EQ(Build("keep", kKeep, {"-t", "keep:1"}).code, 0);
  ASSERT_EQ(Build("drop", kDrop, {"-t", "drop:1"}).code, 0);
  ASSERT_EQ(Build("mount", kMount).code, 0);
  ASSERT_TRUE(fs::exists(CacheMountData("gc-cm") + "/f"));
  ASSERT_EQ(Xb({"rmi", "drop:1"}).code, 0);  // its step's result is dangling build cache now

  ToolOut p = Xb({"builder", "prune", "-f"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("Deleted build cache objects:"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("Total reclaimed space: "), std::string::npos) << p.out;
  // The dangling step and the cache mount went; what keep:1 (and base:1) is made of stayed.
  EXPECT_FALSE(fs::exists(CacheMountData("gc-cm"))) << p.out;
  ToolOut keep = Build("keep", kKeep, {"-t", "keep:1"});
  EXPECT_TRUE(testing::StepCached(keep.err, "RUN echo keep > /keep")) << keep.err;
  ToolOut drop = Build("drop", kDrop, {"-t", "drop:1"});
  EXPECT_TRUE(testing::StepRan(drop.err, "RUN echo drop > /drop")) << drop.err;
  EXPECT_EQ(Xb({"run", "--rm", "keep:1", "sh", "-c", "cat /keep"}).out, "keep\n");

  // Again: the only dangling cache is drop's fresh result (every other step is part of an
  // image, tagged or not).
  ASSERT_EQ(Xb({"rmi", "drop:1"}).code, 0);
  p = Xb({"builder", "prune", "-f"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(DeletedIds(p.out).size(), 1u) << p.out;

  // -a: everything not in use, even what images share; the images themselves stay and work.
  p = Xb({"builder", "prune", "-a", "-f"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_GE(DeletedIds(p.out).size(), 2u) << p.out;  // keep's step and base's unpacked layers
  EXPECT_EQ(SnapshotDirs(), 0u);
  EXPECT_EQ(Rows("cache_records"), 0);
  EXPECT_EQ(Xb({"run", "--rm", "keep:1", "sh", "-c", "cat /keep"}).out, "keep\n");
  keep = Build("keep", kKeep, {"-t", "keep:1"});
  EXPECT_TRUE(testing::StepRan(keep.err, "RUN echo keep > /keep")) << keep.err;

  // buildx's spelling prints its table and "Total:".
  ASSERT_EQ(Xb({"rmi", "keep:1"}).code, 0);
  ToolOut bx = Xb({"buildx", "prune", "-f"});
  ASSERT_EQ(bx.code, 0) << bx.err;
  EXPECT_NE(bx.out.find("ID"), std::string::npos) << bx.out;
  EXPECT_NE(bx.out.find("RECLAIMABLE"), std::string::npos) << bx.out;
  EXPECT_NE(bx.out.find("Total:\t"), std::string::npos) << bx.out;
}

TEST_F(CliBuildCacheGcTest, KeepStorageDropsLeastRecentlyUsedFirst) {
  // Three dangling steps of 1 MiB each (no tag: their images are removed afterwards).
  auto dockerfile = [](const std::string& n) {
    return "FROM base:1\nRUN sh -c 'i=0; while [ $i -lt 1024 ]; do printf \"%01023d\\n\" 0; i=$((i+1)); done > /" + n +
           "'\n";
  };
  for (const char* n : {"a", "b", "c"}) {
    ToolOut b = Build(n, dockerfile(n), {"-t", std::string("ks-") + n + ":1"});
    ASSERT_EQ(b.code, 0) << b.err;
    ASSERT_EQ(Xb({"rmi", std::string("ks-") + n + ":1"}).code, 0);
  }
  // Used a, then b, then c, a minute apart (records were stored in that order).
  Sql("UPDATE cache_records SET last_used_unix = CAST(strftime('%s','now') AS INTEGER) - 10800 + rowid * 60");
  // Everything the build cache weighs, less half a step: exactly the least recently used step
  // has to go.
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/snapshots", ec)) {
    if (e.path().filename() != "locks") total += static_cast<int64_t>(core::DiskUsage(e.path().string()));
  }
  ToolOut p = Xb({"builder", "prune", "-f", "--keep-storage", std::to_string(total - (512 << 10))});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(DeletedIds(p.out).size(), 1u) << p.out;
  for (const char* n : {"c", "b"}) {
    ToolOut r = Build(n, dockerfile(n));
    EXPECT_TRUE(testing::StepCached(r.err, std::string("done > /") + n + "'")) << r.err;
  }
  ToolOut a = Build("a", dockerfile("a"));
  EXPECT_TRUE(testing::StepRan(a.err, "done > /a'")) << "the least recently used step goes first\n" << a.err;

  // Sizes as Docker spells them; a bad one is named.
  ToolOut ok = Xb({"builder", "prune", "-f", "--keep-storage", "1.5g"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_TRUE(DeletedIds(ok.out).empty()) << ok.out;
  ToolOut bad = Xb({"builder", "prune", "-f", "--keep-storage", "12XB"});
  EXPECT_EQ(bad.code, 125);
  EXPECT_NE(bad.err.find("'12XB'"), std::string::npos) << bad.err;
}

TEST_F(CliBuildCacheGcTest, FilterUntilTakesOnlyOldCache) {
  ASSERT_EQ(Build("old", "FROM base:1\nRUN echo old > /old\n").code, 0);
  // Age everything by two days, then use base:1 again with a new step.
  Sql("UPDATE cache_records SET last_used_unix = last_used_unix - 172800, created_unix = created_unix - 172800");
  Sql("UPDATE snapshots SET created_unix = created_unix - 172800");
  ASSERT_EQ(Build("new", "FROM base:1\nRUN echo new > /new\n").code, 0);

  ToolOut none = Xb({"builder", "prune", "-a", "-f", "--filter", "until=72h"});
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_TRUE(DeletedIds(none.out).empty()) << none.out;

  ToolOut p = Xb({"builder", "prune", "-a", "-f", "--filter", "until=24h"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(DeletedIds(p.out).size(), 1u) << "only the old step: base:1 was used by the new build\n" << p.out;
  ToolOut n = Build("new", "FROM base:1\nRUN echo new > /new\n");
  EXPECT_TRUE(testing::StepCached(n.err, "RUN echo new > /new")) << n.err;
  ToolOut o = Build("old", "FROM base:1\nRUN echo old > /old\n");
  EXPECT_TRUE(testing::StepRan(o.err, "RUN echo old > /old")) << o.err;

  for (const char* bad : {"until=abc", "label=x", "until"}) {
    ToolOut b = Xb({"builder", "prune", "-f", "--filter", bad});
    EXPECT_EQ(b.code, 125) << bad;
    EXPECT_NE(b.err.find(std::string("'") + bad + "'"), std::string::npos) << b.err;
  }
}

TEST_F(CliBuildCacheGcTest, AutomaticGcAfterBuild) {
  std::string config = tmp_.Sub("config.json");
  WriteTestFile(tmp_.path(), "config.json",
                R"({"builder":{"gc":{"enabled":true,"policy":[{"keepStorage":"1B","all":true}]}}})");
  ASSERT_EQ(Build("keep", kKeep, {"-t", "keep:1"}).code, 0);  // no GC config yet
  // A build with the policy: everything it does not hold itself goes, and it says so.
  WriteTestFile(tmp_.Sub("ctx-drop"), "Dockerfile", kDrop);
  ToolOut b = Xb({"--config", config, "build", "--progress=plain", "-t", "drop:1", tmp_.Sub("ctx-drop")});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("Build cache garbage collection (builder.gc): deleted "), std::string::npos) << b.err;
  ToolOut keep = Build("keep", kKeep, {"-t", "keep:1"});
  EXPECT_TRUE(testing::StepRan(keep.err, "RUN echo keep > /keep")) << keep.err;
  // What the build itself held stayed: its own step is cached.
  ToolOut again = Build("drop", kDrop);
  EXPECT_TRUE(testing::StepCached(again.err, "RUN echo drop > /drop")) << again.err;

  // Nothing to delete: no message, unless --debug.
  WriteTestFile(tmp_.path(), "config.json", R"({"builder":{"gc":{"defaultKeepStorage":"100GB"}}})");
  b = Xb({"--config", config, "build", "--progress=plain", tmp_.Sub("ctx-drop")});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.err.find("garbage collection"), std::string::npos) << b.err;
  b = Xb({"--config", config, "--debug", "build", "--progress=plain", tmp_.Sub("ctx-drop")});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("Build cache garbage collection (builder.gc): deleted 0 objects"), std::string::npos) << b.err;

  // A bad policy fails the build before it starts, naming the value.
  WriteTestFile(tmp_.path(), "config.json", R"({"builder":{"gc":{"defaultKeepStorage":"lots"}}})");
  b = Xb({"--config", config, "build", "--progress=plain", tmp_.Sub("ctx-drop")});
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("builder.gc.defaultKeepStorage: invalid size: 'lots'"), std::string::npos) << b.err;
}

TEST_F(CliBuildCacheGcTest, SystemDf) {
  ASSERT_EQ(Build("keep", kKeep, {"-t", "keep:1"}).code, 0);
  ASSERT_EQ(Build("mount", kMount).code, 0);
  ASSERT_EQ(Xb({"run", "--name", "df-c", "keep:1", "sh", "-c", "echo hi > /hi"}).code, 0);

  ToolOut df = Xb({"system", "df"});
  ASSERT_EQ(df.code, 0) << df.err;
  auto lines = core::Split(df.out, '\n');
  ASSERT_GE(lines.size(), 5u) << df.out;
  EXPECT_TRUE(lines[0].starts_with("TYPE")) << df.out;
  for (const char* col : {"TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"}) EXPECT_NE(lines[0].find(col), std::string::npos);
  EXPECT_TRUE(lines[1].starts_with("Images ")) << df.out;
  EXPECT_TRUE(lines[2].starts_with("Containers ")) << df.out;
  EXPECT_TRUE(lines[3].starts_with("Local Volumes ")) << df.out;
  EXPECT_TRUE(lines[4].starts_with("Build Cache ")) << df.out;
  // keep:1 and the mount build's image; one of them made the container.
  auto cells = core::Split(lines[1], ' ');
  cells.erase(std::remove(cells.begin(), cells.end(), ""), cells.end());
  ASSERT_GE(cells.size(), 3u);
  EXPECT_EQ(cells[1], "3") << df.out;  // base:1, keep:1, the mount build's image
  EXPECT_EQ(cells[2], "1") << df.out;

  ToolOut v = Xb({"system", "df", "-v"});
  ASSERT_EQ(v.code, 0) << v.err;
  for (const char* want : {"Images space usage:", "Containers space usage:", "Local Volumes space usage:",
                           "Build cache usage: ", "CACHE ID", "CACHE TYPE", "LAST USED", "USAGE", "SHARED",
                           "exec.cachemount", "regular", "df-c"}) {
    EXPECT_NE(v.out.find(want), std::string::npos) << want << "\n" << v.out;
  }
  // What -v lists is what prune deletes, by the same ids.
  ToolOut p = Xb({"builder", "prune", "-a", "-f"});
  ASSERT_EQ(p.code, 0) << p.err;
  for (const auto& id : DeletedIds(p.out)) EXPECT_NE(v.out.find(id), std::string::npos) << id << "\n" << v.out;
}

TEST_F(CliBuildCacheGcTest, PrunesBesideABuildLeaveWhatItHolds) {
  const std::string first = "FROM base:1\nRUN echo one > /one\n";
  ASSERT_EQ(Build("first", first).code, 0);
  // The same first step, then one that waits for the test to open its gate (a cache mount the
  // prunes cannot take: the step holds its lock).
  std::string dir = tmp_.Sub("ctx-slow");
  WriteTestFile(dir, "Dockerfile",
                first + "RUN --mount=type=cache,id=gate,target=/gate sh -c "
                        "'while [ ! -e /gate/go ]; do sleep 1; done; echo two > /two'\n");
  pid_t pid = SpawnXbuild({"build", "-t", "app:1", dir});
  ASSERT_TRUE(WaitForRunningStep());

  ToolOut bp = Xb({"builder", "prune", "-a", "-f"});
  EXPECT_EQ(bp.code, 0) << bp.err;
  ToolOut sp = Xb({"system", "prune", "-a", "-f"});
  EXPECT_EQ(sp.code, 0) << sp.err;
  EXPECT_EQ(Xb({"inspect", "base:1"}).code, 0) << "the build's base image was removed under it\n" << sp.out;

  WriteTestFile(CacheMountData("gate"), "go", "");
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ToolOut run = Xb({"run", "--rm", "app:1", "sh", "-c", "cat /one /two"});
  EXPECT_EQ(run.out, "one\ntwo\n") << run.err;
  // The earlier step's result survived both prunes.
  ToolOut again = Build("first", first);
  EXPECT_TRUE(testing::StepCached(again.err, "RUN echo one > /one")) << again.err;
}

TEST_F(CliBuildCacheGcTest, PrunesBesideAPullLeaveWhatItHolds) {
  testing::RegistryProcess reg;
  ASSERT_NO_FATAL_FAILURE(reg.Start(tmp_.Sub("registry")));
  ASSERT_EQ(Xb({"tag", "base:1", reg.host() + "/gc/pulled:1"}).code, 0);
  ASSERT_EQ(Xb({"push", reg.host() + "/gc/pulled:1"}).code, 0);
  ASSERT_EQ(Xb({"rmi", reg.host() + "/gc/pulled:1"}).code, 0);
  ASSERT_EQ(Xb({"rmi", "base:1"}).code, 0);  // nothing in the store holds those blobs now
  // A front for the registry that holds blob downloads until the test lets them go.
  std::atomic<bool> go{false}, held{false};
  testing::TestHttpServer front;
  ASSERT_NO_FATAL_FAILURE(front.Start("127.0.0.1", [&](const testing::HttpRequest& r) {
    if (r.target.find("/blobs/") != std::string::npos) {
      held = true;
      while (!go) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return testing::TestHttpServer::Forward(reg.host(), r);
  }));
  std::string ref = front.host() + "/gc/pulled:1";
  pid_t pid = SpawnXbuild({"pull", ref});
  for (int i = 0; i < 3000 && !held; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(held) << "the pull never asked for a blob";

  ToolOut sp = Xb({"system", "prune", "-a", "-f"});
  EXPECT_EQ(sp.code, 0) << sp.err;
  ToolOut bp = Xb({"builder", "prune", "-a", "-f"});
  EXPECT_EQ(bp.code, 0) << bp.err;
  go = true;
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ToolOut run = Xb({"run", "--rm", ref, "sh", "-c", "cat /etc/hello"});
  EXPECT_EQ(run.out, "hello from xbuild\n") << run.err;
  EXPECT_EQ(Rows("leases"), 0);
}

TEST_F(CliBuildCacheGcTest, SystemPruneAllEmptiesAnIdleRoot) {
  testing::RegistryProcess reg;
  ASSERT_NO_FATAL_FAILURE(reg.Start(tmp_.Sub("registry")));
  std::string ref = reg.host() + "/gc/base:1";
  ASSERT_EQ(Xb({"tag", "base:1", ref}).code, 0);
  ASSERT_EQ(Xb({"push", ref}).code, 0);
  ASSERT_EQ(Xb({"rmi", ref}).code, 0);
  ASSERT_EQ(Xb({"rmi", "base:1"}).code, 0);
  ToolOut pull = Xb({"pull", ref});
  ASSERT_EQ(pull.code, 0) << pull.err;
  ASSERT_EQ(Xb({"tag", ref, "base:1"}).code, 0);
  ToolOut b = Build("keep", kKeep, {"-t", "keep:1", "--cache-to", "type=local,dest=" + tmp_.Sub("cache-out")});
  ASSERT_EQ(b.code, 0) << b.err;
  ASSERT_EQ(Build("mount", kMount).code, 0);
  ASSERT_EQ(Build("drop", kDrop, {"--output", "type=oci,dest=" + tmp_.Sub("drop.tar")}).code, 0);
  ToolOut stopped = Xb({"run", "--name", "stopped", "-v", "gc-named:/named", "-v", "/anon", "keep:1", "sh", "-c",
                        "echo hi > /hi; echo v > /named/v; echo a > /anon/a"});
  ASSERT_EQ(stopped.code, 0) << stopped.err;
  ASSERT_EQ(Xb({"volume", "create", "gc-idle"}).code, 0);
  ASSERT_EQ(Xb({"run", "--rm", "keep:1", "sh", "-c", "true"}).code, 0);
  ASSERT_GT(Rows("blob_sources"), 0);
  ASSERT_GT(Rows("cache_records"), 0);

  // Without -f it asks first; "n" keeps everything.
  ToolOut no = testing::RunTool({"sh", "-c", "echo n | " + std::string(XBUILD_BINARY) + " --root " + root_ + " system prune -a"});
  EXPECT_NE(no.out.find("WARNING! This will remove:"), std::string::npos) << no.out;
  EXPECT_NE(no.out.find("all build cache"), std::string::npos) << no.out;
  EXPECT_GT(Rows("images"), 0);

  ToolOut p = Xb({"system", "prune", "-a", "-f", "--volumes"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("Deleted Volumes:\n"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("\ngc-named\n"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("\ngc-idle\n"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("Deleted Containers:"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("Deleted Images:"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("Deleted build cache objects:"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("Total reclaimed space: "), std::string::npos) << p.out;

  std::error_code ec;
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ + "/content/blobs/sha256", ec), {}), 0);
  EXPECT_EQ(SnapshotDirs(), 0u);
  EXPECT_FALSE(fs::exists(CacheMountData("gc-cm")));
  EXPECT_EQ(Xb({"volume", "ls", "-q"}).out, "");  // named, anonymous and idle volumes all went
  for (const char* table : {"images", "tags", "blob_refs", "snapshots", "cache_records", "blob_variants", "leases",
                            "lease_resources", "blob_sources"}) {
    EXPECT_EQ(Rows(table), 0) << table;
  }
  ToolOut df = Xb({"system", "df"});
  EXPECT_NE(df.out.find("Build Cache     0"), std::string::npos) << df.out;
}

}  // namespace
}  // namespace xbuild
