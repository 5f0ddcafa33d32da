// tune(): the sampled steps and the worst case, every chunking built once, the layouts with
// their layer splits, then the two searches (tuner/search.h) — ChunkFlow and the baseline.
#include "tuner/tuner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>

#include "core/limits.h"
#include "sim/cost_model.h"
#include "sim/memory_source.h"
#include "sim/plan/chunking.h"
#include "sim/plan/plan_builder.h"
#include "sim/simulator.h"
#include "tuner/bounds.h"
#include "tuner/layer_balance.h"
#include "tuner/search.h"
#include "tuner/thread_pool.h"

namespace cf {
namespace {

StepChunks make_step_chunks(const std::vector<PlanInputs>& steps, bool worst_case_last,
                            const std::function<std::vector<Chunk>(const PlanInputs&)>& build) {
  StepChunks out;
  out.worst_case_last = worst_case_last;
  const size_t timed = steps.size() - (worst_case_last ? 1 : 0);
  for (const PlanInputs& in : steps) {
    out.steps.push_back(build(in));
    // K folds over the sampled steps only: K at or above their longest group gives the same
    // step time, and the smallest such K the least worst-case memory, so it stands for them.
    if (out.steps.size() > timed) continue;
    for (const Chunk& c : out.steps.back()) {
      if (c.kind == ChunkKind::kDependent)
        out.max_group_size = std::max(out.max_group_size, c.group_size);
    }
  }
  return out;
}

}  // namespace

double objective_score(Objective objective, const SimMetrics& metrics) {
  return objective == Objective::kStepTime ? metrics.step_time_s : -metrics.tokens_per_s;
}

namespace {

// The chunks of every sampled step, one chunking per (packer, ChunkSize) (built in parallel),
// and the baseline's micro-batches.
struct Chunkings {
  std::vector<std::pair<Packer, int64_t>> keys;
  std::vector<StepChunks> chunkflow;  // per key
  StepChunks baseline;                // packed to max_length
  StepChunks per_sequence;            // one sequence per micro-batch
};

// The chunks the chunkings will hold, bounded before any is built (core/limits.h): each
// ChunkSize's chunks of a step, and all of them together.
Status check_chunkings_size(const std::vector<int64_t>& chunk_sizes, size_t packers,
                            const std::vector<PlanInputs>& steps) {
  int64_t total = 0;
  for (int64_t c : chunk_sizes) {
    for (const PlanInputs& step : steps) {
      const int64_t chunks = min_chunkflow_chunks(step.sequence_lengths, c);
      if (chunks > limits::kMaxChunksPerStep) {
        return Status::InvalidInput(fmt::format(
            "tune: ChunkSize {} cuts a step into at least {} chunks, more than the {} a step may "
            "hold (core/limits.h): raise the smallest ChunkSize (--chunk-sizes or "
            "tune.chunk_sizes)",
            c, chunks, limits::kMaxChunksPerStep));
      }
      total += chunks * static_cast<int64_t>(packers);
    }
  }
  if (total > limits::kMaxTuneChunks) {
    return Status::InvalidInput(fmt::format(
        "tune: the search would hold {} chunks ({} ChunkSizes × {} packers × {} steps), more than "
        "{} (core/limits.h): lower training.steps or try fewer ChunkSizes",
        total, chunk_sizes.size(), packers, steps.size(), limits::kMaxTuneChunks));
  }
  return Status::Ok();
}

StatusOr<Chunkings> chunk_every_way(const Job& job, const SearchSpace& space,
                                    const std::vector<PlanInputs>& steps, const ThreadPool& pool,
                                    bool worst_case_last) {
  Chunkings out;
  const std::vector<int64_t> chunk_sizes = resolve_chunk_sizes(space, job);
  CF_RETURN_IF_ERROR(check_chunkings_size(chunk_sizes, space.packers.size(), steps));
  for (Packer packer : space.packers) {
    for (int64_t c : chunk_sizes) out.keys.push_back({packer, c});
  }
  out.chunkflow.resize(out.keys.size());
  // The cost split's boundaries fit every layout's context parallelism: multiples of the
  // largest CP piece count searched (CP sizes are powers of two).
  int64_t align = 1;
  for (const ParallelLayout& layout : resolve_layouts(space, job)) {
    align = std::max(align, cp_pieces(job, layout.cp));
  }
  pool.parallel_for(static_cast<int>(out.keys.size()), [&](int i, int) {
    out.chunkflow[i] = make_step_chunks(steps, worst_case_last, [&](const PlanInputs& in) {
      return build_chunkflow_chunks(in.sequence_lengths, out.keys[i].second, out.keys[i].first,
                                    ChunkCosting{job.strategy.split, in.pair_weight,
                                                 out.keys[i].second % align == 0 ? align : 1});
    });
  });
  Status baseline_status = Status::Ok();
  for (MicroBatching micro_batching : {MicroBatching::kPack, MicroBatching::kPerSequence}) {
    StepChunks& target = micro_batching == MicroBatching::kPack ? out.baseline : out.per_sequence;
    target = make_step_chunks(steps, worst_case_last, [&](const PlanInputs& in) {
      StatusOr<std::vector<Chunk>> mb =
          build_baseline_micro_batches(in.sequence_lengths, in.max_length, micro_batching);
      if (!mb.ok()) {
        baseline_status = mb.status();
        return std::vector<Chunk>{};
      }
      return *std::move(mb);
    });
    CF_RETURN_IF_ERROR(baseline_status);
  }
  return out;
}

}  // namespace

StatusOr<TuneResult> tune(const Job& given_job, const SearchSpace& space,
                          const TuneOptions& given_options) {
  // kv_offload: auto places each candidate (tuner/search_evaluate.cc); what is priced before a
  // candidate runs (layer splits, bounds, memory source) prices the K/V on the GPU.
  Job job = given_job;
  if (kv_offload_of(given_job) == KvOffload::kAuto) job.strategy.kv_offload = KvOffload::kNone;
  TuneOptions options = given_options;
  // The memory bound counts the K/V on the GPU: it proves nothing of an offloading candidate.
  // (kv_offload: auto runs each candidate on the GPU and offloads it when that is over the
  // budget: tuner/search_evaluate.cc.)
  if (kv_offload_of(given_job) != KvOffload::kNone) {
    options.prune_by_memory = false;
  }
  if (space.ks.empty() || space.packers.empty() || resolve_chunk_sizes(space, job).empty() ||
      resolve_layouts(space, job).empty()) {
    return Status::InvalidInput(fmt::format(
        "{}: the search space has no K, packer, ChunkSize or layout for this job", job.origin));
  }
  CF_RETURN_IF_ERROR(make_memory_source(job).status());  // the bounds' and simulator's memory
  TuneResult result;
  result.job = given_job;
  result.space = space;
  const ThreadPool pool(options.threads > 0 ? options.threads : ThreadPool::hardware_threads());
  result.threads = pool.threads();
  const GpuSpec& gpu = job.cluster.gpu;
  result.memory_budget_bytes = static_cast<int64_t>(std::floor(static_cast<double>(gpu.hbm_bytes) *
                                                               (1.0 - space.memory_margin))) -
                               gpu.reserved_bytes;

  std::vector<PlanInputs> steps;
  for (int s = 0; s < job.training.steps; ++s) {
    steps.push_back(plan_inputs_from_job(job, s));
    const std::vector<int64_t>& lengths = steps.back().sequence_lengths;
    result.tokens_per_step += std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
  }
  result.tokens_per_step /= job.training.steps;
  // One more batch, judged for memory only: the longest sequence the data can produce.
  PlanInputs worst = steps.front();
  worst.sequence_lengths = worst_case_batch(job, worst.sequence_lengths);
  result.worst_case_length = worst.sequence_lengths.empty() ? 0 : longest_sequence(job);
  if (!worst.sequence_lengths.empty()) steps.push_back(std::move(worst));
  CF_ASSIGN_OR_RETURN(Chunkings chunked,
                      chunk_every_way(job, space, steps, pool, result.worst_case_length > 0));
  const auto& [keys, chunkings, baseline_chunks, per_sequence_chunks] = chunked;
  for (const StepChunks& c : chunkings)
    result.max_group_size = std::max(result.max_group_size, c.max_group_size);

  std::vector<SearchWorker> workers(pool.threads());
  Job scratch = job;
  scratch.tune = YAML::Node();
  for (SearchWorker& w : workers) w.job = scratch;
  std::atomic<int> done{0};
  std::mutex progress_mu;
  int total = 0;  // both searches: one progress bar

  CandidateSearch chunkflow(scratch, space, steps, pool, workers, result.memory_budget_bytes,
                            options, &done, &total, &progress_mu);
  int folded = 0;
  result.layouts = with_layer_splits(resolve_layouts(space, job), space.splits, job);
  for (const ParallelLayout& layout : result.layouts) {
    for (size_t i = 0; i < keys.size(); ++i) {
      StrategyConfig strategy;
      strategy.kind = StrategyKind::kChunkFlow;
      strategy.packer = keys[i].first;
      strategy.chunk_size = keys[i].second;
      // The job's split and K/V offload apply to every candidate (the chunkings used the split).
      strategy.split = job.strategy.split;
      strategy.kv_offload = given_job.strategy.kv_offload;
      strategy.kv_offload_min_tokens = job.strategy.kv_offload_min_tokens;
      folded += chunkflow.add_candidates(layout, strategy, chunkings[i], space.ks);
    }
  }
  // The Megatron-style baseline, tuned over every layout the cluster admits (tp, pp, cp,
  // recompute, the space's layer splits) with both micro-batchings — whole sequences packed up to
  // max_length, and one sequence per micro-batch (MBS 1, as the ChunkFlow paper ran Megatron-LM) —
  // so the comparison is with its best configuration.
  CandidateSearch baseline(scratch, space, steps, pool, workers, result.memory_budget_bytes,
                           options, &done, &total, &progress_mu);
  if (options.baseline) {
    for (MicroBatching mb : {MicroBatching::kPack, MicroBatching::kPerSequence}) {
      StrategyConfig strategy;
      strategy.kind = StrategyKind::kBaseline;
      strategy.micro_batching = mb;
      const StepChunks& mb_chunks =
          mb == MicroBatching::kPack ? baseline_chunks : per_sequence_chunks;
      for (const ParallelLayout& layout : with_layer_splits(all_layouts(job), space.splits, job)) {
        baseline.add_candidates(layout, strategy, mb_chunks, {1});
      }
    }
  }
  total = chunkflow.size() + baseline.size();
  CF_ASSIGN_OR_RETURN(result.chunkflow, chunkflow.run(std::max(space.top, 2), folded));
  if (options.baseline) {
    CF_ASSIGN_OR_RETURN(result.baseline, baseline.run(1, 0));
    result.baseline_searched = true;
  }
  return result;
}

Job best_job(const TuneResult& result) {
  const RankedCandidate* best = result.best();
  CF_CHECK(best != nullptr) << "best_job of a search where nothing fits";
  Job job = job_with(result.job, best->candidate.layout, best->candidate.strategy);
  job.tune = YAML::Node();
  return job;
}

}  // namespace cf
