// Sweeps: the strict sweep-file reader, one tuned job per point, the target answer, and the
// table / CSV / JSON of the points.
#include "tuner/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/limits.h"
#include "core/resources.h"
#include "core/yaml_reader.h"
#include "models/hardware.h"
#include "models/model.h"
#include "traces/distribution.h"
#include "tuner/report.h"

namespace cf {
namespace {

constexpr const char* kDefaultJob = "examples/default-tune.yaml";

StatusOr<Job> load_base_job(const std::string& name, const std::string& sweep_path) {
  if (name == "default") {
    const std::string_view* text = embedded_file(kDefaultJob);
    if (text == nullptr) return Status::Runtime(fmt::format("{} is not embedded", kDefaultJob));
    return parse_job(std::string(*text), fmt::format("<embedded:{}>", kDefaultJob));
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(name, ec) && fs::path(name).is_relative()) {
    const fs::path beside = fs::path(sweep_path).parent_path() / name;
    if (fs::exists(beside, ec)) return load_job(beside.string());
  }
  return load_job(name);
}

// A list of scalars under vary.KEY, each checked by `check` (an error message or "").
Status read_axis(YamlMap& vary, const std::string& key,
                 const std::function<std::string(const std::string&)>& check,
                 std::vector<std::string>* out) {
  if (!vary.has(key)) return Status::Ok();
  YAML::Node node = vary.raw(key);
  const std::string path = vary.key_path(key);
  if (!node.IsSequence() || node.size() == 0) {
    return yaml_error(vary.file(), node, path, "expected a non-empty list");
  }
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) return yaml_error(vary.file(), item, path, "expected a scalar");
    if (std::string problem = check(item.Scalar()); !problem.empty()) {
      return yaml_error(vary.file(), item, path, problem);
    }
    out->push_back(item.Scalar());
  }
  return Status::Ok();
}

// A check for read_axis: a positive integer of at most `limit` (`why` says where it comes from).
std::function<std::string(const std::string&)> positive_integer(int64_t limit, std::string why) {
  return [limit, why = std::move(why)](const std::string& text) -> std::string {
    try {
      size_t used = 0;
      const long long v = std::stoll(text, &used);
      if (used == text.size() && v > 0) {
        if (v <= limit) return "";
        return fmt::format("must be at most {} ({}), got {}", limit, why, text);
      }
    } catch (const std::exception&) {
    }
    return fmt::format("expected a positive integer, got \"{}\"", text);
  };
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// The base job moved to one point: its model, data, GPUs and a layout that validates.
StatusOr<Job> point_job(const SweepSpec& spec, const SweepPoint& p) {
  Job job = spec.base;
  if (p.model != job.model_name) {
    CF_ASSIGN_OR_RETURN(job.model, load_model(p.model));
    job.model_name = p.model;
  }
  if (p.dataset != job.dataset.distribution) {
    CF_ASSIGN_OR_RETURN(job.dataset.dist, load_distribution(p.dataset));
    job.dataset.distribution = p.dataset;
    job.dataset.lengths.clear();
  }
  if (p.gpu != job.cluster.gpu_name) {
    CF_ASSIGN_OR_RETURN(job.cluster.gpu, load_gpu(p.gpu));
    job.cluster.gpu_name = p.gpu;
  }
  job.dataset.max_length = p.max_length;
  job.cluster.gpus = p.gpus;
  // Any layout that validates; the search space decides the layouts actually tried.
  ParallelConfig& par = job.parallel;
  if (p.gpus % (par.tp * par.cp * par.pp) != 0 || job.model.heads % par.tp != 0 ||
      job.model.kv_heads % par.tp != 0 || job.model.layers % (par.pp * par.vpp) != 0) {
    par.tp = 1;
    par.cp = 1;
    par.pp = 1;
    par.vpp = 1;
    par.sp = false;
    par.schedule = ScheduleKind::kOneFOneB;
    par.layers_per_stage.clear();  // an uneven split was for the job's own pp
  }
  par.dp = p.gpus / (par.tp * par.cp * par.pp);
  CF_RETURN_IF_ERROR(validate_job(job));
  return job;
}

}  // namespace

