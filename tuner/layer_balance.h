// Uneven pipeline splits for the tuner to try: the split of a model's layers over pp stages
// that evens out the stages' work once the first stage's embedding and the last stage's LM
// head and loss are counted where they run — what Megatron-LM's
// --account-for-embedding-in-pipeline-split and --account-for-loss-in-pipeline-split do with
// one layer's worth each, here with their priced cost.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/cost_model.h"
#include "sim/plan/job.h"
#include "tuner/search_space.h"

namespace cf {

// Layers per stage (pp entries, each ≥ 1, summing to `layers`) that minimise the busiest
// stage's forward + backward time of one chunk of `tokens` tokens (one sequence piece with no
// prefix), each stage costing its layers plus, on stage 0, the embedding and, on stage pp − 1,
// the LM head and loss, as `cost` prices them. Among equal bottlenecks the split nearest to
// even. pp = 1 gives {layers}.
std::vector<int64_t> balanced_layer_split(const CostModel& cost, int64_t layers, int pp,
                                          int64_t tokens);

// `layouts` with the layer splits `splits` asks for: each layout with pp ≥ 2 and no virtual
// stages once per distinct split — its own (the job's uneven split at the job's pp) first,
// then the even split, then the balanced one for a chunk of the job's ChunkSize (or
// max_length) — in the order given; the others as they are. An even split is written as no
// split (layers_per_stage empty).
std::vector<ParallelLayout> with_layer_splits(const std::vector<ParallelLayout>& layouts,
                                              const std::vector<SplitKind>& splits, const Job& job);

}  // namespace cf
