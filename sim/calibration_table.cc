// The calibration table: interpolation, and its JSON form (nlohmann), read strictly through
// core/json_reader.h: every bad value is a Status naming the file and the key path.
#include "sim/calibration_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/json_reader.h"
#include "core/resources.h"

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
  // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
  const std::pair<size_t, double> p_segment = segment_of(grid.kv_prefix, p, /*ratio=*/false);
  const size_t j = p_segment.first;
  const double p_factor = p_segment.second;
  const double p0 = grid.kv_prefix[j], p1 = grid.kv_prefix[j + 1];
  auto at_row = [&](size_t i) {
    const double y0 = grid.ns[i][j], y1 = grid.ns[i][j + 1];
    return std::max(y0 + (y1 - y0) * (p - p0) / (p1 - p0), 1e-3);
  };
  const auto [i, q_factor] = segment_of(grid.q_tokens, q, /*ratio=*/true);
  const double ns = log_log(grid.q_tokens[i], at_row(i), grid.q_tokens[i + 1], at_row(i + 1), q);
  return {ns, std::max(p_factor, q_factor)};
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

// What an array of costs or sizes must hold: `min_size` or more finite numbers, strictly
// increasing when `increasing`, all > 0 (≥ 0 when `allow_zero`).
struct NumberRule {
  size_t min_size = 1;
  bool increasing = false;
  bool allow_zero = false;
};
constexpr NumberRule kGrid{1, true, false};
constexpr NumberRule kCosts{1, false, false};
constexpr NumberRule kCpuCosts{1, false, true};

// `value`, found at `key` of `in`, read as numbers under `rule`.
Status numbers_of(const json& value, const JsonReader& in, const std::string& key,
                  const NumberRule& rule, std::vector<double>* out) {
  if (!value.is_array() || value.size() < rule.min_size) {
    return in.error(key, fmt::format("expected an array of at least {} numbers", rule.min_size));
  }
  out->clear();
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string where = fmt::format("{}[{}]", key, i);
    if (!value[i].is_number()) return in.error(where, "expected a number");
    const double x = value[i].get<double>();
    if (!std::isfinite(x) || x < 0 || (x == 0 && !rule.allow_zero)) {
      return in.error(where, fmt::format("{} is not a {} number", x,
                                         rule.allow_zero ? "finite non-negative" : "positive"));
    }
    if (rule.increasing && !out->empty() && !(x > out->back())) {
      return in.error(where, "the grid must be strictly increasing");
    }
    out->push_back(x);
  }
  return Status::Ok();
}

Status numbers(JsonReader& in, const std::string& key, const NumberRule& rule,
               std::vector<double>* out) {
  CF_ASSIGN_OR_RETURN(const json* value, in.find(key));
  return numbers_of(*value, in, key, rule, out);
}

// A required integer of at least `min`.
template <typename Int>
Status integer(JsonReader& in, const std::string& key, Int min, Int* out) {
  CF_RETURN_IF_ERROR(in.get(key, out));
  if (*out < min) return in.error(key, fmt::format("must be ≥ {}", min));
  return Status::Ok();
}

Status read_curve(JsonReader& parent, const std::string& key, Curve* c) {
  CF_ASSIGN_OR_RETURN(JsonReader in, parent.child(key));
  CF_RETURN_IF_ERROR(numbers(in, "x", kGrid, &c->x));
  CF_RETURN_IF_ERROR(numbers(in, "ns", kCosts, &c->ns));
  CF_RETURN_IF_ERROR(numbers(in, "cpu_ns", kCpuCosts, &c->cpu_ns));
  if (c->ns.size() != c->x.size() || c->cpu_ns.size() != c->x.size()) {
    return in.error("ns", "x, ns and cpu_ns must have the same length");
  }
  return in.finish();
}

Status read_grid(JsonReader& parent, const std::string& key, AttentionGrid* g) {
  CF_ASSIGN_OR_RETURN(JsonReader in, parent.child(key));
  CF_RETURN_IF_ERROR(numbers(in, "q_tokens", NumberRule{2, true, false}, &g->q_tokens));
  CF_RETURN_IF_ERROR(numbers(in, "kv_prefix", NumberRule{2, true, true}, &g->kv_prefix));
  CF_ASSIGN_OR_RETURN(const json* rows, in.find("ns"));
  if (!rows->is_array() || rows->size() != g->q_tokens.size()) {
    return in.error("ns", "expected one row per q_tokens entry");
  }
  const NumberRule row_rule{g->kv_prefix.size(), false, false};
  for (size_t i = 0; i < rows->size(); ++i) {
    const std::string where = fmt::format("ns[{}]", i);
    std::vector<double> row;
    CF_RETURN_IF_ERROR(numbers_of((*rows)[i], in, where, row_rule, &row));
    if (row.size() != g->kv_prefix.size()) {
      return in.error(where, "expected one value per kv_prefix");
    }
    g->ns.push_back(std::move(row));
  }
  return in.finish();
}