StatusOr<SweepSpec> parse_sweep(const std::string& text, const std::string& origin) {
  CF_ASSIGN_OR_RETURN(YamlDocument doc, parse_yaml_text(text, origin));
  if (!doc.root.IsMap()) return yaml_error(origin, doc.root, "", "a sweep file must be a YAML map");
  CF_ASSIGN_OR_RETURN(YamlMap root, YamlMap::open(doc.root, origin, ""));
  SweepSpec spec;
  spec.origin = origin;
  std::string job_name = "default";
  CF_RETURN_IF_ERROR(root.get("job", &job_name));
  {
    StatusOr<Job> base = load_base_job(job_name, origin);
    if (!base.ok()) return root.error("job", base.status().message());
    spec.base = *std::move(base);
  }
  if (!root.has("vary")) return root.missing("vary");
  CF_ASSIGN_OR_RETURN(YamlMap vary, root.child("vary"));
  auto loads = [](auto loader) {
    return [loader](const std::string& name) {
      auto loaded = loader(name);
      return loaded.ok() ? std::string() : loaded.status().message();
    };
  };
  CF_RETURN_IF_ERROR(read_axis(vary, "model", loads(load_model), &spec.models));
  CF_RETURN_IF_ERROR(read_axis(vary, "dataset", loads(load_distribution), &spec.datasets));
  CF_RETURN_IF_ERROR(read_axis(vary, "gpu", loads(load_gpu), &spec.gpu_types));
  std::vector<std::string> ints;
  CF_RETURN_IF_ERROR(read_axis(vary, "max_length",
                               positive_integer(limits::kMaxTokens, limits::kMaxTokensWhy), &ints));
  for (const std::string& s : ints) spec.max_lengths.push_back(std::stoll(s));
  ints.clear();
  CF_RETURN_IF_ERROR(
      read_axis(vary, "gpus", positive_integer(limits::kMaxGpus, limits::kMaxGpusWhy), &ints));
  for (const std::string& s : ints) spec.gpu_counts.push_back(std::stoll(s));
  // Each point is a tune of seconds: the number of points is bounded before any is tuned.
  const auto axis = [](size_t n) { return static_cast<int64_t>(std::max<size_t>(n, 1)); };
  const int64_t points = axis(spec.models.size()) * axis(spec.datasets.size()) *
                         axis(spec.gpu_types.size()) * axis(spec.max_lengths.size()) *
                         axis(spec.gpu_counts.size());
  if (points > limits::kMaxSweepPoints) {
    return yaml_error(
        vary.file(), vary.node(), "vary",
        fmt::format("{} points (model {} × dataset {} × gpu {} × max_length {} × "
                    "gpus {}), more than the {} a sweep may hold (core/limits.h): split it",
                    points, axis(spec.models.size()), axis(spec.datasets.size()),
                    axis(spec.gpu_types.size()), axis(spec.max_lengths.size()),
                    axis(spec.gpu_counts.size()), limits::kMaxSweepPoints));
  }
  CF_RETURN_IF_ERROR(vary.finish());
  CF_RETURN_IF_ERROR(root.get("target_tokens_per_s", &spec.target_tokens_per_s));
  if (root.has("target_tokens_per_s")) {
    CF_RETURN_IF_ERROR(root.check_positive("target_tokens_per_s", spec.target_tokens_per_s));
  }
  if (root.has("tune")) {
    YAML::Node tune = root.raw("tune");
    CF_ASSIGN_OR_RETURN(spec.space, read_search_space_node(tune, origin, "tune", spec.base));
  } else {
    CF_ASSIGN_OR_RETURN(
        spec.space, read_search_space_node(spec.base.tune, spec.base.origin, "tune", spec.base));
  }
  CF_RETURN_IF_ERROR(root.finish());
  if (spec.models.empty()) spec.models = {spec.base.model_name};
  if (spec.datasets.empty()) spec.datasets = {spec.base.dataset.distribution};
  if (spec.gpu_types.empty()) spec.gpu_types = {spec.base.cluster.gpu_name};
  if (spec.max_lengths.empty()) spec.max_lengths = {spec.base.dataset.max_length};
  if (spec.gpu_counts.empty()) spec.gpu_counts = {spec.base.cluster.gpus};
  std::sort(spec.gpu_counts.begin(), spec.gpu_counts.end());
  return spec;
}

StatusOr<SweepSpec> load_sweep(const std::string& path) {
  CF_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_sweep(text, path);
}

std::string sweep_point_label(const SweepPoint& p) {
  return fmt::format("{}, {}, {} × {}, {} tokens", p.model, p.dataset, p.gpus, p.gpu, p.max_length);
}

