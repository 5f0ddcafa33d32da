// Memory replay of one stage's op stream: allocations at op starts, frees at op ends, in
// stream order (a stage's ops never overlap, so its memory needs no other stage's events).
#include "sim/memory_timeline.h"

#include <algorithm>

#include "core/check.h"
#include "core/numeric.h"

namespace cf {

namespace {

struct Sampler {
  std::vector<MemorySample>* samples;
  int dp_rank;
  int stage;
  void add(int64_t time_ns, std::optional<MemoryCategory> category, int64_t bytes) const {
    samples->push_back(MemorySample{dp_rank, stage, time_ns, category, bytes});
  }
  // Every category that changed, then the total (model states never change in a step).
  void changes(int64_t time_ns, const MemoryBreakdown& before, const MemoryBreakdown& after) const {
    if (!samples) return;
    for (MemoryCategory c : kAllMemoryCategories) {
      if (before[c] != after[c]) add(time_ns, c, after[c]);
    }
    if (before.total() != after.total()) add(time_ns, std::nullopt, after.total());
  }
};

}  // namespace

StageMemoryReplay replay_stage_memory(const OpMemorySource& memory, const PlanIndex& index,
                                      int dp_rank, int stage, const std::vector<int64_t>& start_ns,
                                      const std::vector<int64_t>& end_ns,
                                      std::vector<MemorySample>* samples) {
  MemoryBreakdown now = memory.model_states(stage);
  const Sampler sampler{samples, dp_rank, stage};
  if (samples) {
    for (MemoryCategory c : kAllMemoryCategories) sampler.add(0, c, now[c]);
    sampler.add(0, std::nullopt, now.total());
  }
  int64_t min_bytes = 0;
  const std::vector<OpMemory> ops = memory.stream(index, dp_rank, stage);
  const int first = index.stream_begin(dp_rank, stage);
  CF_CHECK_EQ(static_cast<int>(ops.size()), index.stream_end(dp_rank, stage) - first);
  // Every allocation added up (in double) bounds every total the replay computes: past 2^62
  // bytes the stage is refused (too_large) before an int64 sum could overflow.
  double most = static_cast<double>(now.total());
  for (const OpMemory& m : ops) {
    most += static_cast<double>(std::max<int64_t>(m.activations_at_start, 0)) +
            static_cast<double>(std::max<int64_t>(m.activations_at_end, 0)) +
            static_cast<double>(std::max<int64_t>(m.store_at_start, 0)) +
            static_cast<double>(std::max<int64_t>(m.store_at_end, 0)) +
            static_cast<double>(std::max<int64_t>(m.transient, 0)) +
            static_cast<double>(std::max<int64_t>(m.host_at_start, 0)) +
            static_cast<double>(std::max<int64_t>(m.host_at_end, 0));
  }
  StageMemoryReplay replay;
  if (!(most < static_cast<double>(kMaxSimulatedBytes))) {
    replay.too_large = true;
    return replay;
  }
  replay.peak = now;
  const bool timed = !start_ns.empty();
  CF_CHECK(timed || samples == nullptr) << "a memory timeline needs the ops' times";
  int64_t host = 0;
  for (size_t k = 0; k < ops.size(); ++k) {
    const OpMemory& m = ops[k];
    host += m.host_at_start;
    replay.host_peak_bytes = std::max(replay.host_peak_bytes, host);
    const size_t at = static_cast<size_t>(first) + k;
    MemoryBreakdown before = now;
    now.activations += m.activations_at_start;
    now.state_store += m.store_at_start;
    now.transient += m.transient;
    if (timed) sampler.changes(start_ns[at], before, now);
    if (now.total() > replay.peak.total()) {
      replay.peak = now;
      replay.peak_time_ns = timed ? start_ns[at] : 0;
    }
    before = now;
    now.transient -= m.transient;
    now.activations += m.activations_at_end;
    now.state_store += m.store_at_end;
    host += m.host_at_end;
    replay.host_peak_bytes = std::max(replay.host_peak_bytes, host);
    if (timed) sampler.changes(end_ns[at], before, now);
    min_bytes = std::min({min_bytes, now.activations, now.state_store, now.transient, host});
  }
  replay.min_category_bytes = min_bytes;
  replay.end_dynamic_bytes = now.dynamic() + host;
  return replay;
}

}  // namespace cf
