// Tune reports: the table, the verdict and the explanation as text and JSON, and the winner's
// job YAML. Every number comes from the TuneResult; nothing here simulates.
#include "tuner/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace cf {
namespace {

const StageMetrics& peak_stage(const SimMetrics& m) {
  const StageMetrics* worst = &m.stages.front();
  for (const StageMetrics& st : m.stages) {
    if (st.peak_memory_bytes > worst->peak_memory_bytes) worst = &st;
  }
  return *worst;
}

// Mean per-GPU seconds of a step by where they go. Their sum is the step time: pipeline =
// mean busy + mean idle (bubble ratio = idle / pipeline), then the DP reduction and
// optimizer tail after the pipeline.
struct TimeParts {
  double bubbles = 0, recompute = 0, tp_comm = 0, compute = 0, tail = 0;
};

TimeParts parts_of(const SimMetrics& m) {
  TimeParts p;
  double busy = 0;
  for (const StageMetrics& st : m.stages) {
    busy += st.busy_s;
    p.recompute += st.recompute_s;
    p.tp_comm += st.tp_comm_s;
  }
  const double n = static_cast<double>(m.stages.size());
  busy /= n;
  p.recompute /= n;
  p.tp_comm /= n;
  p.compute = busy - p.recompute - p.tp_comm;
  p.bubbles = m.pipeline_time_s - busy;
  p.tail = m.step_time_s - m.pipeline_time_s;
  return p;
}

std::string percent(double x) { return fmt::format("{:.1f}%", 100 * x); }

std::string search_line(const TuneResult& r) {
  const SearchSpace& s = r.space;
  const std::vector<int64_t> sizes = resolve_chunk_sizes(s, r.job);
  const std::vector<ParallelLayout>& layouts = r.layouts;
  std::vector<std::string> packers;
  for (Packer p : s.packers) packers.push_back(to_string(p));
  std::string layout_text =
      layouts.size() == 1 ? describe(layouts.front()) : fmt::format("{} layouts", layouts.size());
  return fmt::format(
      "search     ChunkSize {}..{} ({} values) × K {}..{} ({} values) × packer {} × "
      "{}; objective {}",
      sizes.front(), sizes.back(), sizes.size(), s.ks.front(), s.ks.back(), s.ks.size(),
      fmt::join(packers, ","), layout_text, to_string(s.objective));
}

std::string counts_line(const SearchResult& r) {
  return fmt::format(
      "{} candidates: simulated {}, pruned {} (by the time bound {}, by the memory "
      "bound {}), infeasible {}",
      r.candidates, r.evaluated, r.pruned_time + r.pruned_memory, r.pruned_time, r.pruned_memory,
      r.infeasible);
}

std::string ranked_table(const TuneResult& r) {
  const SearchResult& s = r.chunkflow;
  const size_t rows = std::min<size_t>(s.ranked.size(), static_cast<size_t>(r.space.top));
  size_t width = 28;  // the layout column: as wide as its longest entry
  for (size_t i = 0; i < rows; ++i) {
    width = std::max(width, describe(s.ranked[i].candidate.layout).size());
  }
  // Where the K/V state lives, when the job may offload it: on the GPU, or in host memory
  // (the sequences it left the GPU for, when not all, and the host bytes a node holds).
  const bool offloading = kv_offload_of(r.job) != KvOffload::kNone;
  std::string out =
      fmt::format("{:>4}  {:>9}  {:>4}  {:<8}  {:<{}}  {:>8}  {:>9}  {:>10}  {:>6}  {:>9}{}\n",
                  "rank", "ChunkSize", "K", "packer", "layout", width, "step s", "tokens/s",
                  "peak mem", "bubble", "recompute", offloading ? "  K/V state" : "");
  for (size_t i = 0; i < rows; ++i) {
    const Candidate& c = s.ranked[i].candidate;
    const SimMetrics& m = s.ranked[i].metrics;
    std::string placement;
    if (offloading) {
      const int64_t line = c.strategy.kv_offload_min_tokens;
      placement = c.strategy.kv_offload == KvOffload::kAll
                      ? fmt::format("  host{}, {} per node",
                                    line > 0 ? fmt::format(" (≥ {} tokens)", line) : "",
                                    format_bytes(m.host_bytes_per_node))
                      : "  GPU";
    }
    out += fmt::format(
        "{:>4}  {:>9}  {:>4}  {:<8}  {:<{}}  {:>8.4f}  {:>9}  {:>10}  {:>6}  {:>9}{}\n", i + 1,
        c.strategy.chunk_size, k_label(c), to_string(c.strategy.packer), describe(c.layout), width,
        m.step_time_s, format_rate(m.tokens_per_s), format_bytes(peak_stage(m).peak_memory_bytes),
        percent(m.bubble_ratio), percent(m.recompute_share), placement);
  }
  return out;
}

std::string reasons_text(const SearchResult& s) {
  std::string out;
  for (const auto& [reason, count] : s.infeasible_reasons) {
    out += fmt::format("  {:>6}  {}\n", count, reason);
  }
  return out;
}

// What to change when nothing fits, from the reasons counted.
std::string advice(const SearchResult& s) {
  const bool states = s.infeasible_reasons.count("model states alone exceed the memory budget") > 0;
  if (states && static_cast<int>(s.infeasible_reasons.size()) == 1) {
    return "the model states alone do not fit: use more GPUs or larger tp·pp (--parallel), or a "
           "GPU with more memory";
  }
  return "try larger tp·pp or full recompute (--parallel), smaller ChunkSize or K, more GPUs, or "
         "a smaller --margin";
}

}  // namespace