SweepResult sweep_outline(const SweepSpec& spec) {
  SweepResult result;
  result.origin = spec.origin;
  result.target_tokens_per_s = spec.target_tokens_per_s;
  for (const std::string& model : spec.models) {
    for (const std::string& dataset : spec.datasets) {
      for (const std::string& gpu : spec.gpu_types) {
        for (int64_t max_length : spec.max_lengths) {
          for (int64_t gpus : spec.gpu_counts) {
            SweepPoint p;
            p.model = model;
            p.dataset = dataset;
            p.gpu = gpu;
            p.max_length = max_length;
            p.gpus = static_cast<int>(gpus);
            result.points.push_back(p);
          }
          if (spec.target_tokens_per_s > 0) {
            result.target.push_back(TargetAnswer{model, dataset, gpu, max_length, 0, 0});
          }
        }
      }
    }
  }
  return result;
}

Status tune_sweep_point(const SweepSpec& spec, const TuneOptions& options, SweepPoint* p) {
  StatusOr<Job> job = point_job(spec, *p);
  if (!job.ok()) {
    p->error = job.status().message();
    return Status::Ok();
  }
  if (resolve_layouts(spec.space, *job).empty() || resolve_chunk_sizes(spec.space, *job).empty()) {
    p->error = fmt::format("no layout or ChunkSize of the search space fits {} GPUs and {} tokens",
                           p->gpus, p->max_length);
    return Status::Ok();
  }
  CF_ASSIGN_OR_RETURN(TuneResult tuned, tune(*job, spec.space, options));
  p->candidates = tuned.chunkflow.candidates;
  p->evaluated = tuned.chunkflow.evaluated;
  if (tuned.best()) p->best = *tuned.best();
  if (tuned.best_baseline()) p->baseline = *tuned.best_baseline();
  if (!p->best) p->closest_miss = tuned.chunkflow.closest_miss;
  return Status::Ok();
}

void answer_target(const SweepSpec& spec, SweepResult* result) {
  for (TargetAnswer& answer : result->target) {
    for (const SweepPoint& p : result->points) {  // GPU counts ascending within a group
      if (p.model != answer.model || p.dataset != answer.dataset || p.gpu != answer.gpu ||
          p.max_length != answer.max_length || !p.best) {
        continue;
      }
      if (p.best->metrics.tokens_per_s >= spec.target_tokens_per_s) {
        answer.gpus = p.gpus;
        answer.tokens_per_s = p.best->metrics.tokens_per_s;
        break;
      }
    }
  }
}

StatusOr<SweepResult> run_sweep(const SweepSpec& spec, const TuneOptions& options,
                                const SweepPointCallback& on_point) {
  SweepResult result = sweep_outline(spec);
  const int n = static_cast<int>(result.points.size());
  for (int i = 0; i < n; ++i) {
    SweepPoint& p = result.points[static_cast<size_t>(i)];
    if (on_point) on_point(i, n, sweep_point_label(p));
    CF_RETURN_IF_ERROR(tune_sweep_point(spec, options, &p));
  }
  answer_target(spec, &result);
  return result;
}

std::string sweep_table(const SweepResult& r) {
  std::string out = fmt::format(
      "{:<12} {:<16} {:<14} {:>5} {:>8}  {:>9} {:>4}  {:<28} {:>8} {:>9} {:>8} {:>10} {:>9} "
      "{:>7}\n",
      "model", "dataset", "gpu", "gpus", "context", "ChunkSize", "K", "layout", "step s",
      "tokens/s", "per GPU", "peak mem", "baseline", "speedup");
  for (const SweepPoint& p : r.points) {
    out += fmt::format("{:<12} {:<16} {:<14} {:>5} {:>8}  ", p.model, p.dataset, p.gpu, p.gpus,
                       p.max_length);
    if (!p.best) {
      out += p.error.empty() ? "nothing fits: " + p.closest_miss : "not tuned: " + p.error;
      out += "\n";
      continue;
    }
    const SimMetrics& m = p.best->metrics;
    const int64_t peak = worst_stage_peak_bytes(m);
    out += fmt::format(
        "{:>9} {:>4}  {:<28} {:>8.4f} {:>9} {:>8} {:>10} {:>9} {:>7}\n",
        p.best->candidate.strategy.chunk_size, k_label(p.best->candidate),
        describe(p.best->candidate.layout), m.step_time_s, format_rate(m.tokens_per_s),
        format_rate(m.tokens_per_s / p.gpus), format_bytes(peak),
        p.baseline ? format_rate(p.baseline->metrics.tokens_per_s) : "OOM",
        p.baseline ? fmt::format("{:.2f}×", p.baseline->metrics.step_time_s / m.step_time_s) : "-");
  }
  if (!r.target.empty()) {
    out += fmt::format("\nsmallest GPU count reaching {} tokens/s:\n",
                       format_rate(r.target_tokens_per_s));
    for (const TargetAnswer& a : r.target) {
      out += fmt::format("  {}, {}, {}, {} tokens: ", a.model, a.dataset, a.gpu, a.max_length);
      out += a.gpus > 0
                 ? fmt::format("{} GPUs ({} tokens/s)\n", a.gpus, format_rate(a.tokens_per_s))
                 : "none of the GPU counts swept reaches it\n";
    }
  }
  return out;
}

