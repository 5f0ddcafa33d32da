// `chunkflow tune` and `chunkflow sweep` end to end: JSON keys, the --out round trip through
// `simulate`, byte-identical output across thread counts, nothing-fits exit code 0 with the
// verdict, bad input exit code 2 with file:line:col (bad search flags naming the flag), the
// progress line at a terminal only, and the embedded default job.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::run_chunkflow;
using test::run_chunkflow_on_terminal;
using test::TempDir;

const char* kJob =
    "model: qwen2.5-0.5b\ncluster: {gpu: h100-sxm-80g, gpus: 4, gpus_per_node: 8}\n"
    "dataset: {lengths: [9000, 1200, 700, 300, 5000, 41, 2500], max_length: 16384}\n"
    "training: {steps: 1}\n"
    "parallel: {tp: 1, pp: 2, dp: 2}\nstrategy: {kind: chunkflow, chunk_size: 4096, k: 2}\n"
    "tune: {k_max: 4, packer: all}\n";

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(TuneCliTest, JsonOutRoundTripAndDeterminism) {
  TempDir dir;
  const std::string job = dir.write("job.yaml", kJob);
  const std::string out1 = dir.path() + "/best1.yaml", out2 = dir.path() + "/best2.yaml";
  auto a = run_chunkflow({"tune", job, "--json", "--threads", "1", "--out", out1});
  auto b = run_chunkflow({"tune", job, "--json", "--threads", "2", "--out", out2});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const nlohmann::json ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  EXPECT_EQ(ja["best"], jb["best"]);
  EXPECT_EQ(ja["ranked"], jb["ranked"]);
  EXPECT_EQ(read(out1), read(out2));
  for (const char* key :
       {"chunk_size", "k", "step_time_s", "peak_memory_bytes", "tp", "pp", "dp"}) {
    EXPECT_TRUE(ja["best"].contains(key)) << key;
  }
  for (const char* key : {"evaluated", "pruned", "infeasible"}) EXPECT_TRUE(ja.contains(key));
  auto sim = run_chunkflow({"simulate", out1, "--json"});
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  const nlohmann::json js = nlohmann::json::parse(sim.out);
  EXPECT_EQ(js["step_time_s"].get<double>(), ja["best"]["step_time_s"].get<double>());
}

