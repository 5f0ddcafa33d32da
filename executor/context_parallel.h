// Context parallelism in the executor, Megatron-Core / Llama 3 style all-gather CP (the job's
// `parallel.cp_comm: all_gather`): which of a chunk's tokens each of the cp ranks of one
// (DP rank, stage) holds, that rank's model inputs, and the row bookkeeping around the K/V
// all-gather before attention and the dK/dV reduce-scatter after its backward. Everything
// token-wise (norms, projections, MLP, head, loss) runs on a rank's own tokens; only attention
// reads the other ranks' K/V. Not the collectives (transport.h), not the attention kernel.
//
// The split is causal load-balanced (Megatron-Core's get_batch_on_this_cp_rank): a chunk of T
// tokens is cut into 2·cp consecutive pieces and CP rank r holds pieces r and 2·cp−1−r, so every
// rank has one early and one late piece of the causal triangle. Megatron pads every sequence to
// a multiple of 2·cp; a chunk here has whatever tokens chunking gave it (packed chunks below
// ChunkSize, the short last piece of a split sequence), so the split is pad-free instead: the
// first T mod 2·cp pieces are one token longer than the others. Ranks may hold no token at all
// (T < 2·cp); every kernel accepts zero rows.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "executor/backend.h"
#include "executor/memory.h"
#include "executor/tokens.h"
#include "executor/transport.h"

namespace cf {

// One rank's place in its CP group.
struct CpRank {
  int size = 1;  // cp
  int rank = 0;  // 0 ≤ rank < size
};

// Rows [begin, end) of a chunk.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t rows() const { return end - begin; }
};

// The rows of a `tokens`-token chunk that CP rank `cp_rank` of `cp` holds: pieces cp_rank and
// 2·cp−1−cp_rank of the load-balanced split, in chunk order (cp = 1: the whole chunk, as two
// adjacent ranges).
std::array<RowRange, 2> cp_shard_ranges(int64_t tokens, int cp, int cp_rank);
int64_t cp_shard_tokens(int64_t tokens, int cp, int cp_rank);

// The inputs of one CP rank's shard of `whole` (a chunk's inputs, chunk_inputs): ids, targets
// and positions of its rows in chunk order; each whole segment cut to those rows, its keys left
// in the (prefix + chunk) coordinates of the gathered K/V and the causal limit of every row kept
// (a query row sees exactly the keys it sees in the whole chunk). cp = 1 returns `whole`.
ChunkInputs shard_inputs(const ChunkInputs& whole, CpRank cp);

// A run of rows that moves between the all-gather's layout (CP rank 0's contribution, then
// rank 1's, …) and the order of the whole pieces.
struct RowRun {
  int64_t gathered_row = 0;
  int64_t whole_row = 0;
  int64_t rows = 0;
};

// `pieces`: the whole token counts of the pieces whose K/V attention reads, in order — a
// dependent chunk's earlier pieces of its group and then itself; a standalone chunk alone.
// Each CP rank contributes its shard of every piece, concatenated in piece order (the state
// store's prefix shards, then its own rows): cp_contribution_rows gives each rank's rows,
// cp_gather_runs how they land in piece order (rows of empty ranges are left out).
std::vector<int64_t> cp_contribution_rows(const std::vector<int64_t>& pieces, int cp);
std::vector<RowRun> cp_gather_runs(const std::vector<int64_t>& pieces, int cp);

// Where a CP collective runs: the rank, its transport, and the stream (and tracker) whose
// storage the rows live in.
struct CpGroup {
  CpRank cp;
  Transport* transport = nullptr;
  Stream* stream = nullptr;
  MemoryTracker* tracker = nullptr;
};

// whole (Σ pieces, width) = the pieces' rows in order, gathered from every CP rank's `local`
// (cp_contribution_rows[cp.rank] rows, width): the all-gather of K or V before attention.
void cp_all_gather_rows(float* whole, const float* local, const std::vector<int64_t>& pieces,
                        int64_t width, const CpGroup& group);

// local (this rank's contribution rows, width) = Σ over CP ranks of their `whole`
// (Σ pieces, width) at this rank's rows: the reduce-scatter of dK or dV after attention's
// backward, each rank keeping the gradient of the keys it owns.
void cp_reduce_scatter_rows(float* local, const float* whole, const std::vector<int64_t>& pieces,
                            int64_t width, const CpGroup& group);

}  // namespace cf
