// The calibration's entry point (calibrate.h): the profile, the table, the step fit, and the
// summary that `chunkflow calibrate` prints; for --backend cuda, the dispatch to the GPU's
// measuring (built with the CUDA backend only) and fits (cuda_calibrate.h).
#include "executor/calibrate/calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "core/resources.h"
#include "executor/calibrate/executor_memory.h"
#include "executor/calibrate/profile_table.h"
#include "executor/calibrate/step_fit.h"

namespace cf {
namespace {

// The profiler's grids and method for `request`.
ProfileOptions profile_options(const CalibrationRequest& request) {
  ProfileOptions o = ProfileOptions::defaults(request.quick ? 32 : request.max_tokens);
  o.repetitions = request.quick ? 3 : request.repetitions;
  o.warmup = request.quick ? 1 : request.warmup;
  if (request.quick) {
    o.message_bytes = {1024, 65536};
    o.optimizer_params = {1024, 65536};
    o.probe_tokens = 16;
  }
  return o;
}

}  // namespace

StatusOr<Calibration> calibrate(const CalibrationRequest& request,
                                const CalibrationProgress& progress) {
  if (request.backend != "cpu") {
    return Status::InvalidInput(
        fmt::format("--backend {}: calibrate() measures the cpu backend (a GPU: calibrate_gpu)",
                    request.backend));
  }
  if (request.models.empty()) return Status::InvalidInput("no model to calibrate");
  install_executor_memory();  // the step fit simulates its jobs with the executor's memory
  std::vector<std::pair<std::string, ModelConfig>> models;
  for (const std::string& name : request.models) {
    CF_ASSIGN_OR_RETURN(ModelConfig model, load_model(name));
    models.emplace_back(name, std::move(model));
  }
  const auto start = std::chrono::steady_clock::now();
  Calibration out;
  out.options = profile_options(request);
  out.options.progress = progress;
  const MachineProfile profile = profile_cpu(models, out.options);
  out.options.progress = nullptr;
  out.speed_probe_median_ns = profile.speed_probe_median_ns;
  out.table = to_table(profile, out.options);

  const int threads = request.quick ? 1 : std::min(request.threads, usable_cores());
  const int rounds = request.quick ? 1 : kStepRounds;
  auto round_progress = [&](int round) {
    if (progress) progress(fmt::format("step slowdown, round {}", round + 1), round, rounds);
  };
  CF_ASSIGN_OR_RETURN(StepFit fit, measure_step_slowdown(out.table, request.models.front(),
                                                         out.options.tokens.back(), threads, rounds,
                                                         out.options.seed, round_progress));
  out.table.concurrency_slowdown = fit.slowdown;
  out.table.machine.speed_probe.step_load = fit.load;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

bool cuda_backend_built() {
#ifdef CHUNKFLOW_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

namespace {

// A base hardware file and where it came from (a path, or the built-in file's origin).
StatusOr<std::pair<GpuSpec, std::string>> load_base_gpu(const std::string& name) {
  CF_ASSIGN_OR_RETURN(const Resource file, load_named_resource(name, "models/hardware", "GPU"));
  CF_ASSIGN_OR_RETURN(GpuSpec spec, parse_gpu_yaml(file.text, file.origin));
  return std::pair{std::move(spec), file.origin};
}

}  // namespace

StatusOr<GpuCalibration> calibrate_gpu(const GpuCalibrationRequest& request,
                                       const CalibrationProgress& progress) {
  // Bad input first, in every build and before the device: the models, a named base file.
  if (request.models.empty()) return Status::InvalidInput("no model to calibrate");
  std::vector<std::pair<std::string, ModelConfig>> models;
  for (const std::string& name : request.models) {
    CF_ASSIGN_OR_RETURN(ModelConfig model, load_model(name));
    models.emplace_back(name, std::move(model));
  }
  std::optional<std::pair<GpuSpec, std::string>> base;
  if (!request.gpu.empty()) {
    CF_ASSIGN_OR_RETURN(base, load_base_gpu(request.gpu));
  }
#ifndef CHUNKFLOW_HAVE_CUDA
  (void)progress;
  return Status::Runtime(
      "calibrate --backend cuda: this chunkflow was built without the CUDA backend "
      "(CHUNKFLOW_CUDA=OFF or no nvcc)");
#else
  CF_ASSIGN_OR_RETURN(const GpuDevice device, open_gpu());
  if (!base) {
    const std::string name = base_gpu_for_device(device.name);
    if (name.empty()) {
      return Status::InvalidInput(fmt::format(
          "--gpu is required: the device \"{}\" is none of the SXM parts with a built-in "
          "hardware file (h100-sxm-80g, h200-141g, a100-sxm-80g, h800-80g); name one of them or "
          "a hardware YAML with this GPU's datasheet values",
          device.name));
    }
    CF_ASSIGN_OR_RETURN(base, load_base_gpu(name));
  }
  const auto start = std::chrono::steady_clock::now();
  const GpuMeasurePlan plan =
      gpu_measure_plan(models, request.quick, request.quick ? 1 : request.warmup,
                       request.quick ? 3 : request.repetitions);
  GpuMeasurements measured = measure_gpu(device, plan, progress);
  if (measured.rank != 0) {
    GpuCalibration other;
    other.root = false;
    return other;
  }
  measured.date = utc_date();
  measured.chunkflow_version = chunkflow_version();
  CF_ASSIGN_OR_RETURN(GpuCalibration c, fit_gpu_calibration(measured, base->first, base->second,
                                                            models.front().second));
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return c;
#endif
}

std::string kernel_breakdown(const ModelCalibration& c) {
  auto at = [](const Curve& curve, double t) { return interpolate(curve, t).ns; };
  auto named = [&](const std::string& name, double t) {
    for (const NamedCurve& e : c.elementwise) {
      if (e.name == name) return at(e.curve, t);
    }
    return 0.0;
  };
  // QKV, output and MLP GEMMs, one attention, two RMSNorms, RoPE on Q and K, SwiGLU, two
  // residual adds, and its zero-filled buffers (t·(2 + 4h + 2Q + 2G + a + 3f) floats with
  // the output, priced as that many (t, h) buffers); what is left is the executor's own
  // bookkeeping and cache misses.
  const ModelShape& m = c.shape;
  const double kv_share = static_cast<double>(m.kv_heads) / m.heads;
  const double buffers =
      static_cast<double>(2 + 4 * m.hidden + 2 * m.heads * m.head_dim +
                          2 * m.kv_heads * m.head_dim + m.heads + 3 * m.ffn_hidden) /
      static_cast<double>(m.hidden);
  std::string out =
      fmt::format("{:>7} {:>12} {:>12} {:>12} {:>12} {:>12}\n", "tokens", "layer fwd µs",
                  "GEMMs µs", "attention µs", "elementwise µs", "unexplained");
  for (const double t : c.layer_forward.x) {
    if (t < 16) continue;
    double gemm = 0;
    for (const GemmCurves& g : c.gemm) {
      if (g.name != "lm_head") gemm += at(g.forward, t);
    }
    const double attention = interpolate(c.attention_forward, t, 0).ns;
    const double elementwise = 2 * named("rmsnorm_forward", t) +
                               (1 + kv_share) * named("rope_forward", t) +
                               named("swiglu_forward", t) + 2 * named("residual_add", t) +
                               buffers * named("buffer_alloc", t);
    const double layer = at(c.layer_forward, t);
    out += fmt::format("{:>7} {:>12.1f} {:>12.1f} {:>12.1f} {:>12.1f} {:>11.1f}%\n", t, layer / 1e3,
                       gemm / 1e3, attention / 1e3, elementwise / 1e3,
                       100 * (layer - gemm - attention - elementwise) / layer);
  }
  return out;
}

std::string calibration_summary(const Calibration& calibration) {
  const CalibrationTable& table = calibration.table;
  const ProfileOptions& o = calibration.options;
  const MachineInfo& m = table.machine;
  std::string text = fmt::format(
      "chunkflow calibrate  backend cpu on {} ({} usable cores, load average {:.2f} at start)\n"
      "method     {} warm-up + {} timed runs per point, the fastest wall time (thread CPU time "
      "kept beside it)\n"
      "grids      tokens {}..{} ({} points), attention {} q × {} prefixes, {} message sizes, "
      "{} optimizer sizes\n",
      m.cpu_model, m.cores, m.load_average, o.warmup, o.repetitions, o.tokens.front(),
      o.tokens.back(), o.tokens.size(), o.attention_q.size(), o.attention_prefix.size(),
      o.message_bytes.size(), o.optimizer_params.size());
  const SpeedProbe& sp = m.speed_probe;
  text += fmt::format(
      "speed      probe {:.2f} ms, the fastest of {} taken while calibrating (median {:.2f}, mean "
      "{:.2f}, max {:.2f}); every cost is rescaled to it\n"
      "           the probes ran {:.1f}% over the fastest on average: the machine's other load "
      "and its slower phases\n",
      sp.reference_ns / 1e6, sp.samples, calibration.speed_probe_median_ns / 1e6, sp.mean_ns / 1e6,
      sp.max_ns / 1e6, 100 * (sp.mean_ns / sp.reference_ns - 1));
  text += "step       slowdown, measured over predicted on fixed jobs (baseline and ChunkFlow):";
  for (size_t k = 0; k < table.concurrency_slowdown.size(); ++k) {
    text +=
        fmt::format("  {} thread{} ×{:.2f}", k + 1, k ? "s" : "", table.concurrency_slowdown[k]);
  }
  text += fmt::format(
      "\n           (its runs' probes ×{:.2f} the fastest: predictions are for a machine as "
      "loaded)",
      sp.step_load);
  text += fmt::format("\ntransport  one-way delivery {:.1f} µs; send copy {:.1f} µs per MiB\n",
                      table.p2p.ns.front() / 1e3, interpolate(table.send, 1 << 20).ns / 1e3);
  for (const ModelCalibration& c : table.models) {
    text += fmt::format("\nmodel {} ({}): layer forward against its kernels\n{}", c.name,
                        to_string(c.shape), kernel_breakdown(c));
  }
  return text;
}

}  // namespace cf
