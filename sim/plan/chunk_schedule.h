// State-aware chunk scheduling (DESIGN §4.2, the paper's Algorithm 2): the pass order of one
// dependent group of N chunks with at most K holding activations, and the group-aware
// backward order of a pipeline's feed. Not the pipeline interleaving (pipeline_schedule.h).
#pragma once

#include <string>
#include <vector>

#include "sim/plan/plan.h"

namespace cf {

struct GroupStep {
  Pass pass = Pass::kForward;
  int index = 0;  // 0-based piece of the group
  bool operator==(const GroupStep&) const = default;
};

// How many pieces of a group of `n` ≥ 1 drop their activations with `k` ≥ 1: the first
// n − k (none when k ≥ n).
inline int dropped_pieces(int n, int k) { return n > k ? n - k : 0; }
// Its inverse: the smallest K with which piece `index` of a group of `n` keeps its
// activations (index ≥ dropped_pieces(n, K) exactly when K ≥ n − index).
inline int smallest_keeping_k(int index, int n) { return n - index; }
// The forward pass of piece `index` of a group of `n` with `k`: F* for the first
// dropped_pieces(n, k) pieces (they keep only K/V), F for the rest. Standalone chunks
// (n = 1) always get F.
Pass group_forward_pass(int index, int n, int k);

// Algorithm 2 for one group on one stage: F/F* 1..N, then B N..N-K+1, then R j, B j for
// j = N-K..1. N ≤ K: F 1..N, B N..1.
std::vector<GroupStep> group_schedule(int n, int k);

// "F*1 F*2 F*3 F4 F5 B5 B4 R3 B3 R2 B2 R1 B1" (1-based, as the paper writes it).
std::string group_schedule_string(const std::vector<GroupStep>& steps);

// The group-aware backward order of a feed (positions into `feed`, a list of chunk ids):
// standalone chunks in feed order; a group's pieces, which the feed holds contiguously and
// in ascending index, in descending index at the place of the group.
std::vector<int> group_aware_backward_order(const std::vector<Chunk>& chunks,
                                            const std::vector<int>& feed);

}  // namespace cf
