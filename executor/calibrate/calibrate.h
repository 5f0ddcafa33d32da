// The calibration's entry point: measure this machine's op costs (profiler.h), fit them into
// a table (profile_table.h), measure the step slowdown (step_fit.h), and describe the result
// as `chunkflow calibrate` prints it. Not flags, files or terminal output (cli/).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "executor/calibrate/cuda_calibrate.h"
#include "executor/calibrate/profiler.h"
#include "sim/calibration_table.h"

namespace cf {

// What to calibrate. `quick`: tiny grids (tokens to 32), 1 warm-up and 3 repetitions, two
// message and optimizer sizes, a 16-token speed probe, one thread and one round in the step
// fit; seconds instead of minutes, for tests, not for predictions.
struct CalibrationRequest {
  std::string backend = "cpu";
  std::vector<std::string> models{"tiny"};  // names under models/ or paths; the first is fitted
  int64_t max_tokens = 1024;                // the token grids' largest chunk
  int repetitions = 7;
  int warmup = 2;
  int threads = 4;  // step slowdown for 1..threads stage threads, at most the usable cores
  bool quick = false;
};

// Called as the calibration goes: what is measured now, steps done, steps in all (the
// profiler's series, then the step fit's rounds, each counted from 0).
using CalibrationProgress = std::function<void(const std::string& what, int done, int total)>;

struct Calibration {
  CalibrationTable table;
  ProfileOptions options;  // the grids and method measured with
  double speed_probe_median_ns = 0;
  double seconds = 0;  // wall time of the whole calibration
};

// InvalidInput for a backend this build cannot calibrate or a model that does not load;
// Runtime when a step-fit run fails. Installs the executor's memory source
// (executor_memory.h), which the step fit simulates its jobs with.
StatusOr<Calibration> calibrate(const CalibrationRequest& request,
                                const CalibrationProgress& progress = {});

// `--backend cuda`: the GPU's hardware file (cuda_calibrate.h). `quick`: the small grids
// (gpu_measure_plan), 1 warm-up and 3 repetitions; for tests, not for predictions.
struct GpuCalibrationRequest {
  // The base hardware file (a name under models/hardware/ or a path) whose datasheet values
  // are kept; empty: chosen from the device's name (base_gpu_for_device).
  std::string gpu;
  std::vector<std::string> models{"qwen2.5-0.5b"};  // GEMM shapes of each; attention of the first
  int repetitions = 7;
  int warmup = 2;
  bool quick = false;
};

// Whether this build has the CUDA backend (CHUNKFLOW_HAVE_CUDA): what calibrate_gpu needs.
bool cuda_backend_built();

// Measures this machine's GPU and fits the hardware file. Runtime without the CUDA backend
// ("calibrate --backend cuda: this chunkflow was built without the CUDA backend …"), without a
// device ("no CUDA device: …") or when the fits fail; InvalidInput for a model or base file that
// does not load, or, without `gpu`, a device with no built-in base file. Under mpirun every rank
// calls it (the collectives need them all); ranks other than 0 return root = false.
StatusOr<GpuCalibration> calibrate_gpu(const GpuCalibrationRequest& request,
                                       const CalibrationProgress& progress = {});

// The report `chunkflow calibrate` prints: the machine, the method, the grids, the speed
// probe, the step slowdown, the transport, and each model's layer against its kernels.
std::string calibration_summary(const Calibration& calibration);

// A layer forward against the kernels it calls (executor/layer.cc), per token count from 16:
// the layer, its GEMMs, attention and elementwise kernels (µs), and the share unexplained.
std::string kernel_breakdown(const ModelCalibration& model);

}  // namespace cf
