// ExecutorMemory (executor_memory.h): the counting backend's per-op records as the replay's
// per-op bytes.
#include "executor/calibrate/executor_memory.h"

#include "core/check.h"
#include "executor/counting_backend.h"
#include "executor/executor.h"

namespace cf {

StatusOr<std::unique_ptr<ExecutorMemory>> ExecutorMemory::create(const Job& job) {
  CF_RETURN_IF_ERROR(validate_for_executor(job));
  return std::unique_ptr<ExecutorMemory>(new ExecutorMemory(job));
}

MemoryBreakdown ExecutorMemory::model_states(int stage) const {
  CountingBackend backend;
  StageWorker worker(model_, pp_, vpp_, /*dp_rank=*/0, stage, &backend);
  return worker.tracker().live_bytes();  // the parameters' buffers, before any op
}

OpMemory op_memory_of(const OpMemoryRecord& record) {
  const MemoryBreakdown& start = record.live_at_start;
  const MemoryBreakdown& end = record.live_at_end;
  CF_CHECK_EQ(end.model_states(), start.model_states()) << "op " << record.op_id;
  CF_CHECK_EQ(end.transient, start.transient) << "transient buffers outlive op " << record.op_id;
  const int64_t activations = end.activations - start.activations;
  const int64_t store = end.state_store - start.state_store;
  const int64_t peak = record.peak_bytes - start.total();  // above what was held before
  OpMemory m;
  if (is_forward_pass(record.pass)) {
    m.activations_at_start = activations;
    m.store_at_start = store;
    m.transient = peak - activations - store;
  } else {
    m.activations_at_end = activations;
    m.store_at_end = store;
    m.transient = peak;
  }
  CF_CHECK(m.transient >= 0 && m.activations_at_start >= 0 && m.store_at_start >= 0)
      << "op " << record.op_id << ": a forward that frees, or a peak under what it keeps";
  return m;
}

std::vector<OpMemory> ExecutorMemory::stream(const PlanIndex& index, int dp_rank, int stage) const {
  std::vector<OpMemory> out;
  for (const OpMemoryRecord& record : count_op_memory(model_, index.plan(), dp_rank, stage)) {
    out.push_back(op_memory_of(record));
  }
  CF_CHECK_EQ(static_cast<int>(out.size()),
              index.stream_end(dp_rank, stage) - index.stream_begin(dp_rank, stage));
  return out;
}

void install_executor_memory() {
  set_executor_memory_factory([](const Job& job) -> StatusOr<std::unique_ptr<OpMemorySource>> {
    CF_ASSIGN_OR_RETURN(std::unique_ptr<ExecutorMemory> memory, ExecutorMemory::create(job));
    return std::unique_ptr<OpMemorySource>(std::move(memory));
  });
}

}  // namespace cf
