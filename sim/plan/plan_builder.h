// Builds a Plan from a job's global batch: chunk construction (DESIGN §4.1) or baseline
// micro-batching (§4.4), distribution over DP ranks, the state-aware chunk schedule (§4.2)
// and a pipeline schedule (§4.3). Deterministic: the same inputs give the same Plan.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/plan/job.h"
#include "sim/plan/plan.h"

namespace cf {

// Everything the plan depends on; kept separate from Job so tests and the tuner can build
// plans without a job file.
struct PlanInputs {
  std::vector<int64_t> sequence_lengths;
  StrategyConfig strategy;
  ScheduleKind schedule = ScheduleKind::kOneFOneB;
  int pp = 1;
  int vpp = 1;
  int dp = 1;
  int64_t layers = 1;
  std::vector<int64_t> layers_per_stage;  // pp entries, or empty: the even split
  int64_t max_length = 0;                 // baseline micro-batch capacity
  // Weight of one query-key pair relative to one token in the work estimate used to balance
  // DP ranks (attention FLOPs per pair / linear FLOPs per token); 0 balances tokens only.
  double pair_weight = 0;
  // The cost split's boundaries are multiples of this (context parallelism's pieces of a chunk:
  // 2·cp with cp_comm p2p, cp otherwise; 1 without CP).
  int64_t split_align = 1;
  // ≥ 0: only this DP rank's chunks are scheduled (the others' streams are empty), for judging
  // one rank without building the rest: its streams, hence its memory and its pipeline, are
  // those of the whole plan, and its simulated step is at most the whole plan's (the tuner's
  // first look). Such a plan leaves chunks unscheduled (plan_checker rejects it). -1: every
  // rank.
  int only_rank = -1;
};

PlanInputs plan_inputs_from_job(const Job& job, int64_t step);
// The job's strategy, schedule and layout (pp, vpp, dp, layer split) into `inputs`, its
// lengths kept: one batch planned under another layout.
void set_plan_layout(const Job& job, PlanInputs* inputs);
// PlanInputs::pair_weight for a model: one query-key pair of core attention against one token
// of the linear layers, per layer.
double dp_pair_weight(const ModelConfig& model);
// The pieces context parallelism cuts a chunk into under `job`'s cp_comm with `cp` ranks.
int64_t cp_pieces(const Job& job, int cp);

// Invalid inputs (lengths, sizes, layers that do not split over pp·vpp, vpp without the
// interleaved schedule) are an error Status naming the key; every schedule takes any chunk
// count, and a plan built always passes check_plan.
StatusOr<Plan> build_plan(const PlanInputs& inputs);
StatusOr<Plan> build_plan(const Job& job, int64_t step);
// As build_plan(inputs), with `chunks` already built from the same lengths and strategy by
// build_chunkflow_chunks or build_baseline_micro_batches (sim/chunking.h), so that a search
// over layouts and K (the tuner) packs each ChunkSize once. The same Plan as build_plan.
StatusOr<Plan> build_plan_with_chunks(const PlanInputs& inputs, std::vector<Chunk> chunks);

// Work estimate of a chunk for DP balancing: tokens + pair_weight · attention pairs.
double chunk_work(const Chunk& chunk, double pair_weight);

// The DP rank of each chunk of `chunks` (by position; ids ascending, a dependent group's
// pieces together) as build_plan assigns them: the heaviest unit (a standalone chunk or a
// whole group; work = tokens + pair_weight · attention pairs) first onto the least-loaded rank.
// Depends on the chunks, dp and pair_weight only (not on K or the schedule).
std::vector<int> assign_dp_ranks(const std::vector<Chunk>& chunks, int dp, double pair_weight);

// The plan as JSON text (chunks and op streams), the format of `chunkflow plan --json`.
std::string plan_to_json(const Plan& plan);

}  // namespace cf
