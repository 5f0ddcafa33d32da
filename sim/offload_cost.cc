#include "sim/offload_cost.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace cf {

HostTraffic offload_traffic(const MemoryModel& memory, Pass pass, int64_t layers, int64_t tokens,
                            int64_t prefix) {
  const int64_t own = memory.kv_bytes_of_layers(layers, tokens);
  const int64_t before = memory.kv_bytes_of_layers(layers, prefix);
  HostTraffic t;
  switch (pass) {
    case Pass::kForward:
    case Pass::kForwardKeepKV:
      t.in_bytes = before;
      t.out_bytes = own;
      break;
    case Pass::kRecompute:
      t.in_bytes = before;
      break;
    case Pass::kBackward:
      // K/V in bf16, dK/dV accumulated in fp32 (twice the bytes).
      t.in_bytes = before + own + 2 * before;
      t.out_bytes = 2 * before;
      break;
  }
  return t;
}

OffloadCostModel::OffloadCostModel(std::unique_ptr<CostModel> base, MemoryModel memory,
                                   const GpuSpec& gpu)
    : base_(std::move(base)),
      memory_(std::move(memory)),
      bytes_per_s_(gpu.host_link_bandwidth_bytes_per_s * gpu.host_link_efficiency /
                   std::max(1, gpu.gpus_per_host_link)) {
  CF_CHECK(bytes_per_s_ > 0) << gpu.name << " has no host link (validate_job refuses the job)";
}

void OffloadCostModel::add_offload(const OpQuery& query, OpTime* time) const {
  if (!query.offloaded || query.spans.empty()) return;
  const HostTraffic t =
      offload_traffic(memory_, query.pass, query.layers, query.tokens, query.spans[0].kv_prefix);
  time->host_bytes = t.in_bytes + t.out_bytes;
  const auto copy_ns = static_cast<int64_t>(
      std::ceil(static_cast<double>(std::max(t.in_bytes, t.out_bytes)) / bytes_per_s_ * 1e9));
  const int64_t stall = std::max<int64_t>(0, copy_ns - time->total_ns);
  time->offload_stall_ns = stall;
  time->total_ns += stall;
  if (time->class_ns) (*time->class_ns)[static_cast<int>(KernelClass::kMemcpy)] += stall;
}

OpTime OffloadCostModel::op_time(const OpQuery& query) const {
  OpTime time = base_->op_time(query);
  add_offload(query, &time);
  return time;
}

void OffloadCostModel::op_times(std::span<const OpQuery> queries, std::span<OpTime> out) const {
  base_->op_times(queries, out);
  for (size_t i = 0; i < queries.size(); ++i) add_offload(queries[i], &out[i]);
}

}  // namespace cf
