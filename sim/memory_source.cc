// Megatron-LM's per-op accounting (memory_source.h) over the formulas of memory_model.h, and
// the choice of source by the job's memory_model.
#include "sim/memory_source.h"

#include "core/check.h"
#include "sim/plan/chunk_schedule.h"

namespace cf {

namespace {

// The offloaded form of a dependent piece's op (megatron_op_memory with offload).
OpMemory offloaded_op_memory(const MemoryModel& memory, Pass pass, const Chunk& chunk, int k,
                             const StagePlace& place) {
  const int64_t tokens = chunk.tokens;
  const int64_t prefix = chunk.segments.front().offset;
  const int64_t kv = memory.kv_bytes(place, tokens);
  const int64_t buffers = prefix > 0 ? 2 * kv : 0;  // two piece-sized blocks of the prefix
  OpMemory m;
  m.transient = memory.transient_bytes(pass, tokens, place.last);
  switch (pass) {
    case Pass::kForward:
    case Pass::kForwardKeepKV:
      m.activations_at_start = pass == Pass::kForward ? memory.activation_bytes(place, tokens, true)
                                                      : memory.stage_input_bytes(tokens);
      m.store_at_start = kv;  // made here, on the GPU while the op runs
      m.store_at_end = -kv;   // then copied out
      m.host_at_end = kv;
      m.transient += buffers;
      break;
    case Pass::kRecompute:
      m.activations_at_start = memory.activation_bytes(place, tokens, true);
      m.transient += buffers;
      break;
    case Pass::kBackward: {
      const bool kept_kv_only =
          group_forward_pass(chunk.index, chunk.group_size, k) == Pass::kForwardKeepKV;
      m.activations_at_end = -memory.activation_bytes(place, tokens, true);
      if (kept_kv_only) m.activations_at_end -= memory.stage_input_bytes(tokens);
      // Its own K/V back in; the prefix's K/V and dK/dV through two blocks each.
      m.transient += kv + (prefix > 0 ? 2 * (kv + memory.dkv_bytes(place, tokens)) : 0);
      m.host_at_end = -kv;
      if (chunk.index == chunk.group_size - 1) {
        m.host_at_start = memory.dkv_bytes(place, prefix);
      } else {
        m.host_at_end -= memory.dkv_bytes(place, tokens);
      }
      break;
    }
  }
  return m;
}

}  // namespace

OpMemory megatron_op_memory(const MemoryModel& memory, Pass pass, const Chunk& chunk, int k,
                            const StagePlace& place, bool offload) {
  const bool dependent = chunk.kind == ChunkKind::kDependent;
  if (dependent && offload) return offloaded_op_memory(memory, pass, chunk, k, place);
  const int64_t tokens = chunk.tokens;
  OpMemory m;
  m.transient = memory.transient_bytes(pass, tokens, place.last);
  switch (pass) {
    case Pass::kForward:
    case Pass::kRecompute:
      m.activations_at_start = memory.activation_bytes(place, tokens, dependent);
      if (dependent && pass == Pass::kForward) m.store_at_start = memory.kv_bytes(place, tokens);
      break;
    case Pass::kForwardKeepKV:
      m.activations_at_start = memory.stage_input_bytes(tokens);
      m.store_at_start = memory.kv_bytes(place, tokens);
      break;
    case Pass::kBackward: {
      // F* exactly for the pieces group_forward_pass says (plan_checker rule pass-kind).
      const bool kept_kv_only =
          dependent && group_forward_pass(chunk.index, chunk.group_size, k) == Pass::kForwardKeepKV;
      m.activations_at_end = -memory.activation_bytes(place, tokens, dependent);
      if (kept_kv_only) m.activations_at_end -= memory.stage_input_bytes(tokens);
      if (dependent) {
        m.store_at_end = -memory.kv_bytes(place, tokens);
        if (chunk.index == chunk.group_size - 1) {
          const int64_t prefix_tokens = chunk.segments.front().offset;
          m.store_at_start = memory.dkv_bytes(place, prefix_tokens);
        } else {
          m.store_at_end -= memory.dkv_bytes(place, tokens);
        }
      }
      break;
    }
  }
  return m;
}

std::vector<OpMemory> MegatronMemory::stream(const PlanIndex& index, int dp_rank, int stage) const {
  const Plan& plan = index.plan();
  std::vector<OpMemory> out;
  for (int i = index.stream_begin(dp_rank, stage); i < index.stream_end(dp_rank, stage); ++i) {
    const IndexedOp& entry = index.op(i);
    const Chunk& chunk = plan.chunks[static_cast<size_t>(entry.op->chunk)];
    out.push_back(megatron_op_memory(model_, entry.op->pass, chunk, plan.k, entry.place,
                                     plan.offloaded(chunk, offload_)));
  }
  return out;
}

namespace {

MemorySourceFactory& executor_factory() {
  static MemorySourceFactory factory;
  return factory;
}

}  // namespace

void set_executor_memory_factory(MemorySourceFactory factory) {
  executor_factory() = std::move(factory);
}

StatusOr<std::unique_ptr<OpMemorySource>> make_memory_source(const Job& job) {
  // A job edited after loading (the tuner's layouts) may carry a split of another pp.
  if (Status split = check_layer_split(layer_split(job.model.layers, job.parallel)); !split.ok()) {
    return Status::InvalidInput(job.origin + ": " + split.message());
  }
  if (job.memory_model == MemoryModelKind::kMegatron) {
    return std::unique_ptr<OpMemorySource>(std::make_unique<MegatronMemory>(
        MemoryModel(job.model, job.parallel, job.training), kv_offload_policy(job)));
  }
  if (!executor_factory()) {
    return Status::InvalidInput(job.origin +
                                ": memory_model: executor needs the executor's allocator, which "
                                "this program does not include; use memory_model: megatron");
  }
  return executor_factory()(job);
}

}  // namespace cf
