// The critical path: on a hand-built engine graph where a transfer queues behind another on its
// channel, and on a small plan whose chain was worked out by hand (times in units), printed by
// the simulator as its metrics' critical_path.
#include "sim/critical_path.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/cost_unit.h"
#include "sim/simulator.h"
#include "tests/sim/simulator_test_util.h"

namespace cf {
namespace {

using Kind = CriticalStep::Kind;

// stream 0: a [0,4)  b [4,6)            stream 1: c waits for a's and b's outputs, both
// sent over one channel of 5 ns: a's [4,9), b's queues behind it [9,14), so c runs [14,17).
// c's chain: a, a's transfer, b's transfer (it waited for the channel, not for b), c.
TEST(CriticalPath, TransferQueuedOnItsChannel) {
  EngineGraph g;
  const int s0 = g.add_stream(), s1 = g.add_stream();
  const int ch = g.add_channel();
  const int a = g.add_task(s0, 4), b = g.add_task(s0, 2), c = g.add_task(s1, 3);
  g.add_input(c, a, ch, 5);  // edge 0
  g.add_input(c, b, ch, 5);  // edge 1
  Engine engine;
  EngineResult r;
  engine.run(g, &r);
  ASSERT_FALSE(r.deadlocked());
  ASSERT_EQ(r.end_ns[c], 17);
  const std::vector<CriticalStep> path = critical_path(g, r, c);
  ASSERT_EQ(path.size(), 4u);
  EXPECT_EQ(path[0].kind, Kind::kTask);
  EXPECT_EQ(path[0].id, a);
  EXPECT_EQ(path[1].kind, Kind::kTransfer);
  EXPECT_EQ(path[1].id, 0);
  EXPECT_EQ(path[2].kind, Kind::kTransfer);
  EXPECT_EQ(path[2].id, 1);
  EXPECT_EQ(path[3].id, c);
  // Contiguous from 0 to the task's end.
  EXPECT_EQ(path.front().start_ns, 0);
  for (size_t i = 1; i < path.size(); ++i) EXPECT_EQ(path[i].start_ns, path[i - 1].end_ns) << i;
  EXPECT_EQ(path.back().end_ns, 17);
}

// Unit costs for F and B, and 1 unit for every message, DP reduction and optimizer step.
class UnitWithComm final : public CostModel {
 public:
  static constexpr int64_t kUnit = UnitCostModel::kUnitNsPerToken;
  std::string name() const override { return "unit+comm"; }
  OpTime op_time(const OpQuery& query) const override { return unit_.op_time(query); }
  int64_t p2p_time_ns(const P2pQuery&) const override { return kUnit; }
  int64_t dp_reduce_time_ns(int) const override { return kUnit; }
  int64_t optimizer_time_ns(int) const override { return kUnit; }

 private:
  UnitCostModel unit_;
};

// "s0 F0 [0,3)" etc., in units.
std::string describe(const TraceOp& op) {
  constexpr int64_t u = UnitWithComm::kUnit;
  const std::string what = op.kind == OpKind::kCompute
                               ? std::string(pass_name(op.pass)) + std::to_string(op.chunk)
                               : op_kind_name(op.kind);
  std::string text = "s" + std::to_string(op.stage) + " " + what;
  if (op.kind == OpKind::kSend) text += "→s" + std::to_string(op.peer_stage);
  return text + " [" + std::to_string(op.start_ns / u) + "," + std::to_string(op.end_ns / u) + ")";
}

// Two stages, 1F1B, two micro-batches of 3 and 1 tokens (F = tokens, B = 2 × tokens, each
// message, DP reduction and optimizer 1):
//   s0: F0 [0,3)  F1 [3,4)                B0 [14,20)  B1 [20,22)  dp_reduce [22,23) opt [23,24)
//   s1:      F0 [4,7)  B0 [7,13)  F1 [13,14)  B1 [14,16)          dp_reduce [16,17) opt [17,18)
// Stage 0 ends the step at 24. Its last op B1 waited for B0 on its own stage (B1's gradient
// arrived at 17); B0 for the gradient of s1 B0 (sent [13,14)); s1 B0 for its own forward; that
// for F0's activation (sent [3,4)); which for s0 F0.
TEST(CriticalPath, SimulatedStepByHand) {
  const Job job =
      test::tiny_job(1, 2, 1, "", "{kind: baseline, micro_batching: per_sequence}", "3, 1");
  const UnitWithComm cost;
  SimOptions options;
  options.critical_path = true;
  StatusOr<SimResult> result = simulate(job, test::plan_of(job), cost, options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  const std::vector<TraceOp>& path = result->metrics.critical_path;
  std::vector<std::string> got;
  for (const TraceOp& op : path) got.push_back(describe(op));
  const std::vector<std::string> expected = {
      "s0 F0 [0,3)",   "s0 send→s1 [3,4)",     "s1 F0 [4,7)",
      "s1 B0 [7,13)",  "s1 send→s0 [13,14)",   "s0 B0 [14,20)",
      "s0 B1 [20,22)", "s0 dp_reduce [22,23)", "s0 optimizer [23,24)"};
  EXPECT_EQ(got, expected);
  EXPECT_DOUBLE_EQ(result->metrics.step_time_s, 24 * UnitWithComm::kUnit * 1e-9);
  // The chain's ops carry the plan's op ids and message sizes.
  EXPECT_EQ(path[0].op_id, test::plan_of(job).ranks[0].stages[0].ops[0].id);
  EXPECT_EQ(path[1].bytes, 3 * job.model.hidden * 2);  // bf16 activation of 3 tokens
  // Without asking, nothing is computed.
  StatusOr<SimResult> plain = simulate(job, test::plan_of(job), cost);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->metrics.critical_path.empty());
  // The metrics carry it as JSON and in the table.
  const nlohmann::json json = metrics_to_json(result->metrics);
  ASSERT_EQ(json["critical_path"].size(), expected.size());
  EXPECT_EQ(json["critical_path"][1]["kind"], "send");
  EXPECT_EQ(json["critical_path"][1]["peer_stage"], 1);
  EXPECT_NE(metrics_table(result->metrics).find("critical path     9 steps"), std::string::npos)
      << metrics_table(result->metrics);
}

}  // namespace
}  // namespace cf
