// The on-disk formats of kept containers: the json-file log and the record.
#include <gtest/gtest.h>

#include "core/fs.h"
#include "core/strings.h"
#include "exec/container.h"
#include "exec/container_log.h"
#include "unit/test_util.h"

namespace xbuild::exec {
namespace {

std::vector<LogEntry> ReadEntries(const std::string& path) {
  std::vector<LogEntry> out;
  for (const std::string& line : core::Split(testing::ReadTestFile(path), '\n')) {
    if (auto e = ParseLogLine(line)) out.push_back(*e);
  }
  return out;
}

TEST(JsonFileLogTest, OneEntryPerLineAcrossChunksAndStreams) {
  testing::TempDir tmp;
  std::string path = tmp.Sub("c-json.log");
  {
    auto log = JsonFileLog::Open(path);
    ASSERT_TRUE(log.ok()) << log.error().ToString();
    log->Write(1, "hel");
    log->Write(2, "oops\n");
    log->Write(1, "lo\nwor");
    log->Write(1, "ld\nno newline");
    log->Flush();
  }
  std::vector<LogEntry> e = ReadEntries(path);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].stream, 2);
  EXPECT_EQ(e[0].log, "oops\n");
  EXPECT_EQ(e[1].stream, 1);
  EXPECT_EQ(e[1].log, "hello\n");
  EXPECT_EQ(e[2].log, "world\n");
  EXPECT_EQ(e[3].log, "no newline");
  // RFC3339Nano in UTC: 2024-05-01T10:00:00.123456789Z
  ASSERT_EQ(e[0].time.size(), 30u) << e[0].time;
  EXPECT_EQ(e[0].time[10], 'T');
  EXPECT_EQ(e[0].time.back(), 'Z');
  EXPECT_LE(e[0].time, e[3].time);
}

TEST(JsonFileLogTest, InvalidUtf8IsReplacedNotDropped) {
  testing::TempDir tmp;
  std::string path = tmp.Sub("c-json.log");
  {
    auto log = JsonFileLog::Open(path);
    ASSERT_TRUE(log.ok());
    log->Write(1, std::string("a\xff" "b\n"));
  }
  std::vector<LogEntry> e = ReadEntries(path);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].log, "a\xEF\xBF\xBD" "b\n");
}

TEST(JsonFileLogTest, TornOrForeignLinesAreSkipped) {
  EXPECT_FALSE(ParseLogLine("{\"log\":\"x").has_value());
  EXPECT_FALSE(ParseLogLine("[1,2]").has_value());
  auto e = ParseLogLine(R"({"log":"x\n","stream":"stderr","time":"t"})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->stream, 2);
}

TEST(ContainerRecordTest, JsonRoundTrip) {
  ContainerRecord r;
  r.id = std::string(64, 'a');
  r.name = "web";
  r.image = "base:1";
  r.snapshot = "0123456789abcdef";
  r.entrypoint = {"/bin/sh", "-c"};
  r.cmd = {"sleep 1"};
  r.process.args = {"/bin/sh", "-c", "sleep 1"};
  r.process.env = {"A=1"};
  r.process.cwd = "/work";
  r.process.user = "1000:1000";
  r.network = Network::kNone;
  r.auto_remove = true;
  r.stop_signal = "SIGUSR1";
  r.stop_timeout = 3;
  r.status = kStatusExited;
  r.exit_code = 3;
  r.finished_at = NowRfc3339Nano();
  auto back = RecordFromJson(RecordToJson(r));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(RecordToJson(*back), RecordToJson(r));
  EXPECT_FALSE(RecordFromJson(core::Json::object()).ok());
}

TEST(ContainerRecordTest, StartFailureCodesAreDockers) {
  using core::Code;
  using core::Error;
  EXPECT_EQ(StartFailureCode(Error(Code::kFailedPrecondition, "exec: \"x\": executable file not found in $PATH")), 127);
  EXPECT_EQ(StartFailureCode(Error(Code::kFailedPrecondition, "exec /etc: permission denied")), 126);
  EXPECT_EQ(StartFailureCode(Error(Code::kFailedPrecondition, "mount: invalid argument")), 125);
}

}  // namespace
}  // namespace xbuild::exec
