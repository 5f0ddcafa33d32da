// Chunk construction (DESIGN §4.1, the paper's Algorithm 1) and the baseline's micro-batches
// (§4.4): sequence lengths in, chunks with segments out. Not the distribution of chunks over
// DP ranks nor their schedule (plan_builder.cc, chunk_schedule.h, pipeline_schedule.h).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "sim/plan/job.h"
#include "sim/plan/plan.h"

namespace cf {

// One item to pack: a whole sequence of the global batch.
struct PackItem {
  int64_t sequence = 0;  // index in the global batch
  int64_t length = 0;    // tokens, 1..capacity
};

// A packing: bins of sequence indices, each bin's lengths summing to at most the capacity.
using Bins = std::vector<std::vector<int64_t>>;

// First-fit-decreasing: items by length descending (ties: lower sequence index first), each
// into the lowest-numbered bin it fits, a new bin when none does.
Bins pack_first_fit_decreasing(const std::vector<PackItem>& items, int64_t capacity);

// Balanced: with a fixed bin count n, starting at ceil(Σ length / capacity), items by length
// descending go into the lightest bin they fit (ties: lowest bin); if one fits nowhere the
// packing restarts with n + 1 bins. Never uses more bins than first-fit-decreasing: when it
// would, it keeps first-fit-decreasing's bins and evens their loads out by moves and swaps
// between the heaviest and the lightest bin.
Bins pack_balanced(const std::vector<PackItem>& items, int64_t capacity);

// Cost-balanced: the predicted time of a chunk grows with its tokens and, quadratically, with
// each sequence's length (attention): cost = Σ ℓ + pair_weight · Σ ℓ(ℓ+1)/2 (segment_cost).
// With the bin count of pack_balanced (more bins when an item fits nowhere, up to
// first-fit-decreasing's), items by cost descending go into the cheapest bin with room for
// their tokens; when no count up to FFD's works, pack_balanced's bins evened out by cost (moves
// and swaps between the dearest and cheapest bin). Every bin holds at most `capacity` tokens.
Bins pack_cost(const std::vector<PackItem>& items, int64_t capacity, double pair_weight);

// `pair_weight` matters to kCost only.
Bins pack(const std::vector<PackItem>& items, int64_t capacity, Packer packer,
          double pair_weight = 0);

// The predicted cost of a causal segment of `tokens` queries after `prefix` keys of its own
// sequence, in token-equivalents: tokens + pair_weight · (tokens·prefix + tokens(tokens+1)/2),
// pair_weight being one query-key pair's attention FLOPs against one token's linear FLOPs
// (plan_builder.h dp_pair_weight).
double segment_cost(int64_t prefix, int64_t tokens, double pair_weight);

// The piece lengths of a sequence of `length` > 0 tokens cut at `chunk_size`: always
// ceil(length / chunk_size) pieces of at most chunk_size tokens summing to length. kTokens:
// chunk_size each, the remainder last. kCost: boundaries where each piece's segment_cost is
// the remaining cost shared equally by the remaining pieces (so later pieces, with longer
// prefixes, are shorter), rounded to multiples of `align` (context parallelism's pieces;
// chunk_size must be a multiple of it) and kept within the token bound.
std::vector<int64_t> split_lengths(int64_t length, int64_t chunk_size, SequenceSplit split,
                                   double pair_weight, int64_t align = 1);

// How build_chunkflow_chunks prices chunks for the cost packer and the cost split.
struct ChunkCosting {
  SequenceSplit split = SequenceSplit::kTokens;
  double pair_weight = 0;
  int64_t align = 1;
};

// The fewest chunks ChunkFlow can cut `lengths` into at `chunk_size` (each longer sequence's
// pieces, and the shorter ones' tokens in full chunks): known before any chunk is built.
int64_t min_chunkflow_chunks(const std::vector<int64_t>& lengths, int64_t chunk_size);

// InvalidInput naming strategy.chunk_size when a step of `lengths` cut at `chunk_size` would
// exceed limits::kMaxChunksPerStep, checked before the chunks are built.
Status check_chunkflow_chunk_count(const std::vector<int64_t>& lengths, int64_t chunk_size);

// ChunkFlow chunks of a global batch: sequences longer than `chunk_size` cut into consecutive
// pieces (split_lengths: a dependent group); the others packed into standalone chunks.
// Order and ids: standalone chunks in bin order, then each group's pieces in order, groups in
// ascending sequence index. dp_rank is left 0. Lengths must be positive.
std::vector<Chunk> build_chunkflow_chunks(const std::vector<int64_t>& lengths, int64_t chunk_size,
                                          Packer packer, const ChunkCosting& costing = {});

// Baseline micro-batches as standalone chunks of capacity `max_length`: whole sequences
// packed first-fit-decreasing (`pack`) or one sequence each in batch order (`per_sequence`).
// A sequence longer than max_length is an InvalidInput error.
StatusOr<std::vector<Chunk>> build_baseline_micro_batches(const std::vector<int64_t>& lengths,
                                                          int64_t max_length,
                                                          MicroBatching micro_batching);

}  // namespace cf
