// Whole-sequence reference gradients and their comparison (reference.h).
#include "executor/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "executor/stage.h"

namespace cf {

Plan whole_sequence_plan(const std::vector<int64_t>& lengths, int64_t layers) {
  Plan plan;
  plan.strategy = StrategyKind::kBaseline;
  plan.layers = layers;
  plan.sequence_lengths = lengths;
  plan.ranks.resize(1);
  plan.ranks[0].stages.resize(1);
  int next_op = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    Chunk chunk;
    chunk.id = static_cast<int>(i);
    chunk.segments = {Segment{static_cast<int64_t>(i), 0, lengths[i]}};
    chunk.tokens = lengths[i];
    plan.chunk_size = std::max(plan.chunk_size, lengths[i]);
    plan.chunks.push_back(chunk);
    plan.ranks[0].chunks.push_back(chunk.id);
    std::vector<Op>& ops = plan.ranks[0].stages[0].ops;
    ops.push_back(Op{next_op++, Pass::kForward, chunk.id, 0});
    ops.push_back(Op{next_op++, Pass::kBackward, chunk.id, 0});
  }
  return plan;
}

GradientCheck check_against_reference(const ModelConfig& model,
                                      const std::vector<const StageParams*>& stages,
                                      const TokenBatch& batch) {
  StageWorker reference(model, /*pp=*/1, /*vpp=*/1, /*dp_rank=*/0, /*stage=*/0);
  StageParams& ref = reference.params();
  // Same weights, looked up by tensor name (a tied copy holds the embedding's values).
  for (const ParamTensor& t : ref.layout().tensors()) {
    bool found = false;
    for (const StageParams* stage : stages) {
      const ParamTensor* src = stage->layout().find(t.name);
      if (src == nullptr) continue;
      CF_CHECK_EQ(src->size, t.size);
      std::copy(stage->weights() + src->offset, stage->weights() + src->offset + t.size,
                ref.weights() + t.offset);
      found = true;
      break;
    }
    CF_CHECK(found) << "no stage holds " << t.name;
  }
  ref.zero_gradients();
  reference.run_step(whole_sequence_plan(batch.lengths(), model.layers), batch, nullptr,
                     StepClock::now(), /*record=*/false);

  GradientCheck check;
  for (const StageParams* stage : stages) {
    for (const ParamTensor& t : stage->layout().tensors()) {
      const ParamTensor* r = ref.layout().find(t.name);
      CF_CHECK(r != nullptr) << t.name;
      const float* got = stage->gradients() + t.offset;
      const float* want = ref.gradients() + r->offset;
      double max_diff = 0, max_ref = 0;
      bool finite = true;
      for (int64_t i = 0; i < t.size; ++i) {
        const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
        finite = finite && std::isfinite(diff);  // a NaN must not hide behind std::max
        max_diff = std::max(max_diff, diff);
        max_ref = std::max(max_ref, std::abs(static_cast<double>(want[i])));
      }
      const double inf = std::numeric_limits<double>::infinity();
      const double rel = !finite        ? inf
                         : max_ref > 0  ? max_diff / max_ref
                         : max_diff > 0 ? inf
                                        : 0.0;
      ++check.tensors;
      if (check.worst_tensor.empty() || rel > check.rel_error) {
        check.rel_error = rel;
        check.worst_tensor = t.name;
      }
    }
  }
  return check;
}

}  // namespace cf
