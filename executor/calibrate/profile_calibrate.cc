// calibrate --from-profile: the fits of cuda_calibrate.cc on a profile's ops (profile_calibrate.h).
#include "executor/calibrate/profile_calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "executor/calibrate/profile_table.h"

namespace cf {
namespace {

constexpr double kNs = 1e-9;

std::string profile_list(const ProfileCalibration& c) {
  std::string out;
  for (size_t i = 0; i < c.paths.size(); ++i) {
    if (i == 3) return out + fmt::format(" and {} more", c.paths.size() - 3);
    out += (i ? ", " : "") + c.paths[i];
  }
  return out;
}

constexpr int64_t kMinLaunchGaps = 100;
constexpr int64_t kGpusPerNode = 8;  // an HGX / DGX node: NVLink within it

// The α-β fit of the collectives of the group size with the most time, as NVLink's latency and
// the collective efficiency, when that group fits in a node.
void fit_links(const std::map<int64_t, std::vector<CollectiveSample>>& collectives,
               const std::map<int64_t, double>& seconds, ProfileCalibration* c) {
  if (collectives.empty()) {
    c->links_kept =
        "no all-reduce, all-gather, reduce-scatter or send-recv with its sizes (Collective "
        "name, In/Out msg nelems, dtype, Group size) and a kernel";
    return;
  }
  const auto busiest =
      std::max_element(seconds.begin(), seconds.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  const int64_t group = busiest->first;
  c->collective_group = group;
  c->collective_samples = collectives.at(group);
  if (group > kGpusPerNode) {
    c->links_kept = fmt::format(
        "the busiest collectives run over groups of {} GPUs, more than a node's {}: the "
        "profile does not say which link they crossed",
        group, kGpusPerNode);
    return;
  }
  StatusOr<AlphaBetaFit> fit = fit_alpha_beta(c->collective_samples, static_cast<int>(group));
  if (!fit.ok()) {
    c->links_kept =
        fmt::format("the collectives of {} GPUs do not fit α-β: {}", group, fit.status().message());
    return;
  }
  GpuSpec& spec = c->calibrated;
  spec.nvlink_latency_s = std::max(0.01, as_written(fit->alpha_s * 1e6, "{:.4g}")) * 1e-6;
  spec.collective_efficiency =
      fraction_as_written(fit->beta_bytes_per_s / spec.nvlink_bandwidth_bytes_per_s);
  c->links = *fit;
}

// A CPU-only profile's framework time: per ProfilerStep, its time in none of the classes the
// cost model prices (what is left: ops of no class, copies, the gaps between ops), and the
// compute passes whose marks start in it.
void add_framework_time(const RankProfile& p, ProfileCalibration* c) {
  for (const ProfileStep& step : p.steps) {
    int64_t priced = 0;
    for (const KernelClass kind : {KernelClass::kGemm, KernelClass::kAttention,
                                   KernelClass::kElementwise, KernelClass::kCollective}) {
      priced += step.by_class_ns[static_cast<int>(kind)];
    }
    const int64_t end = step.start_ns + step.duration_ns;
    int64_t passes = 0;
    for (const ProfileMark& m : p.marks.cpu) {
      passes += m.op.kind == OpKind::kCompute && m.start_ns >= step.start_ns && m.start_ns < end;
    }
    if (passes == 0) continue;
    c->framework_ns += std::max<int64_t>(0, step.duration_ns - priced);
    c->passes += passes;
  }
}

// microbatch_us and host_runs_kernels from a CPU-only profile's framework time.
void fit_framework_time(const std::vector<RankProfile>& profiles, ProfileCalibration* c) {
  if (c->device_times) {
    c->microbatch_kept =
        "the profile times ops by their kernels: the host's time per pass overlaps them";
    return;
  }
  c->calibrated.host_runs_kernels = true;
  for (const RankProfile& p : profiles) add_framework_time(p, c);
  if (c->passes == 0) {
    c->microbatch_kept =
        "no ProfilerStep holds a chunkflow pass mark (record_function(\"chunkflow:F:chunk=C\"), "
        "docs/PROFILES.md), so the steps' framework time has no passes to divide over";
    return;
  }
  const double per_pass_us =
      static_cast<double>(c->framework_ns) * 1e-3 / static_cast<double>(c->passes);
  c->calibrated.microbatch_s = as_written(per_pass_us, "{:.4g}") * 1e-6;
}

}  // namespace

StatusOr<ProfileCalibration> calibrate_from_profiles(const std::vector<RankProfile>& profiles,
                                                     const GpuSpec& base,
                                                     const std::string& base_origin) {
  CF_CHECK(!profiles.empty());
  ProfileCalibration c;
  c.base = base;
  c.base_origin = base_origin;
  c.date = utc_date();
  int64_t with_dims = 0;
  double attention_ideal = 0, attention_ns = 0;
  std::vector<std::pair<double, double>> attention_points;  // (ideal s at efficiency 1, s)
  std::vector<BandwidthSample> memory;
  std::map<int64_t, std::vector<CollectiveSample>> collectives;  // by group size
  std::map<int64_t, double> collective_seconds;
  std::vector<int64_t> launch_medians;
  for (const RankProfile& p : profiles) {
    c.launch_gaps += p.work.launch_gaps;
    if (p.work.launch_gaps > 0) launch_medians.push_back(p.work.launch_gap_median_ns);
    c.paths.push_back(p.path);
    c.device_times = c.device_times || p.work.device_times;
    with_dims += p.work.ops_with_dims;
    c.dropped_ops += p.work.samples_dropped;
    for (const ProfileStep& step : p.steps) c.steps_ns += step.duration_ns;
    for (const ProfileWorkSample& s : p.work.samples) {
      if (s.count <= 0 || s.total_ns <= 0) continue;
      c.fitted_ns += s.total_ns;
      const double mean_s = static_cast<double>(s.total_ns) * kNs / static_cast<double>(s.count);
      if (s.kind == KernelClass::kGemm) {
        // GemmShape carries the FLOPs as tokens × 1 × (FLOPs / 2 / tokens): only flops() is
        // read by the fit.
        GemmSample g;
        g.shape.model = p.path;
        g.shape.name = s.name;
        g.shape.tokens = 1;
        g.shape.in_features = 1;
        g.shape.out_features = static_cast<int64_t>(std::llround(s.flops / 2));
        g.seconds = mean_s;
        if (g.shape.out_features > 0) c.gemm_samples.push_back(g);
        c.gemm_ops += s.count;
      } else if (s.kind == KernelClass::kAttention) {
        // The cost model's attention time is FLOPs / (peak · efficiency), the backward 2.5×.
        const double factor = s.backward ? kAttentionBackwardFactor : 1.0;
        const double ideal = factor * s.flops / base.peak_bf16_flops;
        attention_ideal += ideal * static_cast<double>(s.count);
        attention_ns += static_cast<double>(s.total_ns);
        attention_points.emplace_back(ideal, mean_s);
        c.attention = c.attention.value_or(ProfileCalibration::Attention{});
        c.attention->ops += s.count;
      } else if (s.kind == KernelClass::kElementwise && s.bytes > 0) {
        BandwidthSample b;
        b.kernel = s.name;
        b.bytes = static_cast<int64_t>(std::llround(s.bytes * static_cast<double>(s.count)));
        b.seconds = static_cast<double>(s.total_ns) * kNs;
        if (b.bytes > 0) memory.push_back(b);
        c.memory_ops += s.count;
      } else if (s.kind == KernelClass::kCollective && s.group_size >= 2 && s.bytes > 0 &&
                 (s.name == "all_reduce" || s.name == "all_gather" || s.name == "reduce_scatter" ||
                  s.name == "send_recv")) {
        collectives[s.group_size].push_back(
            {s.name, static_cast<int64_t>(std::llround(s.bytes)), mean_s});
        collective_seconds[s.group_size] += static_cast<double>(s.total_ns) * kNs;
      }
    }
  }
  const std::string& first = profiles.front().path;
  if (with_dims == 0) {
    return Status::InvalidInput(fmt::format(
        "{}: no op records its input shapes, which the GEMM curve needs: profile with "
        "torch.profiler.profile(record_shapes=True); torch 1.x without Kineto never exports "
        "shapes in its event list (docs/PROFILES.md)",
        first));
  }
  if (c.gemm_samples.empty()) {
    return Status::InvalidInput(fmt::format(
        "{}: no GEMM (aten::mm, addmm, bmm, baddbmm, _scaled_mm) with input shapes{}: the GEMM "
        "curve has nothing to fit",
        first, c.device_times ? " and a kernel of its External id" : ""));
  }
  c.gemm = fit_gemm_efficiency(c.gemm_samples, base.peak_bf16_flops);
  GpuSpec& spec = c.calibrated;
  spec = base;
  spec.name = base.name + "-profiled";
  spec.gemm_efficiency = c.gemm.curve;
  if (c.attention) {
    c.attention->efficiency = fraction_as_written(attention_ideal / (attention_ns * kNs));
    std::vector<double> predicted, measured;
    for (const auto& [ideal, seconds] : attention_points) {
      predicted.push_back(ideal / c.attention->efficiency);
      measured.push_back(seconds);
    }
    c.attention->error = fit_error(predicted, measured);
    spec.attention_efficiency = c.attention->efficiency;
  } else {
    c.attention_kept =
        "no fused attention op (scaled_dot_product_*, flash_attn) with input shapes: an unfused "
        "attention's matmuls are GEMMs, its softmax elementwise";
  }
  if (!memory.empty()) {
    c.memory = fit_memory_efficiency(memory, base.hbm_bandwidth_bytes_per_s);
    spec.memory_efficiency = c.memory->efficiency;
  } else {
    c.memory_kept = "no elementwise op with input shapes";
  }
  fit_links(collectives, collective_seconds, &c);
  fit_framework_time(profiles, &c);
  if (c.launch_gaps >= kMinLaunchGaps) {
    std::sort(launch_medians.begin(), launch_medians.end());
    const double gap_s = static_cast<double>(launch_medians[launch_medians.size() / 2]) * kNs;
    spec.kernel_launch_s = as_written(gap_s * 1e6, "{:.4g}") * 1e-6;
  } else {
    c.launch_kept =
        fmt::format("{} gaps between kernels queued back to back on a stream (at least {} needed)",
                    c.launch_gaps, kMinLaunchGaps);
  }
  return c;
}

std::string profile_calibration_yaml(const ProfileCalibration& c) {
  const GpuSpec& s = c.calibrated;
  const GpuSpec& b = c.base;
  const std::string tag = fmt::format("[fitted {} from the profile {}]", c.date, profile_list(c));
  const std::string timed = c.device_times ? "each op's kernels (Kineto's External id)"
                                           : "each op's CPU time (a CPU profile)";
  const std::string datasheet = fmt::format("From the base file {} (datasheet).", b.name);
  auto kept = [&](const std::string& what) { return kept_note(b, what); };
  HardwareYamlNotes n;
  n.header = fmt::format(
      "{} fitted by `chunkflow calibrate --from-profile` from PyTorch profiler traces, timed by "
      "{}. Base file {} ({}): its datasheet values are kept; [fitted] values replace its "
      "assumptions; [assumption] values are its own. A fit's quality is the max / mean relative "
      "error of the times it predicts against the profile's.",
      s.name, timed, b.name, c.base_origin);
  n.peak = n.hbm = n.hbm_bandwidth = n.nvlink = n.ib = datasheet;
  if (c.links) {
    const std::string links = fmt::format(
        "{} {} collective sizes over {} GPUs (kernel times): α and β fitted to the cost "
        "model's ring formulas (T = steps·α + bus factor·S/β), least squares on relative error; "
        "fit {}.",
        tag, c.collective_samples.size(), c.collective_group, fit_text(c.links->error));
    n.nvlink_latency = fmt::format("{} Base file: {:.10g}.", links, b.nvlink_latency_s * 1e6);
    n.collective =
        fmt::format("{} β = {:.1f} GB/s bus bandwidth over nvlink_gb_per_s. Base file: {}.", tag,
                    c.links->beta_bytes_per_s / 1e9, b.collective_efficiency);
  } else {
    n.nvlink_latency = n.collective = kept(c.links_kept);
  }
  n.ib_latency = kept("a link between nodes");
  n.gemm = fmt::format(
      "{} {} GEMM ops in {} sizes: FLOPs / (peak · mean time), one point per size, made "
      "non-decreasing; fit {}. Base file: {} points.",
      tag, c.gemm_ops, c.gemm_samples.size(), fit_text(c.gemm.error), b.gemm_efficiency.size());
  n.attention = c.attention
                    ? fmt::format(
                          "{} {} attention ops: the cost model's FLOPs (4·head_dim per causal "
                          "pair) over peak, the backward at {}×, FLOP-weighted; fit {}. Base "
                          "file: {}.",
                          tag, c.attention->ops, kAttentionBackwardFactor,
                          fit_text(c.attention->error), b.attention_efficiency)
                    : kept(c.attention_kept);
  n.memory = c.memory ? fmt::format(
                            "{} {} elementwise ops: bytes (inputs read, one output the size of "
                            "the largest written) / (hbm_bandwidth_tb_per_s · time), "
                            "byte-weighted; fit {}. Base file: {}.",
                            tag, c.memory_ops, fit_text(c.memory->error), b.memory_efficiency)
                      : kept(c.memory_kept);
  n.reserved = kept("the runtime's and the framework's reserved memory");
  n.attention_block = kept("the fused attention's tile");
  n.kernel_launch =
      c.launch_kept.empty()
          ? fmt::format(
                "{} the median gap between kernels back to back on a stream (gaps under "
                "20 µs; {} gaps; the median of the ranks'). Base file: {:.10g}.",
                tag, c.launch_gaps, b.kernel_launch_s * 1e6)
          : kept(c.launch_kept);
  n.host_kernel = kept("the framework's host time per kernel");
  if (c.microbatch_kept.empty()) {
    n.microbatch = fmt::format(
        "{} the profiled steps' time in no priced class (framework ops, copies, gaps between "
        "ops) over the {} chunkflow-marked passes in them. Base file: {:.10g}.",
        tag, c.passes, b.microbatch_s * 1e6);
  } else {
    n.microbatch = kept(c.microbatch_kept);
  }
  n.host_runs_kernels = fmt::format(
      "{} a CPU-only profile: the CPU runs the ops it issues, so the framework's time adds to "
      "theirs.",
      tag);
  n.source = fmt::format("chunkflow calibrate --from-profile, {}, {}; datasheet values from {}",
                         c.date, profile_list(c), c.base_origin);
  return hardware_yaml(s, n);
}

std::string profile_calibration_summary(const ProfileCalibration& c) {
  const GpuSpec& s = c.calibrated;
  const GpuSpec& b = c.base;
  std::string out =
      fmt::format("calibrated {} from {} ({}), base {} ({})\n\n", s.name, profile_list(c),
                  c.device_times ? "kernel times" : "CPU op times", b.name, c.base_origin);
  out += fmt::format("  {:<22} {:>12} {:>12}  {}\n", "field", "fitted", "base", "fit (max / mean)");
  out += fmt::format("  {:<22} {:>12} {:>12}  {} ({} ops, {} sizes{})\n", "gemm_efficiency",
                     fmt::format("{} pts", s.gemm_efficiency.size()),
                     fmt::format("{} pts", b.gemm_efficiency.size()), fit_text(c.gemm.error),
                     c.gemm_ops, c.gemm_samples.size(),
                     c.gemm.above_peak ? fmt::format(", {} above peak", c.gemm.above_peak) : "");
  if (c.attention) {
    out += fmt::format("  {:<22} {:>12.4g} {:>12.4g}  {} ({} ops)\n", "attention_efficiency",
                       s.attention_efficiency, b.attention_efficiency, fit_text(c.attention->error),
                       c.attention->ops);
  } else {
    out += fmt::format("  {:<22} {:>12} {:>12.4g}  kept: {}\n", "attention_efficiency", "-",
                       b.attention_efficiency, c.attention_kept);
  }
  if (c.memory) {
    out += fmt::format("  {:<22} {:>12.4g} {:>12.4g}  {} ({} ops)\n", "memory_efficiency",
                       s.memory_efficiency, b.memory_efficiency, fit_text(c.memory->error),
                       c.memory_ops);
  } else {
    out += fmt::format("  {:<22} {:>12} {:>12.4g}  kept: {}\n", "memory_efficiency", "-",
                       b.memory_efficiency, c.memory_kept);
  }
  if (c.links) {
    out += fmt::format("  {:<22} {:>12.4g} {:>12.4g}  {} ({} sizes over {} GPUs)\n",
                       "collective_efficiency", s.collective_efficiency, b.collective_efficiency,
                       fit_text(c.links->error), c.collective_samples.size(), c.collective_group);
    out += fmt::format("  {:<22} {:>12.4g} {:>12.4g}\n", "nvlink_latency_us",
                       s.nvlink_latency_s * 1e6, b.nvlink_latency_s * 1e6);
  } else {
    out += fmt::format("  {:<22} {:>12} {:>12.4g}  kept: {}\n", "collective_efficiency", "-",
                       b.collective_efficiency, c.links_kept);
  }
  if (c.launch_kept.empty()) {
    out += fmt::format("  {:<22} {:>12.4g} {:>12.4g}  median of {} gaps\n", "kernel_launch_us",
                       s.kernel_launch_s * 1e6, b.kernel_launch_s * 1e6, c.launch_gaps);
  } else {
    out += fmt::format("  {:<22} {:>12} {:>12.4g}  kept: {}\n", "kernel_launch_us", "-",
                       b.kernel_launch_s * 1e6, c.launch_kept);
  }
  if (c.microbatch_kept.empty()) {
    out += fmt::format("  {:<22} {:>12.4g} {:>12.4g}  {:.4g} s in no priced class over {} passes\n",
                       "microbatch_us", s.microbatch_s * 1e6, b.microbatch_s * 1e6,
                       static_cast<double>(c.framework_ns) * 1e-9, c.passes);
  } else {
    out += fmt::format("  {:<22} {:>12} {:>12.4g}  kept: {}\n", "microbatch_us", "-",
                       b.microbatch_s * 1e6, c.microbatch_kept);
  }
  if (s.host_runs_kernels) {
    out += fmt::format("  {:<22} {:>12} {:>12}  a CPU-only profile: the framework's time adds\n",
                       "host_runs_kernels", "true", b.host_runs_kernels ? "true" : "false");
  }
  if (c.steps_ns > 0) {
    out += fmt::format("\n  the fitted ops take {:.1f}% of the profiled steps' {:.4g} s{}\n",
                       100.0 * static_cast<double>(c.fitted_ns) / static_cast<double>(c.steps_ns),
                       static_cast<double>(c.steps_ns) * 1e-9,
                       c.device_times ? " (device time)"
                       : c.microbatch_kept.empty()
                           ? "; microbatch_us holds the time in no priced class; ops of a priced "
                             "class without shapes are in no curve"
                           : "; the rest (framework time between ops, ops without shapes) is in "
                             "no curve");
  }
  if (c.dropped_ops > 0) {
    out += fmt::format("  {} ops with shapes past the reader's bounds were not fitted\n",
                       c.dropped_ops);
  }
  out += "\n  GEMM curve (GFLOP, efficiency, GFLOP/s):\n";
  for (const auto& [flops, efficiency] : s.gemm_efficiency) {
    out += fmt::format("    {:>12.6g} {:>9.4g} {:>10.2f}\n", flops / 1e9, efficiency,
                       efficiency * s.peak_bf16_flops / 1e9);
  }
  return out;
}

}  // namespace cf
