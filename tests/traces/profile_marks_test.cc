// The chunkflow marks of a profile (traces/profile_marks.h): the grammar of their names, and
// reading them from Kineto traces (CPU ranges and their device copies), legacy lists and
// gzip files, with malformed marks refused at their event and unknown names counted.
#include "traces/profile_marks.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include "tests/support/subprocess.h"
#include "tests/traces/profile_builder.h"
#include "traces/profile.h"

namespace cf {
namespace {

using test::ProfileBuilder;
using Result = ParsedMark::Result;

MarkOp compute(Pass pass, int chunk, int model_chunk = 0) {
  return {OpKind::kCompute, pass, chunk, model_chunk};
}

TEST(MarkNames, OpsOfThePlan) {
  const std::vector<std::pair<std::string, MarkOp>> cases = {
      {"chunkflow:F:chunk=12", compute(Pass::kForward, 12)},
      {"chunkflow:F*:chunk=0", compute(Pass::kForwardKeepKV, 0)},
      {"chunkflow:R:chunk=7:mc=1", compute(Pass::kRecompute, 7, 1)},
      {"chunkflow:B:mc=3:chunk=987", compute(Pass::kBackward, 987, 3)},
      {"chunkflow:send:chunk=4", {OpKind::kSend, std::nullopt, 4, 0}},
      {"chunkflow:recv:chunk=4:mc=2", {OpKind::kRecv, std::nullopt, 4, 2}},
      {"chunkflow:optimizer", {OpKind::kOptimizer, std::nullopt, -1, 0}},
      {"chunkflow:dp_reduce", {OpKind::kDpReduce, std::nullopt, -1, 0}},
  };
  for (const auto& [name, op] : cases) {
    const ParsedMark parsed = parse_mark(name);
    EXPECT_EQ(parsed.result, Result::kOp) << name << ": " << parsed.why;
    EXPECT_EQ(parsed.op, op) << name;
    const std::string back = mark_name(op);  // its canonical name reads back the same
    EXPECT_EQ(parse_mark(back).op, op) << back;
  }
  EXPECT_EQ(mark_name(compute(Pass::kForwardKeepKV, 3, 1)), "chunkflow:F*:chunk=3:mc=1");
}

TEST(MarkNames, MalformedAndUnknown) {
  const std::vector<std::pair<std::string, std::string>> malformed = {
      {"chunkflow:Q:chunk=x", "unknown op \"Q\""},
      {"chunkflow:F:chunk=x", "chunk: expected a count"},
      {"chunkflow:F:chunk=-1", "chunk: expected a count"},
      {"chunkflow:B:chunk=+3", "chunk: expected a count"},
      {"chunkflow:F:chunk=1234567890", "chunk: expected a count"},
      {"chunkflow:F", "F needs chunk=C"},
      {"chunkflow:send:mc=1", "send needs chunk=C"},
      {"chunkflow:F:chunk=1:chunk=2", "chunk given twice"},
      {"chunkflow:F:chunk=1:layer=2", "expected chunk=C or mc=M, got \"layer=2\""},
      {"chunkflow:B:chunk=1:", "expected chunk=C or mc=M, got \"\""},
      {"chunkflow:optimizer:chunk=1", "optimizer takes no fields"},
      {"chunkflow:loss:mc=0", "unknown op \"loss\""},
  };
  for (const auto& [name, why] : malformed) {
    const ParsedMark parsed = parse_mark(name);
    EXPECT_EQ(parsed.result, Result::kMalformed) << name;
    EXPECT_NE(parsed.why.find(why), std::string::npos) << name << ": " << parsed.why;
  }
  for (const char* name : {"chunkflow:", "chunkflow:loss", "chunkflow:data:load", "chunkflow:f"}) {
    EXPECT_EQ(parse_mark(name).result, Result::kUnknown) << name;
  }
}

// The marks read_profile keeps of a profile with this text.
StatusOr<ProfileMarks> marks_of_file(const std::string& path) {
  CF_ASSIGN_OR_RETURN(RankProfile profile, read_profile(path, 0));
  return profile.marks;
}
StatusOr<ProfileMarks> marks_of(const std::string& text, const std::string& name = "p.json") {
  test::TempDir dir;
  return marks_of_file(dir.write(name, text));
}

TEST(ProfileMarks, KinetoCpuRangesAndDeviceCopies) {
  ProfileBuilder p;
  p.step(1, 0, 1000);                               // [0] not a mark
  p.mark("chunkflow:B:chunk=2", 300, 40);           // [1]
  p.mark("chunkflow:F:chunk=2:mc=1", 100, 50);      // [2]
  p.gpu_mark("chunkflow:F:chunk=2:mc=1", 120, 45);  // [3]
  p.mark("chunkflow:loss", 150, 1);                 // [4] unknown
  p.mark("chunkflow:loss", 160, 1);                 // [5] unknown
  p.cpu_op("aten::mm", 101, 5);                     // [6] not a mark
  p.raw(R"({"ph": "X", "cat": "python_function", "name": "chunkflow:Q:chunk=x", "ts": 1, )"
        R"("dur": 1, "pid": 1, "tid": 1})");  // [7] not the range itself
  p.raw(R"({"ph": "i", "cat": "user_annotation", "name": "chunkflow:F:chunk=9", "ts": 1})");
  StatusOr<ProfileMarks> marks = marks_of(p.json());
  ASSERT_TRUE(marks.ok()) << marks.status().message();
  ASSERT_EQ(marks->cpu.size(), 2u);  // by start
  EXPECT_EQ(marks->cpu[0], (ProfileMark{compute(Pass::kForward, 2, 1), 100'000, 150'000, 2}));
  EXPECT_EQ(marks->cpu[1], (ProfileMark{compute(Pass::kBackward, 2), 300'000, 340'000, 1}));
  ASSERT_EQ(marks->device.size(), 1u);
  EXPECT_EQ(marks->device[0], (ProfileMark{compute(Pass::kForward, 2, 1), 120'000, 165'000, 3}));
  EXPECT_EQ(marks->unknown, (std::map<std::string, int64_t>{{"chunkflow:loss", 2}}));
}

// torch 1.x's list: marks are X events without a category; exact ns from "12.345" µs.
TEST(ProfileMarks, LegacyListAndExactTimes) {
  const std::string list =
      R"([{"name": "ProfilerStep#3", "ph": "X", "ts": 10, "dur": 90, "tid": 1, "pid": "CPU functions"},)"
      R"( {"name": "chunkflow:optimizer", "ph": "X", "ts": 12.345, "dur": 0.0015, "tid": 1, "pid": "CPU functions"}])";
  StatusOr<ProfileMarks> marks = marks_of(list);
  ASSERT_TRUE(marks.ok()) << marks.status().message();
  ASSERT_EQ(marks->cpu.size(), 1u);
  EXPECT_EQ(marks->cpu[0],
            (ProfileMark{{OpKind::kOptimizer, std::nullopt, -1, 0}, 12'345, 12'347, 1}));
}

TEST(ProfileMarks, GzipFile) {
  ProfileBuilder p;
  p.mark("chunkflow:dp_reduce", 5, 5);
  const std::string text = p.json();
  test::TempDir dir;
  const std::string path = dir.path() + "/p.json.gz";
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  StatusOr<ProfileMarks> marks = marks_of_file(path);
  ASSERT_TRUE(marks.ok()) << marks.status().message();
  ASSERT_EQ(marks->cpu.size(), 1u);
  EXPECT_EQ(marks->cpu[0].op.kind, OpKind::kDpReduce);
}

TEST(ProfileMarks, MalformedMarkNamesItsEvent) {
  ProfileBuilder p;
  p.step(1, 0, 100).mark("chunkflow:F:chunk=1", 1, 1).mark("chunkflow:Q:chunk=x", 2, 1);
  StatusOr<ProfileMarks> marks = marks_of(p.json());
  ASSERT_FALSE(marks.ok());
  EXPECT_EQ(marks.status().code(), StatusCode::kInvalidInput);
  const std::string& m = marks.status().message();
  EXPECT_NE(m.find("p.json: traceEvents[2]: malformed chunkflow mark \"chunkflow:Q:chunk=x\": "
                   "unknown op \"Q\""),
            std::string::npos)
      << m;

  ProfileBuilder legacy(/*legacy=*/true);
  legacy.mark("chunkflow:B:chunk=1:mc=x", 2, 1);
  marks = marks_of(legacy.json());
  ASSERT_FALSE(marks.ok());
  EXPECT_NE(marks.status().message().find("event [0]: malformed chunkflow mark"), std::string::npos)
      << marks.status().message();
}

TEST(ProfileMarks, NotAProfile) {
  // chunkflow's own trace with its header after the events: compare took it for a profile.
  StatusOr<ProfileMarks> marks = marks_of(R"({"traceEvents": [], "chunkflow": {}})");
  ASSERT_FALSE(marks.ok());
  EXPECT_NE(marks.status().message().find("chunkflow's own trace format"), std::string::npos)
      << marks.status().message();
  marks = marks_of(R"({"traceEvents": [{"ph": "X", "name": "chunkflow:F:chunk=1", )");
  ASSERT_FALSE(marks.ok());
  EXPECT_NE(marks.status().message().find("p.json: "), std::string::npos);
}

}  // namespace
}  // namespace cf
