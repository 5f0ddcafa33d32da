// The GPU calibration's grids, fits, hardware file and summary (cuda_calibrate.h): plain C++,
// built and tested without a GPU. Not the measuring (cuda_calibrate.cu).
#include "executor/calibrate/cuda_calibrate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <tuple>

#include "sim/cost_analytical.h"

namespace cf {
namespace {

constexpr double kMebi = 1024.0 * 1024.0;
constexpr double kMinEfficiency = 1e-6;  // the file's fractions: 4 significant digits

// Weighted least-squares non-decreasing fit (pool-adjacent-violators).
std::vector<double> non_decreasing(const std::vector<double>& y, const std::vector<double>& w) {
  struct Block {
    double sum_wy, sum_w;
    size_t count;
    double mean() const { return sum_wy / sum_w; }
  };
  std::vector<Block> blocks;
  for (size_t i = 0; i < y.size(); ++i) {
    blocks.push_back({w[i] * y[i], w[i], 1});
    while (blocks.size() >= 2 && blocks[blocks.size() - 2].mean() > blocks.back().mean()) {
      const Block last = blocks.back();
      blocks.pop_back();
      blocks.back().sum_wy += last.sum_wy;
      blocks.back().sum_w += last.sum_w;
      blocks.back().count += last.count;
    }
  }
  std::vector<double> out;
  for (const Block& b : blocks) out.insert(out.end(), b.count, b.mean());
  return out;
}

}  // namespace

GpuMeasurePlan gpu_measure_plan(const std::vector<std::pair<std::string, ModelConfig>>& models,
                                bool quick, int warmup, int repetitions) {
  CF_CHECK(!models.empty());
  GpuMeasurePlan plan;
  plan.warmup = warmup;
  plan.repetitions = repetitions;
  std::vector<int64_t> tokens{256, 1024};
  if (!quick) tokens = {256, 512, 1024, 2048, 4096, 8192, 16384};
  std::set<std::tuple<int64_t, int64_t, int64_t>> seen;
  for (const auto& [name, m] : models) {
    const std::vector<GemmShape> layer = {
        {name, "qkv", 0, m.hidden, m.q_width() + 2 * m.kv_width()},
        {name, "output", 0, m.q_width(), m.hidden},
        {name, m.gpt() ? "mlp_fc1" : "mlp_up_gate", 0, m.hidden, (m.gpt() ? 1 : 2) * m.ffn_hidden},
        {name, "mlp_down", 0, m.ffn_hidden, m.hidden},
        {name, "lm_head", 0, m.hidden, m.vocab}};
    for (GemmShape shape : layer) {
      for (const int64_t t : tokens) {
        shape.tokens = t;
        if (seen.insert({t, shape.in_features, shape.out_features}).second) {
          plan.gemm.push_back(shape);
        }
      }
    }
  }
  const ModelConfig& first = models.front().second;
  plan.attention_model = models.front().first;
  plan.heads = first.heads;
  plan.kv_heads = first.kv_heads;
  plan.head_dim = first.head_dim;
  const std::vector<int64_t> q =
      quick ? std::vector<int64_t>{128, 256} : std::vector<int64_t>{1024, 2048, 4096, 8192};
  for (const int64_t query : q) {
    for (const int64_t prefix : {int64_t{0}, query, 3 * query}) {
      plan.attention.push_back({query, prefix});
    }
  }
  plan.memory_elements =
      quick ? std::vector<int64_t>{int64_t{1} << 20, int64_t{1} << 22}
            : std::vector<int64_t>{int64_t{1} << 26, int64_t{1} << 27, int64_t{1} << 28};
  plan.launches = quick ? 100 : 1000;
  if (quick) {
    plan.collective_bytes = {4096, int64_t{1} << 20};
  } else {
    for (int64_t s = 4096; s <= (int64_t{1} << 30); s *= 4) plan.collective_bytes.push_back(s);
  }
  return plan;
}

FitError fit_error(const std::vector<double>& predicted, const std::vector<double>& measured) {
  CF_CHECK_EQ(predicted.size(), measured.size());
  FitError e;
  e.points = static_cast<int>(measured.size());
  for (size_t i = 0; i < measured.size(); ++i) {
    CF_CHECK_GT(measured[i], 0);
    const double rel = std::abs(predicted[i] - measured[i]) / measured[i];
    e.max_rel = std::max(e.max_rel, rel);
    e.mean_rel += rel;
  }
  if (e.points > 0) e.mean_rel /= e.points;
  return e;
}

GemmCurveFit fit_gemm_efficiency(const std::vector<GemmSample>& samples, double peak_flops) {
  CF_CHECK(!samples.empty());
  CF_CHECK_GT(peak_flops, 0);
  GemmCurveFit fit;
  std::vector<GemmSample> sorted = samples;
  std::sort(sorted.begin(), sorted.end(), [](const GemmSample& a, const GemmSample& b) {
    return a.shape.flops() < b.shape.flops();
  });
  // One point per size (GEMMs within 1% of FLOPs together: x their FLOPs' geometric mean, y
  // their FLOPs over peak × their time), weight n / y²: least squares on relative error.
  std::vector<double> x, y, w;
  for (size_t i = 0; i < sorted.size();) {
    double log_sum = 0, flops = 0, seconds = 0;
    size_t j = i;
    for (; j < sorted.size() && sorted[j].shape.flops() <= 1.01 * sorted[i].shape.flops(); ++j) {
      CF_CHECK_GT(sorted[j].seconds, 0);
      log_sum += std::log(sorted[j].shape.flops());
      flops += sorted[j].shape.flops();
      seconds += sorted[j].seconds;
      if (sorted[j].shape.flops() / (peak_flops * sorted[j].seconds) > 1) ++fit.above_peak;
    }
    const double n = static_cast<double>(j - i);
    x.push_back(std::exp(log_sum / n));
    y.push_back(flops / (peak_flops * seconds));
    w.push_back(n / (y.back() * y.back()));
    i = j;
  }
  // Non-decreasing, at most 1, rounded as written; of a run of equal efficiencies only its ends
  // are kept (the curve is flat between them either way).
  const std::vector<double> monotone = non_decreasing(y, w);
  std::vector<std::pair<double, double>> points;
  for (size_t g = 0; g < x.size(); ++g) {
    const double flops = as_written(x[g] / 1e9, "{:.6g}") * 1e9;
    if (!points.empty() && flops <= points.back().first) continue;  // rounded together
    points.emplace_back(flops, fraction_as_written(monotone[g]));
  }
  for (size_t g = 0; g < points.size(); ++g) {
    const bool inner_of_run = g > 0 && g + 1 < points.size() &&
                              points[g - 1].second == points[g].second &&
                              points[g + 1].second == points[g].second;
    if (!inner_of_run) fit.curve.push_back(points[g]);
  }
  GpuSpec curve;
  curve.gemm_efficiency = fit.curve;
  std::vector<double> predicted, measured;
  for (const GemmSample& s : samples) {
    predicted.push_back(s.shape.flops() / (peak_flops * curve.gemm_efficiency_at(s.shape.flops())));
    measured.push_back(s.seconds);
  }
  fit.error = fit_error(predicted, measured);
  return fit;
}

AttentionFit fit_attention_efficiency(const std::vector<AttentionSample>& samples,
                                      const ModelConfig& model, const GpuSpec& base) {
  CF_CHECK(!samples.empty());
  // The simulator's own attention seconds at efficiency 1: FlashAttention's tiles, tp = 1.
  ModelConfig flash = model;
  flash.flash_attention = true;
  GpuSpec ideal_gpu = base;
  ideal_gpu.attention_efficiency = 1;
  const AnalyticalCostModel cost(flash, ideal_gpu, 1, ParallelConfig{});
  AttentionFit fit;
  double ideal_sum = 0, measured_sum = 0;
  for (const AttentionSample& s : samples) {
    CF_CHECK(s.forward_s > 0 && s.backward_s > 0);
    const AttentionSpan span{s.point.q, s.point.prefix};
    fit.ideal_s.push_back(cost.layer_forward_seconds(s.point.q, {&span, 1}).attention);
    ideal_sum += (1 + kAttentionBackwardFactor) * fit.ideal_s.back();
    measured_sum += s.forward_s + s.backward_s;
  }
  fit.above_peak = ideal_sum > measured_sum;
  fit.efficiency = fraction_as_written(ideal_sum / measured_sum);
  std::vector<double> fwd_pred, fwd, bwd_pred, bwd;
  for (size_t i = 0; i < samples.size(); ++i) {
    fwd_pred.push_back(fit.ideal_s[i] / fit.efficiency);
    fwd.push_back(samples[i].forward_s);
    bwd_pred.push_back(kAttentionBackwardFactor * fit.ideal_s[i] / fit.efficiency);
    bwd.push_back(samples[i].backward_s);
  }
  fit.forward = fit_error(fwd_pred, fwd);
  fit.backward = fit_error(bwd_pred, bwd);
  return fit;
}

MemoryFit fit_memory_efficiency(const std::vector<BandwidthSample>& samples,
                                double hbm_bytes_per_s) {
  CF_CHECK(!samples.empty());
  CF_CHECK_GT(hbm_bytes_per_s, 0);
  double bytes = 0, seconds = 0;
  for (const BandwidthSample& s : samples) {
    CF_CHECK_GT(s.seconds, 0);
    bytes += static_cast<double>(s.bytes);
    seconds += s.seconds;
  }
  MemoryFit fit;
  fit.above_peak = bytes / seconds > hbm_bytes_per_s;
  fit.efficiency = fraction_as_written(bytes / (hbm_bytes_per_s * seconds));
  std::vector<double> predicted, measured;
  for (const BandwidthSample& s : samples) {
    predicted.push_back(static_cast<double>(s.bytes) / (hbm_bytes_per_s * fit.efficiency));
    measured.push_back(s.seconds);
  }
  fit.error = fit_error(predicted, measured);
  return fit;
}

StatusOr<CollectiveTerms> collective_terms(const std::string& op, int ranks) {
  if (ranks < 2) return Status::InvalidInput(fmt::format("{} needs 2 ranks or more", op));
  // Coefficients read off the cost model's own functions: latency 1 s at no bytes, and the
  // bytes term of 1 B at no latency.
  const Link unit_latency{1.0, 1.0}, unit_bandwidth{1.0, 0.0};
  if (op == "all_reduce") {
    return CollectiveTerms{all_reduce_s(0, ranks, unit_latency),
                           all_reduce_s(1, ranks, unit_bandwidth)};
  }
  if (op == "all_gather") {
    return CollectiveTerms{all_gather_s(0, ranks, unit_latency),
                           all_gather_s(1, ranks, unit_bandwidth)};
  }
  if (op == "reduce_scatter") {
    return CollectiveTerms{reduce_scatter_s(0, ranks, unit_latency),
                           reduce_scatter_s(1, ranks, unit_bandwidth)};
  }
  // The pipeline's point-to-point, T = α + S/β (AnalyticalCostModel::p2p_time_ns).
  if (op == "send_recv") return CollectiveTerms{1, 1};
  return Status::InvalidInput(fmt::format("unknown collective '{}'", op));
}

StatusOr<AlphaBetaFit> fit_alpha_beta(const std::vector<CollectiveSample>& samples, int ranks) {
  std::set<int64_t> sizes;
  for (const CollectiveSample& s : samples) sizes.insert(s.bytes);
  if (sizes.size() < 2) {
    return Status::Runtime("the α-β fit needs collectives of at least two sizes");
  }
  // Rows u·α + v·γ ≈ 1 with u = latencies / T, v = factor·S / T, γ = 1/β: the normal equations.
  std::vector<CollectiveTerms> terms;
  double suu = 0, suv = 0, svv = 0, su = 0, sv = 0;
  for (const CollectiveSample& s : samples) {
    CF_CHECK_GT(s.seconds, 0);
    CF_ASSIGN_OR_RETURN(const CollectiveTerms t, collective_terms(s.op, ranks));
    terms.push_back(t);
    const double u = t.latencies / s.seconds;
    const double v = t.bytes_factor * static_cast<double>(s.bytes) / s.seconds;
    suu += u * u;
    suv += u * v;
    svv += v * v;
    su += u;
    sv += v;
  }
  const double det = suu * svv - suv * suv;
  double alpha = det > 1e-12 * suu * svv ? (su * svv - sv * suv) / det : -1;
  double gamma = det > 1e-12 * suu * svv ? (suu * sv - suv * su) / det : 0;
  if (alpha < 0) {
    alpha = 0;
    gamma = sv / svv;
  }
  if (!(gamma > 0) || !std::isfinite(gamma)) {
    return Status::Runtime("the collective times do not fit α + S/β (no positive bandwidth)");
  }
  AlphaBetaFit fit;
  fit.alpha_s = alpha;
  fit.beta_bytes_per_s = 1 / gamma;
  auto predict = [&](size_t i) {
    return terms[i].latencies * alpha +
           terms[i].bytes_factor * static_cast<double>(samples[i].bytes) * gamma;
  };
  std::vector<double> predicted, measured;
  for (size_t i = 0; i < samples.size(); ++i) {
    predicted.push_back(predict(i));
    measured.push_back(samples[i].seconds);
  }
  fit.error = fit_error(predicted, measured);
  for (const char* op : {"all_reduce", "all_gather", "reduce_scatter", "send_recv"}) {
    std::vector<double> p, m;
    for (size_t i = 0; i < samples.size(); ++i) {
      if (samples[i].op != op) continue;
      p.push_back(predict(i));
      m.push_back(samples[i].seconds);
    }
    if (!m.empty()) fit.per_op.emplace_back(op, fit_error(p, m));
  }
  return fit;
}

std::string base_gpu_for_device(const std::string& device_name) {
  std::string name = device_name;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
  if (has("pcie") || has("nvl")) return "";  // other clocks, bandwidths and links than SXM
  if (has("h100")) return "h100-sxm-80g";
  if (has("h200")) return "h200-141g";
  if (has("h800")) return "h800-80g";
  if (has("a100") && !has("40gb")) return "a100-sxm-80g";
  return "";
}

StatusOr<GpuCalibration> fit_gpu_calibration(const GpuMeasurements& measured, const GpuSpec& base,
                                             const std::string& base_origin,
                                             const ModelConfig& attention_model) {
  if (measured.gemm.empty() || measured.attention.empty() || measured.memory.empty()) {
    return Status::Runtime("the GPU calibration measured no GEMM, attention or memory point");
  }
  GpuCalibration c;
  c.measured = measured;
  c.base = base;
  c.base_origin = base_origin;
  c.gemm = fit_gemm_efficiency(measured.gemm, base.peak_bf16_flops);
  c.attention = fit_attention_efficiency(measured.attention, attention_model, base);
  c.memory = fit_memory_efficiency(measured.memory, base.hbm_bandwidth_bytes_per_s);

  GpuSpec& spec = c.calibrated;
  spec = base;
  spec.name = base.name + "-calibrated";
  spec.hbm_bytes = static_cast<int64_t>(
      std::floor(static_cast<double>(measured.device.hbm_total_bytes) / kMebi) * kMebi);
  if (spec.reserved_bytes >= spec.hbm_bytes) {
    return Status::Runtime(
        fmt::format("the device has {} MiB, not more than the base file's reserved_mib {}",
                    spec.hbm_bytes / (1 << 20), base.reserved_bytes / (1 << 20)));
  }
  spec.gemm_efficiency = c.gemm.curve;
  spec.attention_efficiency = c.attention.efficiency;
  spec.memory_efficiency = c.memory.efficiency;
  spec.kernel_launch_s = as_written(measured.launch.gpu_s_per_kernel * 1e6, "{:.4g}") * 1e-6;
  spec.host_kernel_s = as_written(measured.launch.host_s_per_launch * 1e6, "{:.4g}") * 1e-6;

  const GpuDevice& d = measured.device;
  if (!measured.collectives.empty()) {
    CF_ASSIGN_OR_RETURN(AlphaBetaFit links, fit_alpha_beta(measured.collectives, measured.ranks));
    // The file needs a positive latency: a fit at α = 0 is written as 0.01 µs.
    spec.nvlink_latency_s = std::max(0.01, as_written(links.alpha_s * 1e6, "{:.4g}")) * 1e-6;
    spec.collective_efficiency =
        fraction_as_written(links.beta_bytes_per_s / base.nvlink_bandwidth_bytes_per_s);
    c.links = links;
  } else if (measured.nodes > 1) {
    c.links_kept =
        fmt::format("the {} ranks are on {} nodes: the NVLink fields need the ranks of one node",
                    measured.ranks, measured.nodes);
  } else if (d.visible > 1) {
    c.links_kept = fmt::format(
        "one GPU measured of {} visible: run under `mpirun -np {}` (one rank per GPU) to "
        "measure NVLink",
        d.visible, d.visible);
  } else {
    c.links_kept = "one GPU: no link to measure";
  }
  return c;
}

namespace {

// `text` as "# " comment lines of at most 98 columns, broken at spaces.
std::string comment(const std::string& text) {
  constexpr size_t kWidth = 96;
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > kWidth) {
      out += "# " + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  if (!line.empty()) out += "# " + line + "\n";
  return out;
}

// A YAML double-quoted scalar: backslashes and quotes escaped, control characters dropped.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

std::string percent(double fraction) { return fmt::format("{:.1f}%", 100 * fraction); }

// "[measured DATE on DEVICE, driver CUDA X, runtime CUDA Y, chunkflow Z]"
std::string measured_tag(const GpuMeasurements& m) {
  return fmt::format("[measured {} on {}, driver CUDA {}, runtime CUDA {}, chunkflow {}]", m.date,
                     m.device.name, m.device.driver_version, m.device.runtime_version,
                     m.chunkflow_version);
}

std::string shape_list(const GpuMeasurePlan& plan) {
  std::vector<std::string> models;
  for (const GemmShape& g : plan.gemm) {
    if (std::find(models.begin(), models.end(), g.model) == models.end()) models.push_back(g.model);
  }
  const auto [lo, hi] = std::minmax_element(
      plan.gemm.begin(), plan.gemm.end(),
      [](const GemmShape& a, const GemmShape& b) { return a.tokens < b.tokens; });
  return fmt::format("QKV, output, MLP up/gate, down and LM head of {} at tokens {}..{}",
                     fmt::join(models, ", "), lo->tokens, hi->tokens);
}

std::string attention_grid_text(const GpuMeasurePlan& p) {
  std::vector<int64_t> q;
  for (const AttentionPoint& a : p.attention) {
    if (std::find(q.begin(), q.end(), a.q) == q.end()) q.push_back(a.q);
  }
  return fmt::format(
      "q ∈ {{{}}} after prefixes {{0, q, 3q}}, heads of {} ({} query, {} key/value, "
      "head_dim {})",
      fmt::join(q, ", "), p.attention_model, p.heads, p.kv_heads, p.head_dim);
}

std::string memory_grid_text(const GpuMeasurePlan& p) {
  auto log2 = [](int64_t n) { return static_cast<int>(std::lround(std::log2(n))); };
  return fmt::format("2^{}..2^{} floats", log2(p.memory_elements.front()),
                     log2(p.memory_elements.back()));
}

std::string collectives_text(const GpuMeasurements& m) {
  const auto [lo, hi] = std::minmax_element(
      m.collectives.begin(), m.collectives.end(),
      [](const CollectiveSample& a, const CollectiveSample& b) { return a.bytes < b.bytes; });
  return fmt::format(
      "NCCL all-reduce, all-gather, reduce-scatter and send-recv (bf16) over {} GPUs "
      "of one node, {}..{} B",
      m.ranks, lo->bytes, hi->bytes);
}

}  // namespace

double as_written(double value, const char* format) {
  return std::stod(fmt::format(fmt::runtime(format), value));
}
double fraction_as_written(double value) {
  return std::clamp(as_written(value, "{:.4g}"), kMinEfficiency, 1.0);
}

std::string fit_text(const FitError& e) {
  return fmt::format("{} / {} over {} points", percent(e.max_rel), percent(e.mean_rel), e.points);
}

std::string hardware_yaml(const GpuSpec& s, const HardwareYamlNotes& n) {
  std::string y = comment(n.header);
  auto field = [&](const std::string& note, const std::string& line) {
    y += comment(note);
    y += line + "\n";
  };
  y += fmt::format("name: {}\n", s.name);
  field(n.peak, fmt::format("peak_bf16_tflops: {:.10g}", s.peak_bf16_flops / 1e12));
  field(n.hbm, fmt::format("hbm_mib: {}", s.hbm_bytes >> 20));
  field(n.hbm_bandwidth,
        fmt::format("hbm_bandwidth_tb_per_s: {:.10g}", s.hbm_bandwidth_bytes_per_s / 1e12));
  field(n.nvlink, fmt::format("nvlink_gb_per_s: {:.10g}", s.nvlink_bandwidth_bytes_per_s / 1e9));
  field(n.nvlink_latency, fmt::format("nvlink_latency_us: {:.10g}", s.nvlink_latency_s * 1e6));
  field(n.ib, fmt::format("ib_gb_per_s: {:.10g}", s.ib_bandwidth_bytes_per_s / 1e9));
  field(n.ib_latency, fmt::format("ib_latency_us: {:.10g}", s.ib_latency_s * 1e6));
  y += comment(n.gemm);
  y += "gemm_efficiency:\n";
  for (const auto& [flops, efficiency] : s.gemm_efficiency) {
    y += fmt::format("  - {{gflops: {:.6g}, efficiency: {:.4g}}}\n", flops / 1e9, efficiency);
  }
  field(n.attention, fmt::format("attention_efficiency: {:.4g}", s.attention_efficiency));
  field(n.memory, fmt::format("memory_efficiency: {:.4g}", s.memory_efficiency));
  field(n.collective, fmt::format("collective_efficiency: {:.4g}", s.collective_efficiency));
  field(n.reserved, fmt::format("reserved_mib: {}", s.reserved_bytes >> 20));
  field(n.attention_block, fmt::format("attention_block: {}", s.attention_block));
  field(n.kernel_launch, fmt::format("kernel_launch_us: {:.10g}", s.kernel_launch_s * 1e6));
  field(n.host_kernel, fmt::format("host_kernel_us: {:.10g}", s.host_kernel_s * 1e6));
  field(n.microbatch, fmt::format("microbatch_us: {:.10g}", s.microbatch_s * 1e6));
  if (s.host_runs_kernels) {
    field(n.host_runs_kernels, "host_runs_kernels: true");
  }
  if (s.host_link_bandwidth_bytes_per_s > 0) {
    y += comment("[assumption] the host link as the base file gives it, not measured.");
    y += fmt::format(
        "host_link_gb_per_s: {:.10g}\ngpus_per_host_link: {}\nhost_link_efficiency: {:.4g}\n"
        "host_memory_gib: {:.10g}\n",
        s.host_link_bandwidth_bytes_per_s / 1e9, s.gpus_per_host_link, s.host_link_efficiency,
        static_cast<double>(s.host_memory_bytes) / (1 << 30));
  }
  y += fmt::format("source: {}\n", quoted(n.source));
  return y;
}

std::string kept_note(const GpuSpec& base, const std::string& what) {
  return fmt::format("[assumption] the base file's ({}), not measured by calibrate: {}.", base.name,
                     what);
}

std::string gpu_calibration_yaml(const GpuCalibration& c) {
  const GpuSpec& s = c.calibrated;
  const GpuSpec& b = c.base;
  const GpuMeasurements& m = c.measured;
  const GpuDevice& d = m.device;
  const std::string tag = measured_tag(m);
  const std::string datasheet = fmt::format("From the base file {} (datasheet).", b.name);
  auto kept = [&](const std::string& what) { return kept_note(b, what); };
  HardwareYamlNotes n;
  n.header = fmt::format(
      "{} (compute capability {}, {} SMs) calibrated by `chunkflow calibrate --backend cuda`. "
      "Base file {} ({}): its datasheet values are kept; [measured] values replace its "
      "assumptions; [assumption] values are its own, not measured here. "
      "{}: cuBLAS {}, NCCL {}; {} warm-up + {} timed runs per point, the fastest (CUDA events). "
      "A fit's quality is the max / mean relative error of the times it predicts against the "
      "times it was fitted to (`chunkflow calibrate` prints every point).",
      d.name, d.compute_capability, d.multiprocessors, b.name, c.base_origin, tag, d.cublas_version,
      d.nccl_version, m.plan.warmup, m.plan.repetitions);
  n.peak = datasheet;
  n.hbm = fmt::format(
      "{} cudaMemGetInfo total: what CUDA can address. Base file: {} (the shipped files hold "
      "nvidia-smi's memory.total, which also counts the driver's reservation).",
      tag, b.hbm_bytes >> 20);
  n.hbm_bandwidth = datasheet;
  n.nvlink = datasheet;
  n.nvlink_latency =
      c.links ? fmt::format(
                    "{} α of {}, fitted with β to the cost model's ring formulas (T = steps·α + "
                    "bus factor·S/β) by least squares on relative error; fit {}. Base file: "
                    "{:.10g}.",
                    tag, collectives_text(m), fit_text(c.links->error), b.nvlink_latency_s * 1e6)
              : kept(c.links_kept);
  n.ib = datasheet;
  n.ib_latency = kept("a link between nodes");
  n.gemm = fmt::format(
      "{} bf16 cuBLAS GEMMs (cublasGemmEx, bf16 operands and output, CUBLAS_COMPUTE_32F), {}: "
      "FLOPs / (peak · time), one point per size, made non-decreasing; fit {}. "
      "Base file: {} points.",
      tag, shape_list(m.plan), fit_text(c.gemm.error), b.gemm_efficiency.size());
  n.attention = fmt::format(
      "{} cf::cuda::attention_forward and attention_backward under Math::kBf16, one segment of "
      "{}: the cost model's FLOPs (4·Q per pair in attention_block tiles) over peak, forward "
      "and {}× backward together, FLOP-weighted; fit forward {}, backward {}. Base file: {}.",
      tag, attention_grid_text(m.plan), kAttentionBackwardFactor, fit_text(c.attention.forward),
      fit_text(c.attention.backward), b.attention_efficiency);
  n.memory = fmt::format(
      "{} cf::cuda::residual_add and swiglu_forward over {} (12 B per element): bytes / "
      "(hbm_bandwidth_tb_per_s · time), byte-weighted; fit {}. Base file: {}.",
      tag, memory_grid_text(m.plan), fit_text(c.memory.error), b.memory_efficiency);
  n.collective = c.links ? fmt::format(
                               "{} β = {:.1f} GB/s bus bandwidth (the α-β fit above) over "
                               "nvlink_gb_per_s. Base file: {}.",
                               tag, c.links->beta_bytes_per_s / 1e9, b.collective_efficiency)
                         : kept(c.links_kept);
  n.reserved = kept(fmt::format(
      "the CUDA context, cuBLAS workspaces, NCCL buffers and fragmentation (here the context "
      "and one cuBLAS handle held {} MiB)",
      d.context_bytes >> 20));
  n.attention_block = kept("FlashAttention's tile, which the executor's kernel does not share");
  n.kernel_launch = fmt::format(
      "{} GPU time per one-element cf::cuda::residual_add, {} queued back to back behind a "
      "spinning kernel (CUDA events / {}). Base file: {:.10g}.",
      tag, m.launch.launches, m.launch.launches, b.kernel_launch_s * 1e6);
  n.host_kernel = fmt::format(
      "{} host time to issue one cf::cuda::residual_add (the executor's C++ launcher with its "
      "error check); a Python framework's eager dispatch adds its own on top. Base file: "
      "{:.10g}.",
      tag, b.host_kernel_s * 1e6);
  n.microbatch = kept("the training framework's host time per micro-batch pass");
  n.source = fmt::format("chunkflow calibrate --backend cuda, {}, {}; datasheet values from {}",
                         m.date, d.name, c.base_origin);
  return hardware_yaml(s, n);
}

std::string gpu_calibration_summary(const GpuCalibration& c) {
  const GpuMeasurements& m = c.measured;
  const GpuDevice& d = m.device;
  const GpuSpec& b = c.base;
  const GpuSpec& s = c.calibrated;
  std::string t = fmt::format(
      "chunkflow calibrate  backend cuda on {} (GPU {} of {} visible, compute capability {}, {} "
      "SMs)\n"
      "software   driver CUDA {}, runtime CUDA {}, cuBLAS {}, NCCL {}, chunkflow {}\n"
      "base       {} ({}): peak {:.10g} bf16 TFLOP/s, HBM {:.10g} TB/s, NVLink {:.10g} GB/s\n"
      "method     {} warm-up + {} timed runs per point, the fastest GPU time (CUDA events)\n"
      "grids      GEMMs: {} ({} shapes); attention: {}; memory: residual_add and "
      "swiglu_forward over {}; launches: {}\n",
      d.name, d.index, d.visible, d.compute_capability, d.multiprocessors, d.driver_version,
      d.runtime_version, d.cublas_version, d.nccl_version, m.chunkflow_version, b.name,
      c.base_origin, b.peak_bf16_flops / 1e12, b.hbm_bandwidth_bytes_per_s / 1e12,
      b.nvlink_bandwidth_bytes_per_s / 1e9, m.plan.warmup, m.plan.repetitions, shape_list(m.plan),
      m.gemm.size(), attention_grid_text(m.plan), memory_grid_text(m.plan), m.launch.launches);
  t += fmt::format("           collectives: {}\n",
                   m.collectives.empty() ? "none (" + c.links_kept + ")" : collectives_text(m));

  t += fmt::format("\n{:<22} {:>12} {:>12}   {}\n", "field", "base file", "measured",
                   "fit: max / mean relative error of its times");
  auto row = [&](const std::string& field, const std::string& base, const std::string& measured,
                 const std::string& note) {
    t += fmt::format("{:<22} {:>12} {:>12}   {}\n", field, base, measured, note);
  };
  row("hbm_mib", fmt::format("{}", b.hbm_bytes >> 20), fmt::format("{}", s.hbm_bytes >> 20),
      "cudaMemGetInfo total");
  row("gemm_efficiency", fmt::format("{} points", b.gemm_efficiency.size()),
      fmt::format("{} points", s.gemm_efficiency.size()), fit_text(c.gemm.error));
  row("attention_efficiency", fmt::format("{}", b.attention_efficiency),
      fmt::format("{:.4g}", s.attention_efficiency),
      fmt::format("forward {}; backward {}", fit_text(c.attention.forward),
                  fit_text(c.attention.backward)));
  row("memory_efficiency", fmt::format("{}", b.memory_efficiency),
      fmt::format("{:.4g}", s.memory_efficiency), fit_text(c.memory.error));
  row("kernel_launch_us", fmt::format("{:.10g}", b.kernel_launch_s * 1e6),
      fmt::format("{:.10g}", s.kernel_launch_s * 1e6), "GPU time per tiny kernel, back to back");
  row("host_kernel_us", fmt::format("{:.10g}", b.host_kernel_s * 1e6),
      fmt::format("{:.10g}", s.host_kernel_s * 1e6),
      "the executor's C++ launch (a Python framework adds its dispatch)");
  if (c.links) {
    row("nvlink_latency_us", fmt::format("{:.10g}", b.nvlink_latency_s * 1e6),
        fmt::format("{:.10g}", s.nvlink_latency_s * 1e6), fit_text(c.links->error));
    row("collective_efficiency", fmt::format("{}", b.collective_efficiency),
        fmt::format("{:.4g}", s.collective_efficiency),
        fmt::format("bus bandwidth {:.1f} GB/s", c.links->beta_bytes_per_s / 1e9));
  } else {
    row("nvlink_latency_us", fmt::format("{:.10g}", b.nvlink_latency_s * 1e6), "kept",
        c.links_kept);
    row("collective_efficiency", fmt::format("{}", b.collective_efficiency), "kept", c.links_kept);
  }
  t += fmt::format(
      "kept from the base file: ib_gb_per_s, ib_latency_us, reserved_mib ({} MiB; the context "
      "and a cuBLAS handle hold {} MiB here), microbatch_us, attention_block\n",
      b.reserved_bytes >> 20, d.context_bytes >> 20);
  if (c.gemm.above_peak > 0) {
    t += fmt::format(
        "WARNING: {} GEMMs ran faster than the base file's peak allows (capped at "
        "efficiency 1): check peak_bf16_tflops\n",
        c.gemm.above_peak);
  }
  if (c.attention.above_peak) t += "WARNING: attention above the base file's peak (capped at 1)\n";
  if (c.memory.above_peak) {
    t += "WARNING: elementwise kernels above the base file's HBM bandwidth (capped at 1)\n";
  }
  for (const std::string& skipped : m.skipped) t += "skipped: " + skipped + "\n";

  t += fmt::format(
      "\nGEMMs (bf16 cuBLAS; the curve's time against the measured)\n"
      "{:<14} {:<12} {:>6} {:>6} {:>7} {:>10} {:>10} {:>8} {:>7} {:>7}\n",
      "model", "gemm", "tokens", "in", "out", "GFLOP", "µs", "TFLOP/s", "eff", "curve");
  for (const GemmSample& g : m.gemm) {
    const double flops = g.shape.flops();
    const double curve_s = flops / (b.peak_bf16_flops * s.gemm_efficiency_at(flops));
    t += fmt::format(
        "{:<14} {:<12} {:>6} {:>6} {:>7} {:>10.3f} {:>10.1f} {:>8.1f} {:>7.4f} {:>+6.1f}%\n",
        g.shape.model, g.shape.name, g.shape.tokens, g.shape.in_features, g.shape.out_features,
        flops / 1e9, g.seconds * 1e6, flops / g.seconds / 1e12,
        flops / (b.peak_bf16_flops * g.seconds), 100 * (curve_s / g.seconds - 1));
  }
  t += fmt::format(
      "\ngemm_efficiency written, against the base file's curve at those sizes\n"
      "{:>10} {:>9} {:>9}\n",
      "GFLOP", "measured", "base");
  for (const auto& [flops, efficiency] : s.gemm_efficiency) {
    t += fmt::format("{:>10.4g} {:>9.4f} {:>9.4f}\n", flops / 1e9, efficiency,
                     b.gemm_efficiency_at(flops));
  }

  t += fmt::format(
      "\nattention (Math::kBf16; efficiency: the cost model's FLOPs over peak × time)\n"
      "{:>6} {:>7} {:>10} {:>10} {:>8} {:>8} {:>8}\n",
      "q", "prefix", "fwd ms", "bwd ms", "bwd/fwd", "fwd eff", "bwd eff");
  for (size_t i = 0; i < m.attention.size(); ++i) {
    const AttentionSample& a = m.attention[i];
    const double ideal = c.attention.ideal_s[i];
    t += fmt::format("{:>6} {:>7} {:>10.3f} {:>10.3f} {:>8.2f} {:>8.4f} {:>8.4f}\n", a.point.q,
                     a.point.prefix, a.forward_s * 1e3, a.backward_s * 1e3,
                     a.backward_s / a.forward_s, ideal / a.forward_s,
                     kAttentionBackwardFactor * ideal / a.backward_s);
  }
  t += fmt::format("  the cost model prices the backward at {}× the forward\n",
                   kAttentionBackwardFactor);

  t +=
      fmt::format("\nmemory (efficiency against {:.10g} TB/s)\n{:<16} {:>12} {:>10} {:>10} {:>8}\n",
                  b.hbm_bandwidth_bytes_per_s / 1e12, "kernel", "floats", "µs", "GB/s", "eff");
  for (const BandwidthSample& e : m.memory) {
    const double rate = static_cast<double>(e.bytes) / e.seconds;
    t += fmt::format("{:<16} {:>12} {:>10.1f} {:>10.1f} {:>8.4f}\n", e.kernel, e.elements,
                     e.seconds * 1e6, rate / 1e9, rate / b.hbm_bandwidth_bytes_per_s);
  }
  t += fmt::format(
      "\nlaunches   {} one-element residual_add: {:.3f} µs GPU time each back to back, "
      "{:.3f} µs host time to issue each\n",
      m.launch.launches, m.launch.gpu_s_per_kernel * 1e6, m.launch.host_s_per_launch * 1e6);

  if (c.links) {
    t += fmt::format(
        "\ncollectives over {} GPUs (bus bandwidth as nccl-tests: bus factor · S / time); "
        "α = {:.3f} µs, β = {:.1f} GB/s\n{:<15} {:>12} {:>10} {:>10} {:>10} {:>7}\n",
        m.ranks, c.links->alpha_s * 1e6, c.links->beta_bytes_per_s / 1e9, "op", "bytes", "µs",
        "busbw GB/s", "fit µs", "error");
    for (const CollectiveSample& e : m.collectives) {
      const StatusOr<CollectiveTerms> terms = collective_terms(e.op, m.ranks);
      CF_CHECK(terms.ok()) << terms.status().message();
      const double bus = terms->bytes_factor * static_cast<double>(e.bytes);
      const double fit = terms->latencies * c.links->alpha_s + bus / c.links->beta_bytes_per_s;
      t += fmt::format("{:<15} {:>12} {:>10.1f} {:>10.1f} {:>10.1f} {:>+6.1f}%\n", e.op, e.bytes,
                       e.seconds * 1e6, bus / e.seconds / 1e9, fit * 1e6,
                       100 * (fit / e.seconds - 1));
    }
    for (const auto& [op, error] : c.links->per_op) {
      t += fmt::format("  {:<15} fit {}\n", op, fit_text(error));
    }
  }
  return t;
}

}  // namespace cf