std::string sweep_csv(const SweepResult& r) {
  std::string out =
      "model,dataset,gpu,gpus,max_length,feasible,chunk_size,k,tp,pp,dp,recompute,schedule,"
      "step_time_s,tokens_per_s,tokens_per_s_per_gpu,peak_memory_bytes,baseline_tokens_per_s,"
      "speedup,note\n";
  for (const SweepPoint& p : r.points) {
    out += fmt::format("{},{},{},{},{},", csv_field(p.model), csv_field(p.dataset),
                       csv_field(p.gpu), p.gpus, p.max_length);
    if (!p.best) {
      out += "false,,,,,,,,,,,,,,";
      out += csv_field(p.error.empty() ? "nothing fits: " + p.closest_miss : p.error) + "\n";
      continue;
    }
    const Candidate& c = p.best->candidate;
    const SimMetrics& m = p.best->metrics;
    const int64_t peak = worst_stage_peak_bytes(m);
    out += fmt::format("true,{},{},{},{},{},{},{},{:.6f},{:.1f},{:.1f},{},", c.strategy.chunk_size,
                       c.strategy.k, c.layout.tp, c.layout.pp, c.layout.dp,
                       to_string(c.layout.recompute), to_string(c.layout.schedule), m.step_time_s,
                       m.tokens_per_s, m.tokens_per_s / p.gpus, peak);
    if (p.baseline) {
      out += fmt::format("{:.1f},{:.4f},\n", p.baseline->metrics.tokens_per_s,
                         p.baseline->metrics.step_time_s / m.step_time_s);
    } else {
      out += ",,baseline fits in no layout\n";
    }
  }
  return out;
}

nlohmann::json sweep_json(const SweepResult& r) {
  nlohmann::json j;
  j["sweep"] = r.origin;
  nlohmann::json points = nlohmann::json::array();
  for (const SweepPoint& p : r.points) {
    nlohmann::json q = {{"model", p.model},
                        {"dataset", p.dataset},
                        {"gpu", p.gpu},
                        {"gpus", p.gpus},
                        {"max_length", p.max_length}};
    q["feasible"] = p.best.has_value();
    q["candidates"] = p.candidates;
    q["evaluated"] = p.evaluated;
    q["best"] = p.best ? candidate_json(*p.best) : nlohmann::json(nullptr);
    q["baseline"] = p.baseline ? candidate_json(*p.baseline) : nlohmann::json(nullptr);
    if (p.best && p.baseline) {
      q["speedup"] = p.baseline->metrics.step_time_s / p.best->metrics.step_time_s;
    }
    if (!p.error.empty()) q["error"] = p.error;
    if (!p.best && p.error.empty()) q["closest_miss"] = p.closest_miss;
    points.push_back(q);
  }
  j["points"] = points;
  if (r.target_tokens_per_s > 0) {
    nlohmann::json t = nlohmann::json::array();
    for (const TargetAnswer& a : r.target) {
      t.push_back({{"model", a.model},
                   {"dataset", a.dataset},
                   {"gpu", a.gpu},
                   {"max_length", a.max_length},
                   {"min_gpus", a.gpus > 0 ? nlohmann::json(a.gpus) : nlohmann::json(nullptr)},
                   {"tokens_per_s", a.tokens_per_s}});
    }
    j["target_tokens_per_s"] = r.target_tokens_per_s;
    j["target"] = t;
  }
  return j;
}

}  // namespace cf