Status read_shape(JsonReader& model, ModelShape* shape) {
  CF_ASSIGN_OR_RETURN(JsonReader in, model.child("shape"));
  CF_RETURN_IF_ERROR(integer<int64_t>(in, "hidden", 1, &shape->hidden));
  CF_RETURN_IF_ERROR(integer<int64_t>(in, "ffn_hidden", 1, &shape->ffn_hidden));
  CF_RETURN_IF_ERROR(integer<int64_t>(in, "heads", 1, &shape->heads));
  CF_RETURN_IF_ERROR(integer<int64_t>(in, "kv_heads", 1, &shape->kv_heads));
  CF_RETURN_IF_ERROR(integer<int64_t>(in, "head_dim", 1, &shape->head_dim));
  CF_RETURN_IF_ERROR(integer<int64_t>(in, "vocab", 1, &shape->vocab));
  CF_RETURN_IF_ERROR(in.get("qkv_bias", &shape->qkv_bias));
  return in.finish();
}

// Each element of the array at `key` of `in` as an object at KEY[i], read by `read`.
Status each_object(JsonReader& in, const std::string& key,
                   const std::function<Status(JsonReader&)>& read) {
  CF_ASSIGN_OR_RETURN(const json* list, in.array(key));
  for (size_t i = 0; i < list->size(); ++i) {
    JsonReader element((*list)[i], in.origin(), in.child_path(fmt::format("{}[{}]", key, i)));
    CF_RETURN_IF_ERROR(element.check_object());
    CF_RETURN_IF_ERROR(read(element));
    CF_RETURN_IF_ERROR(element.finish());
  }
  return Status::Ok();
}

Status read_kernels(JsonReader& in, ModelCalibration* m) {
  CF_RETURN_IF_ERROR(each_object(in, "gemm", [&](JsonReader& g) {
    GemmCurves curves;
    CF_RETURN_IF_ERROR(g.get("name", &curves.name));
    CF_RETURN_IF_ERROR(integer<int64_t>(g, "in_features", 1, &curves.in_features));
    CF_RETURN_IF_ERROR(integer<int64_t>(g, "out_features", 1, &curves.out_features));
    CF_RETURN_IF_ERROR(read_curve(g, "forward", &curves.forward));
    CF_RETURN_IF_ERROR(read_curve(g, "backward", &curves.backward));
    m->gemm.push_back(std::move(curves));
    return Status::Ok();
  }));
  return each_object(in, "elementwise", [&](JsonReader& e) {
    NamedCurve curve;
    CF_RETURN_IF_ERROR(e.get("name", &curve.name));
    CF_RETURN_IF_ERROR(read_curve(e, "curve", &curve.curve));
    m->elementwise.push_back(std::move(curve));
    return Status::Ok();
  });
}

Status read_model(JsonReader& in, ModelCalibration* m) {
  CF_RETURN_IF_ERROR(in.get("name", &m->name));
  CF_RETURN_IF_ERROR(read_shape(in, &m->shape));
  CF_RETURN_IF_ERROR(read_curve(in, "layer_forward", &m->layer_forward));
  CF_RETURN_IF_ERROR(read_curve(in, "layer_backward", &m->layer_backward));
  CF_RETURN_IF_ERROR(read_curve(in, "embedding_forward", &m->embedding_forward));
  CF_RETURN_IF_ERROR(read_curve(in, "embedding_backward", &m->embedding_backward));
  CF_RETURN_IF_ERROR(read_curve(in, "head_forward", &m->head_forward));
  CF_RETURN_IF_ERROR(read_curve(in, "head_backward", &m->head_backward));
  CF_RETURN_IF_ERROR(read_grid(in, "attention_forward", &m->attention_forward));
  CF_RETURN_IF_ERROR(read_grid(in, "attention_backward", &m->attention_backward));
  return read_kernels(in, m);
}

