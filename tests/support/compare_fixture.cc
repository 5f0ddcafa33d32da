// Synthetic traces for the comparison tests (compare_fixture.h).
#include "tests/support/compare_fixture.h"

namespace cf::test {

int64_t planned_forward_ns(int chunk, int stage) { return 100 * (chunk + 1) + 10 * stage; }

Trace synthetic_trace(const TraceShape& shape, const std::string& source,
                      const DurationFn& duration) {
  Trace trace;
  trace.source = source;
  int op_id = 0;
  for (int rank = 0; rank < shape.ranks; ++rank) {
    for (int stage = 0; stage < shape.stages; ++stage) {
      int64_t t = 1000 * stage;
      // Appends an op starting at t; advances t unless the op overlaps what follows.
      auto add = [&](OpKind kind, std::optional<Pass> pass, int chunk, int64_t planned_ns,
                     bool plan_op, bool advance) {
        TraceOp op;
        op.dp_rank = rank;
        op.stage = stage;
        op.kind = kind;
        op.pass = pass;
        op.chunk = chunk;
        op.op_id = plan_op ? op_id++ : -1;
        op.tokens = chunk >= 0 ? 100 * (chunk + 1) : 0;
        op.start_ns = t;
        op.end_ns = t + duration(op, planned_ns);
        if (advance) t = op.end_ns;
        trace.ops.push_back(op);
      };
      for (int c = 0; c < shape.chunks; ++c) {
        add(OpKind::kCompute, Pass::kForward, c, planned_forward_ns(c, stage), true, true);
        if (stage + 1 < shape.stages) add(OpKind::kSend, Pass::kForward, c, 50, false, false);
      }
      for (int c = shape.chunks - 1; c >= 0; --c) {
        add(OpKind::kCompute, Pass::kBackward, c, 2 * planned_forward_ns(c, stage), true, true);
      }
      add(OpKind::kDpReduce, std::nullopt, -1, 400, false, true);
      add(OpKind::kOptimizer, std::nullopt, -1, 300, true, true);
    }
  }
  return trace;
}

Trace synthetic_trace(const TraceShape& shape, const std::string& source) {
  return synthetic_trace(shape, source,
                         [](const TraceOp&, int64_t planned_ns) { return planned_ns; });
}

}  // namespace cf::test
