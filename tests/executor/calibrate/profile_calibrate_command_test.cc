// `chunkflow calibrate --from-profile` end to end: a hand-made CPU profile with shapes gives a
// hardware file that `simulate` reads; every flag misuse and bad profile is exit 2 with the
// flag or the file named, and nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::run_chunkflow;
using test::TempDir;

// One step of 100 µs holding three mm of two sizes and an add, with shapes.
std::string profile_with_shapes() {
  auto op = [](const std::string& name, int ts, int dur, const std::string& dims) {
    return R"({"ph": "X", "cat": "cpu_op", "name": ")" + name + R"(", "pid": 1, "tid": 1, "ts": )" +
           std::to_string(ts) + R"(, "dur": )" + std::to_string(dur) +
           R"(, "args": {"Input Dims": )" + dims + "}}";
  };
  return R"({"traceEvents": [{"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#0", "pid": 1, "tid": 1, "ts": 0, "dur": 100},)" +
         op("aten::mm", 1, 20, "[[64, 128], [128, 96]]") + "," +
         op("aten::mm", 30, 22, "[[64, 128], [128, 96]]") + "," +
         op("aten::mm", 60, 30, "[[256, 128], [128, 96]]") + "," +
         op("aten::add", 95, 3, "[[64, 96], [64, 96]]") + "]}";
}

TEST(CalibrateFromProfile, WritesAHardwareFileTheSimulatorReads) {
  TempDir dir;
  const std::string profile = dir.write("p.json", profile_with_shapes());
  const std::string out = dir.path() + "/fitted.yaml";
  const test::CommandResult r = run_chunkflow(
      {"calibrate", "--from-profile", profile, "--gpu", "h100-sxm-80g", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("calibrated h100-sxm-80g-profiled from"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 ops, 2 sizes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kept: no fused attention op"), std::string::npos) << r.out;
  ASSERT_TRUE(std::filesystem::exists(out));
  const std::string job = dir.write(
      "job.yaml", "model: tiny\ncluster: {gpu: " + out +
                      ", gpus: 1, gpus_per_node: 8}\ndataset: {lengths: [40, 25], max_length: "
                      "64}\ntraining: {global_batch: 2, steps: 1}\nparallel: {tp: 1, pp: 1, dp: "
                      "1}\nstrategy: {kind: chunkflow, chunk_size: 32, k: 1}\n");
  const test::CommandResult sim = run_chunkflow({"simulate", job});
  EXPECT_EQ(sim.exit_code, 0) << sim.err;
  EXPECT_NE(sim.out.find(out + " (989 TFLOP/s bf16"), std::string::npos) << sim.out;
}

TEST(CalibrateFromProfile, MisusedFlagsAndBadProfilesExitTwoAndWriteNothing) {
  TempDir dir;
  const std::string profile = dir.write("p.json", profile_with_shapes());
  const std::string good = profile_with_shapes();
  const std::string truncated = dir.write("cut.json", good.substr(0, good.size() / 2));
  const std::string out = dir.path() + "/never.yaml";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"--from-profile", profile, "--out", out}, "--from-profile needs --gpu BASE"},
      {{"--from-profile", profile, "--gpu", "h100-sxm-80g"}, "--from-profile needs --out"},
      {{"--from-profile", profile, "--gpu", "h100-sxm-80g", "--out", out, "--backend", "cuda"},
       "--backend: --from-profile fits the profiles, it measures nothing"},
      {{"--from-profile", profile, "--gpu", "h100-sxm-80g", "--out", out, "--quick"},
       "--quick: --from-profile fits the profiles"},
      {{"--from-profile", profile, "--gpu", "no-such-gpu", "--out", out}, "no-such-gpu"},
      {{"--from-profile", truncated, "--gpu", "h100-sxm-80g", "--out", out},
       truncated + ": truncated"},
      {{"--from-profile", dir.path() + "/missing.json", "--gpu", "h100-sxm-80g", "--out", out},
       "missing.json"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args{"calibrate"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const test::CommandResult r = run_chunkflow(args);
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(std::filesystem::exists(out)) << c.message;
  }
}

}  // namespace
}  // namespace cf
