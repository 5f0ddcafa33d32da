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

// Predicted cost of a chunk (chunking.h segment_cost over its segments).
double chunk_cost(const Chunk& chunk, double w) {
  double cost = 0;
  for (const Segment& seg : chunk.segments) {
    cost += segment_cost(chunk.kind == ChunkKind::kDependent ? seg.offset : 0, seg.length, w);
  }
  return cost;
}

// Largest over mean cost of the standalone chunks (1: perfectly balanced).
double standalone_imbalance(const std::vector<Chunk>& chunks, double w) {
  double largest = 0, total = 0;
  int n = 0;
  for (const Chunk& chunk : chunks) {
    if (chunk.kind != ChunkKind::kStandalone) continue;
    largest = std::max(largest, chunk_cost(chunk, w));
    total += chunk_cost(chunk, w);
    ++n;
  }
  return n == 0 ? 1 : largest / (total / n);
}

// The cost packer and the cost split keep every property of a chunking (coverage, order, the
// token bound, ceil(L/C) pieces per long sequence), use no more chunks than first-fit-decreasing,
// cut on CP-aligned boundaries, and even out predicted cost: a split's pieces differ by less
// than the token split's and by at most what one aligned step costs at its end; over the
// batches, the cost packer's dearest chunk is nearer the mean than the token-balanced one's.
TEST_P(ChunkingProperty, CostAwareChunkingEvensPredictedCost) {
  std::mt19937_64 rng(GetParam());
  std::uniform_real_distribution<double> log10_weight(-6.0, -3.0);  // models' pair weights
  double imbalance_cost = 0, imbalance_tokens = 0;
  int splits = 0;
  for (int trial = 0; trial < 150; ++trial) {
    const std::vector<int64_t> lengths = long_tailed_batch(rng);
    const int64_t align = int64_t{1} << (rng() % 4);  // 1, 2, 4 or 8 CP pieces
    const int64_t chunk_size = std::max<int64_t>(align, random_chunk_size(rng) / align * align);
    const double w = std::pow(10.0, log10_weight(rng));
    SCOPED_TRACE(::testing::Message()
                 << "trial " << trial << " C " << chunk_size << " align " << align << " w " << w);
    const std::vector<Chunk> cost = build_chunkflow_chunks(
        lengths, chunk_size, Packer::kCost, ChunkCosting{SequenceSplit::kCost, w, align});
    const std::vector<Chunk> tokens =
        build_chunkflow_chunks(lengths, chunk_size, Packer::kBalanced);
    const int64_t cost_bins = check_chunking(lengths, chunk_size, cost);
    EXPECT_LE(cost_bins, check_chunking(lengths, chunk_size,
                                        build_chunkflow_chunks(lengths, chunk_size,
                                                               Packer::kFirstFitDecreasing)));
    imbalance_cost += standalone_imbalance(cost, w);
    imbalance_tokens += standalone_imbalance(tokens, w);
    for (int64_t length : lengths) {
      if (length <= chunk_size) continue;
      const std::vector<int64_t> by_cost =
          split_lengths(length, chunk_size, SequenceSplit::kCost, w, align);
      const std::vector<int64_t> by_tokens =
          split_lengths(length, chunk_size, SequenceSplit::kTokens, w, align);
      ASSERT_EQ(by_cost.size(), by_tokens.size());
      auto spread = [&](const std::vector<int64_t>& pieces) {
        double lo = INFINITY, hi = 0;
        int64_t offset = 0;
        for (int64_t piece : pieces) {
          const double c = segment_cost(offset, piece, w);
          lo = std::min(lo, c), hi = std::max(hi, c);
          offset += piece;
        }
        return hi - lo;
      };
      int64_t offset = 0;
      for (size_t i = 0; i + 1 < by_cost.size(); ++i) {
        offset += by_cost[i];
        EXPECT_EQ(offset % align, 0) << "boundary " << offset;
      }
      EXPECT_LE(spread(by_cost), spread(by_tokens) + 1e-6 * segment_cost(0, length, w));
      // Where the token bound does not bind, pieces differ by at most two aligned steps at the
      // end of the sequence (rounding each boundary by half a step either way).
      if (by_cost.front() < chunk_size) {
        EXPECT_LE(spread(by_cost), 2 * segment_cost(length - align, align, w) + 1e-9);
      }
      ++splits;
    }
  }
  EXPECT_GT(splits, 20);
  EXPECT_LT(imbalance_cost, imbalance_tokens);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ChunkingProperty, ::testing::Values(1u, 7u, 2025u));

}  // namespace
}  // namespace cf
