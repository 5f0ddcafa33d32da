// build_plan (plan_builder.h): validates the inputs, builds chunks (ChunkFlow §4.1 or the
// baseline §4.4), distributes them over DP ranks, and schedules every rank's pipeline
// (§4.2-4.3). Not the schedules themselves (chunk_schedule.cc, pipeline_schedule.cc).
#include "sim/plan/plan_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <queue>
#include <string>
#include <utility>

#include "core/check.h"
#include "core/limits.h"
#include "sim/plan/chunk_schedule.h"
#include "sim/plan/chunking.h"
#include "sim/plan/pipeline_schedule.h"

namespace cf {
namespace {

Status validate_inputs(const PlanInputs& in) {
  auto bad = [](const std::string& message) { return Status::InvalidInput(message); };
  if (in.sequence_lengths.empty()) return bad("dataset: the global batch has no sequences");
  for (size_t i = 0; i < in.sequence_lengths.size(); ++i) {
    if (in.sequence_lengths[i] <= 0) {
      return bad("dataset.lengths[" + std::to_string(i) + "]: must be positive, got " +
                 std::to_string(in.sequence_lengths[i]));
    }
  }
  if (in.pp < 1) return bad("parallel.pp: must be at least 1, got " + std::to_string(in.pp));
  if (in.dp < 1) return bad("parallel.dp: must be at least 1, got " + std::to_string(in.dp));
  if (in.vpp < 1) return bad("parallel.vpp: must be at least 1, got " + std::to_string(in.vpp));
  if (in.vpp > 1 && in.schedule != ScheduleKind::kInterleaved) {
    return bad(
        "parallel.vpp: " + std::to_string(in.vpp) +
        " virtual stages need schedule: interleaved, got schedule: " + to_string(in.schedule));
  }
  CF_RETURN_IF_ERROR(check_layer_split(LayerSplit{in.pp, in.vpp, in.layers, in.layers_per_stage}));
  if (in.pair_weight < 0) return bad("pair_weight: must not be negative");
  if (in.split_align < 1) return bad("split_align: must be positive");
  if (in.strategy.kind == StrategyKind::kChunkFlow &&
      in.strategy.chunk_size % in.split_align != 0) {
    return bad(fmt::format("chunk_size {} is not a multiple of the split's alignment {}",
                           in.strategy.chunk_size, in.split_align));
  }
  if (in.only_rank >= in.dp) return bad("only_rank: must be below dp");
  if (in.strategy.kind == StrategyKind::kChunkFlow) {
    if (in.strategy.chunk_size < 1) {
      return bad("strategy.chunk_size: must be positive, got " +
                 std::to_string(in.strategy.chunk_size));
    }
    if (in.strategy.k < 1) {
      return bad("strategy.k: must be at least 1, got " + std::to_string(in.strategy.k));
    }
  }
  return Status::Ok();
}

void distribute_over_dp(double pair_weight, Plan* plan) {
  const std::vector<int> ranks = assign_dp_ranks(plan->chunks, plan->dp, pair_weight);
  for (size_t c = 0; c < ranks.size(); ++c) plan->chunks[c].dp_rank = ranks[c];
  plan->ranks.assign(static_cast<size_t>(plan->dp), RankPlan{});
  for (int r = 0; r < plan->dp; ++r) plan->ranks[static_cast<size_t>(r)].dp_rank = r;
  for (const Chunk& chunk : plan->chunks) {  // ascending ids: the feed order
    plan->ranks[static_cast<size_t>(chunk.dp_rank)].chunks.push_back(chunk.id);
  }
}

// The pipeline input of one rank: feed order, F or F* per chunk, group-aware backward order.
PipelineInput pipeline_input(const Plan& plan, const RankPlan& rank) {
  PipelineInput input;
  input.chunks = rank.chunks;
  for (int id : rank.chunks) {
    const Chunk& chunk = plan.chunks[static_cast<size_t>(id)];
    input.forward.push_back(chunk.kind == ChunkKind::kDependent
                                ? group_forward_pass(chunk.index, chunk.group_size, plan.k)
                                : Pass::kForward);
  }
  input.backward_order = group_aware_backward_order(plan.chunks, rank.chunks);
  return input;
}

}  // namespace

double chunk_work(const Chunk& chunk, double pair_weight) {
  return static_cast<double>(chunk.tokens) +
         pair_weight * static_cast<double>(chunk.attention_pairs());
}

// Longest-processing-time greedy over units (a standalone chunk or a whole group): heaviest
// unit first (ties: lower first chunk) onto the least-loaded rank (ties: lower rank).
std::vector<int> assign_dp_ranks(const std::vector<Chunk>& chunks, int dp, double pair_weight) {
  struct Unit {
    int first_chunk = 0;
    int chunks = 0;
    double work = 0;
  };
  std::vector<Unit> units;
  for (size_t c = 0; c < chunks.size(); ++c) {
    const Chunk& chunk = chunks[c];
    if (chunk.kind == ChunkKind::kDependent && chunk.index > 0) {
      units.back().chunks += 1;
      units.back().work += chunk_work(chunk, pair_weight);
      continue;
    }
    units.push_back(Unit{static_cast<int>(c), 1, chunk_work(chunk, pair_weight)});
  }
  std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) {
    if (a.work != b.work) return a.work > b.work;
    return a.first_chunk < b.first_chunk;
  });
  // The least-loaded rank, lowest first among equals: a min-heap of (load, rank).
  using Slot = std::pair<double, int>;
  std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> ranks;
  for (int r = 0; r < dp; ++r) ranks.push({0.0, r});
  std::vector<int> rank_of(chunks.size(), 0);
  for (const Unit& unit : units) {
    auto [load, rank] = ranks.top();
    ranks.pop();
    ranks.push({load + unit.work, rank});
    for (int c = unit.first_chunk; c < unit.first_chunk + unit.chunks; ++c) {
      rank_of[static_cast<size_t>(c)] = rank;
    }
  }
  return rank_of;
}

