// `chunkflow run JOB.yaml [--backend cpu|cuda] [--trace FILE] [--json] [--check-reference] ...`:
// executes the job's training steps with real kernels (the executor), in-process (one thread
// per stage and CP rank) or under `mpirun -np dp·cp·pp` (one rank per stage and CP rank), and
// reports step time, tokens/s, loss and peak memory per stage, optionally the gradient error
// against whole-sequence training. Not the simulator (`chunkflow simulate`).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "executor/calibrate/run_memory.h"
#include "executor/executor.h"
#include "sim/metrics.h"
#include "sim/simulator.h"
#ifdef CHUNKFLOW_HAVE_MPI
#include "executor/mpi_run.h"
#endif

namespace cf::cli {
namespace {

struct RunOptions {
  std::string job_path;
  std::string backend = "cpu";
  std::string math = "fp32";
  std::string transport = "auto";  // auto | inproc | mpi
  std::string trace_path;
  std::string tokens_path;
  bool json = false;
  bool check_reference = false;
  uint64_t seed = 0;
  float lr = 1e-3f;
  float init_std = 0.02f;
  double mpi_timeout_s = kDefaultPeerTimeoutS;
};

std::string mib(int64_t bytes) { return fmt::format("{:.3f} MiB", bytes / 1048576.0); }

nlohmann::json report_json(const Job& job, const RunOptions& options, const std::string& transport,
                           const std::string& offload, const RunReport& report) {
  nlohmann::json steps = nlohmann::json::array();
  for (const StepReport& s : report.steps) {
    nlohmann::json step = {{"step", s.step},
                           {"tokens", s.tokens},
                           {"chunks", s.chunks},
                           {"step_time_s", s.step_time_s},
                           {"loss", s.loss}};
    if (s.check) step["grad_rel_error"] = s.check->rel_error;
    steps.push_back(step);
  }
  nlohmann::json stages = nlohmann::json::array();
  for (const StageMemoryReport& st : report.stages) {
    stages.push_back({{"stage", st.stage},
                      {"dp_rank", st.dp_rank},
                      {"peak_memory_bytes", st.peak_bytes},
                      {"peak_memory_breakdown", breakdown_json(st.at_peak)},
                      {"category_peak_bytes", breakdown_json(st.category_peaks)}});
    if (kv_offload_policy(job).enabled) {
      stages.back()["host_peak_bytes"] = st.host_peak_bytes;
      stages.back()["host_copy_bytes"] = st.host_copy_bytes;
      stages.back()["host_copy_s"] = st.host_copy_s;
    }
  }
  nlohmann::json out = {{"job", job.origin},
                        {"backend", options.backend},
                        {"device", report.backend},
                        {"transport", transport},
                        {"strategy", to_string(job.strategy.kind)},
                        {"kv_offload", offload},
                        {"steps", steps},
                        {"step_time_s", report.step_time_s()},
                        {"tokens_per_s", report.tokens_per_s()},
                        {"loss", report.loss()},
                        {"stages", stages}};
  if (std::optional<GradientCheck> check = report.worst_check()) {
    // JSON has no infinity: a non-finite error (NaN gradients) is written as null.
    out["grad_rel_error"] =
        std::isfinite(check->rel_error) ? nlohmann::json(check->rel_error) : nlohmann::json();
    out["grad_worst_tensor"] = check->worst_tensor;
  }
  if (report.device_memory) {
    const DeviceMemoryReport& m = *report.device_memory;
    out["device_memory"] = {{"executor_peak_bytes", m.executor_peak},
                            {"pool_used_peak_bytes", m.pool_used_peak},
                            {"driver_used_bytes", m.driver_used},
                            {"driver_used_at_open_bytes", m.driver_used_at_open},
                            {"device_total_bytes", m.device_total}};
  }
  if (!options.trace_path.empty()) out["trace"] = options.trace_path;
  return out;
}

// `offload`: where the K/V state went, in kv_offload_label's words.
std::string report_text(const Job& job, const RunReport& report, const std::string& transport,
                        const std::string& offload) {
  std::string out =
      fmt::format("backend           {} ({} transport, {} step{})\n", report.backend, transport,
                  report.steps.size(), report.steps.size() == 1 ? "" : "s");
  out += fmt::format("step time         {:.6g} s (mean)\n", report.step_time_s());
  out += fmt::format("throughput        {:.6g} tokens/s\n", report.tokens_per_s());
  out += fmt::format("loss              {:.6f} (mean", report.loss());
  if (report.steps.size() > 1) {
    out += fmt::format("; first {:.6f}, last {:.6f}", report.steps.front().loss,
                       report.steps.back().loss);
  }
  out += ")\n";
  if (std::optional<GradientCheck> check = report.worst_check()) {
    out += fmt::format("grad rel. error   {:.3g} against whole-sequence training (worst: {})\n",
                       check->rel_error, check->worst_tensor);
  }
  out +=
      fmt::format("\n{:>5} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13}\n", "stage", "peak mem",
                  "weights", "grads", "optimizer", "activations", "store", "transient");
  for (const StageMemoryReport& st : report.stages) {
    const MemoryBreakdown& b = st.at_peak;
    out += fmt::format("{:>5} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13}\n", st.stage,
                       mib(st.peak_bytes), mib(b.weights), mib(b.gradients), mib(b.optimizer),
                       mib(b.activations), mib(b.state_store), mib(b.transient));
  }
  int64_t host_peak = 0, host_bytes = 0;
  double host_s = 0;
  for (const StageMemoryReport& st : report.stages) {
    host_peak = std::max(host_peak, st.host_peak_bytes);
    host_bytes = std::max(host_bytes, st.host_copy_bytes);
    host_s = std::max(host_s, st.host_copy_s);
  }
  if (offload.starts_with("auto: ")) {
    out += fmt::format("\nK/V offload       {} ({})\n", offload,
                       report.device_memory ? "the executor's need against the device's free memory"
                                            : "a host backend: its host pool is the same RAM, so "
                                              "offloading would free none of it");
  }
  const char* gap = offload.starts_with("auto: ") ? "" : "\n";
  if (host_peak > 0) {
    out += fmt::format(
        "{}K/V offload       host pool peak {} (busiest stage); {} moved into and out of it in "
        "{:.3g} s of copies over the run\n",
        gap, mib(host_peak), mib(host_bytes), host_s);
  } else if (kv_offload_policy(job).enabled) {
    const int64_t line = job.strategy.kv_offload_min_tokens;
    out += line > 0
               ? fmt::format(
                     "{}K/V offload       nothing offloaded: no split sequence of the "
                     "run has {} tokens or more (kv_offload_min_tokens)\n",
                     gap, line)
               : fmt::format("{}K/V offload       nothing offloaded: the run split no sequence\n",
                             gap);
  }
  if (report.device_memory) {
    // The executor's own count against the device allocator's and the driver's: the pool keeps
    // what it was given (a caching allocator), so the driver's growth is the pool's reserve.
    const DeviceMemoryReport& m = *report.device_memory;
    auto share = [](int64_t a, int64_t b) { return b > 0 ? 100.0 * (a - b) / b : 0.0; };
    out += fmt::format(
        "\ndevice memory     executor peak {} (all stages on the device); pool in use at its "
        "peak {} ({:+.2f}%); driver: {} more than at start ({:+.2f}%), {} of {} in use\n",
        mib(m.executor_peak), mib(m.pool_used_peak), share(m.pool_used_peak, m.executor_peak),
        mib(m.driver_delta()), share(m.driver_delta(), m.executor_peak), mib(m.driver_used),
        mib(m.device_total));
  }
  return out;
}

// A one-line progress display on an interactive stderr.
StepCallback progress_display() {
  if (!::isatty(STDERR_FILENO)) return {};
  return [](const StepReport& s, int64_t steps) {
    std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.3f s%s",
                 static_cast<long long>(s.step + 1), static_cast<long long>(steps), s.loss,
                 s.step_time_s, s.step + 1 == steps ? "\n" : "");
  };
}

int run_run(const RunOptions& options) {
  StatusOr<Job> job = load_job(options.job_path);
  if (!job.ok()) return report(job.status());
  ExecutorOptions exec;
  exec.seed = options.seed;
  exec.init_std = options.init_std;
  exec.adamw.lr = options.lr;
  exec.tokens_path = options.tokens_path;
  exec.check_reference = options.check_reference;
  exec.record_trace = !options.trace_path.empty();
  exec.mpi_timeout_s = options.mpi_timeout_s;
  exec.backend = options.backend;
  exec.math = options.math;
#ifdef CHUNKFLOW_HAVE_MPI
  const bool mpi =
      options.transport == "mpi" || (options.transport == "auto" && launched_by_mpirun());
#else
  if (options.transport == "mpi") {
    return report(Status::InvalidInput(
        "--transport mpi: this chunkflow was built without MPI (CHUNKFLOW_MPI=OFF)"));
  }
  const bool mpi = false;
#endif
  // kv_offload: auto is decided here, on the executor's own accounting against what the
  // device has free (a CUDA backend), before anything is allocated.
  std::string offload;
  {
    std::optional<int64_t> device_free;
    if (kv_offload_of(*job) == KvOffload::kAuto && options.backend == "cuda") {
      StatusOr<std::shared_ptr<Backend>> probe = open_backend(exec);
      if (!probe.ok()) return report(probe.status());
      if (const std::optional<DeviceMemoryReport> m = (*probe)->device_memory()) {
        device_free = m->device_total - m->driver_used;
      }
    }
    StatusOr<Job> placed = resolve_run_offload(*job, device_free, !mpi, &offload);
    if (!placed.ok()) return report(placed.status());
    if (offload.empty()) offload = kv_offload_label(*placed);
    job = *std::move(placed);
  }
  {
    // Resources before work: the memory the run will hold, against this machine's, before
    // any buffer is allocated (under mpirun, for the ranks on this host; printed by rank 0).
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
    const int local_ranks = local ? std::max(1, std::atoi(local)) : 1;
    // A CUDA run holds its buffers on the device: what each device will hold (in process,
    // every stage on one; under mpirun, one stage per rank) is checked when it is opened.
    if (options.backend == "cuda") {
      StatusOr<RunMemoryNeed> need = run_memory_need(*job, !mpi, 1);
      if (!need.ok()) return report(need.status());
      exec.device_bytes_needed = mpi ? need->largest_stage_bytes : need->bytes;
      if (Status pinned = check_host_pool_memory(*job, *need); !pinned.ok()) {
        return rank == nullptr || std::string(rank) == "0" ? report(pinned) : pinned.exit_code();
      }
    }
    if (Status fits =
            options.backend == "cpu" ? check_run_memory(*job, !mpi, local_ranks) : Status::Ok();
        !fits.ok()) {
      return rank == nullptr || std::string(rank) == "0" ? report(fits) : fits.exit_code();
    }
  }
  std::unique_ptr<RunReport> result;
  bool root = true;
#ifdef CHUNKFLOW_HAVE_MPI
  std::unique_ptr<MpiSession> session;  // finalised after the output is written
  if (mpi) {
    session = std::make_unique<MpiSession>();
    StatusOr<MpiRunResult> run = run_with_mpi(*job, exec, progress_display());
    if (!run.ok()) return session->rank() == 0 ? report(run.status()) : run.status().exit_code();
    root = run->root;
    result = std::make_unique<RunReport>(std::move(run->report));
  }
#endif
  if (!mpi) {
    StatusOr<RunReport> run = run_in_process(*job, exec, progress_display());
    if (!run.ok()) return report(run.status());
    result = std::make_unique<RunReport>(*std::move(run));
  }
  if (!root) return 0;

  const std::string transport = mpi ? "mpi" : "inproc";
  if (!options.trace_path.empty()) {
    const Status s =
        write_with_resolved_job(options.trace_path, trace_to_chrome_json(result->trace), *job);
    if (!s.ok()) return report(s);
  }
  if (options.json) {
    std::fputs(report_json(*job, options, transport, offload, *result).dump(2).c_str(), stdout);
    std::fputs("\n", stdout);
  } else {
    std::fputs(resolved_table(*job).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fputs(report_text(*job, *result, transport, offload).c_str(), stdout);
    if (!options.trace_path.empty()) {
      std::fputs(written_note(options.trace_path).c_str(), stdout);
    }
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Execute the job's training steps with real kernels and measure them");
  cmd->add_option("job", options->job_path, "job YAML file")->required();
  cmd->add_option("-b,--backend", options->backend,
                  "compute backend: cpu (the reference) or cuda (one GPU per process)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--math", options->math,
                  "cuda: fp32 (exact: no TF32, attention on CUDA cores) or bf16 (tensor cores, "
                  "bf16 operands, fp32 accumulation; storage stays fp32)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--transport", options->transport,
                  "stage transport: inproc (threads), mpi (one rank per stage and CP rank, "
                  "under mpirun), auto (mpi when started by mpirun)")
      ->check(CLI::IsMember({"auto", "inproc", "mpi"}));
  cmd->add_flag("-j,--json", options->json, "print the measurements as JSON");
  cmd->add_option("-t,--trace", options->trace_path,
                  "write step 0's measured timeline as Chrome Trace Event JSON with the plan's "
                  "op ids; the resolved job is saved beside it as NAME.job.yaml");
  cmd->add_flag("-c,--check-reference", options->check_reference,
                "also compute each step with every sequence whole on one stage and report the "
                "largest relative gradient difference");
  cmd->add_option("--tokens", options->tokens_path,
                  "JSONL token file (one array of ids, or {\"input_ids\": [...]}, per line); "
                  "default: synthetic tokens with the dataset's lengths");
  cmd->add_option("--seed", options->seed, "seed of the weights and synthetic tokens");
  cmd->add_option("--lr", options->lr, "AdamW learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--init-std", options->init_std, "standard deviation of the initial weights")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--mpi-timeout", options->mpi_timeout_s,
                  "under mpirun: seconds a rank waits for a peer (a message, a collective) "
                  "before it ends the job naming the wait; 0 waits forever")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([run, options] { *run = [options] { return run_run(*options); }; });
}

}  // namespace cf::cli
