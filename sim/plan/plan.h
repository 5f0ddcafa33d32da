// The Plan: what one training step does, consumed op for op by both the simulator and the
// executor (DESIGN.md §2). Chunks with their segments, and per (DP rank, pipeline stage) an
// ordered op stream with stable op ids. Built by build_plan (plan_builder.h); verified by
// check_plan (plan_checker.h). Holds no costs and no times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/plan/job.h"
#include "sim/plan/layer_split.h"
#include "traces/kinds.h"

namespace cf {

// A piece of one sequence inside a chunk: tokens [offset, offset + length) of `sequence`
// (the sequence's index in the global batch).
struct Segment {
  int64_t sequence = 0;
  int64_t offset = 0;
  int64_t length = 0;
  bool operator==(const Segment&) const = default;
};

enum class ChunkKind { kStandalone, kDependent };

// A training unit of at most ChunkSize tokens (for the baseline: a micro-batch).
// Standalone: whole sequences packed together, block-diagonal causal mask, positions restart
// per segment. Dependent: piece `index` of a split sequence (its group), one segment, which
// attends to the K/V of pieces 0..index-1 and causally (bottom-right) to itself.
struct Chunk {
  int id = 0;  // 0-based; standalone chunks first, then each group's pieces in order
  ChunkKind kind = ChunkKind::kStandalone;
  std::vector<Segment> segments;
  int64_t tokens = 0;  // Σ segment lengths
  int group = -1;      // dependent: group id (0-based over the plan); -1 standalone
  int index = 0;       // dependent: 0-based position in the group
  int group_size = 1;  // dependent: N, the pieces of the group
  int dp_rank = 0;

  // Unmasked query-key pairs of the chunk's attention, Σ_seg q·prefix + q(q+1)/2, where
  // prefix is the segment's offset for a dependent chunk and 0 for a standalone one.
  int64_t attention_pairs() const;
};

// The passes of a chunk (F, F*, R, B: DESIGN.md §4.2) are traces/kinds.h's Pass.

struct Op {
  int id = 0;  // unique in the plan, assigned in (rank, stage, position) order
  Pass pass = Pass::kForward;
  int chunk = 0;
  int model_chunk = 0;  // virtual stage v of the rank (interleaved 1F1B), else 0
  bool operator==(const Op&) const = default;
};

// An op's cross-stage input and where it runs are stated once, in plan_index.h. Same-stage
// rules, satisfied by stream order: a group's forwards in ascending index, its backwards in
// descending index, R j immediately before B j, at most K activations held.
struct StagePlan {
  std::vector<Op> ops;
};

struct RankPlan {
  int dp_rank = 0;
  std::vector<int> chunks;        // chunk ids fed to this rank, in pipeline order
  std::vector<StagePlan> stages;  // pp entries
};

struct Plan {
  StrategyKind strategy = StrategyKind::kChunkFlow;
  ScheduleKind schedule = ScheduleKind::kOneFOneB;
  int pp = 1;
  int vpp = 1;
  int dp = 1;
  int k = 1;                              // chunks of a group that keep activations (ChunkFlow)
  int64_t chunk_size = 0;                 // ChunkFlow: ChunkSize; baseline: max_length
  int64_t layers = 0;                     // model layers
  std::vector<int64_t> layers_per_stage;  // pp entries, or empty: even over pp·vpp model chunks
  std::vector<int64_t> sequence_lengths;  // the global batch
  std::vector<Chunk> chunks;
  std::vector<RankPlan> ranks;  // dp entries

  int64_t total_tokens() const;
  int groups() const;  // number of dependent groups
  // How the layers split over the stages (plan_index.h's stage_place places them).
  LayerSplit split() const { return LayerSplit{pp, vpp, layers, layers_per_stage}; }
  int op_count() const;
  // Whether chunk `c` is a piece of a split sequence whose K/V state `offload` keeps in host
  // memory (by the sequence's length): what the memory and cost models both ask.
  bool offloaded(const Chunk& c, const KvOffloadPolicy& offload) const;
};

}  // namespace cf
