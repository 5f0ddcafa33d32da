// The executor's contract check (DESIGN.md §4.7, STYLE.md §8): the gradients of a chunked,
// pipelined step against the same step computed with every sequence processed whole on a
// single stage, from the same weights. Not the executor's own step (stage.h).
#pragma once

#include <string>
#include <vector>

#include "executor/params.h"
#include "executor/tokens.h"
#include "models/model.h"
#include "sim/plan/plan.h"

namespace cf {

// The largest per-tensor relative difference, max_i |g_i − r_i| / max_i |r_i| over the
// elements of one parameter tensor (its ∞-norm error relative to its ∞-norm), and the tensor
// where it occurs. A tensor whose reference gradient is all zero counts 0 when the executor's
// is zero too, infinity otherwise.
struct GradientCheck {
  double rel_error = 0;
  std::string worst_tensor;
  int tensors = 0;  // tensors compared
};

// The reference plan: one standalone chunk per sequence of `lengths`, pp = dp = 1, each chunk
// forwarded and immediately backwarded on the single stage.
Plan whole_sequence_plan(const std::vector<int64_t>& lengths, int64_t layers);

// Runs the reference step from the weights in `stages` (one DP rank's stages, gradients
// already summed over DP ranks and the tied pair) and compares every stage's gradients.
GradientCheck check_against_reference(const ModelConfig& model,
                                      const std::vector<const StageParams*>& stages,
                                      const TokenBatch& batch);

}  // namespace cf