TEST(TuneCliTest, TextReportHasTableVerdictAndYaml) {
  TempDir dir;
  const std::string job = dir.write("job.yaml", kJob);
  auto r = run_chunkflow({"tune", job, "--top", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* part : {"rank  ChunkSize", "best       ChunkSize", "why\n", "runner-up",
                           "best job (save it with --out FILE", "strategy:\n  kind: chunkflow"}) {
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
  }
  EXPECT_TRUE(r.err.empty()) << "no progress bar when stderr is not a terminal: " << r.err;
}

TEST(TuneCliTest, NothingFitsExitsZeroWithTheVerdict) {
  TempDir dir;
  const std::string job = dir.write(
      "big.yaml",
      "model: qwen2.5-72b\ncluster: {gpu: h100-sxm-80g, gpus: 2}\n"
      "dataset: {lengths: [3000, 900], max_length: 8192}\n"
      "parallel: {tp: 2, pp: 1, dp: 1}\nstrategy: {kind: chunkflow, chunk_size: 4096, k: 1}\n");
  auto r = run_chunkflow({"tune", job});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("VERDICT: nothing fits"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model states alone exceed the memory budget"), std::string::npos) << r.out;
  auto j = run_chunkflow({"tune", job, "--json"});
  EXPECT_EQ(j.exit_code, 0);
  EXPECT_TRUE(nlohmann::json::parse(j.out)["best"].is_null());
}

TEST(TuneCliTest, BadInputExitsTwo) {
  TempDir dir;
  std::string bad = kJob;
  bad.replace(bad.find("k_max: 4"), 8, "k_max: 4, colour: red");
  auto r = run_chunkflow({"tune", dir.write("bad.yaml", bad)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.yaml:7:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tune.colour: unknown key"), std::string::npos) << r.err;
  auto f = run_chunkflow({"tune", dir.write("ok.yaml", kJob), "--tp", "3"});
  EXPECT_EQ(f.exit_code, 2);
  EXPECT_NE(f.err.find("--tp: tp 3 does not divide"), std::string::npos) << f.err;
  auto s = run_chunkflow({"sweep", dir.write("sweep.yaml", "job: ok.yaml\nvary:\n  gpus: [0]\n")});
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_NE(s.err.find("sweep.yaml:3:10: vary.gpus"), std::string::npos) << s.err;
}

// Progress on stderr only at a terminal and never with --quiet or --json: under a
// pseudo-terminal the tune and sweep lines appear (candidates settled, the best so far, the
// times) and are cleared before the report; with --quiet or --json, or without a terminal
// (every other test here), stderr stays empty. stdout is the same report either way.
TEST(TuneCliTest, ProgressOnlyOnATerminal) {
  TempDir dir;
  const std::string job = dir.write("job.yaml", kJob);
  auto shown = run_chunkflow_on_terminal({"tune", job, "--threads", "1"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  for (const char* part : {"\rtune [", "/", "%  ", "best ", " s/step ChunkSize ", "\r\033[K"}) {
    EXPECT_NE(shown.err.find(part), std::string::npos) << part << "\n" << shown.err;
  }
  // The last thing drawn clears the line, so the report starts on a clean one.
  EXPECT_EQ(shown.err.substr(shown.err.size() - 4), "\r\033[K");
  auto plain = run_chunkflow({"tune", job, "--threads", "1"});
  ASSERT_EQ(plain.exit_code, 0);
  EXPECT_TRUE(plain.err.empty()) << plain.err;
  auto cut_time = [](std::string text) { return text.substr(0, text.find("searched in")); };
  EXPECT_EQ(cut_time(shown.out), cut_time(plain.out));
  for (const char* flag : {"--quiet", "--json"}) {
    auto r = run_chunkflow_on_terminal({"tune", job, flag});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(r.err.empty()) << flag << ": " << r.err;
  }
  dir.write("ok.yaml", kJob);
  const std::string sweep = dir.write(
      "sweep.yaml", "job: ok.yaml\nvary:\n  gpus: [2, 4]\ntune: {chunk_sizes: [4096], k: [1]}\n");
  auto swept = run_chunkflow_on_terminal({"sweep", sweep});
  ASSERT_EQ(swept.exit_code, 0) << swept.err;
  EXPECT_NE(swept.err.find("\rsweep 1/2 qwen2.5-0.5b"), std::string::npos) << swept.err;
  EXPECT_NE(swept.err.find("\rsweep 2/2 qwen2.5-0.5b"), std::string::npos) << swept.err;
  for (const char* flag : {"--quiet", "--json"}) {
    auto r = run_chunkflow_on_terminal({"sweep", sweep, flag});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(r.err.empty()) << flag << ": " << r.err;
  }
  EXPECT_TRUE(run_chunkflow({"sweep", sweep}).err.empty());
}

// Search flags given but empty, zero, NaN or negative, and --cp / --tp lists with a 0 or junk:
// exit code 2, the flag named, nothing on stdout.
TEST(TuneCliTest, BadSearchFlagsExitTwoNamingTheFlag) {
  TempDir dir;
  const std::string job = dir.write("ok.yaml", kJob);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--chunk-sizes", ""}, "--chunk-sizes: empty list"},
      {{"--k", ""}, "--k: empty list"},
      {{"--tp", ""}, "--tp: empty list"},
      {{"--recompute", " "}, "--recompute: empty list"},
      {{"--top", "0"}, "--top: must be in [1, 1000], got 0"},
      {{"-n", "-3"}, "--top: must be in [1, 1000], got -3"},
      {{"--k-max", "0"}, "--k-max: must be in [1, 4096], got 0"},
      {{"--margin", "nan"}, "--margin: must be in [0, 0.9], got nan"},
      {{"--margin", "-0.1"}, "--margin: must be in [0, 0.9], got -0.1"},
      {{"--cp", "0"}, "--cp: cp must be >= 1, got 0"},
      {{"--cp", "1,two"}, "--cp: expected integers separated by commas or all, got \"1,two\""},
      {{"--tp", "1,0"}, "--tp: tp must be >= 1, got 0"},
      {{"--tp", "x"}, "--tp: expected integers"},
  };
  for (const auto& [flags, expected] : cases) {
    std::vector<std::string> args = {"tune", job};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = run_chunkflow(args);
    EXPECT_EQ(r.exit_code, 2) << flags[0] << " " << flags[1] << "\n" << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  // Sweep targets: the flag and the file's key.
  dir.write("sweep.yaml", "job: ok.yaml\nvary:\n  gpus: [2, 4]\n");
  for (const char* target : {"nan", "-5", "0", "inf"}) {
    auto r = run_chunkflow({"sweep", dir.path() + "/sweep.yaml", "--target", target});
    EXPECT_EQ(r.exit_code, 2) << target << "\n" << r.err;
    EXPECT_NE(r.err.find("--target: must be a positive number of tokens/s"), std::string::npos)
        << r.err;
  }
  for (const char* target : {".nan", "-1", ".inf"}) {
    const std::string sweep = dir.write(
        "bad-target.yaml",
        std::string("job: ok.yaml\nvary:\n  gpus: [2, 4]\ntarget_tokens_per_s: ") + target + "\n");
    auto r = run_chunkflow({"sweep", sweep});
    EXPECT_EQ(r.exit_code, 2) << target << "\n" << r.err;
    // .nan and .inf: "expected a finite number"; -1: "must be positive".
    EXPECT_NE(r.err.find("bad-target.yaml:4:22: target_tokens_per_s: "), std::string::npos)
        << r.err;
  }
}

TEST(TuneCliTest, SweepWritesCsv) {
  TempDir dir;
  dir.write("ok.yaml", kJob);
  const std::string sweep =
      dir.write("sweep.yaml",
                "job: ok.yaml\nvary:\n  gpus: [2, 4]\ntarget_tokens_per_s: 1\n"
                "tune: {tp: all, pp: all, chunk_sizes: [4096], k: [1, 2]}\n");
  const std::string csv = dir.path() + "/points.csv";
  auto r = run_chunkflow({"sweep", sweep, "--csv", csv});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("smallest GPU count reaching"), std::string::npos) << r.out;
  const std::string text = read(csv);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
}

// The calibrated cost model (a quick table measured here): pruning still returns the
// exhaustive search's ranking, and layouts that model cannot price are counted infeasible.
TEST(TuneCliTest, CalibratedCostModelPrunesSafely) {
  TempDir dir;
  const std::string table = dir.path() + "/cal.json";
  auto cal = run_chunkflow({"calibrate", "--backend", "cpu", "--quick", "--quiet", "--out", table});
  ASSERT_EQ(cal.exit_code, 0) << cal.err;
  const std::string job = dir.write(
      "cal.yaml",
      "model: tiny\ncluster: {gpu: h100-sxm-80g, gpus: 4}\n"
      "dataset: {lengths: [900, 40, 333, 1500, 77, 610, 260], max_length: 2048}\n"
      "parallel: {tp: 1, pp: 2, dp: 2}\nstrategy: {kind: chunkflow, chunk_size: 256, k: 1}\n"
      "cost_model: {kind: calibrated, table: " +
          table +
          "}\n"
          "tune: {chunk_size_min: 64, k_max: 5, tp: all, pp: all, recompute: all}\n");
  auto pruned = run_chunkflow({"tune", job, "--json"});
  auto exhaustive = run_chunkflow({"tune", job, "--json", "--exhaustive"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.err;
  ASSERT_EQ(exhaustive.exit_code, 0) << exhaustive.err;
  const nlohmann::json a = nlohmann::json::parse(pruned.out),
                       b = nlohmann::json::parse(exhaustive.out);
  ASSERT_FALSE(a["best"].is_null());
  EXPECT_EQ(a["best"], b["best"]);
  EXPECT_EQ(a["ranked"], b["ranked"]);
  EXPECT_EQ(a["best"]["recompute"], "none");
  EXPECT_EQ(a["best"]["tp"], 1);
  EXPECT_GT(a["infeasible"].get<int>(), 0);
}

TEST(TuneCliTest, DefaultJobIsEmbedded) {
  auto r = run_chunkflow({"tune", "--json", "--chunk-sizes", "8192,16384", "--k", "1,2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["job"], "<embedded:examples/default-tune.yaml>");
  EXPECT_EQ(j["model"], "qwen2.5-7b");
  EXPECT_EQ(j["gpus"], 32);
  EXPECT_FALSE(j["best"].is_null());
}

}  // namespace
}  // namespace cf
