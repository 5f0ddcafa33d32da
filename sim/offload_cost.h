// The time K/V offload adds (strategy.kv_offload, docs/BEYOND.md): a cost model wrapped so
// that each op of a split sequence's piece moves its K/V over the GPU's host link on a copy
// stream beside its compute, and waits when the copies take longer than the compute. Not the
// memory it saves (sim/memory_source.h megatron_op_memory with offload).
#pragma once

#include <memory>

#include "sim/cost_model.h"
#include "sim/memory_model.h"

namespace cf {

// Per op of a dependent piece of `tokens` tokens after `prefix` of its sequence, on `layers`
// layers of one GPU: F and F* stream the prefix's K/V in and their own out; R streams the
// prefix's K/V in; B streams the prefix's and its own K/V and the prefix's fp32 dK/dV in and
// the dK/dV back out. The link's rate per GPU: host_link_bandwidth × host_link_efficiency /
// gpus_per_host_link (the GPUs behind one link copy at the same time in a pipeline). An op
// takes max(its compute, its busier direction's copies): the copies overlap the compute, and
// what they do not cover is a stall, in the memcpy class of the split.
struct HostTraffic {
  int64_t in_bytes = 0;
  int64_t out_bytes = 0;
};
HostTraffic offload_traffic(const MemoryModel& memory, Pass pass, int64_t layers, int64_t tokens,
                            int64_t prefix);

class OffloadCostModel final : public CostModel {
 public:
  OffloadCostModel(std::unique_ptr<CostModel> base, MemoryModel memory, const GpuSpec& gpu);
  std::string name() const override { return base_->name(); }
  OpTime op_time(const OpQuery& query) const override;
  void op_times(std::span<const OpQuery> queries, std::span<OpTime> out) const override;
  int64_t p2p_time_ns(const P2pQuery& query) const override { return base_->p2p_time_ns(query); }
  int64_t dp_reduce_time_ns(int stage) const override { return base_->dp_reduce_time_ns(stage); }
  int64_t optimizer_time_ns(int stage) const override { return base_->optimizer_time_ns(stage); }
  int message_element_bytes() const override { return base_->message_element_bytes(); }

 private:
  void add_offload(const OpQuery& query, OpTime* time) const;
  std::unique_ptr<CostModel> base_;
  MemoryModel memory_;
  double bytes_per_s_ = 0;  // per GPU
};

}  // namespace cf
