// `chunkflow calibrate --backend cuda`: this machine's GPU measured into a hardware file of the
// analytical cost model (models/hardware/*.yaml, read by parse_gpu_yaml into a GpuSpec). Two
// halves, so that everything but the timing is built and tested without a GPU:
//   - measuring (cuda_calibrate.cu, built only with the CUDA backend): open_gpu and
//     measure_gpu time bf16 cuBLAS GEMMs, the executor's attention and elementwise kernels,
//     kernel launches and NCCL collectives;
//   - the grids, the fits of those timings to the file's fields, the YAML and the summary
//     (cuda_calibrate.cc, plain C++).
// Not the flags (cli/calibrate_command.cc) nor the dispatch (calibrate.h: calibrate_gpu).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "models/hardware.h"
#include "models/model.h"

namespace cf {

// ---- What to measure ----------------------------------------------------------------------

// One GEMM of a linear layer in the forward: y (tokens, out) = x (tokens, in) · Wᵀ, bf16.
struct GemmShape {
  std::string model;  // the first model (of --model) whose layer has this shape
  std::string name;   // qkv, output, mlp_up_gate (GPT: mlp_fc1), mlp_down, lm_head
  int64_t tokens = 0;
  int64_t in_features = 0;
  int64_t out_features = 0;
  double flops() const {  // 2 FLOPs per multiply-add
    return 2.0 * static_cast<double>(tokens) * static_cast<double>(in_features) *
           static_cast<double>(out_features);
  }
};

// One attention call: a chunk of q query tokens after a key prefix (one segment; keys q+prefix).
struct AttentionPoint {
  int64_t q = 0;
  int64_t prefix = 0;
};

struct GpuMeasurePlan {
  int warmup = 2;
  int repetitions = 7;
  std::vector<GemmShape> gemm;  // no two with the same (tokens, in, out)
  // The attention kernels run with the heads of the first model.
  std::string attention_model;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  std::vector<AttentionPoint> attention;
  std::vector<int64_t> memory_elements;   // floats per array of the elementwise kernels
  int launches = 0;                       // tiny kernels per launch measurement
  std::vector<int64_t> collective_bytes;  // whole-array sizes S (nccl-tests' S), before rounding
};

// The grids: GEMMs of every model's QKV, output, MLP up/gate (fused, as the cost model prices
// it), down and LM head at tokens 256..16384 (powers of two); attention at q ∈ {1K, 2K, 4K, 8K}
// with prefixes {0, q, 3q}; residual add and SwiGLU over 2^26..2^28 floats; 1000 launches;
// collectives over 4 KiB..1 GiB (×4). `quick`: tokens {256, 1024}, q ∈ {128, 256}, 2^20 and 2^22
// floats, 100 launches, two message sizes; for tests, not for predictions. The tensor shapes
// are those of tp = 1.
GpuMeasurePlan gpu_measure_plan(const std::vector<std::pair<std::string, ModelConfig>>& models,
                                bool quick, int warmup, int repetitions);

// ---- What was measured --------------------------------------------------------------------

struct GpuDevice {
  std::string name;                // cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3"
  int index = 0;                   // the device this process measured (its local rank under mpirun)
  int visible = 1;                 // devices this process sees
  std::string compute_capability;  // "9.0"
  int multiprocessors = 0;
  std::string driver_version;   // the CUDA version the driver supports, "13.0"
  std::string runtime_version;  // the CUDA runtime linked, "13.0"
  std::string cublas_version;   // "13.0.0"
  std::string nccl_version;     // "2.28.9"
  int64_t hbm_total_bytes = 0;  // cudaMemGetInfo total
  // What the CUDA context and the cuBLAS handle hold: total − free just after creating them.
  int64_t context_bytes = 0;
};

// Each time is the fastest of the plan's repetitions (seconds of GPU time, CUDA events).
struct GemmSample {
  GemmShape shape;
  double seconds = 0;
};
struct AttentionSample {
  AttentionPoint point;
  double forward_s = 0;
  double backward_s = 0;
};
struct BandwidthSample {
  std::string kernel;  // residual_add (reads 2, writes 1 float per element), swiglu_forward (same)
  int64_t elements = 0;
  int64_t bytes = 0;  // moved through HBM
  double seconds = 0;
};
struct LaunchSample {
  int launches = 0;
  double gpu_s_per_kernel = 0;   // GPU time per one-element residual_add queued back to back
  double host_s_per_launch = 0;  // host time to issue one (the executor's launcher, checks in)
};
// op: all_reduce, all_gather, reduce_scatter, send_recv (each rank to the next in a ring).
// The time of the slowest rank.
struct CollectiveSample {
  std::string op;
  int64_t bytes = 0;
  double seconds = 0;
};

struct GpuMeasurements {
  GpuDevice device;
  GpuMeasurePlan plan;
  std::string date;               // UTC, when the measuring ended
  std::string chunkflow_version;  // this build's
  int rank = 0;                   // under mpirun; only rank 0 measures all and writes
  int ranks = 1;                  // MPI ranks, one GPU each
  int nodes = 1;                  // hosts the ranks are on
  std::vector<GemmSample> gemm;
  std::vector<std::string> skipped;  // points left out (too big for the memory free), and why
  std::vector<AttentionSample> attention;
  std::vector<BandwidthSample> memory;
  LaunchSample launch;
  std::vector<CollectiveSample> collectives;  // empty on one GPU or across nodes
};

using GpuProgress = std::function<void(const std::string& what, int done, int total)>;

// Defined in cuda_calibrate.cu: only in builds with the CUDA backend (CHUNKFLOW_HAVE_CUDA).
// open_gpu: Runtime "no CUDA device: …" (cf::cuda::no_device_reason) without a usable device;
// under mpirun with several ranks selects device (local rank) first and fails when a node has
// more ranks than GPUs. measure_gpu: every rank takes part in the collectives (MPI_COMM_WORLD,
// when there are several ranks on one node), then rank 0 alone times the rest.
StatusOr<GpuDevice> open_gpu();
GpuMeasurements measure_gpu(const GpuDevice& device, const GpuMeasurePlan& plan,
                            const GpuProgress& progress = {});

// ---- From measurements to the hardware file -------------------------------------------------

// How well a fitted curve reproduces the times it was fitted to: |predicted − measured| /
// measured over the points.
struct FitError {
  int points = 0;
  double max_rel = 0;
  double mean_rel = 0;
};
FitError fit_error(const std::vector<double>& predicted, const std::vector<double>& measured);
// A value as the hardware file writes it (`format`, e.g. "{:.4g}") and parse_gpu_yaml reads it
// back; a fraction (an efficiency) to 4 significant digits within [1e-6, 1].
double as_written(double value, const char* format);
double fraction_as_written(double value);
// "12.3% / 4.5% over 17 points": max / mean relative error.
std::string fit_text(const FitError& e);

// gemm_efficiency: each GEMM's efficiency FLOPs / (peak · time), one point per size (GEMMs
// within 1% of FLOPs together: their FLOPs' geometric mean, and their FLOPs over peak × their
// time); the points made non-decreasing in FLOPs (pool-adjacent-violators, least squares on
// relative error), capped at 1, rounded as written (gflops 6 digits, efficiency 4 significant
// digits, at least 1e-6), and of a run of equal efficiencies only its ends kept. `error` is the
// curve's, as GpuSpec::gemm_efficiency_at reads it, against every GEMM.
struct GemmCurveFit {
  std::vector<std::pair<double, double>> curve;  // (FLOPs, efficiency), FLOPs increasing
  FitError error;
  int above_peak = 0;  // GEMMs faster than the base file's peak allows (capped at 1)
};
GemmCurveFit fit_gemm_efficiency(const std::vector<GemmSample>& samples, double peak_flops);

// attention_efficiency: the cost model's own attention seconds at efficiency 1 (its FLOPs, 4·Q
// per computed (query, key) pair in attention_block tiles, over peak; AnalyticalCostModel with
// `model` on `base`, tp = 1) for each point, then one efficiency for forward and backward
// together, weighted by FLOPs: Σ 3.5 · ideal / Σ (forward + backward), the cost model pricing
// the backward at 2.5× the forward. Rounded to 4 significant digits, in [1e-6, 1].
struct AttentionFit {
  double efficiency = 0;
  std::vector<double> ideal_s;  // per sample, at efficiency 1
  FitError forward, backward;
  bool above_peak = false;
};
AttentionFit fit_attention_efficiency(const std::vector<AttentionSample>& samples,
                                      const ModelConfig& model, const GpuSpec& base);
inline constexpr double kAttentionBackwardFactor = 2.5;  // sim/cost_analytical.cc, FlashAttention

// memory_efficiency: Σ bytes / (HBM bandwidth · Σ time) over the large arrays, in (0, 1].
struct MemoryFit {
  double efficiency = 0;
  FitError error;
  bool above_peak = false;
};
MemoryFit fit_memory_efficiency(const std::vector<BandwidthSample>& samples,
                                double hbm_bytes_per_s);

// A collective of S bytes over n ranks in the cost model's α-β form: latencies · α +
// bytes_factor · S / β (all-reduce 2(n−1) and 2(n−1)/n, all-gather and reduce-scatter n−1 and
// (n−1)/n: sim/cost_analytical.h; send-recv 1 and 1, as the pipeline's p2p).
struct CollectiveTerms {
  double latencies = 0;
  double bytes_factor = 0;
};
StatusOr<CollectiveTerms> collective_terms(const std::string& op, int ranks);

// α (latency per step, s) and β (bus bandwidth, B/s) fitted to every sample at once by least
// squares on relative error (each time divided by itself, so 4 KiB and 1 GiB count alike); α
// at least 0 (refitted with α = 0 when the free fit goes below). `error`: all samples;
// `per_op`: each collective's curve under the joint fit. Runtime when the samples cannot
// determine β (fewer than two sizes, or times that fall with size).
struct AlphaBetaFit {
  double alpha_s = 0;
  double beta_bytes_per_s = 0;
  FitError error;
  std::vector<std::pair<std::string, FitError>> per_op;
};
StatusOr<AlphaBetaFit> fit_alpha_beta(const std::vector<CollectiveSample>& samples, int ranks);

// The base hardware file for a device name: h100-sxm-80g, h200-141g, a100-sxm-80g or h800-80g
// when the name is that SXM part (no "PCIe", "NVL", or A100 "40GB"), else "".
std::string base_gpu_for_device(const std::string& device_name);

struct GpuCalibration {
  bool root = true;  // false on the ranks > 0 of mpirun: nothing below is filled
  GpuMeasurements measured;
  GpuSpec base;
  std::string base_origin;  // the base file: a path, or the name of a built-in file
  GpuSpec calibrated;       // as the written file reads back
  GemmCurveFit gemm;
  AttentionFit attention;
  MemoryFit memory;
  std::optional<AlphaBetaFit> links;  // with several GPUs of one node
  std::string links_kept;             // otherwise why nvlink_latency_us and efficiency are kept
  double seconds = 0;                 // wall time of the calibration
};

// The fits above on `base` (its datasheet values kept, its [assumption]s replaced where
// measured). `attention_model`: the model whose heads the attention was measured with.
// Runtime when a series is empty or the collectives do not fit.
StatusOr<GpuCalibration> fit_gpu_calibration(const GpuMeasurements& measured, const GpuSpec& base,
                                             const std::string& base_origin,
                                             const ModelConfig& attention_model);

// The hardware file's text: every key of models/hardware/*.yaml in their order, each after its
// note as "# " comment lines (the header first, `source` as its value). Efficiencies are
// written with 4 significant digits, times and rates with 10.
struct HardwareYamlNotes {
  std::string header, peak, hbm, hbm_bandwidth, nvlink, nvlink_latency, ib, ib_latency, gemm,
      attention, memory, collective, reserved, attention_block, kernel_launch, host_kernel,
      microbatch, host_runs_kernels, source;
};
std::string hardware_yaml(const GpuSpec& spec, const HardwareYamlNotes& notes);
// "[assumption] the base file's (NAME), not measured by calibrate: WHAT."
std::string kept_note(const GpuSpec& base, const std::string& what);

// The hardware file: every key of models/hardware/*.yaml, each with a comment saying where its
// value comes from ([measured …] with the date, the device, driver, CUDA and chunkflow
// versions and the method; the base file's datasheet; or [assumption] kept from the base file).
std::string gpu_calibration_yaml(const GpuCalibration& calibration);

// What `chunkflow calibrate --backend cuda` prints: device, method, grids, each measured field
// against the base file's assumption with its fit quality, then every point measured.
std::string gpu_calibration_summary(const GpuCalibration& calibration);

}  // namespace cf
