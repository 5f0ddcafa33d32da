// The largest sizes a job file may ask for, checked where each value is read (exit 2, with
// the key and the bound). Each admits every real job with room to spare — contexts of 16M
// tokens, global batches of 65,536 sequences — and keeps the work and memory a job implies
// finite and the products of sizes inside int64 (a longest sequence of 2^24 tokens times a
// batch of 2^16 is 2^40 tokens).
#pragma once

#include <cstdint>

namespace cf::limits {

inline constexpr int64_t kMaxTokens = int64_t{1} << 24;  // a sequence, max_length, ChunkSize
inline constexpr const char* kMaxTokensWhy = "16M tokens, core/limits.h";
inline constexpr int64_t kMaxGlobalBatch = int64_t{1} << 16;  // sequences per step
inline constexpr int64_t kMaxSteps = 1000;                    // sampled steps simulated
inline constexpr int64_t kMaxK = int64_t{1} << 24;            // chunks keeping activations

}  // namespace cf::limits