std::string k_label(const Candidate& c) {
  if (c.strategy.kind == StrategyKind::kBaseline) return "-";
  if (c.max_group_size <= 1) return "any";
  if (c.k_covers > c.strategy.k) return fmt::format("{}+", c.strategy.k);
  return fmt::format("{}", c.strategy.k);
}

std::string candidate_label(const Candidate& c) {
  if (c.strategy.kind == StrategyKind::kBaseline) {
    return fmt::format("Megatron-style baseline, {}", describe(c.layout));
  }
  std::string offload;
  if (c.strategy.kv_offload == KvOffload::kAll) {
    offload = c.strategy.kv_offload_min_tokens > 0
                  ? fmt::format(", K/V of sequences ≥ {} tokens offloaded",
                                c.strategy.kv_offload_min_tokens)
                  : ", K/V offloaded";
  }
  return fmt::format("ChunkSize {} K {} {}, {}{}", c.strategy.chunk_size, k_label(c),
                     to_string(c.strategy.packer), describe(c.layout), offload);
}

std::string explain_difference(const SimMetrics& winner, const SimMetrics& other) {
  const TimeParts a = parts_of(winner), b = parts_of(other);
  struct Part {
    const char* name;
    double delta;  // other − winner, seconds
    std::string detail;
  };
  std::vector<Part> parts = {
      {"pipeline bubbles", b.bubbles - a.bubbles,
       fmt::format("bubble ratio {} vs {}", percent(winner.bubble_ratio),
                   percent(other.bubble_ratio))},
      {"recompute", b.recompute - a.recompute,
       fmt::format("{} vs {} of busy time", percent(winner.recompute_share),
                   percent(other.recompute_share))},
      {"TP and CP communication", b.tp_comm - a.tp_comm, ""},
      {"GEMM and attention compute", b.compute - a.compute,
       fmt::format("{} vs {} chunks per step", winner.chunks, other.chunks)},
      {"DP reduction and optimizer", b.tail - a.tail, ""},
  };
  std::stable_sort(parts.begin(), parts.end(), [](const Part& x, const Part& y) {
    return std::abs(x.delta) > std::abs(y.delta);
  });
  const double total = other.step_time_s - winner.step_time_s;
  std::vector<std::string> items;
  for (const Part& p : parts) {
    // Parts under 2% of the difference or under the 1 ms shown are noise here.
    if (std::abs(p.delta) < 0.02 * std::abs(total) || std::abs(p.delta) < 5e-4) continue;
    items.push_back(fmt::format("{} {:.3f} s {}{}", p.name, std::abs(p.delta),
                                p.delta > 0 ? "less" : "more",
                                p.detail.empty() ? "" : " (" + p.detail + ")"));
  }
  const double ratio = other.step_time_s / winner.step_time_s;
  std::string out;
  if (ratio < 0.999) {
    // The "other" is faster (the best baseline can beat ChunkFlow's best): say so.
    out = fmt::format("{:.4f} s per step SLOWER ({:.4f} vs {:.4f} s, {:.2f}% more time)", -total,
                      winner.step_time_s, other.step_time_s, 100 * (1 / ratio - 1));
  } else if (ratio < 1.001) {
    out = fmt::format("practically tied ({:.4f} vs {:.4f} s per step, under 0.1% apart)",
                      winner.step_time_s, other.step_time_s);
  } else {
    out = fmt::format("{:.4f} s per step faster ({:.4f} vs {:.4f} s, {})", total,
                      winner.step_time_s, other.step_time_s,
                      ratio >= 1.1 ? fmt::format("{:.2f}× the throughput", ratio)
                                   : fmt::format("{:.2f}% less time", 100 * (1 - 1 / ratio)));
  }
  if (!items.empty()) out += ": " + fmt::format("{}", fmt::join(items, "; "));
  out += fmt::format("; peak memory {} vs {} per GPU",
                     format_bytes(peak_stage(winner).peak_memory_bytes),
                     format_bytes(peak_stage(other).peak_memory_bytes));
  return out;
}

