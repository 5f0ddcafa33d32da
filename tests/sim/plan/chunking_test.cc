// Chunk construction (DESIGN §4.1) and baseline micro-batching (§4.4) on hand-checked cases.
// The random-batch properties are in chunking_property_test.cc.
#include "sim/plan/chunking.h"

#include <gtest/gtest.h>

namespace cf {
namespace {

std::vector<Segment> segs(const Chunk& chunk) { return chunk.segments; }

TEST(Chunking, PaperExampleStandaloneFirstThenGroupPieces) {
  // Sequences 4U, 2U, U, U with ChunkSize 2U: the 2U sequence alone, U+U packed, then the 4U
  // sequence's two halves (paper Figure / DESIGN §4.3 third vector).
  const std::vector<Chunk> chunks = build_chunkflow_chunks({4, 2, 1, 1}, 2, Packer::kBalanced);
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(segs(chunks[0]), (std::vector<Segment>{{1, 0, 2}}));
  EXPECT_EQ(segs(chunks[1]), (std::vector<Segment>{{2, 0, 1}, {3, 0, 1}}));
  EXPECT_EQ(segs(chunks[2]), (std::vector<Segment>{{0, 0, 2}}));
  EXPECT_EQ(segs(chunks[3]), (std::vector<Segment>{{0, 2, 2}}));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(chunks[static_cast<size_t>(i)].id, i);
    EXPECT_EQ(chunks[static_cast<size_t>(i)].tokens, 2);
  }
  EXPECT_EQ(chunks[1].kind, ChunkKind::kStandalone);
  EXPECT_EQ(chunks[1].group, -1);
  EXPECT_EQ(chunks[2].kind, ChunkKind::kDependent);
  EXPECT_EQ(chunks[3].group, 0);
  EXPECT_EQ(chunks[3].index, 1);
  EXPECT_EQ(chunks[3].group_size, 2);
}

TEST(Chunking, LastPieceShorterAndGroupsInSequenceOrder) {
  // 17 = 5+5+5+2 and 11 = 5+5+1 with C = 5; the 3 and the 2 share one chunk.
  const std::vector<Chunk> chunks = build_chunkflow_chunks({17, 3, 11, 2}, 5, Packer::kBalanced);
  ASSERT_EQ(chunks.size(), 1u + 4u + 3u);
  EXPECT_EQ(segs(chunks[0]), (std::vector<Segment>{{1, 0, 3}, {3, 0, 2}}));
  EXPECT_EQ(segs(chunks[4]), (std::vector<Segment>{{0, 15, 2}}));
  EXPECT_EQ(chunks[4].group, 0);
  EXPECT_EQ(chunks[4].index, 3);
  EXPECT_EQ(chunks[4].group_size, 4);
  EXPECT_EQ(segs(chunks[5]), (std::vector<Segment>{{2, 0, 5}}));
  EXPECT_EQ(segs(chunks[7]), (std::vector<Segment>{{2, 10, 1}}));
  EXPECT_EQ(chunks[7].group, 1);
  EXPECT_EQ(chunks[7].group_size, 3);
}

TEST(Chunking, SequenceOfExactlyChunkSizeIsStandalone) {
  const std::vector<Chunk> chunks = build_chunkflow_chunks({8, 9}, 8, Packer::kBalanced);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].kind, ChunkKind::kStandalone);
  EXPECT_EQ(segs(chunks[0]), (std::vector<Segment>{{0, 0, 8}}));
  EXPECT_EQ(segs(chunks[2]), (std::vector<Segment>{{1, 8, 1}}));
}

TEST(Packers, FirstFitDecreasingFillsEarliestBin) {
  // Decreasing: 6(a) 5(b) 4(c) 3(d) 2(e); capacity 10. FFD: [6,4] [5,3,2].
  const std::vector<PackItem> items = {{0, 3}, {1, 6}, {2, 2}, {3, 5}, {4, 4}};
  EXPECT_EQ(pack_first_fit_decreasing(items, 10), (Bins{{1, 4}, {3, 0, 2}}));
}

TEST(Packers, BalancedPutsEachItemIntoTheLightestBin) {
  // Total 20, capacity 12 → 2 bins. 6→b0, 5→b1, 4→b1 (5 < 6), 3→b0 (6 < 9), 2→b0 (9 = 9:
  // lower bin). FFD instead fills b0 first: [6,5] [4,3,2].
  const std::vector<PackItem> items = {{0, 3}, {1, 6}, {2, 2}, {3, 5}, {4, 4}};
  EXPECT_EQ(pack_balanced(items, 12), (Bins{{1, 0, 2}, {3, 4}}));
  EXPECT_EQ(pack_first_fit_decreasing(items, 12), (Bins{{1, 3}, {4, 0, 2}}));
}

