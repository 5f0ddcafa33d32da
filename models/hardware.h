// A GPU type and its links, read from models/hardware/*.yaml: peak dense bf16 FLOP/s, HBM
// capacity and bandwidth, NVLink and InfiniBand bandwidth and latency, and the efficiency
// curves the analytical cost model applies. Units are converted once, here, at load.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace cf {

struct GpuSpec {
  std::string name;
  double peak_bf16_flops = 0;  // dense, FLOP/s
  int64_t hbm_bytes = 0;       // capacity
  double hbm_bandwidth_bytes_per_s = 0;
  double nvlink_bandwidth_bytes_per_s = 0;  // per direction, per GPU
  double nvlink_latency_s = 0;
  double ib_bandwidth_bytes_per_s = 0;  // per direction, per GPU (one NIC per GPU)
  double ib_latency_s = 0;
  // Achieved fraction of peak for a GEMM as a function of its FLOPs: (flops, efficiency)
  // points, interpolated in log(flops). Sorted by flops.
  // Outside the points the nearest end's efficiency applies; an empty curve means peak (1.0).
  std::vector<std::pair<double, double>> gemm_efficiency;
  double attention_efficiency = 0.5;   // fraction of peak reached by fused attention
  double memory_efficiency = 0.8;      // fraction of HBM bandwidth reached by elementwise ops
  double collective_efficiency = 0.8;  // fraction of link bandwidth reached by NCCL (bus bw)
  int64_t reserved_bytes = 0;          // CUDA context, NCCL buffers, fragmentation
  // Overheads that do not scale with work (all optional in the YAML; 0 = not modelled):
  double kernel_launch_s = 0;  // GPU time per kernel beyond its work (launch, ramp, tail)
  double host_kernel_s = 0;    // framework host time to issue one kernel (eager dispatch)
  double microbatch_s = 0;     // framework host time per micro-batch pass of a stage
  // The device is the host's own CPU (a hardware file fitted to a CPU-only profile): one thread
  // issues and runs every op, so the host's time adds to the ops' work instead of overlapping
  // it as a GPU's queue does.
  bool host_runs_kernels = false;
  // FlashAttention computes whole tiles of attention_block × attention_block (query, key)
  // pairs; 1 = no tiling modelled.
  int64_t attention_block = 1;
  // The GPU's link to host memory, for K/V offload (strategy.kv_offload): bandwidth per
  // direction of one link, how many GPUs share it (a PCIe switch's uplink), the fraction of it
  // pinned-memory copies reach, and the host memory of one node. 0 bandwidth: not known (a
  // job that offloads is refused).
  double host_link_bandwidth_bytes_per_s = 0;
  int gpus_per_host_link = 1;
  double host_link_efficiency = 0.8;
  int64_t host_memory_bytes = 0;

  double gemm_efficiency_at(double flops) const;
};

StatusOr<GpuSpec> load_gpu(const std::string& name_or_path);
StatusOr<GpuSpec> parse_gpu_yaml(const std::string& text, const std::string& origin);

}  // namespace cf
