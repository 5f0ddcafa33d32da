// The calibration table: interpolation, and its JSON form (nlohmann), read strictly. Inside
// the reader a bad value throws TableError, caught once at the top and returned as a Status.
#include "sim/calibration_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/check.h"

namespace cf {

using nlohmann::json;

namespace {

// Index i of the grid segment [x[i], x[i+1]] used for x (the nearest one outside the grid)
// and the extrapolation factor.
std::pair<size_t, double> segment_of(const std::vector<double>& grid, double x, bool ratio) {
  CF_CHECK_GE(grid.size(), 2u);
  const double lo = grid.front(), hi = grid.back();
  double factor = 1;
  if (x > hi) factor = ratio ? x / hi : (x - lo) / (hi - lo);
  if (x < lo) factor = ratio ? lo / x : 1 + (lo - x) / (hi - lo);
  const size_t i =
      static_cast<size_t>(std::upper_bound(grid.begin(), grid.end(), x) - grid.begin());
  return {std::clamp<size_t>(i, 1, grid.size() - 1) - 1, factor};
}

double log_log(double x0, double y0, double x1, double y1, double x) {
  const double slope = std::log(y1 / y0) / std::log(x1 / x0);
  return y0 * std::exp(slope * std::log(x / x0));
}

}  // namespace

Lookup interpolate(const Curve& curve, double x) {
  if (x <= 0) return {0, 1};
  if (curve.x.size() == 1)
    return {curve.ns[0] * x / curve.x[0], std::max(x / curve.x[0], curve.x[0] / x)};
  const auto [i, factor] = segment_of(curve.x, x, /*ratio=*/true);
  return {log_log(curve.x[i], curve.ns[i], curve.x[i + 1], curve.ns[i + 1], x), factor};
}

Lookup interpolate(const AttentionGrid& grid, double q, double p) {
  if (q <= 0) return {0, 1};
  // Linear in p on each q row (the prefix's extrapolation factor is p / p_max).
  const auto [j, p_factor] = segment_of(grid.kv_prefix, p, /*ratio=*/false);
  const double p0 = grid.kv_prefix[j], p1 = grid.kv_prefix[j + 1];
  auto at_row = [&](size_t i) {
    const double y0 = grid.ns[i][j], y1 = grid.ns[i][j + 1];
    return std::max(y0 + (y1 - y0) * (p - p0) / (p1 - p0), 1e-3);
  };
  const auto [i, q_factor] = segment_of(grid.q_tokens, q, /*ratio=*/true);
  const double ns = log_log(grid.q_tokens[i], at_row(i), grid.q_tokens[i + 1], at_row(i + 1), q);
  return {ns, std::max(p_factor, q_factor)};
}

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

ModelShape ModelShape::of(const ModelConfig& model) {
  return ModelShape{model.hidden,   model.ffn_hidden, model.heads,   model.kv_heads,
                    model.head_dim, model.vocab,      model.qkv_bias};
}

std::string to_string(const ModelShape& s) {
  return fmt::format("h {} f {} heads {}/{} d {} vocab {}{}", s.hidden, s.ffn_hidden, s.heads,
                     s.kv_heads, s.head_dim, s.vocab, s.qkv_bias ? " qkv_bias" : "");
}

const ModelCalibration* CalibrationTable::find(const ModelShape& shape) const {
  for (const ModelCalibration& m : models) {
    if (m.shape == shape) return &m;
  }
  return nullptr;
}

// ---- writing ----

namespace {

json curve_json(const Curve& c) { return {{"x", c.x}, {"ns", c.ns}, {"cpu_ns", c.cpu_ns}}; }

json grid_json(const AttentionGrid& g) {
  return {{"q_tokens", g.q_tokens}, {"kv_prefix", g.kv_prefix}, {"ns", g.ns}};
}

json model_json(const ModelCalibration& m) {
  json gemm = json::array(), elementwise = json::array();
  for (const GemmCurves& g : m.gemm) {
    gemm.push_back({{"name", g.name},
                    {"in_features", g.in_features},
                    {"out_features", g.out_features},
                    {"forward", curve_json(g.forward)},
                    {"backward", curve_json(g.backward)}});
  }
  for (const NamedCurve& e : m.elementwise) {
    elementwise.push_back({{"name", e.name}, {"curve", curve_json(e.curve)}});
  }
  const ModelShape& s = m.shape;
  return {{"name", m.name},
          {"shape",
           {{"hidden", s.hidden},
            {"ffn_hidden", s.ffn_hidden},
            {"heads", s.heads},
            {"kv_heads", s.kv_heads},
            {"head_dim", s.head_dim},
            {"vocab", s.vocab},
            {"qkv_bias", s.qkv_bias}}},
          {"layer_forward", curve_json(m.layer_forward)},
          {"layer_backward", curve_json(m.layer_backward)},
          {"embedding_forward", curve_json(m.embedding_forward)},
          {"embedding_backward", curve_json(m.embedding_backward)},
          {"head_forward", curve_json(m.head_forward)},
          {"head_backward", curve_json(m.head_backward)},
          {"attention_forward", grid_json(m.attention_forward)},
          {"attention_backward", grid_json(m.attention_backward)},
          {"gemm", gemm},
          {"elementwise", elementwise}};
}

}  // namespace

std::string calibration_to_json(const CalibrationTable& t) {
  json models = json::array();
  for (const ModelCalibration& m : t.models) models.push_back(model_json(m));
  const MachineInfo& mi = t.machine;
  json out = {{"format", kCalibrationFormat},
              {"version", t.version},
              {"machine",
               {{"backend", mi.backend},
                {"cpu_model", mi.cpu_model},
                {"cores", mi.cores},
                {"date", mi.date},
                {"chunkflow_version", mi.chunkflow_version},
                {"load_average", mi.load_average},
                {"speed_probe",
                 {{"tokens", mi.speed_probe.tokens},
                  {"reference_ns", mi.speed_probe.reference_ns},
                  {"mean_ns", mi.speed_probe.mean_ns},
                  {"min_ns", mi.speed_probe.min_ns},
                  {"max_ns", mi.speed_probe.max_ns},
                  {"samples", mi.speed_probe.samples},
                  {"step_load", mi.speed_probe.step_load}}}}},
              {"method",
               {{"warmup", t.method.warmup},
                {"repetitions", t.method.repetitions},
                {"statistic", t.method.statistic}}},
              {"concurrency_slowdown", t.concurrency_slowdown},
              {"transport",
               {{"send", curve_json(t.send)},
                {"p2p", curve_json(t.p2p)},
                {"allreduce", curve_json(t.allreduce)}}},
              {"optimizer", curve_json(t.optimizer)},
              {"models", models}};
  return out.dump(1) + "\n";
}

// ---- strict reading ----

namespace {

struct TableError {
  std::string key;
  std::string message;
};

// Finite numbers, `min_size` or more; strictly increasing when asked; all > 0 or ≥ 0.
std::vector<double> numbers_of(const json& v, const std::string& path, size_t min_size,
                               bool increasing, bool allow_zero) {
  if (!v.is_array() || v.size() < min_size) {
    throw TableError{path, fmt::format("expected an array of at least {} numbers", min_size)};
  }
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = fmt::format("{}[{}]", path, i);
    if (!v[i].is_number()) throw TableError{where, "expected a number"};
    const double x = v[i].get<double>();
    if (!std::isfinite(x) || x < 0 || (x == 0 && !allow_zero)) {
      throw TableError{where, fmt::format("{} is not a {} number", x,
                                          allow_zero ? "finite non-negative" : "positive")};
    }
    if (increasing && !out.empty() && !(x > out.back())) {
      throw TableError{where, "the grid must be strictly increasing"};
    }
    out.push_back(x);
  }
  return out;
}

// A JSON object being read: every key must be consumed exactly once (done() rejects the rest).
class ObjectIn {
 public:
  ObjectIn(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j.is_object()) throw TableError{path_, "expected an object"};
  }
  const json& at(const std::string& key) {
    if (!j_.contains(key)) throw TableError{join(key), "missing"};
    used_.insert(key);
    return j_.at(key);
  }
  std::string join(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  void done() const {
    for (const auto& [key, value] : j_.items()) {
      if (!used_.count(key)) throw TableError{join(key), "unknown key"};
    }
  }
  double number(const std::string& key) {
    const json& v = at(key);
    if (!v.is_number()) throw TableError{join(key), "expected a number"};
    return v.get<double>();
  }
  int64_t integer(const std::string& key, int64_t min) {
    const json& v = at(key);
    if (!v.is_number_integer()) throw TableError{join(key), "expected an integer"};
    if (v.get<int64_t>() < min) throw TableError{join(key), fmt::format("must be ≥ {}", min)};
    return v.get<int64_t>();
  }
  std::string text(const std::string& key) {
    const json& v = at(key);
    if (!v.is_string()) throw TableError{join(key), "expected a string"};
    return v.get<std::string>();
  }
  bool boolean(const std::string& key) {
    const json& v = at(key);
    if (!v.is_boolean()) throw TableError{join(key), "expected true or false"};
    return v.get<bool>();
  }
  std::vector<double> numbers(const std::string& key, size_t min_size, bool increasing,
                              bool allow_zero) {
    return numbers_of(at(key), join(key), min_size, increasing, allow_zero);
  }
  ObjectIn object(const std::string& key) { return ObjectIn(at(key), join(key)); }

 private:
  const json& j_;
  std::string path_;
  std::set<std::string> used_;
};

Curve read_curve(ObjectIn in) {
  Curve c;
  c.x = in.numbers("x", 1, true, false);
  c.ns = in.numbers("ns", 1, false, false);
  c.cpu_ns = in.numbers("cpu_ns", 1, false, true);
  if (c.ns.size() != c.x.size() || c.cpu_ns.size() != c.x.size()) {
    throw TableError{in.join("ns"), "x, ns and cpu_ns must have the same length"};
  }
  in.done();
  return c;
}

AttentionGrid read_grid(ObjectIn in) {
  AttentionGrid g;
  g.q_tokens = in.numbers("q_tokens", 2, true, false);
  g.kv_prefix = in.numbers("kv_prefix", 2, true, true);
  const json& rows = in.at("ns");
  if (!rows.is_array() || rows.size() != g.q_tokens.size()) {
    throw TableError{in.join("ns"), "expected one row per q_tokens entry"};
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<double> row =
        numbers_of(rows[i], in.join(fmt::format("ns[{}]", i)), g.kv_prefix.size(), false, false);
    if (row.size() != g.kv_prefix.size()) {
      throw TableError{in.join(fmt::format("ns[{}]", i)), "expected one value per kv_prefix"};
    }
    g.ns.push_back(std::move(row));
  }
  in.done();
  return g;
}

ModelCalibration read_model(ObjectIn in) {
  ModelCalibration m;
  m.name = in.text("name");
  ObjectIn s = in.object("shape");
  m.shape.hidden = s.integer("hidden", 1);
  m.shape.ffn_hidden = s.integer("ffn_hidden", 1);
  m.shape.heads = s.integer("heads", 1);
  m.shape.kv_heads = s.integer("kv_heads", 1);
  m.shape.head_dim = s.integer("head_dim", 1);
  m.shape.vocab = s.integer("vocab", 1);
  m.shape.qkv_bias = s.boolean("qkv_bias");
  s.done();
  m.layer_forward = read_curve(in.object("layer_forward"));
  m.layer_backward = read_curve(in.object("layer_backward"));
  m.embedding_forward = read_curve(in.object("embedding_forward"));
  m.embedding_backward = read_curve(in.object("embedding_backward"));
  m.head_forward = read_curve(in.object("head_forward"));
  m.head_backward = read_curve(in.object("head_backward"));
  m.attention_forward = read_grid(in.object("attention_forward"));
  m.attention_backward = read_grid(in.object("attention_backward"));
  const json& gemm = in.at("gemm");
  if (!gemm.is_array()) throw TableError{in.join("gemm"), "expected an array"};
  for (size_t i = 0; i < gemm.size(); ++i) {
    ObjectIn g(gemm[i], in.join(fmt::format("gemm[{}]", i)));
    GemmCurves curves;
    curves.name = g.text("name");
    curves.in_features = g.integer("in_features", 1);
    curves.out_features = g.integer("out_features", 1);
    curves.forward = read_curve(g.object("forward"));
    curves.backward = read_curve(g.object("backward"));
    g.done();
    m.gemm.push_back(std::move(curves));
  }
  const json& elementwise = in.at("elementwise");
  if (!elementwise.is_array()) throw TableError{in.join("elementwise"), "expected an array"};
  for (size_t i = 0; i < elementwise.size(); ++i) {
    ObjectIn e(elementwise[i], in.join(fmt::format("elementwise[{}]", i)));
    NamedCurve curve;
    curve.name = e.text("name");
    curve.curve = read_curve(e.object("curve"));
    e.done();
    m.elementwise.push_back(std::move(curve));
  }
  in.done();
  return m;
}

CalibrationTable read_table(const json& j) {
  ObjectIn in(j, "");
  CalibrationTable t;
  if (in.text("format") != kCalibrationFormat) {
    throw TableError{"format", fmt::format("expected \"{}\"", kCalibrationFormat)};
  }
  t.version = static_cast<int>(in.integer("version", 1));
  if (t.version != kCalibrationVersion) {
    throw TableError{"version", fmt::format("{} is not supported (this build reads version {})",
                                            t.version, kCalibrationVersion)};
  }
  ObjectIn mi = in.object("machine");
  t.machine.backend = mi.text("backend");
  t.machine.cpu_model = mi.text("cpu_model");
  t.machine.cores = static_cast<int>(mi.integer("cores", 1));
  t.machine.date = mi.text("date");
  t.machine.chunkflow_version = mi.text("chunkflow_version");
  t.machine.load_average = mi.number("load_average");
  ObjectIn probe = mi.object("speed_probe");
  SpeedProbe& sp = t.machine.speed_probe;
  sp.tokens = probe.integer("tokens", 1);
  sp.samples = static_cast<int>(probe.integer("samples", 1));
  sp.reference_ns = probe.number("reference_ns");
  sp.mean_ns = probe.number("mean_ns");
  sp.min_ns = probe.number("min_ns");
  sp.max_ns = probe.number("max_ns");
  sp.step_load = probe.number("step_load");
  probe.done();
  if (!(sp.min_ns > 0 && sp.min_ns <= sp.reference_ns && sp.reference_ns <= sp.max_ns &&
        sp.min_ns <= sp.mean_ns && sp.mean_ns <= sp.max_ns && std::isfinite(sp.max_ns))) {
    throw TableError{"machine.speed_probe",
                     "expected 0 < min_ns ≤ reference_ns, mean_ns ≤ max_ns, all finite"};
  }
  if (!(sp.step_load > 0 && std::isfinite(sp.step_load))) {
    throw TableError{"machine.speed_probe.step_load",
                     fmt::format("{} is not a positive finite number", sp.step_load)};
  }
  mi.done();
  ObjectIn method = in.object("method");
  t.method.warmup = static_cast<int>(method.integer("warmup", 0));
  t.method.repetitions = static_cast<int>(method.integer("repetitions", 1));
  t.method.statistic = method.text("statistic");
  method.done();
  t.concurrency_slowdown = in.numbers("concurrency_slowdown", 1, false, false);
  ObjectIn transport = in.object("transport");
  t.send = read_curve(transport.object("send"));
  t.p2p = read_curve(transport.object("p2p"));
  t.allreduce = read_curve(transport.object("allreduce"));
  transport.done();
  t.optimizer = read_curve(in.object("optimizer"));
  const json& models = in.at("models");
  if (!models.is_array() || models.empty()) {
    throw TableError{"models", "expected a non-empty array"};
  }
  for (size_t i = 0; i < models.size(); ++i) {
    t.models.push_back(read_model(ObjectIn(models[i], fmt::format("models[{}]", i))));
  }
  in.done();
  return t;
}

}  // namespace

StatusOr<CalibrationTable> calibration_from_json(const std::string& text,
                                                 const std::string& origin) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::InvalidInput(
        fmt::format("{}: not valid JSON (a calibration table from "
                    "`chunkflow calibrate` was expected)",
                    origin));
  }
  try {
    return read_table(j);
  } catch (const TableError& e) {
    return Status::InvalidInput(fmt::format("{}: {}: {}", origin, e.key, e.message));
  }
}

StatusOr<CalibrationTable> load_calibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidInput(fmt::format("{}: cannot open the calibration table", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return calibration_from_json(text.str(), path);
}

}  // namespace cf
