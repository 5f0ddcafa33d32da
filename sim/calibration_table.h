// The calibration table `chunkflow calibrate` writes and the calibrated cost model reads: op
// costs measured on one machine (the fastest of repetitions, ns), with the machine's
// description, as JSON. Also the interpolation over a table (piecewise linear in log-log
// space, bilinear in (log q, prefix) for attention) and its extrapolation flag. Not the
// measuring nor the fitting of measurements into a table (executor/calibrate/) nor how ops
// are priced from it (cost_calibrated.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "models/model.h"

namespace cf {

inline constexpr int kCalibrationVersion = 3;
inline constexpr const char* kCalibrationFormat = "chunkflow-calibration";

// A cost measured at increasing sizes x (tokens, bytes or parameters): wall-clock time `ns`
// (what the executor's trace measures) and thread-CPU time `cpu_ns` (what the op itself
// consumed; wall > cpu means the machine was shared while measuring), each the statistic of
// the table's `method` over the repetitions.
struct Curve {
  std::vector<double> x;
  std::vector<double> ns;
  std::vector<double> cpu_ns;
};

// Where a lookup fell relative to the measured grid: factor 1 inside it, else how far
// outside (x / x_max above the grid, x_min / x below it; the larger over all axes).
struct Lookup {
  double ns = 0;
  double extrapolation = 1;
};

// Piecewise linear interpolation of log(ns) over log(x): exact for a power law between grid
// points; outside the grid the nearest segment's power law continues. x ≤ 0 costs 0.
Lookup interpolate(const Curve& curve, double x);

// Attention over one segment of `q` query tokens after a key prefix of `p` tokens, on a grid
// q_tokens × kv_prefix (kv_prefix starts at 0). ns[i][j] is at (q_tokens[i], kv_prefix[j]).
struct AttentionGrid {
  std::vector<double> q_tokens;
  std::vector<double> kv_prefix;
  std::vector<std::vector<double>> ns;
};
// Linear in the prefix (the kernel's work grows linearly with it at fixed q), then log-log
// between the two neighbouring q rows, as interpolate().
Lookup interpolate(const AttentionGrid& grid, double q, double p);

// A linear layer of the model, y (t, out) = x (t, in)·Wᵀ: forward and backward (dx and dW)
// over the token grid.
struct GemmCurves {
  std::string name;
  int64_t in_features = 0;
  int64_t out_features = 0;
  Curve forward;
  Curve backward;
};

// A named elementwise kernel of the layer over the token grid (rmsnorm_forward, ...).
struct NamedCurve {
  std::string name;
  Curve curve;
};

// The layer shape measurements are valid for (the executor's costs depend on nothing else).
struct ModelShape {
  int64_t hidden = 0;
  int64_t ffn_hidden = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab = 0;
  bool qkv_bias = false;
  static ModelShape of(const ModelConfig& model);
  bool operator==(const ModelShape&) const = default;
};
std::string to_string(const ModelShape& shape);

// One model's measurements. The layer curves are the executor's own layer_forward /
// layer_backward over a standalone chunk of t tokens (one segment), buffers included; the
// head curves its final norm, LM head and loss (forward computes dlogits too), the embedding
// curves the lookup and its scatter.
struct ModelCalibration {
  std::string name;
  ModelShape shape;
  Curve layer_forward;
  Curve layer_backward;
  Curve embedding_forward;
  Curve embedding_backward;
  Curve head_forward;
  Curve head_backward;
  AttentionGrid attention_forward;
  AttentionGrid attention_backward;
  std::vector<GemmCurves> gemm;
  std::vector<NamedCurve> elementwise;
};

// The machine's speed while it was calibrated: the executor's fixed probe workload
// (executor/calibrate/profiler.h speed_probe_ns), timed before every measurement series, every
// in-situ layer run and through the series measured in rounds. Every op cost in the table is
// rescaled from the fastest probe near it to `reference_ns`, the fastest probe: the op curves
// price this machine at its fastest. The mean over the reference tells how much longer the
// probes took on average (the machine's other load and slower phases). `step_load` is that
// ratio over the probes around the step fit's runs: the load the step slowdown (which prices
// it) was measured at, and so the load the table's step times are predicted for.
struct SpeedProbe {
  int64_t tokens = 0;  // the probe's sequence length
  double reference_ns = 0;
  double mean_ns = 0;
  double min_ns = 0;
  double max_ns = 0;
  int samples = 0;
  double step_load = 1;
};

struct MachineInfo {
  std::string backend;  // "cpu"
  std::string cpu_model;
  int cores = 1;  // usable by this process (affinity)
  std::string date;
  std::string chunkflow_version;
  double load_average = 0;  // 1-minute load when calibration started
  SpeedProbe speed_probe;
};

struct MeasurementMethod {
  int warmup = 0;
  int repetitions = 0;
  std::string statistic;  // "fastest" (the minimum; executor/calibrate/profiler.h fastest())
};

struct CalibrationTable {
  int version = kCalibrationVersion;
  MachineInfo machine;
  MeasurementMethod method;
  // slowdown[k−1]: the executor's step with k stage threads, measured, over what the op
  // curves predict for it (k = 1 .. threads measured; executor/calibrate/step_fit.h).
  std::vector<double> concurrency_slowdown;
  Curve send;       // a stage copying an outgoing message of x bytes (inside its op)
  Curve p2p;        // one-way delivery of x bytes to a waiting stage
  Curve allreduce;  // in-process sum of x bytes over 2 participants
  Curve optimizer;  // AdamW step and gradient zeroing over x parameters
  std::vector<ModelCalibration> models;

  const ModelCalibration* find(const ModelShape& shape) const;
};

std::string calibration_to_json(const CalibrationTable& table);
// Strict: unknown or missing keys, wrong types, grids not strictly increasing, non-positive
// or non-finite costs are InvalidInput naming `origin` and the key path.
StatusOr<CalibrationTable> calibration_from_json(const std::string& text,
                                                 const std::string& origin);
StatusOr<CalibrationTable> load_calibration(const std::string& path);

}  // namespace cf
