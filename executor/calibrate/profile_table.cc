// The measurements as a calibration table (profile_table.h): the pool-adjacent-violators fit,
// the conversion of series and grids, and the table's header.
#include "executor/calibrate/profile_table.h"

#include <algorithm>
#include <ctime>
#include <utility>

#include "core/check.h"

#ifndef CHUNKFLOW_VERSION
#error "CHUNKFLOW_VERSION is CMake's PROJECT_VERSION (executor/calibrate/CMakeLists.txt)"
#endif

namespace cf {

std::vector<double> non_decreasing(const std::vector<double>& values) {
  // Blocks of (mean, count); a new value merges backwards while it breaks the order.
  std::vector<std::pair<double, int>> blocks;
  for (double v : values) {
    blocks.emplace_back(v, 1);
    while (blocks.size() > 1 && blocks[blocks.size() - 2].first > blocks.back().first) {
      const auto [mean, count] = blocks.back();
      blocks.pop_back();
      auto& prev = blocks.back();
      prev.first = (prev.first * prev.second + mean * count) / (prev.second + count);
      prev.second += count;
    }
  }
  std::vector<double> out;
  for (const auto& [mean, count] : blocks) out.insert(out.end(), static_cast<size_t>(count), mean);
  return out;
}

void make_non_decreasing(Curve* curve) {
  curve->ns = non_decreasing(curve->ns);
  curve->cpu_ns = non_decreasing(curve->cpu_ns);
}

void make_non_decreasing(AttentionGrid* grid) {
  for (size_t j = 0; j < grid->kv_prefix.size(); ++j) {
    std::vector<double> column;
    for (const auto& row : grid->ns) column.push_back(row[j]);
    column = non_decreasing(column);
    for (size_t i = 0; i < column.size(); ++i) grid->ns[i][j] = column[i];
  }
  for (auto& row : grid->ns) row = non_decreasing(row);
}

Curve to_curve(const Series& series) {
  Curve c;
  for (const Sample& s : series) {
    c.x.push_back(s.x);
    c.ns.push_back(std::max(s.wall_ns, 1.0));
    c.cpu_ns.push_back(std::max(s.cpu_ns, 0.0));
  }
  make_non_decreasing(&c);
  return c;
}

AttentionGrid to_grid(const ModelProfile& p, const std::vector<std::vector<Sample>>& rows) {
  AttentionGrid g{p.attention_q, p.attention_prefix, {}};
  for (const auto& row : rows) {
    g.ns.emplace_back();
    for (const Sample& s : row) g.ns.back().push_back(std::max(s.wall_ns, 1.0));
  }
  make_non_decreasing(&g);
  return g;
}

std::string utc_date() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

const char* chunkflow_version() { return CHUNKFLOW_VERSION; }

namespace {

ModelCalibration model_calibration(const ModelProfile& m) {
  ModelCalibration c;
  c.name = m.name;
  c.shape = ModelShape::of(m.model);
  c.layer_forward = to_curve(m.layer_forward);
  c.layer_backward = to_curve(m.layer_backward);
  c.embedding_forward = to_curve(m.embedding_forward);
  c.embedding_backward = to_curve(m.embedding_backward);
  c.head_forward = to_curve(m.head_forward);
  c.head_backward = to_curve(m.head_backward);
  c.attention_forward = to_grid(m, m.attention_forward);
  c.attention_backward = to_grid(m, m.attention_backward);
  for (const GemmProfile& g : m.gemm) {
    c.gemm.push_back(GemmCurves{g.name, g.in_features, g.out_features, to_curve(g.forward),
                                to_curve(g.backward)});
  }
  for (const NamedSeries& e : m.elementwise) c.elementwise.push_back({e.name, to_curve(e.series)});
  return c;
}

}  // namespace

CalibrationTable to_table(const MachineProfile& p, const ProfileOptions& o) {
  CalibrationTable t;
  t.machine =
      MachineInfo{"cpu", p.cpu_model, p.cores, utc_date(), chunkflow_version(), p.load_average, {}};
  CF_CHECK(!p.speed_probe.empty());
  SpeedProbe& probe = t.machine.speed_probe;
  probe.samples = static_cast<int>(p.speed_probe.size());
  probe.min_ns = p.speed_probe_min_ns;
  probe.max_ns = p.speed_probe_max_ns;
  probe.mean_ns = p.speed_probe_mean_ns;
  probe.tokens = p.speed_probe_tokens;
  probe.reference_ns = p.speed_reference_ns;
  t.method = MeasurementMethod{o.warmup, o.repetitions, "fastest"};
  t.send = to_curve(p.send);
  t.p2p = to_curve(p.p2p);
  t.allreduce = to_curve(p.allreduce);
  t.optimizer = to_curve(p.optimizer);
  for (const ModelProfile& m : p.models) t.models.push_back(model_calibration(m));
  return t;
}

}  // namespace cf
