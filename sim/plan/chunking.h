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

Bins pack(const std::vector<PackItem>& items, int64_t capacity, Packer packer);

// The fewest chunks ChunkFlow can cut `lengths` into at `chunk_size` (each longer sequence's
// pieces, and the shorter ones' tokens in full chunks): known before any chunk is built.
int64_t min_chunkflow_chunks(const std::vector<int64_t>& lengths, int64_t chunk_size);

// InvalidInput naming strategy.chunk_size when a step of `lengths` cut at `chunk_size` would
// exceed limits::kMaxChunksPerStep, checked before the chunks are built.
Status check_chunkflow_chunk_count(const std::vector<int64_t>& lengths, int64_t chunk_size);

// ChunkFlow chunks of a global batch: sequences longer than `chunk_size` cut into consecutive
// pieces of `chunk_size` tokens (a dependent group); the others packed into standalone chunks.
// Order and ids: standalone chunks in bin order, then each group's pieces in order, groups in
// ascending sequence index. dp_rank is left 0. Lengths must be positive.
std::vector<Chunk> build_chunkflow_chunks(const std::vector<int64_t>& lengths, int64_t chunk_size,
                                          Packer packer);

// Baseline micro-batches as standalone chunks of capacity `max_length`: whole sequences
// packed first-fit-decreasing (`pack`) or one sequence each in batch order (`per_sequence`).
// A sequence longer than max_length is an InvalidInput error.
StatusOr<std::vector<Chunk>> build_baseline_micro_batches(const std::vector<int64_t>& lengths,
                                                          int64_t max_length,
                                                          MicroBatching micro_batching);

}  // namespace cf
