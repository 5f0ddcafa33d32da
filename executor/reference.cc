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

namespace {

// ∞-norm error of one tensor relative to its reference's ∞-norm (reference.h's rule).
double relative_error(const float* got, const float* want, int64_t size) {
  double max_diff = 0, max_ref = 0;
  bool finite = true;
  for (int64_t i = 0; i < size; ++i) {
    const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    finite = finite && std::isfinite(diff);  // a NaN must not hide behind std::max
    max_diff = std::max(max_diff, diff);
    max_ref = std::max(max_ref, std::abs(static_cast<double>(want[i])));
  }
  const double inf = std::numeric_limits<double>::infinity();
  return !finite ? inf : max_ref > 0 ? max_diff / max_ref : max_diff > 0 ? inf : 0.0;
}

}  // namespace

// The stages' parameters are read through host copies (Stream::copy_to_host), so they may live
// on any backend; the reference runs on the CPU backend.
GradientCheck check_against_reference(const ModelConfig& model,
                                      const std::vector<const StageParams*>& stages,
                                      const TokenBatch& batch) {
  StageWorker reference(model, LayerSplit{1, 1, model.layers}, /*dp_rank=*/0, /*stage=*/0);
  StageParams& ref = reference.params();
  std::vector<std::vector<float>> weights, gradients;  // per stage, (count) on the host
  for (const StageParams* stage : stages) {
    weights.push_back(stage->weights_on_host());
    gradients.push_back(stage->gradients_on_host());
  }
  // Same weights, looked up by tensor name (a tied copy holds the embedding's values).
  std::vector<float> ref_weights(static_cast<size_t>(ref.count()));  // (count)
  for (const ParamTensor& t : ref.layout().tensors()) {
    bool found = false;
    for (size_t s = 0; s < stages.size() && !found; ++s) {
      const ParamTensor* src = stages[s]->layout().find(t.name);
      if (src == nullptr) continue;
      CF_CHECK_EQ(src->size, t.size);
      const float* from = weights[s].data() + src->offset;
      std::copy(from, from + t.size, ref_weights.data() + t.offset);
      found = true;
    }
    CF_CHECK(found) << "no stage holds " << t.name;
  }
  ref.set_weights(ref_weights);
  ref.zero_gradients();
  reference.run_step(whole_sequence_plan(batch.lengths(), model.layers), batch, nullptr,
                     StepClock::now(), /*record=*/false);
  const std::vector<float> want = ref.gradients_on_host();

  GradientCheck check;
  for (size_t s = 0; s < stages.size(); ++s) {
    for (const ParamTensor& t : stages[s]->layout().tensors()) {
      const ParamTensor* r = ref.layout().find(t.name);
      CF_CHECK(r != nullptr) << t.name;
      const double rel =
          relative_error(gradients[s].data() + t.offset, want.data() + r->offset, t.size);
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
