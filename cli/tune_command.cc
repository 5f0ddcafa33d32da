// `chunkflow tune [JOB.yaml] [flags]`: the autotuner (tuner/). Without a job file it tunes
// the embedded default job (examples/default-tune.yaml). Prints the ranked table, the
// verdict and why, and the winner as job YAML (or writes it with --out); --json for machines.
// A search where nothing fits is a result (exit 0); bad input exits 2.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/progress.h"
#include "core/resources.h"
#include "tuner/report.h"
#include "tuner/report_html.h"
#include "tuner/tuner.h"
#ifdef CHUNKFLOW_HAVE_MPI
#include "executor/mpi_run.h"
#include "tuner/sweep_mpi.h"
#endif

namespace cf::cli {
namespace {

constexpr const char* kDefaultJob = "examples/default-tune.yaml";

struct TuneCliOptions {
  std::string job_path;
  SpaceFlags space;
  bool exhaustive = false;
  bool no_baseline = false;
  int threads = 0;
  bool json = false;
  bool quiet = false;
  std::string out_path;
  std::string html_path;
};

StatusOr<Job> load_tune_job(const std::string& path) {
  if (!path.empty()) return load_job(path);
  const std::string_view* text = embedded_file(kDefaultJob);
  if (text == nullptr)
    return Status::Runtime(fmt::format("{} is not embedded in this build", kDefaultJob));
  return parse_job(std::string(*text), fmt::format("<embedded:{}>", kDefaultJob));
}

int run_tune(const TuneCliOptions& options) {
  TuneOptions tune_options;
  tune_options.threads = options.threads;
  tune_options.exhaustive = options.exhaustive;
  tune_options.baseline = !options.no_baseline;
  // Under mpirun the ranks share the search (tuner/search_peers.h): each takes its share of
  // the bounds and of every wave, all end with the same result; rank 0 alone prints and
  // writes, the others exit with the same code.
  bool root = true;
  int ranks = 1;
#ifdef CHUNKFLOW_HAVE_MPI
  std::unique_ptr<MpiSession> session;
  std::unique_ptr<SearchPeers> peers;
  if (launched_by_mpirun()) {
    session = std::make_unique<MpiSession>();
    root = session->rank() == 0;
    ranks = session->size();
    peers = world_search_peers();
    if (ranks > 1) tune_options.peers = peers.get();
    if (tune_options.threads == 0) tune_options.threads = mpi_threads_per_rank();
  }
#endif
  auto fail = [root](const Status& status) { return root ? report(status) : status.exit_code(); };
  StatusOr<Job> job = load_tune_job(options.job_path);
  if (!job.ok()) return fail(job.status());
  StatusOr<SearchSpace> space = read_search_space(*job, options.space);
  if (!space.ok()) return fail(space.status());
  // An output that will be refused is refused before the search.
  for (const std::string& path : {options.out_path, options.html_path}) {
    if (path.empty()) continue;
    if (Status s = check_output_path(path); !s.ok()) return fail(s);
  }

  ProgressDisplay display(root && show_progress(options.quiet, options.json),
                          ranks > 1 ? fmt::format("tune on {} ranks", ranks) : std::string("tune"),
                          space->objective);
  display.attach(&tune_options);
  const auto start = std::chrono::steady_clock::now();
  StatusOr<TuneResult> result = tune(*job, *space, tune_options);
  display.finish();
  if (!result.ok()) return fail(result.status());
  if (!root) return 0;
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const bool have_best = result->best() != nullptr;
  if (have_best && !options.out_path.empty()) {
    if (Status s = write_file_atomic(options.out_path, best_job_yaml(*result)); !s.ok()) {
      return report(s);
    }
  }
  if (!options.html_path.empty()) {
    if (Status s = write_file_atomic(options.html_path, tune_report_html(*result)); !s.ok()) {
      return report(s);
    }
  }
  if (options.json) {
    nlohmann::json out = tune_report_json(*result);
    if (have_best && !options.out_path.empty()) out["best_job_file"] = options.out_path;
    if (!options.html_path.empty()) out["html"] = options.html_path;
    std::fputs((out.dump(2) + "\n").c_str(), stdout);
    return 0;
  }
  std::string text = tune_report_text(*result);
  text += fmt::format("searched in {:.2f} s on {} threads{}{}\n", wall_s, result->threads,
                      ranks > 1 ? fmt::format(" × {} ranks", ranks) : std::string(),
                      options.exhaustive ? " (exhaustive)" : "");
  if (have_best) {
    if (!options.out_path.empty()) {
      text += fmt::format("\nbest job written to {} (check it with `chunkflow simulate {}`)\n",
                          options.out_path, options.out_path);
    } else {
      text += "\nbest job (save it with --out FILE, then `chunkflow simulate FILE`):\n---\n" +
              best_job_yaml(*result);
    }
  }
  if (!options.html_path.empty())
    text += fmt::format("\nreport written to {}\n", options.html_path);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace

void add_tune_command(CLI::App& app, RunFn* run) {
  auto o = std::make_shared<TuneCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tune",
      "Search ChunkSize, K and optionally TP/PP/DP/recompute for the fastest configuration "
      "that fits; without JOB, the embedded default job (Qwen2.5-7B, 256K, 32 × H100)");
  cmd->add_option("job", o->job_path, "job YAML file (its optional tune: section sets the space)");
  cmd->add_option("-c,--chunk-sizes", o->space.chunk_sizes, "ChunkSizes to try, e.g. 4096,8192");
  cmd->add_option("-k,--k", o->space.k, "K values to try, e.g. 1,2,4");
  cmd->add_option("--k-max", o->space.k_max, "try K = 1..N (default 64)");
  cmd->add_option("--tp", o->space.tp, "tensor-parallel sizes, e.g. 1,2,4, or all");
  cmd->add_option("--pp", o->space.pp, "pipeline-parallel sizes, or all");
  cmd->add_option("--cp", o->space.cp,
                  "context-parallel sizes, e.g. 1,2,4, or all (1, 2, 4, 8 where they fit)");
  cmd->add_option("--dp", o->space.dp, "data-parallel sizes to keep (default: GPUs / (tp·pp))");
  cmd->add_option("--recompute", o->space.recompute, "none,selective,full or all");
  cmd->add_option("--schedule", o->space.schedule, "1f1b,gpipe,interleaved");
  cmd->add_option("--packer", o->space.packer, "balanced,ffd or all");
  cmd->add_option("--split", o->space.split,
                  "pipeline layer splits: even, balanced (for the embedding and the LM head), or "
                  "all (default)");
  cmd->add_flag("-p,--parallel", o->space.parallel,
                "also search tp, pp, cp and recompute (all values)");
  cmd->add_option("--margin", o->space.memory_margin, "fraction of HBM kept free (default 0.05)");
  cmd->add_option("--objective", o->space.objective, "step_time (default) or tokens_per_s");
  cmd->add_option("-n,--top", o->space.top, "rows of the ranked table (default 10)");
  cmd->add_flag("-e,--exhaustive", o->exhaustive, "simulate every candidate (no pruning)");
  cmd->add_flag("--no-baseline", o->no_baseline, "skip tuning the Megatron-style baseline");
  cmd->add_option("-t,--threads", o->threads, "worker threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("-j,--json", o->json, "print the result as JSON");
  cmd->add_flag("-q,--quiet", o->quiet,
                "no progress line (shown on a terminal's stderr, never with --json)");
  cmd->add_option("-o,--out", o->out_path, "write the best configuration as a job YAML here");
  cmd->add_option("--html", o->html_path,
                  "write a self-contained HTML report: ChunkSize x K heat maps per layout and "
                  "packer, the top candidates, why the winner wins, the baseline's best");
  cmd->callback([run, o] { *run = [o] { return run_tune(*o); }; });
}

}  // namespace cf::cli
