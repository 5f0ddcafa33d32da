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
  StageWorker worker(model_, split_, /*dp_rank=*/0, stage, &backend);
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
  // The host pool rises to its peak within the op (from the start, as the replay applies it)
  // and falls from there by the end: a forward only adds, a backward adds dK/dV, then frees.
  m.host_at_start = record.host_peak - record.host_at_start;
  m.host_at_end = record.host_at_end - record.host_peak;
  if (is_forward_pass(record.pass)) {
    m.activations_at_start = activations;
    m.store_at_start = store;
    m.transient = peak - activations - store;
    CF_CHECK_EQ(m.host_at_end, 0) << "op " << record.op_id << ": a forward that frees host memory";
  } else {
    m.activations_at_end = activations;
    m.store_at_end = store;
    m.transient = peak;
  }
  CF_CHECK(m.transient >= 0 && m.activations_at_start >= 0 && m.store_at_start >= 0 &&
           m.host_at_start >= 0)
      << "op " << record.op_id << ": a forward that frees, or a peak under what it keeps";
  return m;
}

// With context parallelism every CP rank of the stage runs the same ops on its own rows; the
// stream of the rank that holds the most (kept plus working memory over the step) stands for
// the stage. When the chunks split evenly into 2·cp pieces the ranks are identical and the
// replay is exact; otherwise the pieces differ by a token and so do the ranks, slightly.
std::vector<OpMemory> ExecutorMemory::stream(const PlanIndex& index, int dp_rank, int stage) const {
  std::vector<OpMemory> out;
  int64_t most = -1;
  for (int rank = 0; rank < cp_; ++rank) {
    std::vector<OpMemory> mine;
    int64_t held = 0;
    for (const OpMemoryRecord& record :
         count_op_memory(model_, index.plan(), dp_rank, stage, CpRank{cp_, rank}, kv_offload_)) {
      mine.push_back(op_memory_of(record));
      held += mine.back().activations_at_start + mine.back().store_at_start + mine.back().transient;
    }
    if (held > most) most = held, out = std::move(mine);
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
