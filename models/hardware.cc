// Reading a GPU YAML (models/hardware/*.yaml) into a GpuSpec, converting units once, and the
// GEMM efficiency curve lookup. Not the cost model that uses these numbers (sim/).
#include "models/hardware.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/resources.h"
#include "core/yaml_reader.h"

namespace cf {
namespace {

constexpr double kTera = 1e12;
constexpr double kGiga = 1e9;
constexpr double kMicro = 1e-6;
constexpr int64_t kMebi = int64_t{1} << 20;

Status read_positive(YamlMap& map, const std::string& key, double* out) {
  CF_RETURN_IF_ERROR(map.require(key, out));
  return map.check_positive(key, *out);
}

Status read_fraction(YamlMap& map, const std::string& key, double* out) {
  CF_RETURN_IF_ERROR(map.require(key, out));
  if (!(*out > 0 && *out <= 1)) {
    return map.error(key, fmt::format("must be a fraction in (0, 1], got {}", *out));
  }
  return Status::Ok();
}

// gemm_efficiency: a list of {gflops: G, efficiency: E}, G the FLOPs of one GEMM (2·m·n·k) in
// units of 1e9, strictly increasing; E the achieved fraction of peak at that size.
Status read_gemm_curve(YamlMap& map, std::vector<std::pair<double, double>>* out) {
  if (!map.has("gemm_efficiency")) return map.missing("gemm_efficiency");
  const YAML::Node list = map.raw("gemm_efficiency");
  const std::string path = map.key_path("gemm_efficiency");
  if (!list.IsSequence() || list.size() == 0) {
    return yaml_error(map.file(), list, path, "expected a non-empty list of {gflops, efficiency}");
  }
  out->clear();
  for (std::size_t i = 0; i < list.size(); ++i) {
    CF_ASSIGN_OR_RETURN(YamlMap point,
                        YamlMap::open(list[i], map.file(), fmt::format("{}[{}]", path, i)));
    double gflops = 0, efficiency = 0;
    CF_RETURN_IF_ERROR(read_positive(point, "gflops", &gflops));
    CF_RETURN_IF_ERROR(read_fraction(point, "efficiency", &efficiency));
    CF_RETURN_IF_ERROR(point.finish());
    const double flops = gflops * kGiga;
    if (!out->empty() && flops <= out->back().first) {
      return point.error("gflops", "points must be in strictly increasing gflops");
    }
    out->emplace_back(flops, efficiency);
  }
  return Status::Ok();
}

}  // namespace

// Efficiency is linear in log(flops) between points and constant beyond the first and last.
// An empty curve (a GpuSpec built in code without one) means every GEMM runs at peak.
double GpuSpec::gemm_efficiency_at(double flops) const {
  if (gemm_efficiency.empty()) return 1.0;
  if (flops <= gemm_efficiency.front().first) return gemm_efficiency.front().second;
  if (flops >= gemm_efficiency.back().first) return gemm_efficiency.back().second;
  // First point with x > flops; the segment is [it-1, it].
  auto it =
      std::upper_bound(gemm_efficiency.begin(), gemm_efficiency.end(), flops,
                       [](double x, const std::pair<double, double>& p) { return x < p.first; });
  const auto& [x0, y0] = *(it - 1);
  const auto& [x1, y1] = *it;
  const double t = (std::log(flops) - std::log(x0)) / (std::log(x1) - std::log(x0));
  return y0 + t * (y1 - y0);
}

// Keys and their units (converted here, once):
//   name; peak_bf16_tflops (dense, 1e12 FLOP/s); hbm_mib (capacity as nvidia-smi reports
//   memory.total, MiB); hbm_bandwidth_tb_per_s (1e12 B/s); nvlink_gb_per_s and ib_gb_per_s
//   (1e9 B/s, per direction, per GPU); nvlink_latency_us, ib_latency_us (µs);
//   gemm_efficiency (list); attention_efficiency, memory_efficiency, collective_efficiency
//   (fractions); reserved_mib (MiB); optional overheads kernel_launch_us, host_kernel_us,
//   microbatch_us (µs), host_runs_kernels (bool) and attention_block (tokens); optional host link
//   host_link_gb_per_s (1e9 B/s per direction), gpus_per_host_link, host_link_efficiency (fraction)
//   and host_memory_gib (per node, GiB); source, notes (optional text).
StatusOr<GpuSpec> parse_gpu_yaml(const std::string& text, const std::string& origin) {
  CF_ASSIGN_OR_RETURN(YamlDocument doc, parse_yaml_text(text, origin));
  CF_ASSIGN_OR_RETURN(YamlMap map, YamlMap::open(doc.root, doc.file, ""));
  GpuSpec gpu;
  CF_RETURN_IF_ERROR(map.require("name", &gpu.name));
  if (gpu.name.empty()) return map.error("name", "must not be empty");
  double peak_tflops = 0, hbm_tb_per_s = 0, nvlink_gb_per_s = 0, nvlink_latency_us = 0;
  double ib_gb_per_s = 0, ib_latency_us = 0;
  int64_t hbm_mib = 0, reserved_mib = 0;
  CF_RETURN_IF_ERROR(read_positive(map, "peak_bf16_tflops", &peak_tflops));
  CF_RETURN_IF_ERROR(map.require("hbm_mib", &hbm_mib));
  CF_RETURN_IF_ERROR(map.check_positive("hbm_mib", static_cast<double>(hbm_mib)));
  CF_RETURN_IF_ERROR(read_positive(map, "hbm_bandwidth_tb_per_s", &hbm_tb_per_s));
  CF_RETURN_IF_ERROR(read_positive(map, "nvlink_gb_per_s", &nvlink_gb_per_s));
  CF_RETURN_IF_ERROR(read_positive(map, "nvlink_latency_us", &nvlink_latency_us));
  CF_RETURN_IF_ERROR(read_positive(map, "ib_gb_per_s", &ib_gb_per_s));
  CF_RETURN_IF_ERROR(read_positive(map, "ib_latency_us", &ib_latency_us));
  CF_RETURN_IF_ERROR(read_gemm_curve(map, &gpu.gemm_efficiency));
  CF_RETURN_IF_ERROR(read_fraction(map, "attention_efficiency", &gpu.attention_efficiency));
  CF_RETURN_IF_ERROR(read_fraction(map, "memory_efficiency", &gpu.memory_efficiency));
  CF_RETURN_IF_ERROR(read_fraction(map, "collective_efficiency", &gpu.collective_efficiency));
  CF_RETURN_IF_ERROR(map.require("reserved_mib", &reserved_mib));
  if (reserved_mib < 0 || reserved_mib >= hbm_mib) {
    return map.error("reserved_mib",
                     fmt::format("must be in [0, hbm_mib = {}), got {}", hbm_mib, reserved_mib));
  }
  double kernel_launch_us = 0, host_kernel_us = 0, microbatch_us = 0;
  for (auto [key, out] :
       {std::pair{"kernel_launch_us", &kernel_launch_us},
        std::pair{"host_kernel_us", &host_kernel_us}, std::pair{"microbatch_us", &microbatch_us}}) {
    CF_RETURN_IF_ERROR(map.get(key, out));
    CF_RETURN_IF_ERROR(map.check_range(key, *out, 0, 1e6));
  }
  CF_RETURN_IF_ERROR(map.get("host_runs_kernels", &gpu.host_runs_kernels));
  CF_RETURN_IF_ERROR(map.get("attention_block", &gpu.attention_block));
  CF_RETURN_IF_ERROR(
      map.check_range("attention_block", static_cast<double>(gpu.attention_block), 1, 4096));
  double host_link_gb_per_s = 0, host_memory_gib = 0;
  CF_RETURN_IF_ERROR(map.get("host_link_gb_per_s", &host_link_gb_per_s));
  CF_RETURN_IF_ERROR(map.check_range("host_link_gb_per_s", host_link_gb_per_s, 0, 1e5));
  CF_RETURN_IF_ERROR(map.get("gpus_per_host_link", &gpu.gpus_per_host_link));
  CF_RETURN_IF_ERROR(
      map.check_range("gpus_per_host_link", static_cast<double>(gpu.gpus_per_host_link), 1, 64));
  if (map.has("host_link_efficiency")) {
    CF_RETURN_IF_ERROR(read_fraction(map, "host_link_efficiency", &gpu.host_link_efficiency));
  }
  CF_RETURN_IF_ERROR(map.get("host_memory_gib", &host_memory_gib));
  CF_RETURN_IF_ERROR(map.check_range("host_memory_gib", host_memory_gib, 0, 1 << 24));
  std::string source, notes;
  CF_RETURN_IF_ERROR(map.get("source", &source));
  CF_RETURN_IF_ERROR(map.get("notes", &notes));
  CF_RETURN_IF_ERROR(map.finish());

  gpu.peak_bf16_flops = peak_tflops * kTera;
  gpu.hbm_bytes = hbm_mib * kMebi;
  gpu.hbm_bandwidth_bytes_per_s = hbm_tb_per_s * kTera;
  gpu.nvlink_bandwidth_bytes_per_s = nvlink_gb_per_s * kGiga;
  gpu.nvlink_latency_s = nvlink_latency_us * kMicro;
  gpu.ib_bandwidth_bytes_per_s = ib_gb_per_s * kGiga;
  gpu.ib_latency_s = ib_latency_us * kMicro;
  gpu.reserved_bytes = reserved_mib * kMebi;
  gpu.kernel_launch_s = kernel_launch_us * kMicro;
  gpu.host_kernel_s = host_kernel_us * kMicro;
  gpu.microbatch_s = microbatch_us * kMicro;
  gpu.host_link_bandwidth_bytes_per_s = host_link_gb_per_s * kGiga;
  gpu.host_memory_bytes = static_cast<int64_t>(host_memory_gib * 1024.0) * kMebi;
  return gpu;
}

StatusOr<GpuSpec> load_gpu(const std::string& name_or_path) {
  CF_ASSIGN_OR_RETURN(Resource resource,
                      load_named_resource(name_or_path, "models/hardware", "GPU"));
  return parse_gpu_yaml(resource.text, resource.origin);
}

}  // namespace cf
