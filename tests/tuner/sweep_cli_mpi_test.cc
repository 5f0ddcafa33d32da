// `mpirun -np N chunkflow sweep` (and `tune`) end to end (ctest label mpi): the table, --json and
// the CSV of a small sweep (tests/tuner/data/sweep-mpi.yaml) under mpirun -np 1, 2 and 3 are byte
// for byte those of a plain `chunkflow sweep`; a bad sweep file is exit 2 on every rank with the
// error printed once. The runner's program is mpirun (CHUNKFLOW_BIN), chunkflow its argument
// (CHUNKFLOW_EXE).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::CommandResult;
using test::TempDir;

constexpr const char* kSweep = "tests/tuner/data/sweep-mpi.yaml";

CommandResult mpirun(int ranks, std::vector<std::string> args) {
  std::vector<std::string> full = {"--allow-run-as-root", "--oversubscribe", "-np",
                                   std::to_string(ranks), CHUNKFLOW_EXE};
  full.insert(full.end(), args.begin(), args.end());
  return test::run_chunkflow(full);
}

CommandResult plain(const std::vector<std::string>& args) {
  return test::run_program(CHUNKFLOW_EXE, args);
}

// How many "chunkflow: error:" lines the ranks printed between them.
size_t error_lines(const std::string& err) {
  size_t errors = 0;
  for (size_t at = err.find("chunkflow: error:"); at != std::string::npos;
       at = err.find("chunkflow: error:", at + 1)) {
    ++errors;
  }
  return errors;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(SweepCliMpi, TextJsonAndCsvMatchOneProcessByteForByte) {
  TempDir dir;
  const std::string csv = dir.path() + "/points.csv";
  const CommandResult text = plain({"sweep", kSweep, "--csv", csv});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const std::string text_csv = read(csv);
  const CommandResult json = plain({"sweep", kSweep, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  ASSERT_NE(text.out.find("smallest GPU count reaching"), std::string::npos) << text.out;
  ASSERT_NE(text.out.find("not tuned: no layout"), std::string::npos) << text.out;
  EXPECT_EQ(std::count(text_csv.begin(), text_csv.end(), '\n'), 9);  // header + 8 points
  for (int ranks : {1, 2, 3}) {
    std::remove(csv.c_str());
    const CommandResult t = mpirun(ranks, {"sweep", kSweep, "--csv", csv});
    ASSERT_EQ(t.exit_code, 0) << ranks << ": " << t.err;
    EXPECT_EQ(t.out, text.out) << ranks << " ranks";
    EXPECT_EQ(read(csv), text_csv) << ranks << " ranks";
    const CommandResult j = mpirun(ranks, {"sweep", kSweep, "--json"});
    ASSERT_EQ(j.exit_code, 0) << ranks << ": " << j.err;
    EXPECT_EQ(j.out, json.out) << ranks << " ranks";
    EXPECT_TRUE(t.err.empty() && j.err.empty()) << t.err << j.err;
  }
}

// One point under 2 and 3 ranks: every rank shares its candidates, rank 0 prints.
TEST(SweepCliMpi, OnePointSharedByTheRanksMatchesOneProcess) {
  const char* one = "tests/tuner/data/sweep-mpi-one.yaml";
  const CommandResult text = plain({"sweep", one});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const CommandResult json = plain({"sweep", one, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  ASSERT_NE(json.out.find("\"evaluated\""), std::string::npos) << json.out;
  for (int ranks : {2, 3}) {
    const CommandResult t = mpirun(ranks, {"sweep", one});
    ASSERT_EQ(t.exit_code, 0) << ranks << ": " << t.err;
    EXPECT_EQ(t.out, text.out) << ranks << " ranks";
    const CommandResult j = mpirun(ranks, {"sweep", one, "--json"});
    ASSERT_EQ(j.exit_code, 0) << ranks << ": " << j.err;
    EXPECT_EQ(j.out, json.out) << ranks << " ranks";
  }
}

TEST(SweepCliMpi, BadSweepFileExitsTwoOnEveryRankAndSaysSoOnce) {
  TempDir dir;
  const std::string sweep = dir.write("bad.yaml", "job: default\nvary:\n  gpus: [0]\n");
  const CommandResult r = mpirun(2, {"sweep", sweep});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(error_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("bad.yaml:3:10: vary.gpus"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

// `mpirun -np N chunkflow tune`: the ranks share one search and rank 0 prints what one process
// prints (the timing line aside, which names the ranks), with --json byte for byte the same.
std::string without_timing(const std::string& text) {
  const size_t at = text.find("searched in ");
  return at == std::string::npos ? text : text.substr(0, at) + text.substr(text.find('\n', at));
}

TEST(TuneCliMpi, RanksShareTheSearchAndRankZeroPrintsIt) {
  const std::vector<std::string> args = {
      "tune", "tests/bench/tune-72b-128gpu.yaml", "--pp", "all", "--top", "5", "--quiet"};
  const CommandResult text = plain(args);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  std::vector<std::string> json_args = args;
  json_args.push_back("--json");
  const CommandResult json = plain(json_args);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  for (int ranks : {2, 3}) {
    const CommandResult t = mpirun(ranks, args);
    ASSERT_EQ(t.exit_code, 0) << ranks << ": " << t.err;
    EXPECT_EQ(without_timing(t.out), without_timing(text.out)) << ranks << " ranks";
    EXPECT_NE(t.out.find(" × " + std::to_string(ranks) + " ranks"), std::string::npos) << t.out;
    const CommandResult j = mpirun(ranks, json_args);
    ASSERT_EQ(j.exit_code, 0) << ranks << ": " << j.err;
    EXPECT_EQ(j.out, json.out) << ranks << " ranks";
  }
}

TEST(TuneCliMpi, BadFlagExitsTwoOnEveryRankAndSaysSoOnce) {
  const CommandResult r = mpirun(2, {"tune", "tests/bench/tune-72b-128gpu.yaml", "--margin", "2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(error_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("--margin: must be in [0, 0.9], got 2"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

}  // namespace
}  // namespace cf
