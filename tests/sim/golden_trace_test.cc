// Golden traces: small schedules replayed with the unit cost model, every op's start and end
// compared exactly with tests/sim/golden/*.txt (each file's header says what it checks).
// CF_UPDATE_GOLDEN=1 rewrites the files' bodies (keep their headers; review the diff).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "sim/cost_unit.h"
#include "tests/sim/simulator_test_util.h"

namespace cf {
namespace {

using test::plan_of;
using test::tiny_job;

// "stage op_id pass chunk start end" per compute op, times in units (one token's forward),
// ordered by stage then start.
std::string trace_lines(const Trace& trace) {
  std::vector<TraceOp> ops;
  for (const TraceOp& op : trace.ops) {
    if (op.kind == OpKind::kCompute) ops.push_back(op);
  }
  std::sort(ops.begin(), ops.end(), [](const TraceOp& a, const TraceOp& b) {
    return std::tie(a.dp_rank, a.stage, a.start_ns) < std::tie(b.dp_rank, b.stage, b.start_ns);
  });
  std::string out;
  constexpr int64_t kUnit = UnitCostModel::kUnitNsPerToken;
  for (const TraceOp& op : ops) {
    out += std::to_string(op.stage) + " " + std::to_string(op.op_id) + " " + pass_name(op.pass) +
           " " + std::to_string(op.chunk) + " " + std::to_string(op.start_ns / kUnit) + " " +
           std::to_string(op.end_ns / kUnit) + "\n";
  }
  return out;
}

void check_golden(const Job& job, const std::string& path) {
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan_of(job), unit, SimOptions{true, false});
  ASSERT_TRUE(result.ok()) << result.status().message();
  const std::string got = trace_lines(*result->trace);
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::string header, body, line;
  while (std::getline(in, line)) (line.starts_with("#") ? header : body) += line + "\n";
  if (std::getenv("CF_UPDATE_GOLDEN")) {
    std::ofstream(path) << header << got;
    return;
  }
  EXPECT_EQ(got, body) << "golden trace " << path << " differs";
}

// Header of 1f1b_pp4_m8.txt: 1F1B, 4 stages, 8 micro-batches of 1 token.
TEST(GoldenTrace, OneFOneBFourStagesEightMicroBatches) {
  const Job job = tiny_job(1, 4, 1, "", "{kind: baseline, micro_batching: per_sequence}",
                           "1, 1, 1, 1, 1, 1, 1, 1");
  check_golden(job, "tests/sim/golden/1f1b_pp4_m8.txt");
  // The closed form it must agree with: (m + p − 1)(F + B) = 11 · 3.
  const UnitCostModel unit;
  StatusOr<SimResult> result = simulate(job, plan_of(job), unit);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(std::llround(result->metrics.pipeline_time_s * 1e9),
            33 * UnitCostModel::kUnitNsPerToken);
}

// Header of group_n5_k2_pp2.txt: one sequence of 5 tokens, ChunkSize 1, K = 2, 2 stages.
TEST(GoldenTrace, StateAwareGroupN5K2TwoStages) {
  const Job job = tiny_job(1, 2, 1, "", "{kind: chunkflow, chunk_size: 1, k: 2}", "5");
  check_golden(job, "tests/sim/golden/group_n5_k2_pp2.txt");
}

}  // namespace
}  // namespace cf
