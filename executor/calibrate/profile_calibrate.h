// `chunkflow calibrate --from-profile PROFILE... --gpu BASE --out FILE`: the analytical cost
// model's curves fitted to what a PyTorch profile measured (traces/profile.h ProfileWork), and
// written as a hardware file the simulator reads (`cluster.gpu: FILE`). The fits are those of
// `calibrate --backend cuda` (cuda_calibrate.h); only the samples come from the profile:
//   - gemm_efficiency: aten::mm / addmm / bmm / baddbmm / _scaled_mm with recorded shapes,
//     each size's mean time;
//   - attention_efficiency: fused attention ops (scaled_dot_product_*, flash_attn), forward
//     and backward together as the cost model prices them (backward 2.5× the forward);
//   - memory_efficiency: elementwise ops, bytes from their inputs' shapes and types;
//   - nvlink_latency_us and collective_efficiency: the α-β fit to the collective kernels of the
//     group size that took the most time, when it fits in a node (at most 8 GPUs);
//   - kernel_launch_us: the median gap between kernels back to back on a stream;
//   - a CPU-only profile (its ops timed by their CPU time: the CPU is the device):
//     host_runs_kernels, and microbatch_us, the framework's time per micro-batch pass — each
//     ProfilerStep's time in no class a curve prices (framework ops such as views and the
//     autograd engine's bookkeeping, copies, the gaps between ops) over the passes chunkflow's
//     marks ("chunkflow:F:chunk=C", docs/PROFILES.md) start in the steps.
// A curve the profile has no samples for keeps the base file's value, and says so; the summary
// says what share of the profiled steps the fitted ops cover (the rest — framework time between
// ops, ops without shapes — no curve can learn).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "executor/calibrate/cuda_calibrate.h"
#include "traces/profile.h"

namespace cf {

struct ProfileCalibration {
  std::vector<std::string> paths;
  GpuSpec base;
  std::string base_origin;
  GpuSpec calibrated;  // as the written file reads back
  std::string date;    // UTC, when fitted
  bool device_times = false;
  std::vector<GemmSample> gemm_samples;  // one per op name and size, its mean time
  GemmCurveFit gemm;
  int64_t gemm_ops = 0;
  struct Attention {
    double efficiency = 0;
    FitError error;  // of each sample's time at the fitted efficiency
    int64_t ops = 0;
  };
  std::optional<Attention> attention;
  std::string attention_kept;  // why not fitted
  std::optional<MemoryFit> memory;
  int64_t memory_ops = 0;
  std::string memory_kept;
  std::optional<AlphaBetaFit> links;
  std::vector<CollectiveSample> collective_samples;  // of the fitted group, mean times
  int64_t collective_group = 0;                      // the ranks of that group
  std::string links_kept;
  int64_t launch_gaps = 0;  // over every rank
  std::string launch_kept;
  // CPU-only profiles: the steps' time in no priced class (gemm, attention, elementwise,
  // collective) and the compute passes marked in them, over every rank.
  int64_t framework_ns = 0;
  int64_t passes = 0;
  std::string microbatch_kept;
  int64_t dropped_ops = 0;  // ops with work past the reader's bounds, not fitted
  int64_t fitted_ns = 0;    // time of the ops the fits read, over every rank
  int64_t steps_ns = 0;     // ProfilerStep ranges, over every rank (0 without step markers)
};

// The fits over every rank's samples. InvalidInput naming the file when no profile records
// input shapes ("record_shapes=True"), or none has a GEMM with shapes: the GEMM curve is what a
// hardware file cannot do without.
StatusOr<ProfileCalibration> calibrate_from_profiles(const std::vector<RankProfile>& profiles,
                                                     const GpuSpec& base,
                                                     const std::string& base_origin);

// The hardware file (hardware_yaml), each fitted value with the profile it came from.
std::string profile_calibration_yaml(const ProfileCalibration& calibration);
// What the command prints: the samples per curve, each fitted value against the base file's,
// the fit quality, and what was kept and why.
std::string profile_calibration_summary(const ProfileCalibration& calibration);

}  // namespace cf
