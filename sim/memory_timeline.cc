// Memory replay of one stage's op stream: allocations at op starts, frees at op ends, in
// stream order (a stage's ops never overlap, so its memory needs no other stage's events).
#include "sim/memory_timeline.h"

#include <algorithm>

#include "core/check.h"
#include "sim/memory_calibrated.h"

namespace cf {

// Lifetimes (DESIGN.md §4.2, §4.5):
//   F   keeps the chunk's activations until its B; a dependent chunk's K/V go to the store.
//   F*  keeps the stage input (for R) until its B; its K/V go to the store.
//   R   restores the activations until its B.
//   B   frees them, and the chunk's K/V. The group's first backward (highest index)
//       allocates fp32 dK/dV for every earlier piece (its prefix); B of piece j frees
//       piece j's dK/dV, which it consumed.
// A dependent chunk's K/V are counted in the store, not in its activations.
OpMemory op_memory(const MemoryModel& memory, const Plan& plan, const Op& op, bool first,
                   bool last) {
  if (memory.accounting() == MemoryAccounting::kExecutor) {
    // The executor's exact buffers (memory_calibrated.h): a forward's kept bytes at its start
    // and the rest of its peak as transient; a backward's peak as transient, its frees (and
    // the dK/dV it leaves) at its end.
    const ExecutorOpBytes b = executor_op_bytes(memory.model(), plan, op, first, last);
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
  const Chunk& chunk = plan.chunks[op.chunk];
  const bool dependent = chunk.kind == ChunkKind::kDependent;
  const int64_t tokens = chunk.tokens;
  OpMemory m;
  m.transient = memory.transient_bytes(op.pass, tokens, last);
  switch (op.pass) {
    case Pass::kForward:
    case Pass::kRecompute:
      m.activations_at_start = memory.activation_bytes(tokens, dependent, first, last);
      if (dependent && op.pass == Pass::kForward) m.store_at_start = memory.kv_bytes(tokens);
      break;
    case Pass::kForwardKeepKV:
      m.activations_at_start = memory.stage_input_bytes(tokens);
      m.store_at_start = memory.kv_bytes(tokens);
      break;
    case Pass::kBackward: {
      // F* exactly for pieces 0..N-K-1 of a group (plan_checker rule pass-kind).
      const bool kept_kv_only = dependent && chunk.index < chunk.group_size - plan.k;
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

namespace {

struct Sampler {
  std::vector<MemorySample>* samples;
  int dp_rank;
  int stage;
  void add(int64_t time_ns, const char* category, int64_t bytes) const {
    samples->push_back(MemorySample{dp_rank, stage, time_ns, category, bytes});
  }
  void changes(int64_t time_ns, const MemoryBreakdown& before, const MemoryBreakdown& after) const {
    if (!samples) return;
    if (before.activations != after.activations) add(time_ns, "activations", after.activations);
    if (before.state_store != after.state_store) add(time_ns, "state_store", after.state_store);
    if (before.transient != after.transient) add(time_ns, "transient", after.transient);
    if (before.total() != after.total()) add(time_ns, "total", after.total());
  }
};

}  // namespace

StageMemoryReplay replay_stage_memory(const MemoryModel& memory, const Plan& plan, int dp_rank,
                                      int stage, const std::vector<Op>& ops,
                                      const int64_t* start_ns, const int64_t* end_ns,
                                      std::vector<MemorySample>* samples) {
  const ModelStateBytes states = memory.model_states(stage);
  MemoryBreakdown now;
  now.weights = states.weights;
  now.gradients = states.gradients;
  now.optimizer = states.optimizer;
  const Sampler sampler{samples, dp_rank, stage};
  if (samples) {
    sampler.add(0, "weights", now.weights);
    sampler.add(0, "gradients", now.gradients);
    sampler.add(0, "optimizer", now.optimizer);
    sampler.add(0, "activations", 0);
    sampler.add(0, "state_store", 0);
    sampler.add(0, "transient", 0);
    sampler.add(0, "total", now.total());
  }
  StageMemoryReplay replay;
  replay.peak = now;
  int64_t min_bytes = 0;
  const int last_virtual_stage = plan.pp * plan.vpp - 1;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    const int virtual_stage = op.model_chunk * plan.pp + stage;
    const OpMemory m =
        op_memory(memory, plan, op, virtual_stage == 0, virtual_stage == last_virtual_stage);
    MemoryBreakdown before = now;
    now.activations += m.activations_at_start;
    now.state_store += m.store_at_start;
    now.transient += m.transient;
    sampler.changes(start_ns[i], before, now);
    if (now.total() > replay.peak.total()) {
      replay.peak = now;
      replay.peak_time_ns = start_ns[i];
    }
    before = now;
    now.transient -= m.transient;
    now.activations += m.activations_at_end;
    now.state_store += m.store_at_end;
    sampler.changes(end_ns[i], before, now);
    min_bytes = std::min({min_bytes, now.activations, now.state_store, now.transient});
  }
  replay.min_category_bytes = min_bytes;
  replay.end_dynamic_bytes = now.dynamic();
  return replay;
}

}  // namespace cf
