// Cross-entropy forward (per-token scaled loss and log-sum-exp) and backward (dlogits).
// kernels/cuda/cross_entropy.cu mirrors it.
#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace cf::cpu {
namespace {

void check_target(int32_t target, int64_t t, int64_t vocab) {
  CF_CHECK(target == kIgnoreTarget || (target >= 0 && target < vocab))
      << "token " << t << " target " << target << " vocab " << vocab;
}

}  // namespace

void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                           int64_t tokens, int64_t vocab, float loss_scale) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(vocab, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    check_target(targets[t], t, vocab);
    const float* row = logits + t * vocab;  // (vocab)
    const float max_logit = *std::max_element(row, row + vocab);
    double sum = 0.0;  // Σ exp(logit − max), in double: vocab reaches 152k
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - max_logit);
    const float log_sum_exp = float(double(max_logit) + std::log(sum));
    lse[t] = log_sum_exp;
    losses[t] = targets[t] == kIgnoreTarget ? 0.0f : loss_scale * (log_sum_exp - row[targets[t]]);
  }
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, int64_t tokens, int64_t vocab,
                            float loss_scale) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(vocab, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    check_target(targets[t], t, vocab);
    const float* row = logits + t * vocab;  // (vocab)
    float* drow = dlogits + t * vocab;      // (vocab)
    if (targets[t] == kIgnoreTarget) {
      std::fill(drow, drow + vocab, 0.0f);
      continue;
    }
    // ∂/∂z_v [lse(z) − z_target] = softmax(z)_v − [v == target].
    for (int64_t v = 0; v < vocab; ++v) {
      const float p = std::exp(row[v] - lse[t]);
      drow[v] = loss_scale * (p - (v == targets[t] ? 1.0f : 0.0f));
    }
  }
}

}  // namespace cf::cpu
