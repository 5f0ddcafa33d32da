// `chunkflow profile` end to end: the JSON report's keys and numbers on the hand-made fixtures,
// the text tables, ranks from distributedInfo or file order, and every kind of bad profile
// ending in exit 2 with one error line naming the file and the byte or the event — run under a
// 4 GB address-space limit and a 20 s limit (as tests/cli/hostile_input_test.cc), so that a
// crash, an abort or a runaway allocation shows as a signal.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"
#include "traces/profile.h"

namespace cf {
namespace {

using test::CommandResult;
using test::run_chunkflow;
using test::TempDir;

const std::string kKineto = "tests/traces/data/kineto_gpu_rank1.json";
const std::string kKinetoGz = "tests/traces/data/kineto_gpu_rank1.json.gz";
const std::string kLegacy = "tests/traces/data/torch1_cpu_list.json";

TEST(ProfileCommand, JsonReport) {
  const CommandResult r = run_chunkflow({"profile", kKineto, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::ordered_json report = nlohmann::ordered_json::parse(r.out);
  ASSERT_EQ(report["ranks"].size(), 1u);
  const nlohmann::ordered_json& rank = report["ranks"][0];
  EXPECT_EQ(rank["rank"], 1);
  ASSERT_EQ(rank["steps"].size(), 2u);
  EXPECT_EQ(rank["steps"][0]["name"], "ProfilerStep#1");
  EXPECT_DOUBLE_EQ(rank["steps"][0]["duration_s"].get<double>(), 1e-3);
  EXPECT_DOUBLE_EQ(rank["steps"][1]["duration_s"].get<double>(), 1'200'500 / 1e9);
  EXPECT_DOUBLE_EQ(rank["steps"][0]["gpu_busy_s"].get<double>(), 580'500 / 1e9);
  EXPECT_DOUBLE_EQ(rank["gpu_kernel_s"].get<double>(), 1'080'125 / 1e9);
  // by_class_s has exactly the six classes.
  std::vector<std::string> classes;
  for (const auto& [name, value] : rank["by_class_s"].items()) classes.push_back(name);
  EXPECT_EQ(classes, (std::vector<std::string>{"gemm", "attention", "collective", "memcpy",
                                               "elementwise", "other"}));
  EXPECT_DOUBLE_EQ(rank["by_class_s"]["gemm"].get<double>(), 350'000 / 1e9);
  EXPECT_DOUBLE_EQ(rank["by_class_s"]["memcpy"].get<double>(), 30'500 / 1e9);
  EXPECT_EQ(rank["by_class_source"], "gpu");
  EXPECT_EQ(rank["collectives"][1]["name"], "allreduce");
  EXPECT_DOUBLE_EQ(rank["collectives"][1]["in_msg_bytes"].get<double>(), 2.0 * 1048576);
  EXPECT_EQ(rank["skipped"]["ph B"], 1);
  // The file round trip loses nothing: the library's report of the same file.
  StatusOr<std::vector<RankProfile>> read = read_profiles({kKineto});
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(r.out, profile_report_json(*read));
}

TEST(ProfileCommand, TextReportAndRanks) {
  const CommandResult r = run_chunkflow({"profile", kLegacy, kKinetoGz});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* expected :
       {"rank 0: tests/traces/data/torch1_cpu_list.json (torch 1.x event list trace, 25 events; "
        "rank by file order)",
        "this profile has no GPU kernels: classes are CPU op self time (22 ops, 0.297 ms)",
        "rank 1 of 2 (nccl): tests/traces/data/kineto_gpu_rank1.json.gz (Kineto trace",
        "ProfilerStep#2", "1.200 ms", "device 0 stream 13", "GPU busy",
        "collective         0.510 ms   45.9%  (all_reduce 0.200 ms, all_gather 0.100 ms, "
        "reduce_scatter 0.200 ms, send_recv 0.010 ms)",
        "largest kernels", "skipped 2 events of kinds this reader does not know"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << "missing \"" << expected << "\" in\n"
                                                       << r.out;
  }
  EXPECT_LT(r.out.find("rank 0"), r.out.find("rank 1"));
  // The other order puts the list at position 1, the Kineto trace's rank.
  const CommandResult clash = run_chunkflow({"profile", kKinetoGz, kLegacy});
  EXPECT_EQ(clash.exit_code, 2);
  EXPECT_NE(clash.err.find("rank 1 is also the rank of " + kKinetoGz), std::string::npos)
      << clash.err;
}

TEST(ProfileCommand, Help) {
  const CommandResult r = run_chunkflow({"profile", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--json"), std::string::npos);
  EXPECT_EQ(run_chunkflow({"profile"}).exit_code, 2);  // a file is required
}

struct BadProfile {
  std::string name;
  std::string text;                   // written to the temp dir as `name`
  std::vector<std::string> expected;  // substrings of the one error line
};

TEST(ProfileCommand, BadProfilesExitTwoWithFileAndPlace) {
  const std::string kernel =
      "{\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"k\", \"pid\": 0, \"tid\": 7, ";
  std::string gz_cut;  // the fixture's gzip bytes, cut in half
  {
    std::FILE* f = std::fopen(kKinetoGz.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    char buffer[8192];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) gz_cut.append(buffer, n);
    std::fclose(f);
    gz_cut.resize(gz_cut.size() / 2);
  }
  const std::vector<BadProfile> cases = {
      {"truncated.json",
       "{\"traceEvents\": [" + kernel + "\"ts\": 1, \"dur\": 2},",
       {"truncated: the JSON ends early at byte", "(in traceEvents"}},
      {"truncated.json.gz", gz_cut, {"truncated gzip data after", "bytes of text"}},
      {"wrong_type.json",
       "{\"traceEvents\": [" + kernel + "\"ts\": 1, \"dur\": \"abc\"}]}",
       {"traceEvents[0].dur: expected a number (µs), got \"abc\" at byte 100"}},
      {"not_array.json",
       "{\"traceEvents\": 5}",
       {"traceEvents: expected a JSON array, got 5 at byte"}},
      {"deep.json",
       "{\"traceEvents\": [{\"ph\": \"X\", \"args\": {\"x\": " + std::string(100'000, '['),
       {"JSON nested deeper than 64 at byte 104", "(in traceEvents[0].args)"}},
      {"huge.json",
       "{\"traceEvents\": [" + kernel + "\"ts\": 1e999, \"dur\": 1}]}",
       {"number out of range: 1e999 at byte", "(in traceEvents[0])"}},
      {"negative.json",
       "{\"traceEvents\": [" + kernel + "\"ts\": 1, \"dur\": -3}]}",
       {"traceEvents[0].dur: negative duration -3 µs at byte"}},
      {"utf8.json",
       "[{\"ph\": \"X\", \"name\": \"bad\xc3\x28\", \"ts\": 1, \"dur\": 1}]",
       {"not valid JSON at byte", "ill-formed UTF-8 byte", "(in event [0])"}},
      {"no_events.json",
       "{\"schemaVersion\": 1, \"deviceProperties\": []}",
       {"no \"traceEvents\" key: not a PyTorch profiler trace"}},
      {"empty.json", "", {"empty file"}},
  };
  for (const BadProfile& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    const std::string path = dir.write(c.name, c.text);
    const CommandResult r = test::run_chunkflow_limited({"profile", path}, 20);
    EXPECT_EQ(r.exit_code, 2) << r.err.substr(0, 2000);
    EXPECT_TRUE(r.out.empty()) << r.out.substr(0, 500);
    EXPECT_EQ(r.err.rfind("chunkflow: error: " + path + ": ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const std::string& e : c.expected) {
      EXPECT_NE(r.err.find(e), std::string::npos) << "missing \"" << e << "\" in " << r.err;
    }
  }
}

TEST(ProfileCommand, RefusesWhatIsNoFile) {
  TempDir dir;
  const CommandResult directory = test::run_chunkflow_limited({"profile", dir.path()}, 20);
  EXPECT_EQ(directory.exit_code, 2);
  EXPECT_NE(directory.err.find(dir.path() + ": not a regular file (a directory)"),
            std::string::npos)
      << directory.err;
  const CommandResult device = test::run_chunkflow_limited({"profile", "/dev/zero"}, 20);
  EXPECT_EQ(device.exit_code, 2);
  EXPECT_NE(device.err.find("/dev/zero: not a regular file (a character device)"),
            std::string::npos)
      << device.err;
  const CommandResult missing =
      test::run_chunkflow_limited({"profile", dir.path() + "/none.json"}, 20);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot open file"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace cf