namespace {

// A step's ops (at most F, F* or R, and B of each chunk on each of the pp·vpp stages) are
// bounded before any is built: each costs ~700 bytes while simulated (core/limits.h).
Status check_op_count(const PlanInputs& in, size_t chunks) {
  const int64_t ops = static_cast<int64_t>(chunks) * in.pp * in.vpp * 3;
  if (ops <= limits::kMaxOpsPerStep) return Status::Ok();
  return Status::InvalidInput(fmt::format(
      "{}: {} {} on pp·vpp = {} stages make up to {} ops a step, more than the {} a step may "
      "hold (core/limits.h): {}",
      in.strategy.kind == StrategyKind::kChunkFlow ? "strategy.chunk_size"
                                                   : "training.global_batch",
      chunks, in.strategy.kind == StrategyKind::kChunkFlow ? "chunks" : "micro-batches",
      in.pp * in.vpp, ops, limits::kMaxOpsPerStep,
      in.strategy.kind == StrategyKind::kChunkFlow ? "raise chunk_size or lower pp"
                                                   : "lower global_batch or pp"));
}

}  // namespace

StatusOr<Plan> build_plan(const PlanInputs& inputs) {
  CF_RETURN_IF_ERROR(validate_inputs(inputs));
  std::vector<Chunk> chunks;
  if (inputs.strategy.kind == StrategyKind::kChunkFlow) {
    CF_RETURN_IF_ERROR(
        check_chunkflow_chunk_count(inputs.sequence_lengths, inputs.strategy.chunk_size));
    chunks = build_chunkflow_chunks(
        inputs.sequence_lengths, inputs.strategy.chunk_size, inputs.strategy.packer,
        ChunkCosting{inputs.strategy.split, inputs.pair_weight, inputs.split_align});
  } else {
    CF_ASSIGN_OR_RETURN(chunks,
                        build_baseline_micro_batches(inputs.sequence_lengths, inputs.max_length,
                                                     inputs.strategy.micro_batching));
  }
  return build_plan_with_chunks(inputs, std::move(chunks));
}

StatusOr<Plan> build_plan_with_chunks(const PlanInputs& inputs, std::vector<Chunk> chunks) {
  CF_RETURN_IF_ERROR(validate_inputs(inputs));
  CF_RETURN_IF_ERROR(check_op_count(inputs, chunks.size()));
  Plan plan;
  plan.strategy = inputs.strategy.kind;
  plan.schedule = inputs.schedule;
  plan.pp = inputs.pp;
  plan.vpp = inputs.vpp;
  plan.dp = inputs.dp;
  plan.layers = inputs.layers;
  plan.layers_per_stage = inputs.layers_per_stage;
  plan.sequence_lengths = inputs.sequence_lengths;
  if (inputs.strategy.kind == StrategyKind::kChunkFlow) {
    plan.k = inputs.strategy.k;
    plan.chunk_size = inputs.strategy.chunk_size;
  } else {
    plan.k = 1;  // no dependent groups: every micro-batch keeps its activations
    plan.chunk_size = inputs.max_length;
  }
  plan.chunks = std::move(chunks);
  distribute_over_dp(inputs.pair_weight, &plan);
  for (RankPlan& rank : plan.ranks) {
    if (inputs.only_rank >= 0 && rank.dp_rank != inputs.only_rank) {
      rank.chunks.clear();  // a one-rank plan: the other ranks run nothing
      rank.stages.assign(static_cast<size_t>(plan.pp), StagePlan{});
      continue;
    }
    rank.stages = schedule_pipeline(pipeline_input(plan, rank), plan.schedule, plan.pp, plan.vpp);
  }
  // Op ids in (rank, stage, position) order.
  int next_id = 0;
  for (RankPlan& rank : plan.ranks) {
    for (StagePlan& stage : rank.stages) {
      for (Op& op : stage.ops) op.id = next_id++;
    }
  }
  return plan;
}

void set_plan_layout(const Job& job, PlanInputs* inputs) {
  inputs->strategy = job.strategy;
  inputs->schedule = job.parallel.schedule;
  inputs->pp = job.parallel.pp;
  inputs->vpp = job.parallel.vpp;
  inputs->dp = job.parallel.dp;
  inputs->layers_per_stage = job.parallel.layers_per_stage;
  inputs->split_align = cp_pieces(job, job.parallel.cp);
}

int64_t cp_pieces(const Job& job, int cp) {
  if (cp <= 1) return 1;
  return job.parallel.cp_comm == CpComm::kP2p ? 2 * cp : cp;
}

PlanInputs plan_inputs_from_job(const Job& job, int64_t step) {
  PlanInputs inputs;
  inputs.sequence_lengths = job_global_batch(job, step);
  set_plan_layout(job, &inputs);
  inputs.layers = job.model.layers;
  inputs.max_length = job.dataset.max_length;
  inputs.pair_weight = dp_pair_weight(job.model);
  return inputs;
}

// 4·Q FLOPs per pair (docs/COSTS-REFERENCE.md §5) against the linear FLOPs per token
// (models/model.h).
double dp_pair_weight(const ModelConfig& model) {
  const double linear = model.linear_flops_per_token_per_layer();
  return linear > 0 ? model.attention_flops_per_pair_per_layer() / linear : 0;
}

StatusOr<Plan> build_plan(const Job& job, int64_t step) {
  StatusOr<Plan> plan = build_plan(plan_inputs_from_job(job, step));
  if (!plan.ok()) return plan.status().prefixed(job.origin);  // the file
  return plan;
}

}  // namespace cf
