// The counting backend: a StageWorker on it runs its op stream with no storage (every buffer's
// data is null) and no arithmetic, yet allocates and frees exactly the buffers of a real run —
// the same executor code, charged to the same tracker — so its per-op memory records
// (stage.h's OpMemoryRecord) are a real run's, at the cost of the bookkeeping alone. With
// NullTransport a stage runs its stream without its peers. Not a timing model.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "executor/backend.h"
#include "executor/context_parallel.h"
#include "executor/stage.h"
#include "executor/transport.h"
#include "models/model.h"
#include "sim/plan/plan.h"

namespace cf {

class CountingBackend final : public Backend {
 public:
  const char* name() const override { return "counting"; }
  std::unique_ptr<Stream> create_stream() override;
};

// A transport that delivers nothing: sends are dropped, a receive leaves its buffer as it is,
// collectives leave their data as it is. For a stage on the counting backend, whose buffers
// hold nothing to send.
class NullTransport final : public Transport {
 public:
  void send(int stage, const MessageKey& key, const float* data, int64_t count) override {}
  void recv(int stage, const MessageKey& key, float* data, int64_t count) override {}
  void allreduce_dp(float* data, int64_t count) override {}
  void allreduce_tied(float* data, int64_t count) override {}
  void allgather_cp(const float* data, float* out, const std::vector<int64_t>& counts) override {}
  void reduce_scatter_cp(const float* data, float* out,
                         const std::vector<int64_t>& counts) override {}
  void finish_step() override {}
};

// The memory records of one step of `plan` on (dp_rank, stage), counted: a StageWorker on the
// counting backend with a NullTransport, on tokens of the plan's sequence lengths (ids do not
// change memory). Equal to the records of the same stage in a real run of the plan; with
// context parallelism, of CP rank `cp.rank` of the stage; with kv_offload, the state store in
// the host pool (strategy.kv_offload: all).
std::vector<OpMemoryRecord> count_op_memory(const ModelConfig& model, const Plan& plan, int dp_rank,
                                            int stage, CpRank cp = {},
                                            KvOffloadPolicy kv_offload = {});

}  // namespace cf