TEST(Packers, BalancedFallsBackToFirstFitDecreasingWhenItWouldNeedMoreBins) {
  // Capacity 10: 2 bins must be [6,4] [5,3,2]; the lightest-bin rule reaches 9/9 and then
  // cannot place the 2, and a third bin would be one more than FFD needs.
  const std::vector<PackItem> items = {{0, 3}, {1, 6}, {2, 2}, {3, 5}, {4, 4}};
  EXPECT_EQ(pack_balanced(items, 10), (Bins{{1, 4}, {3, 0, 2}}));
}

TEST(Packers, BalancedEvensOutTheFallbackPacking) {
  // Capacity 20, lengths 1 1 5 11 5 18 9 7 8 9: the lightest-bin rule fails at FFD's 4 bins;
  // FFD's [18,1,1] [11,9] [9,8] [7,5,5] (20 20 17 17) is evened out to 19 18 18 19: the
  // 1 moves from the first bin to the third, then the 9 and the 7 swap.
  std::vector<PackItem> items;
  const std::vector<int64_t> lengths = {1, 1, 5, 11, 5, 18, 9, 7, 8, 9};
  for (size_t i = 0; i < lengths.size(); ++i)
    items.push_back({static_cast<int64_t>(i), lengths[i]});
  EXPECT_EQ(pack_first_fit_decreasing(items, 20), (Bins{{5, 0, 1}, {3, 6}, {9, 8}, {7, 2, 4}}));
  EXPECT_EQ(pack_balanced(items, 20), (Bins{{5, 1}, {3, 7}, {9, 8, 0}, {6, 2, 4}}));
}

TEST(Packers, BalancedAddsABinWhenTheLowerBoundDoesNotFit) {
  // Three items of 6 in capacity 10: ceil(18/10) = 2 bins cannot hold them; 3 can.
  const std::vector<PackItem> items = {{0, 6}, {1, 6}, {2, 6}};
  EXPECT_EQ(pack_balanced(items, 10), (Bins{{0}, {1}, {2}}));
}

TEST(Packers, TiesBrokenBySequenceIndex) {
  const std::vector<PackItem> items = {{5, 4}, {2, 4}, {9, 4}, {1, 4}};
  EXPECT_EQ(pack_first_fit_decreasing(items, 8), (Bins{{1, 2}, {5, 9}}));
  EXPECT_EQ(pack_balanced(items, 8), (Bins{{1, 5}, {2, 9}}));
}

TEST(Packers, EmptyInputGivesNoBins) {
  EXPECT_TRUE(pack_balanced({}, 4).empty());
  EXPECT_TRUE(pack_first_fit_decreasing({}, 4).empty());
}

TEST(Chunk, AttentionPairsStandaloneAndDependent) {
  Chunk packed;
  packed.segments = {{0, 0, 3}, {1, 0, 4}};  // 3·4/2 + 4·5/2 = 6 + 10
  EXPECT_EQ(packed.attention_pairs(), 16);
  Chunk piece;
  piece.kind = ChunkKind::kDependent;
  piece.segments = {{0, 5, 3}};  // 3·5 + 3·4/2 = 15 + 6
  EXPECT_EQ(piece.attention_pairs(), 21);
  // Pieces tiling a sequence of S tokens sum to S(S+1)/2, the whole causal triangle.
  const std::vector<Chunk> chunks = build_chunkflow_chunks({987}, 81, Packer::kBalanced);
  int64_t pairs = 0;
  for (const Chunk& c : chunks) pairs += c.attention_pairs();
  EXPECT_EQ(pairs, 987 * 988 / 2);
}

TEST(Baseline, PackIsFirstFitDecreasingUpToMaxLength) {
  auto chunks = build_baseline_micro_batches({5, 7, 2, 9, 3}, 10, MicroBatching::kPack);
  ASSERT_TRUE(chunks.ok()) << chunks.status().message();
  // Decreasing 9 7 5 3 2: [9] [7,3] [5,2].
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ(segs((*chunks)[0]), (std::vector<Segment>{{3, 0, 9}}));
  EXPECT_EQ(segs((*chunks)[1]), (std::vector<Segment>{{1, 0, 7}, {4, 0, 3}}));
  EXPECT_EQ(segs((*chunks)[2]), (std::vector<Segment>{{0, 0, 5}, {2, 0, 2}}));
  for (const Chunk& c : *chunks) EXPECT_EQ(c.kind, ChunkKind::kStandalone);
}

