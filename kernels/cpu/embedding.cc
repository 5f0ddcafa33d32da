// Token embedding lookup: a gather forward, a scatter-add backward.
// The CPU reference; kernels/cuda/embedding.cu mirrors it.
#include "kernels/cpu/embedding.h"

#include <algorithm>

#include "core/check.h"

namespace cf::cpu {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t tokens,
                       int64_t vocab, int64_t hidden) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(hidden, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t id = ids[t];
    CF_CHECK(id >= 0 && id < vocab) << "token " << t << " id " << id << " vocab " << vocab;
    const float* row = table + id * hidden;  // (hidden)
    std::copy(row, row + hidden, out + t * hidden);
  }
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t tokens,
                        int64_t vocab, int64_t hidden) {
  CF_CHECK_GE(tokens, 0);
  CF_CHECK_GT(hidden, 0);
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t id = ids[t];
    CF_CHECK(id >= 0 && id < vocab) << "token " << t << " id " << id << " vocab " << vocab;
    float* drow = dtable + id * hidden;  // (hidden)
    const float* g = dout + t * hidden;  // (hidden)
    for (int64_t c = 0; c < hidden; ++c) drow[c] += g[c];
  }
}

}  // namespace cf::cpu