std::vector<std::string> explanation(const TuneResult& r) {
  std::vector<std::string> lines;
  const RankedCandidate* best = r.best();
  if (best == nullptr) return lines;
  const auto& ranked = r.chunkflow.ranked;
  if (ranked.size() >= 2) {
    lines.push_back(fmt::format("over the runner-up ({}): {}", candidate_label(ranked[1].candidate),
                                explain_difference(best->metrics, ranked[1].metrics)));
  } else {
    lines.push_back("no runner-up: it is the only configuration that fits");
  }
  if (const RankedCandidate* base = r.best_baseline()) {
    const bool packed = base->candidate.strategy.micro_batching == MicroBatching::kPack;
    lines.push_back(fmt::format(
        "against the best Megatron-style baseline ({}, {}): {}", describe(base->candidate.layout),
        packed ? fmt::format("whole sequences packed up to {} tokens", r.job.dataset.max_length)
               : std::string("one sequence per micro-batch"),
        explain_difference(best->metrics, base->metrics)));
  } else if (r.baseline_searched) {
    lines.push_back(fmt::format(
        "the Megatron-style baseline fits in none of the {} configurations tried (sequences "
        "packed up to {} tokens or one per micro-batch; tp, cp, pp, recompute): {}",
        r.baseline.candidates, r.job.dataset.max_length, r.baseline.closest_miss));
  }
  return lines;
}

