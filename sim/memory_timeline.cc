// Memory replay of one stage's op stream: allocations at op starts, frees at op ends, in
// stream order (a stage's ops never overlap, so its memory needs no other stage's events).
#include "sim/memory_timeline.h"

#include <algorithm>

#include "core/check.h"
#include "sim/memory_calibrated.h"
#include "sim/plan/chunk_schedule.h"

namespace cf {

// Lifetimes (DESIGN.md §4.2, §4.5):
//   F   keeps the chunk's activations until its B; a dependent chunk's K/V go to the store.
//   F*  keeps the stage input (for R) until its B; its K/V go to the store.
//   R   restores the activations until its B.
//   B   frees them, and the chunk's K/V. The group's first backward (highest index)
//       allocates fp32 dK/dV for every earlier piece (its prefix); B of piece j frees
//       piece j's dK/dV, which it consumed.
// A dependent chunk's K/V are counted in the store, not in its activations.
OpMemory megatron_op_memory(const MemoryModel& memory, Pass pass, const Chunk& chunk, int k,
                            const StagePlace& place) {
  const bool dependent = chunk.kind == ChunkKind::kDependent;
  const bool first = place.first, last = place.last;
  const int64_t tokens = chunk.tokens;
  OpMemory m;
  m.transient = memory.transient_bytes(pass, tokens, last);
  switch (pass) {
    case Pass::kForward:
    case Pass::kRecompute:
      m.activations_at_start = memory.activation_bytes(tokens, dependent, first, last);
      if (dependent && pass == Pass::kForward) m.store_at_start = memory.kv_bytes(tokens);
      break;
    case Pass::kForwardKeepKV:
      m.activations_at_start = memory.stage_input_bytes(tokens);
      m.store_at_start = memory.kv_bytes(tokens);
      break;
    case Pass::kBackward: {
      // F* exactly for the pieces group_forward_pass says (plan_checker rule pass-kind).
      const bool kept_kv_only =
          dependent && group_forward_pass(chunk.index, chunk.group_size, k) == Pass::kForwardKeepKV;
      m.activations_at_end = -memory.activation_bytes(tokens, dependent, first, last);
      if (kept_kv_only) m.activations_at_end -= memory.stage_input_bytes(tokens);
      if (dependent) {
        m.store_at_end = -memory.kv_bytes(tokens);
        if (chunk.index == chunk.group_size - 1) {
          const int64_t prefix_tokens = chunk.segments.front().offset;
          m.store_at_start = memory.dkv_bytes(prefix_tokens);
        } else {
          m.store_at_end -= memory.dkv_bytes(tokens);
        }
      }
      break;
    }
  }
  return m;
}

OpMemory op_memory(const MemoryModel& memory, const PlanIndex& index, int i) {
  const IndexedOp& entry = index.op(i);
  const Plan& plan = index.plan();
  const Op& op = *entry.op;
  const Chunk& chunk = plan.chunks[static_cast<size_t>(op.chunk)];
  if (memory.kind() == MemoryModelKind::kMegatron) {
    return megatron_op_memory(memory, op.pass, chunk, plan.k, entry.place);
  }
  // The executor's exact buffers (memory_calibrated.h): a forward's kept bytes at its start
  // and the rest of its peak as transient; a backward's peak as transient, its frees (and
  // the dK/dV it leaves) at its end.
  const ExecutorOpBytes b = executor_op_bytes(memory.model(), plan, op, entry.place.first,
                                              entry.place.last);
  OpMemory m;
  if (is_forward_pass(op.pass)) {
    m.activations_at_start = b.activations_delta;
    m.store_at_start = b.store_delta;
    m.transient = b.peak_bytes - b.activations_delta - b.store_delta;
  } else {
    m.activations_at_end = b.activations_delta;
    m.store_at_end = b.store_delta;
    m.transient = b.peak_bytes;
  }
  CF_CHECK(m.transient >= 0 && m.activations_at_start >= 0 && m.store_at_start >= 0)
      << "op " << op.id << ": a forward that frees, or a peak under what it keeps";
  return m;
}

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

StageMemoryReplay replay_stage_memory(const MemoryModel& memory, const PlanIndex& index,
                                      int dp_rank, int stage, const std::vector<int64_t>& start_ns,
                                      const std::vector<int64_t>& end_ns,
                                      std::vector<MemorySample>* samples) {
  MemoryBreakdown now = memory.model_states(stage);
  const Sampler sampler{samples, dp_rank, stage};
  if (samples) {
    for (MemoryCategory c : kAllMemoryCategories) sampler.add(0, c, now[c]);
    sampler.add(0, std::nullopt, now.total());
  }
  StageMemoryReplay replay;
  replay.peak = now;
  int64_t min_bytes = 0;
  for (int i = index.stream_begin(dp_rank, stage); i < index.stream_end(dp_rank, stage); ++i) {
    const OpMemory m = op_memory(memory, index, i);
    const size_t at = static_cast<size_t>(i);
    MemoryBreakdown before = now;
    now.activations += m.activations_at_start;
    now.state_store += m.store_at_start;
    now.transient += m.transient;
    sampler.changes(start_ns[at], before, now);
    if (now.total() > replay.peak.total()) {
      replay.peak = now;
      replay.peak_time_ns = start_ns[at];
    }
    before = now;
    now.transient -= m.transient;
    now.activations += m.activations_at_end;
    now.state_store += m.store_at_end;
    sampler.changes(end_ns[at], before, now);
    min_bytes = std::min({min_bytes, now.activations, now.state_store, now.transient});
  }
  replay.min_category_bytes = min_bytes;
  replay.end_dynamic_bytes = now.dynamic();
  return replay;
}

}  // namespace cf
