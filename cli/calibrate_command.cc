// `chunkflow calibrate --backend cpu [--out FILE] [--model NAME ...]`: measures the executor's
// op costs on this machine (executor/profiler.h) and writes the calibration table the
// calibrated cost model reads (`cost_model: {kind: calibrated, table: FILE}`). Prints the
// machine, the grids, and how much of a layer's time its kernels explain. Not the model.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

#include "cli/command.h"
#include "core/check.h"
#include "executor/executor.h"
#include "executor/profiler.h"
#include "sim/calibration_table.h"
#include "sim/cost_calibrated.h"
#include "sim/plan/job.h"
#include "sim/plan/plan_builder.h"
#include "sim/simulator.h"

#ifndef CHUNKFLOW_VERSION
#define CHUNKFLOW_VERSION "unknown"
#endif

namespace cf::cli {
namespace {

struct CalibrateOptions {
  std::string backend = "cpu";
  std::string out = "calibration.json";
  std::vector<std::string> models{"tiny"};
  int64_t max_tokens = 1024;
  int repetitions = 7;
  int warmup = 2;
  int threads = 4;
  bool quick = false;
  bool quiet = false;
};

Curve to_curve(const Series& series) {
  Curve c;
  for (const Sample& s : series) {
    c.x.push_back(s.x);
    c.ns.push_back(std::max(s.wall_ns, 1.0));  // a delivery faster than the clock reads 1 ns
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
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

CalibrationTable to_table(const MachineProfile& p, const ProfileOptions& o) {
  CalibrationTable t;
  t.machine =
      MachineInfo{"cpu", p.cpu_model, p.cores, utc_date(), CHUNKFLOW_VERSION, p.load_average, {}};
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
  for (const ModelProfile& m : p.models) {
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
    for (const NamedSeries& e : m.elementwise)
      c.elementwise.push_back({e.name, to_curve(e.series)});
    t.models.push_back(std::move(c));
  }
  return t;
}

// The fixed calibration jobs of `model` with pp·dp stage threads, 2 steps each: fifteen
// sequences of max_tokens·{1..15}/16 tokens and one of max_tokens (8.5 × max_tokens in all,
// a step of a few hundred milliseconds on the tiny model), run as the baseline (one
// micro-batch per sequence) and as ChunkFlow (ChunkSize max_tokens/4, K 2: packed chunks and
// a dependent group).
StatusOr<std::vector<Job>> step_jobs(const std::string& model, int64_t max_tokens, int pp, int dp) {
  std::string lengths;
  for (int i = 1; i <= 15; ++i) {
    lengths += fmt::format("{}, ", std::max<int64_t>(1, max_tokens * i / 16));
  }
  lengths += fmt::format("{}", max_tokens);
  std::vector<Job> jobs;
  for (const std::string& strategy : {std::string("{kind: baseline, micro_batching: per_sequence}"),
                                      fmt::format("{{kind: chunkflow, chunk_size: {}, k: 2}}",
                                                  std::max<int64_t>(1, max_tokens / 4))}) {
    CF_ASSIGN_OR_RETURN(
        Job job,
        parse_job(fmt::format("model: {}\n"
                              "cluster: {{gpu: h100-sxm-80g, gpus: {}, gpus_per_node: {}}}\n"
                              "dataset: {{lengths: [{}], max_length: {}}}\n"
                              "training: {{global_batch: 16, steps: 2}}\n"
                              "parallel: {{tp: 1, pp: {}, dp: {}}}\n"
                              "strategy: {}\n",
                              model, pp * dp, pp * dp, lengths, max_tokens, pp, dp, strategy),
                  "calibration job"));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

// The step fit's runs per job, round-robin.
constexpr int kStepRounds = 5;

// The table's concurrency_slowdown[k − 1]: a step of the executor with k stage threads
// (step_jobs with pp k · dp 1 when the layers divide by k, and pp 1 · dp k), measured, over
// what the op curves just measured predict for the same plans with no slowdown. The runs go
// round-robin over every k and layout, `rounds` times, each with the speed probe around its
// steps (run_with_speed_probe, for the load it reports). k's factor is the mean of its runs'
// measured over predicted step times. It holds what the fastest op times cannot: the
// machine's load as it was while calibrating (whose mean over the fit's runs is returned in
// `load`), stage threads waiting on each other's slowest op, the cores running at different
// speeds, the executor's work between ops.
StatusOr<std::vector<double>> measure_step_slowdown(const CalibrationTable& table,
                                                    const std::string& model, int64_t max_tokens,
                                                    int max_threads, int rounds, uint64_t seed,
                                                    const std::function<void(int)>& progress,
                                                    double* load) {
  CalibrationTable flat = table;
  flat.concurrency_slowdown.assign(static_cast<size_t>(max_threads), 1.0);
  struct Fit {
    int k;
    Job job;
    double predicted = 0;  // mean step time, s
    std::vector<double> ratios;
    std::vector<double> loads;
  };
  std::vector<Fit> fits;
  CF_ASSIGN_OR_RETURN(std::vector<Job> one, step_jobs(model, max_tokens, 1, 1));
  const int64_t layers = one.front().model.layers;
  for (int k = 1; k <= max_threads; ++k) {
    std::vector<std::pair<int, int>> layouts = {{1, k}};
    if (k > 1 && layers % k == 0) layouts.emplace_back(k, 1);
    std::vector<Job> jobs;
    for (const auto& [pp, dp] : layouts) {
      CF_ASSIGN_OR_RETURN(std::vector<Job> more, step_jobs(model, max_tokens, pp, dp));
      jobs.insert(jobs.end(), more.begin(), more.end());
    }
    for (const Job& job : jobs) {
      CF_ASSIGN_OR_RETURN(std::unique_ptr<CalibratedCostModel> cost,
                          CalibratedCostModel::create(job, flat, "the table being measured"));
      Fit fit{k, job, 0, {}, {}};
      for (int64_t step = 0; step < job.training.steps; ++step) {
        CF_ASSIGN_OR_RETURN(Plan plan, build_plan(job, step));
        CF_ASSIGN_OR_RETURN(SimResult sim, simulate(job, plan, *cost));
        fit.predicted += sim.metrics.step_time_s / static_cast<double>(job.training.steps);
      }
      fits.push_back(std::move(fit));
    }
  }
  for (int round = 0; round < rounds; ++round) {
    progress(round);
    for (Fit& fit : fits) {
      ExecutorOptions exec;
      exec.seed = seed + static_cast<uint64_t>(round);
      exec.record_trace = false;
      CF_ASSIGN_OR_RETURN(
          ProbedRun run, run_with_speed_probe(fit.job, exec, table.machine.speed_probe.reference_ns,
                                              table.machine.speed_probe.tokens));
      fit.ratios.push_back(run.report.step_time_s() / fit.predicted);
      fit.loads.push_back(run.load);
    }
  }
  std::vector<double> slowdown, loads;
  for (int k = 1; k <= max_threads; ++k) {
    std::vector<double> ratios;
    for (const Fit& fit : fits) {
      if (fit.k == k) ratios.insert(ratios.end(), fit.ratios.begin(), fit.ratios.end());
    }
    slowdown.push_back(mean(ratios));
  }
  for (const Fit& fit : fits) loads.insert(loads.end(), fit.loads.begin(), fit.loads.end());
  *load = mean(loads);
  return slowdown;
}

// A layer forward against the kernels it calls (layer.cc): QKV, output and MLP GEMMs, one
// attention, two RMSNorms, RoPE on Q and K, SwiGLU, two residual adds, and its zero-filled
// buffers (t·(2 + 4h + 2Q + 2G + a + 3f) floats with the output, priced as that many (t, h)
// buffers); what is left is the executor's own bookkeeping and cache misses.
std::string kernel_breakdown(const ModelCalibration& c) {
  auto at = [](const Curve& curve, double t) { return interpolate(curve, t).ns; };
  auto named = [&](const std::string& name, double t) {
    for (const NamedCurve& e : c.elementwise) {
      if (e.name == name) return at(e.curve, t);
    }
    return 0.0;
  };
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

int run_calibrate(const CalibrateOptions& options) {
  if (options.backend != "cpu") {
    return report(Status::InvalidInput(
        fmt::format("--backend {}: this build calibrates the cpu backend only", options.backend)));
  }
  std::vector<std::pair<std::string, ModelConfig>> models;
  for (const std::string& name : options.models) {
    StatusOr<ModelConfig> model = load_model(name);
    if (!model.ok()) return report(model.status());
    models.emplace_back(name, *model);
  }
  ProfileOptions o = ProfileOptions::defaults(options.quick ? 32 : options.max_tokens);
  o.repetitions = options.quick ? 3 : options.repetitions;
  o.warmup = options.quick ? 1 : options.warmup;
  if (options.quick) {
    o.message_bytes = {1024, 65536};
    o.optimizer_params = {1024, 65536};
    o.probe_tokens = 16;
  }
  const bool show = !options.quiet && ::isatty(STDERR_FILENO);
  if (show) {
    o.progress = [](const std::string& what, int done, int total) {
      std::fprintf(stderr, "\r\033[K[%3d%%] %s", 100 * done / total, what.c_str());
      if (done == total) std::fputs("\r\033[K", stderr);
    };
  }
  const auto start = std::chrono::steady_clock::now();
  const MachineProfile profile = profile_cpu(models, o);
  CalibrationTable table = to_table(profile, o);
  double step_load = 1;
  StatusOr<std::vector<double>> slowdown =
      measure_step_slowdown(table, options.models.front(), o.tokens.back(),
                            options.quick ? 1 : std::min(options.threads, usable_cores()),
                            options.quick ? 1 : kStepRounds, o.seed,
                            [&](int round) {
                              if (show)
                                std::fprintf(stderr, "\r\033[Kstep slowdown, round %d", round + 1);
                            },
                            &step_load);
  if (show) std::fputs("\r\033[K", stderr);
  if (!slowdown.ok()) return report(slowdown.status());
  table.concurrency_slowdown = *slowdown;
  table.machine.speed_probe.step_load = step_load;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (Status s = write_file_atomic(options.out, calibration_to_json(table)); !s.ok()) {
    return report(s);
  }
  if (options.quiet) return 0;
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
      sp.reference_ns / 1e6, sp.samples, profile.speed_probe_median_ns / 1e6, sp.mean_ns / 1e6,
      sp.max_ns / 1e6, 100 * (sp.mean_ns / sp.reference_ns - 1));
  text += "step       slowdown, measured over predicted on fixed jobs (baseline and ChunkFlow):";
  for (size_t k = 0; k < table.concurrency_slowdown.size(); ++k) {
    text +=
        fmt::format("  {} thread{} ×{:.2f}", k + 1, k ? "s" : "", table.concurrency_slowdown[k]);
  }
  text += fmt::format(
      "\n           (its runs' probes ×{:.2f} the fastest: predictions are for a machine as "
      "loaded)",
      step_load);
  text += fmt::format("\ntransport  one-way delivery {:.1f} µs; send copy {:.1f} µs per MiB\n",
                      table.p2p.ns.front() / 1e3, interpolate(table.send, 1 << 20).ns / 1e3);
  for (const ModelCalibration& c : table.models) {
    text += fmt::format("\nmodel {} ({}): layer forward against its kernels\n{}", c.name,
                        to_string(c.shape), kernel_breakdown(c));
  }
  text += fmt::format("\nmeasured in {:.1f} s; table written to {}\n", seconds, options.out);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace

void add_calibrate_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<CalibrateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Measure the executor's op costs on this machine into a calibration table");
  cmd->add_option("-b,--backend", options->backend, "backend to measure")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("-o,--out", options->out, "calibration table to write (JSON)")
      ->capture_default_str();
  cmd->add_option("-m,--model", options->models,
                  "model(s) whose layer shapes are measured (names under models/ or paths)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", options->max_tokens, "largest chunk of the token grids")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", options->repetitions,
                  "timed runs per point (the fastest is kept)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("-w,--warmup", options->warmup, "untimed runs before them")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_option("--threads", options->threads,
                  "step slowdown measured for 1..N stage threads (pp·dp of a job), N at most "
                  "the usable cores; more threads are priced in proportion and flagged")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--quick", options->quick,
                "tiny grids and 3 repetitions (seconds; for tests, not for predictions)");
  cmd->add_flag("-q,--quiet", options->quiet, "no progress and no summary");
  cmd->callback([run, options] { *run = [options] { return run_calibrate(*options); }; });
}

}  // namespace cf::cli