TEST(Baseline, PerSequenceKeepsBatchOrder) {
  auto chunks = build_baseline_micro_batches({4, 2, 1, 1}, 4, MicroBatching::kPerSequence);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(segs((*chunks)[static_cast<size_t>(i)]),
              (std::vector<Segment>{{i, 0, std::vector<int64_t>{4, 2, 1, 1}[i]}}));
  }
}

TEST(Baseline, SequenceOverMaxLengthIsAnError) {
  auto chunks = build_baseline_micro_batches({4, 11, 1}, 10, MicroBatching::kPack);
  ASSERT_FALSE(chunks.ok());
  EXPECT_EQ(chunks.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(chunks.status().message().find("sequence 1 has 11 tokens"), std::string::npos)
      << chunks.status().message();
}

// A 1000-token sequence at ChunkSize 300: four pieces either way; by tokens 300, 300, 300 and
// the remainder; by cost (w = 0.0005) the earlier pieces (fewer keys before them) longer, the
// last shorter, every piece within 300 tokens and their costs equal to within a token's.
TEST(SplitLengths, EqualTokensOrEqualCost) {
  EXPECT_EQ(split_lengths(1000, 300, SequenceSplit::kTokens, 0.01),
            (std::vector<int64_t>{300, 300, 300, 100}));
  const std::vector<int64_t> pieces = split_lengths(1000, 300, SequenceSplit::kCost, 0.0005);
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_TRUE(std::is_sorted(pieces.rbegin(), pieces.rend())) << pieces[0] << " " << pieces[3];
  int64_t offset = 0;
  std::vector<double> costs;
  for (int64_t piece : pieces) {
    EXPECT_LE(piece, 300);
    costs.push_back(segment_cost(offset, piece, 0.0005));
    offset += piece;
  }
  EXPECT_EQ(offset, 1000);
  const auto [lo, hi] = std::minmax_element(costs.begin(), costs.end());
  EXPECT_LE(*hi - *lo, segment_cost(999, 1, 0.0005));  // one token at the end
  // With a heavier pair weight the first piece would want more than 300 tokens: capped, the
  // rest shared by the others.
  EXPECT_EQ(split_lengths(1000, 300, SequenceSplit::kCost, 0.01).front(), 300);
  // Without attention weight the cost is the tokens: as even as the bound allows.
  EXPECT_EQ(split_lengths(1000, 300, SequenceSplit::kCost, 0),
            (std::vector<int64_t>{250, 250, 250, 250}));
  // Aligned to 8 (cp 4 with the ring's 2·cp pieces).
  const std::vector<int64_t> aligned = split_lengths(1003, 304, SequenceSplit::kCost, 0.01, 8);
  ASSERT_EQ(aligned.size(), 4u);
  for (size_t i = 0; i + 1 < aligned.size(); ++i) EXPECT_EQ(aligned[i] % 8, 0) << i;
  for (int64_t piece : aligned) EXPECT_LE(piece, 304);
}

// The cost packer: short sequences of 100, 90, 60, 50, 40, 10 tokens into chunks of 200. By
// tokens both bins carry 175; by cost (w = 0.05: a 100-token sequence costs 352.5, a 10-token
// one 12.75) the sequence of 100 goes with the small ones.
TEST(PackCost, BalancesPredictedCostWithinTheTokenBound) {
  const std::vector<PackItem> items = {{0, 100}, {1, 90}, {2, 60}, {3, 50}, {4, 40}, {5, 10}};
  const double w = 0.05;
  const Bins bins = pack_cost(items, 200, w);
  ASSERT_EQ(bins.size(), 2u);
  std::vector<double> cost(2, 0);
  for (size_t b = 0; b < 2; ++b) {
    int64_t tokens = 0;
    for (int64_t seq : bins[b]) {
      tokens += items[static_cast<size_t>(seq)].length;
      cost[b] += segment_cost(0, items[static_cast<size_t>(seq)].length, w);
    }
    EXPECT_LE(tokens, 200);
  }
  double balanced_worst = 0;
  for (const std::vector<int64_t>& bin : pack_balanced(items, 200)) {
    double c = 0;
    for (int64_t seq : bin) c += segment_cost(0, items[static_cast<size_t>(seq)].length, w);
    balanced_worst = std::max(balanced_worst, c);
  }
  EXPECT_LT(std::max(cost[0], cost[1]), balanced_worst);
}

}  // namespace
}  // namespace cf
