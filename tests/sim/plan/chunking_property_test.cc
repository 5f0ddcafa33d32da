// Chunk construction properties over many random long-tailed global batches (DESIGN §4.1):
// exact token coverage, ChunkSize respected, pieces in order, short sequences never split,
// and the balanced packer never using more standalone chunks than first-fit-decreasing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "sim/plan/chunking.h"

namespace cf {
namespace {

// Long-tailed lengths: log-uniform over [1, 2^16], and 2% huge ones up to 2^19 tokens.
std::vector<int64_t> long_tailed_batch(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> count(1, 300);
  std::uniform_real_distribution<double> log2_len(0.0, 16.0);
  std::uniform_real_distribution<double> log2_huge(16.0, 19.0);
  std::bernoulli_distribution huge(0.02);
  std::vector<int64_t> lengths(static_cast<size_t>(count(rng)));
  for (int64_t& length : lengths) {
    const double e = huge(rng) ? log2_huge(rng) : log2_len(rng);
    length = std::max<int64_t>(1, static_cast<int64_t>(std::exp2(e)));
  }
  return lengths;
}

int64_t random_chunk_size(std::mt19937_64& rng) {
  // Odd and even sizes from 64 to 64K, log-uniform.
  std::uniform_real_distribution<double> log2_size(6.0, 16.0);
  return std::max<int64_t>(1, static_cast<int64_t>(std::exp2(log2_size(rng))));
}

// Checks every property of one chunking; returns the number of standalone chunks.
int64_t check_chunking(const std::vector<int64_t>& lengths, int64_t chunk_size,
                       const std::vector<Chunk>& chunks) {
  std::vector<int64_t> next_offset(lengths.size(), 0);  // pieces must arrive in order
  std::vector<int64_t> pieces(lengths.size(), 0);
  int64_t standalone = 0;
  bool seen_dependent = false;
  for (size_t c = 0; c < chunks.size(); ++c) {
    const Chunk& chunk = chunks[c];
    EXPECT_EQ(chunk.id, static_cast<int>(c));
    EXPECT_LE(chunk.tokens, chunk_size) << "chunk " << c;
    EXPECT_GT(chunk.tokens, 0);
    int64_t tokens = 0;
    for (const Segment& seg : chunk.segments) {
      const size_t s = static_cast<size_t>(seg.sequence);
      EXPECT_EQ(seg.offset, next_offset[s]) << "sequence " << s << " piece out of order";
      next_offset[s] += seg.length;
      ++pieces[s];
      tokens += seg.length;
    }
    EXPECT_EQ(tokens, chunk.tokens);
    if (chunk.kind == ChunkKind::kStandalone) {
      EXPECT_FALSE(seen_dependent) << "standalone chunk " << c << " after a dependent one";
      ++standalone;
    } else {
      seen_dependent = true;
      if (chunk.segments.size() != 1) {
        ADD_FAILURE() << "dependent chunk " << c << " has " << chunk.segments.size() << " segments";
        continue;
      }
      EXPECT_EQ(
          chunk.group_size,
          (lengths[static_cast<size_t>(chunk.segments[0].sequence)] + chunk_size - 1) / chunk_size);
    }
  }
  for (size_t s = 0; s < lengths.size(); ++s) {
    EXPECT_EQ(next_offset[s], lengths[s]) << "sequence " << s << " not covered exactly";
    if (lengths[s] <= chunk_size) {
      EXPECT_EQ(pieces[s], 1) << "short sequence " << s << " split";
    }
  }
  return standalone;
}

class ChunkingProperty : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ChunkingProperty, RandomLongTailedBatches) {
  std::mt19937_64 rng(GetParam());
  for (int trial = 0; trial < 400; ++trial) {
    const std::vector<int64_t> lengths = long_tailed_batch(rng);
    const int64_t chunk_size = random_chunk_size(rng);
    const std::vector<Chunk> balanced =
        build_chunkflow_chunks(lengths, chunk_size, Packer::kBalanced);
    const std::vector<Chunk> ffd =
        build_chunkflow_chunks(lengths, chunk_size, Packer::kFirstFitDecreasing);
    const int64_t balanced_bins = check_chunking(lengths, chunk_size, balanced);
    const int64_t ffd_bins = check_chunking(lengths, chunk_size, ffd);
    EXPECT_LE(balanced_bins, ffd_bins) << "seed " << GetParam() << " trial " << trial;
    // Lower bound of Algorithm 1: ceil(Σ short lengths / C) bins.
    int64_t short_total = 0;
    for (int64_t length : lengths) {
      if (length <= chunk_size) short_total += length;
    }
    EXPECT_GE(balanced_bins, (short_total + chunk_size - 1) / chunk_size);
    if (HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ChunkingProperty, ::testing::Values(1u, 7u, 2025u));

}  // namespace
}  // namespace cf
