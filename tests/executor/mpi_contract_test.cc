// The executor's contract through the MPI transport, run as `mpirun -np 2` and `mpirun -np 4`
// (ctest label mpi; each case runs under the world size it needs and is skipped under the
// other): one rank per stage (even and uneven layer splits), DP rank or CP rank, gradients
// equal whole-sequence training (≤ 1e-5), and the same losses, gradient error and op trace as
// the in-process run of the same job. Every group of these cases sums two operands, so both
// runs give the same bits.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "executor/executor.h"
#include "executor/mpi_run.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

MpiSession* g_session = nullptr;

struct Case {
  std::string name;
  test::TinyJob job;
  int ranks() const { return job.dp * job.cp * job.pp; }
};

std::vector<Case> mpi_cases() {
  std::vector<Case> cases;
  test::TinyJob pp2;
  pp2.lengths = test::scaled_batch("longbench", 9, 150, 21);
  pp2.pp = 2;
  pp2.steps = 2;
  pp2.strategy = "{kind: chunkflow, chunk_size: 37, k: 1}";
  cases.push_back({"pp2_c37_k1", pp2});
  test::TinyJob k2 = pp2;
  k2.strategy = "{kind: chunkflow, chunk_size: 29, k: 2, packer: ffd}";
  cases.push_back({"pp2_c29_k2_ffd", k2});
  test::TinyJob dp2 = pp2;
  dp2.pp = 1;
  dp2.dp = 2;
  cases.push_back({"dp2_c37_k1", dp2});
  test::TinyJob interleaved = pp2;
  interleaved.vpp = 2;
  interleaved.schedule = "interleaved";
  cases.push_back({"pp2_vpp2_interleaved", interleaved});
  test::TinyJob baseline = pp2;
  baseline.max_length = 160;
  baseline.strategy = "{kind: baseline, micro_batching: pack}";
  cases.push_back({"pp2_baseline", baseline});
  test::TinyJob tied = pp2;
  tied.model = "tests/executor/data/tiny-tied.yaml";
  cases.push_back({"pp2_tied", tied});
  // An uneven split: stage 0 one layer and the embedding, stage 1 three layers and the head.
  test::TinyJob uneven = k2;
  uneven.lengths = {131, 17, 45, 3, 61, 9, 1};
  uneven.layers_per_stage = {1, 3};
  cases.push_back({"pp2_uneven_1_3_c29_k2_ffd", uneven});
  test::TinyJob uneven_tied = pp2;  // the tied pair across stages of 3 and 1 layers
  uneven_tied.model = "tests/executor/data/tiny-tied.yaml";
  uneven_tied.layers_per_stage = {3, 1};
  cases.push_back({"pp2_uneven_3_1_tied", uneven_tied});
  // Context parallelism (all-gather): odd lengths, packed and split sequences.
  test::TinyJob cp2 = pp2;
  cp2.lengths = {131, 17, 45, 3, 61, 9, 1};
  cp2.pp = 1;
  cp2.cp = 2;
  cp2.strategy = "{kind: chunkflow, chunk_size: 30, k: 1}";
  cases.push_back({"cp2_c30_k1", cp2});
  test::TinyJob cp2_pp2 = cp2;  // -np 4
  cp2_pp2.pp = 2;
  cp2_pp2.strategy = "{kind: chunkflow, chunk_size: 30, k: 2, packer: ffd}";
  cases.push_back({"cp2_pp2_c30_k2_ffd", cp2_pp2});
  test::TinyJob cp2_tied = cp2_pp2;
  cp2_tied.model = "tests/executor/data/tiny-tied.yaml";
  cp2_tied.strategy = "{kind: chunkflow, chunk_size: 30, k: 1}";
  cases.push_back({"cp2_pp2_tied_c30_k1", cp2_tied});
  return cases;
}

class MpiContractTest : public ::testing::TestWithParam<Case> {};

TEST_P(MpiContractTest, MatchesWholeSequenceTrainingAndTheInProcessRun) {
  if (g_session->size() != GetParam().ranks()) {
    GTEST_SKIP() << "run with mpirun -np " << GetParam().ranks();
  }
  const Job job = test::tiny_job(GetParam().job);
  ExecutorOptions options;
  options.seed = 3;
  options.init_std = 0.2f;
  options.check_reference = true;
  StatusOr<MpiRunResult> mpi = run_with_mpi(job, options);
  ASSERT_TRUE(mpi.ok()) << mpi.status().message();
  EXPECT_EQ(mpi->root, g_session->rank() == 0);
  if (!mpi->root) return;

  const RunReport& got = mpi->report;
  ASSERT_EQ(got.steps.size(), 2u);
  StatusOr<RunReport> local = run_in_process(job, options);
  ASSERT_TRUE(local.ok()) << local.status().message();
  for (size_t s = 0; s < got.steps.size(); ++s) {
    ASSERT_TRUE(got.steps[s].check.has_value());
    EXPECT_LE(got.steps[s].check->rel_error, 1e-5) << got.steps[s].check->worst_tensor;
    // Same arithmetic in the same order (sums of two operands are exact either way round).
    EXPECT_EQ(got.steps[s].check->rel_error, local->steps[s].check->rel_error) << "step " << s;
    EXPECT_EQ(got.steps[s].loss, local->steps[s].loss) << "step " << s;
  }
  // Step 0's trace: every op of every rank's stream, once, with the plan's op ids.
  std::set<int> op_ids;
  int compute = 0;
  for (const TraceOp& op : got.trace.ops) {
    if (op.kind != OpKind::kCompute) continue;
    ++compute;
    op_ids.insert(op.op_id);
  }
  std::set<int> local_ids;
  for (const TraceOp& op : local->trace.ops) {
    if (op.kind == OpKind::kCompute) local_ids.insert(op.op_id);
  }
  EXPECT_EQ(compute, static_cast<int>(op_ids.size()));
  EXPECT_EQ(op_ids, local_ids);
  EXPECT_FALSE(got.trace.memory.empty());
  EXPECT_EQ(got.trace.peak_memory.size(),
            static_cast<size_t>(job.parallel.dp * job.parallel.pp));  // CP rank 0's
  for (const StageMemoryReport& st : got.stages) EXPECT_GT(st.peak_bytes, 0);
}

INSTANTIATE_TEST_SUITE_P(Executor, MpiContractTest, ::testing::ValuesIn(mpi_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

TEST(MpiRun, WrongWorldSizeIsBadInputOnEveryRank) {
  if (g_session->size() != 2) GTEST_SKIP() << "run with mpirun -np 2";
  test::TinyJob spec;
  spec.lengths = {20, 7};
  spec.pp = 4;
  StatusOr<MpiRunResult> mpi = run_with_mpi(test::tiny_job(spec), ExecutorOptions{});
  ASSERT_FALSE(mpi.ok());
  EXPECT_EQ(mpi.status().exit_code(), 2);
  EXPECT_NE(mpi.status().message().find("mpirun started 2"), std::string::npos)
      << mpi.status().message();
}

}  // namespace
}  // namespace cf

int main(int argc, char** argv) {
  cf::MpiSession session;
  cf::g_session = &session;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
