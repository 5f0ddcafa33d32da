// Float64 reference implementations of the kernels' forward passes, written as plainly as
// possible (explicit loops, explicit masks) and independently of kernels/cpu. The tests compare
// the fp32 kernels with them and differentiate them numerically to check every backward.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"

namespace cf::test {

// (tokens, hidden)
std::vector<double> EmbeddingRef(const std::vector<int32_t>& ids, const std::vector<double>& table,
                                 int64_t hidden);
// (tokens, hidden)
std::vector<double> RmsNormRef(const std::vector<double>& x, const std::vector<double>& weight,
                               int64_t hidden, double eps);
// (tokens, heads · head_dim), rotate-half convention, angles pos · theta^(-2j/d).
std::vector<double> RopeRef(const std::vector<double>& x, const std::vector<int32_t>& positions,
                            int64_t heads, int64_t head_dim, double theta);
// (tq, a·d); lse (tq, a) when non-null.
std::vector<double> AttentionRef(const std::vector<double>& q, const std::vector<double>& k,
                                 const std::vector<double>& v,
                                 const std::vector<AttentionSegment>& segments,
                                 const AttentionShape& shape, std::vector<double>* lse = nullptr);
// (n)
std::vector<double> SwigluRef(const std::vector<double>& gate, const std::vector<double>& up);
// (tokens, out); bias may be empty.
std::vector<double> LinearRef(const std::vector<double>& x, const std::vector<double>& weight,
                              const std::vector<double>& bias, int64_t in_features,
                              int64_t out_features);
// Per-token scaled losses (tokens); lse (tokens) when non-null.
std::vector<double> CrossEntropyRef(const std::vector<double>& logits,
                                    const std::vector<int32_t>& targets, int64_t vocab,
                                    double loss_scale, std::vector<double>* lse = nullptr);
// One AdamW step in double, in place on params, m, v.
void AdamWRef(std::vector<double>& params, std::vector<double>& m, std::vector<double>& v,
              const std::vector<double>& grads, const AdamWHyper& hyper, int64_t step);

}  // namespace cf::test