std::string tune_report_text(const TuneResult& r) {
  const Job& j = r.job;
  const GpuSpec& gpu = j.cluster.gpu;
  const SearchResult& s = r.chunkflow;
  std::string out = fmt::format(
      "chunkflow tune  {} on {} × {}; {} up to {} tokens; {} sequences × {} sampled steps "
      "(seed {}), {} tokens per step\n",
      j.model_name, j.cluster.gpus, j.cluster.gpu_name,
      j.dataset.lengths.empty() ? j.dataset.distribution : "explicit lengths", j.dataset.max_length,
      j.training.global_batch, j.training.steps, j.dataset.seed, r.tokens_per_step);
  out += search_line(r) + "\n";
  out += fmt::format("memory     budget {} per GPU = {} HBM × (1 − {} margin) − {} reserved\n",
                     format_bytes(r.memory_budget_bytes), format_bytes(gpu.hbm_bytes),
                     percent(r.space.memory_margin), format_bytes(gpu.reserved_bytes));
  out += "result     " + counts_line(s) + "\n";
  if (s.folded > 0) {
    out += fmt::format(
        "           {} K values folded: no sequence splits into more than {} chunks "
        "at any ChunkSize, and K ≥ that gives the same plan\n",
        s.folded, r.max_group_size);
  }
  out += "\n";
  if (s.ranked.empty()) {
    out += fmt::format(
        "VERDICT: nothing fits. None of the {} candidates stays within the {} "
        "memory budget per GPU.\n",
        s.candidates, format_bytes(r.memory_budget_bytes));
    out += "why, by candidates:\n" + reasons_text(s);
    if (!s.closest_miss.empty()) out += "closest: " + s.closest_miss + "\n";
    out += "next:    " + advice(s) + "\n";
    return out;
  }
  out += ranked_table(r);
  if (s.infeasible > 0) out += "\ninfeasible candidates by reason:\n" + reasons_text(s);
  const RankedCandidate& best = *r.best();
  const SimMetrics& m = best.metrics;
  const StageMetrics& peak = peak_stage(m);
  out += fmt::format("\nbest       {}\n", candidate_label(best.candidate));
  out += fmt::format(
      "           {:.4f} s per step, {} tokens/s ({} per GPU), MFU {}, peak {} per GPU (stage "
      "{}) of the {} budget\n",
      m.step_time_s, format_rate(m.tokens_per_s), format_rate(m.tokens_per_s / j.cluster.gpus),
      percent(m.mfu), format_bytes(peak.peak_memory_bytes), peak.stage,
      format_bytes(r.memory_budget_bytes));
  out += "why\n";
  for (const std::string& line : explanation(r)) out += "  - " + line + "\n";
  if (r.baseline_searched) {
    out += fmt::format(
        "baseline   Megatron-style, 1F1B, whole sequences packed up to {} tokens or one per "
        "micro-batch, tuned over tp, cp, pp and recompute: {}\n",
        j.dataset.max_length, counts_line(r.baseline));
  }
  if (resolve_layouts(r.space, j).size() == 1) {  // one tp/pp/cp/recompute choice
    out +=
        "hint       only this layout was searched; --parallel also searches TP, PP, CP and "
        "recompute\n";
  }
  return out;
}

nlohmann::json candidate_json(const RankedCandidate& ranked) {
  const Candidate& c = ranked.candidate;
  const SimMetrics& m = ranked.metrics;
  nlohmann::json j;
  j["strategy"] = to_string(c.strategy.kind);
  if (c.strategy.kind == StrategyKind::kChunkFlow) {
    j["chunk_size"] = c.strategy.chunk_size;
    j["k"] = c.strategy.k;
    j["k_equivalent_up_to"] = c.k_covers;
    j["max_group_chunks"] = c.max_group_size;
    j["packer"] = to_string(c.strategy.packer);
  } else {
    j["micro_batching"] = to_string(c.strategy.micro_batching);
  }
  j["tp"] = c.layout.tp;
  j["cp"] = c.layout.cp;
  j["pp"] = c.layout.pp;
  j["dp"] = c.layout.dp;
  j["vpp"] = c.layout.vpp;
  j["sp"] = c.layout.sp;
  j["recompute"] = to_string(c.layout.recompute);
  j["schedule"] = to_string(c.layout.schedule);
  j["step_time_s"] = m.step_time_s;
  j["tokens_per_s"] = m.tokens_per_s;
  j["mfu"] = m.mfu;
  j["bubble_ratio"] = m.bubble_ratio;
  j["recompute_share"] = m.recompute_share;
  j["peak_memory_bytes"] = peak_stage(m).peak_memory_bytes;
  j["peak_memory_stage"] = peak_stage(m).stage;
  if (m.worst_case_length > 0) {
    j["worst_case_sequence_length"] = m.worst_case_length;
    j["worst_case_peak_memory_bytes"] = m.worst_case_peak_bytes;
  }
  j["chunks"] = m.chunks;
  return j;
}