Status read_speed_probe(JsonReader& machine, SpeedProbe* sp) {
  CF_ASSIGN_OR_RETURN(JsonReader in, machine.child("speed_probe"));
  CF_RETURN_IF_ERROR(integer<int64_t>(in, "tokens", 1, &sp->tokens));
  CF_RETURN_IF_ERROR(integer<int>(in, "samples", 1, &sp->samples));
  CF_RETURN_IF_ERROR(in.get("reference_ns", &sp->reference_ns));
  CF_RETURN_IF_ERROR(in.get("mean_ns", &sp->mean_ns));
  CF_RETURN_IF_ERROR(in.get("min_ns", &sp->min_ns));
  CF_RETURN_IF_ERROR(in.get("max_ns", &sp->max_ns));
  CF_RETURN_IF_ERROR(in.get("step_load", &sp->step_load));
  CF_RETURN_IF_ERROR(in.finish());
  if (!(sp->min_ns > 0 && sp->min_ns <= sp->reference_ns && sp->reference_ns <= sp->max_ns &&
        sp->min_ns <= sp->mean_ns && sp->mean_ns <= sp->max_ns && std::isfinite(sp->max_ns))) {
    return in.error("", "expected 0 < min_ns ≤ reference_ns, mean_ns ≤ max_ns, all finite");
  }
  if (!(sp->step_load > 0 && std::isfinite(sp->step_load))) {
    return in.error("step_load", fmt::format("{} is not a positive finite number", sp->step_load));
  }
  return Status::Ok();
}

Status read_machine(JsonReader& top, MachineInfo* mi) {
  CF_ASSIGN_OR_RETURN(JsonReader in, top.child("machine"));
  CF_RETURN_IF_ERROR(in.get("backend", &mi->backend));
  CF_RETURN_IF_ERROR(in.get("cpu_model", &mi->cpu_model));
  CF_RETURN_IF_ERROR(integer<int>(in, "cores", 1, &mi->cores));
  CF_RETURN_IF_ERROR(in.get("date", &mi->date));
  CF_RETURN_IF_ERROR(in.get("chunkflow_version", &mi->chunkflow_version));
  CF_RETURN_IF_ERROR(in.get("load_average", &mi->load_average));
  CF_RETURN_IF_ERROR(read_speed_probe(in, &mi->speed_probe));
  return in.finish();
}

Status read_method(JsonReader& top, MeasurementMethod* method) {
  CF_ASSIGN_OR_RETURN(JsonReader in, top.child("method"));
  CF_RETURN_IF_ERROR(integer<int>(in, "warmup", 0, &method->warmup));
  CF_RETURN_IF_ERROR(integer<int>(in, "repetitions", 1, &method->repetitions));
  CF_RETURN_IF_ERROR(in.get("statistic", &method->statistic));
  return in.finish();
}

Status read_format(JsonReader& top, CalibrationTable* t) {
  std::string format;
  CF_RETURN_IF_ERROR(top.get("format", &format));
  if (format != kCalibrationFormat) {
    return top.error("format", fmt::format("expected \"{}\"", kCalibrationFormat));
  }
  CF_RETURN_IF_ERROR(integer<int>(top, "version", 1, &t->version));
  if (t->version != kCalibrationVersion) {
    return top.error("version", fmt::format("{} is not supported (this build reads version {})",
                                            t->version, kCalibrationVersion));
  }
  return Status::Ok();
}

Status read_table(JsonReader& top, CalibrationTable* t) {
  CF_RETURN_IF_ERROR(top.check_object());
  CF_RETURN_IF_ERROR(read_format(top, t));
  CF_RETURN_IF_ERROR(read_machine(top, &t->machine));
  CF_RETURN_IF_ERROR(read_method(top, &t->method));
  CF_RETURN_IF_ERROR(numbers(top, "concurrency_slowdown", kCosts, &t->concurrency_slowdown));
  CF_ASSIGN_OR_RETURN(JsonReader transport, top.child("transport"));
  CF_RETURN_IF_ERROR(read_curve(transport, "send", &t->send));
  CF_RETURN_IF_ERROR(read_curve(transport, "p2p", &t->p2p));
  CF_RETURN_IF_ERROR(read_curve(transport, "allreduce", &t->allreduce));
  CF_RETURN_IF_ERROR(transport.finish());
  CF_RETURN_IF_ERROR(read_curve(top, "optimizer", &t->optimizer));
  CF_RETURN_IF_ERROR(each_object(top, "models", [&](JsonReader& m) {
    t->models.emplace_back();
    return read_model(m, &t->models.back());
  }));
  if (t->models.empty()) return top.error("models", "expected a non-empty array");
  return top.finish();
}

}  // namespace

StatusOr<CalibrationTable> calibration_from_json(const std::string& text,
                                                 const std::string& origin) {
  CF_ASSIGN_OR_RETURN(const json root, parse_json(text, origin));
  JsonReader top(root, origin, "");
  CalibrationTable table;
  CF_RETURN_IF_ERROR(read_table(top, &table));
  return table;
}

StatusOr<CalibrationTable> load_calibration(const std::string& path) {
  // A regular file within limits::kMaxTextFileBytes, refused before reading otherwise.
  CF_ASSIGN_OR_RETURN(const std::string text, read_text_file(path));
  return calibration_from_json(text, path);
}

}  // namespace cf
