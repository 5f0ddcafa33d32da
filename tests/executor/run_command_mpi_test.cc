// `mpirun -np N chunkflow run …` end to end (ctest label mpi): one rank per stage (or per CP
// rank), one JSON report (rank 0's) with the gradient error against whole-sequence training,
// and exit 2 on every rank when the world size does not match dp × cp × pp. Here the runner's
// program is mpirun (CHUNKFLOW_BIN) and chunkflow is its argument (CHUNKFLOW_EXE).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/support/executor_fixture.h"
#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::TempDir;

test::CommandResult mpirun(int ranks, std::vector<std::string> args) {
  std::vector<std::string> full = {"--allow-run-as-root", "--oversubscribe", "-np",
                                   std::to_string(ranks), CHUNKFLOW_EXE};
  full.insert(full.end(), args.begin(), args.end());
  return test::run_chunkflow(full);
}

test::TinyJob two_stage_job() {
  test::TinyJob spec;
  spec.lengths = {130, 17, 44, 3, 61, 9};
  spec.pp = 2;
  spec.steps = 2;
  spec.strategy = "{kind: chunkflow, chunk_size: 40, k: 1}";
  return spec;
}

TEST(RunCommandMpi, TwoRanksReportOnceWithTheGradientError) {
  TempDir dir;
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(two_stage_job()));
  const std::string trace = dir.path() + "/measured.json";
  const test::CommandResult r =
      mpirun(2, {"run", job, "--json", "--check-reference", "--trace", trace});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json out = nlohmann::json::parse(r.out);  // one document: rank 0 prints
  EXPECT_EQ(out.at("transport"), "mpi");
  EXPECT_LE(out.at("grad_rel_error").get<double>(), 1e-5);
  EXPECT_EQ(out.at("steps").size(), 2u);
  EXPECT_EQ(out.at("stages").size(), 2u);
  EXPECT_GT(out.at("stages").at(1).at("peak_memory_bytes").get<int64_t>(), 0);
  EXPECT_TRUE(std::filesystem::exists(trace));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/measured.job.yaml"));
}

TEST(RunCommandMpi, TwoContextParallelRanksGiveWholeSequenceGradients) {
  TempDir dir;
  test::TinyJob spec = two_stage_job();
  spec.pp = 1;
  spec.cp = 2;
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(spec));
  const test::CommandResult r = mpirun(2, {"run", job, "--json", "--check-reference"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out.at("transport"), "mpi");
  EXPECT_LE(out.at("grad_rel_error").get<double>(), 1e-5);
  EXPECT_EQ(out.at("stages").size(), 1u);
}

TEST(RunCommandMpi, WorldSizeThatDoesNotMatchIsBadInput) {
  TempDir dir;
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(two_stage_job()));
  const test::CommandResult r = mpirun(3, {"run", job});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("dp × cp × pp = 1 × 1 × 2 = 2 MPI ranks"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cf