nlohmann::json tune_report_json(const TuneResult& r) {
  const SearchResult& s = r.chunkflow;
  nlohmann::json j;
  j["job"] = r.job.origin;
  j["model"] = r.job.model_name;
  j["gpu"] = r.job.cluster.gpu_name;
  j["gpus"] = r.job.cluster.gpus;
  j["objective"] = to_string(r.space.objective);
  j["steps"] = r.job.training.steps;
  j["seed"] = r.job.dataset.seed;
  j["tokens_per_step"] = r.tokens_per_step;
  j["memory_margin"] = r.space.memory_margin;
  j["memory_budget_bytes"] = r.memory_budget_bytes;
  j["chunk_sizes"] = resolve_chunk_sizes(r.space, r.job);
  j["k_values"] = r.space.ks;
  nlohmann::json layouts = nlohmann::json::array();
  for (const ParallelLayout& l : r.layouts) layouts.push_back(describe(l));
  j["layouts"] = layouts;
  j["candidates"] = s.candidates;
  j["k_folded"] = s.folded;
  j["evaluated"] = s.evaluated;
  j["pruned"] = s.pruned_time + s.pruned_memory;
  j["pruned_by_time"] = s.pruned_time;
  j["pruned_by_memory"] = s.pruned_memory;
  j["infeasible"] = s.infeasible;
  j["infeasible_reasons"] = s.infeasible_reasons;
  j["feasible"] = !s.ranked.empty();
  j["best"] = s.ranked.empty() ? nlohmann::json(nullptr) : candidate_json(s.ranked.front());
  nlohmann::json ranked = nlohmann::json::array();
  for (size_t i = 0; i < s.ranked.size() && i < static_cast<size_t>(r.space.top); ++i) {
    ranked.push_back(candidate_json(s.ranked[i]));
  }
  j["ranked"] = ranked;
  if (s.ranked.empty()) j["closest_miss"] = s.closest_miss;
  if (r.baseline_searched) {
    nlohmann::json b;
    b["candidates"] = r.baseline.candidates;
    b["evaluated"] = r.baseline.evaluated;
    b["pruned"] = r.baseline.pruned_time + r.baseline.pruned_memory;
    b["infeasible"] = r.baseline.infeasible;
    b["infeasible_reasons"] = r.baseline.infeasible_reasons;
    const RankedCandidate* base = r.best_baseline();
    b["best"] = base ? candidate_json(*base) : nlohmann::json(nullptr);
    if (base && r.best()) b["speedup"] = base->metrics.step_time_s / r.best()->metrics.step_time_s;
    if (!base) b["closest_miss"] = r.baseline.closest_miss;
    j["baseline"] = b;
  }
  j["explanation"] = explanation(r);
  return j;
}

std::string best_job_yaml(const TuneResult& r) {
  const RankedCandidate* best = r.best();
  CF_CHECK(best != nullptr) << "best_job_yaml of a search where nothing fits";
  std::string header = fmt::format(
      "# Best of {} candidates by `chunkflow tune` (objective {}) for {}.\n"
      "# Predicted: {:.6f} s per step, {:.0f} tokens/s, peak {} per GPU; "
      "`chunkflow simulate` on this file reproduces it.\n",
      r.chunkflow.candidates, to_string(r.space.objective), r.job.origin, best->metrics.step_time_s,
      best->metrics.tokens_per_s, format_bytes(peak_stage(best->metrics).peak_memory_bytes));
  return header + resolved_yaml(best_job(r));
}

}  // namespace cf
