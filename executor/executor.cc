// In-process execution of a job (executor.h): one thread per (DP rank, stage), the in-process
// transport, the reference check between the gradient sums and the optimizer step.
#include "executor/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <thread>

#include "core/check.h"
#include "executor/inproc_transport.h"
#include "executor/memory.h"
#include "executor/rank_layout.h"
#include "executor/stage.h"
#include "sim/plan/plan_builder.h"
#ifdef CHUNKFLOW_HAVE_CUDA
#include "executor/cuda_backend.h"
#include "executor/cuda_transport.h"
#endif

namespace cf {

double RunReport::step_time_s() const {
  double total = 0;
  for (const StepReport& s : steps) total += s.step_time_s;
  return steps.empty() ? 0 : total / static_cast<double>(steps.size());
}

double RunReport::tokens_per_s() const {
  double tokens = 0, seconds = 0;
  for (const StepReport& s : steps) {
    tokens += static_cast<double>(s.tokens);
    seconds += s.step_time_s;
  }
  return seconds > 0 ? tokens / seconds : 0;
}

double RunReport::loss() const {
  double total = 0;
  for (const StepReport& s : steps) total += s.loss;
  return steps.empty() ? 0 : total / static_cast<double>(steps.size());
}

std::optional<GradientCheck> RunReport::worst_check() const {
  std::optional<GradientCheck> worst;
  for (const StepReport& s : steps) {
    if (s.check && (!worst || !(s.check->rel_error <= worst->rel_error))) worst = s.check;
  }
  return worst;
}

Status validate_for_executor(const Job& job) {
  if (job.model.gpt()) {
    // The executor's layer is the Llama / Qwen2 one (RMSNorm, SwiGLU, RoPE).
    return Status::InvalidInput(fmt::format(
        "{}: model: the executor runs Llama / Qwen2 layers (RMSNorm, SwiGLU, RoPE); {} is a gpt "
        "model (LayerNorm, GeLU, learned positions), which only the simulator prices",
        job.origin, job.model.name));
  }
  if (job.parallel.tp != 1) {
    return Status::InvalidInput(fmt::format(
        "{}: parallel.tp: the executor has no tensor parallelism (tp must be 1, got {})",
        job.origin, job.parallel.tp));
  }
  if (job.parallel.cp > 1 && job.parallel.cp_comm != CpComm::kAllGather) {
    return Status::InvalidInput(
        fmt::format("{}: parallel.cp_comm: the executor runs cp > 1 with all_gather only (got {})",
                    job.origin, to_string(job.parallel.cp_comm)));
  }
  if (job.parallel.recompute != Recompute::kNone) {
    return Status::InvalidInput(fmt::format(
        "{}: parallel.recompute: the executor runs recompute: none (got {}); ChunkFlow's "
        "F*/R recompute is part of the plan",
        job.origin, to_string(job.parallel.recompute)));
  }
  if (kv_offload_of(job) == KvOffload::kAuto) {
    return Status::InvalidInput(fmt::format(
        "{}: strategy.kv_offload: auto is decided before a run (resolve_run_offload, as "
        "`chunkflow run` does); give the executor none or all",
        job.origin));
  }
  return Status::Ok();
}

StatusOr<std::shared_ptr<Backend>> open_backend(const ExecutorOptions& options, int device) {
  if (options.backend == "cpu") {
    return std::shared_ptr<Backend>(&cpu_backend(), [](Backend*) {});  // the process's own
  }
  if (options.backend != "cuda") {
    return Status::InvalidInput(
        fmt::format("--backend {}: unknown backend (cpu or cuda)", options.backend));
  }
  if (options.math != "fp32" && options.math != "bf16") {
    return Status::InvalidInput(fmt::format("--math {}: unknown (fp32 or bf16)", options.math));
  }
#ifdef CHUNKFLOW_HAVE_CUDA
  if (device < 0) {
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) devices = 1;  // open says why
    device = local != nullptr ? std::max(0, std::atoi(local)) % devices : 0;
  }
  CF_ASSIGN_OR_RETURN(
      std::unique_ptr<CudaBackend> cuda,
      CudaBackend::open(device, options.math == "bf16" ? cuda::Math::kBf16 : cuda::Math::kFp32));
  return std::shared_ptr<Backend>(std::move(cuda));
#else
  return Status::Runtime(
      "--backend cuda: this chunkflow was built without the CUDA backend (CHUNKFLOW_CUDA=OFF or "
      "no nvcc at build time)");
#endif
}

Status check_device_memory(const Job& job, const ExecutorOptions& options, const Backend& backend) {
  const std::optional<DeviceMemoryReport> m = backend.device_memory();
  if (!m || options.device_bytes_needed == 0) return Status::Ok();
  const int64_t free = m->device_total - m->driver_used;
  if (options.device_bytes_needed <= free) return Status::Ok();
  return Status::InvalidInput(fmt::format(
      "{}: run: needs {:.2f} GiB on {} (fp32 weights, gradients, AdamW states, activations and "
      "K/V state of the stages it holds, as the executor's own accounting counts them), the "
      "device has {:.2f} GiB free of {:.2f} GiB; nothing was allocated. Use a smaller model, "
      "more stages (pp) on more GPUs, or `chunkflow simulate` for the prediction",
      job.origin, options.device_bytes_needed / 1073741824.0, backend.description(),
      free / 1073741824.0, m->device_total / 1073741824.0));
}

StatusOr<TokenSource> TokenSource::open(const Job& job, const ExecutorOptions& options) {
  TokenSource source;
  source.job_ = &job;
  source.seed_ = options.seed;
  if (!options.tokens_path.empty()) {
    CF_ASSIGN_OR_RETURN(source.file_sequences_,
                        read_token_file(options.tokens_path, job.model.vocab));
  }
  return source;
}

TokenBatch TokenSource::batch(int64_t step) const {
  if (!file_sequences_.empty()) {
    return token_file_batch(file_sequences_, job_->training.global_batch, step);
  }
  return synthetic_tokens(job_global_batch(*job_, step), job_->model.vocab, seed_, step);
}

StatusOr<Plan> TokenSource::plan(int64_t step, const TokenBatch& batch) const {
  PlanInputs inputs = plan_inputs_from_job(*job_, step);
  inputs.sequence_lengths = batch.lengths();
  return build_plan(inputs);
}

void merge_stage_peak(const StageMemoryReport& peak, std::vector<StageMemoryReport>* stages) {
  StageMemoryReport& worst = (*stages)[static_cast<size_t>(peak.stage)];
  const MemoryBreakdown category_peaks = worst.category_peaks;
  const StageMemoryReport before = worst;
  if (peak.peak_bytes > worst.peak_bytes) worst = peak;
  for (MemoryCategory c : kAllMemoryCategories) {
    worst.category_peaks[c] = std::max(category_peaks[c], peak.category_peaks[c]);
  }
  worst.host_peak_bytes = std::max(before.host_peak_bytes, peak.host_peak_bytes);
  worst.host_copy_bytes = std::max(before.host_copy_bytes, peak.host_copy_bytes);
  worst.host_copy_s = std::max(before.host_copy_s, peak.host_copy_s);
}

void finish_trace(const std::vector<StageMemoryReport>& peaks, const StepReport& step0,
                  Trace* trace) {
  trace->source = "measured";
  std::stable_sort(trace->ops.begin(), trace->ops.end(), [](const TraceOp& a, const TraceOp& b) {
    return std::tie(a.dp_rank, a.stage, a.start_ns) < std::tie(b.dp_rank, b.stage, b.start_ns);
  });
  for (const StageMemoryReport& p : peaks) {
    CF_CHECK_EQ(p.at_peak.total(), p.peak_bytes) << "the breakdown at the peak";
    trace->peak_memory[{p.dp_rank, p.stage}] = p.at_peak;
  }
  trace->metrics = {{"step_time_s", step0.step_time_s},
                    {"tokens_per_s", step0.step_time_s > 0 ? step0.tokens / step0.step_time_s : 0},
                    {"loss", step0.loss}};
}

namespace {

StageMemoryReport worker_peak(StageWorker& worker) {
  MemoryTracker& t = worker.tracker();
  return StageMemoryReport{worker.stage(),
                           worker.dp_rank(),
                           t.peak_total(),
                           t.breakdown_at_peak(),
                           t.category_peaks(),
                           worker.host_tracker().peak_total(),
                           worker.store().host_copy_bytes(),
                           worker.store().host_copy_s()};
}

// Runs fn(worker) on one thread per worker (bound to the backend's device) and waits for all.
template <typename Fn>
void on_every_worker(const Backend& backend, std::vector<std::unique_ptr<StageWorker>>& workers,
                     Fn fn) {
  std::vector<std::thread> threads;
  threads.reserve(workers.size());
  for (auto& w : workers) {
    threads.emplace_back([&backend, &fn, &w] {
      backend.bind_thread();
      fn(*w);
    });
  }
  for (std::thread& t : threads) t.join();
}

double seconds_between(StepClock::time_point a, StepClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

StatusOr<RunReport> run_in_process(const Job& job, const ExecutorOptions& options,
                                   const StepCallback& on_step) {
  CF_RETURN_IF_ERROR(validate_for_executor(job));
  retain_freed_memory();
  CF_ASSIGN_OR_RETURN(TokenSource source, TokenSource::open(job, options));
  CF_ASSIGN_OR_RETURN(const std::shared_ptr<Backend> backend, open_backend(options, 0));
  CF_RETURN_IF_ERROR(check_device_memory(job, options, *backend));
  const int dp = job.parallel.dp, pp = job.parallel.pp;
  const LayerSplit split = layer_split(job.model.layers, job.parallel);
  const RankLayout layout{dp, job.parallel.cp, pp};
  InProcessFabric fabric(dp, pp, layout.cp);
  std::vector<std::unique_ptr<StageWorker>> workers;  // index: the rank (rank_layout.h)
  std::vector<std::unique_ptr<InProcessTransport>> host_transports;
#ifdef CHUNKFLOW_HAVE_CUDA
  // Every stage on one GPU: device messages and sums between the stage streams.
  std::unique_ptr<DeviceFabric> device_fabric;
  if (backend->device_storage()) device_fabric = std::make_unique<DeviceFabric>(dp, pp, layout.cp);
#endif
  std::vector<std::unique_ptr<Transport>> device_transports(static_cast<size_t>(layout.size()));
  std::vector<Transport*> transports;  // what each worker uses
  for (int rank = 0; rank < layout.size(); ++rank) {
    const int r = layout.dp_rank_of(rank), c = layout.cp_rank_of(rank), s = layout.stage_of(rank);
    workers.push_back(
        std::make_unique<StageWorker>(job.model, split, r, s, backend.get(), CpRank{layout.cp, c}));
    workers.back()->set_kv_offload(kv_offload_policy(job));
    host_transports.push_back(std::make_unique<InProcessTransport>(&fabric, r, s, c));
    std::unique_ptr<Transport>& device = device_transports[static_cast<size_t>(rank)];
#ifdef CHUNKFLOW_HAVE_CUDA
    if (device_fabric) {
      device = std::make_unique<CudaInProcessTransport>(
          device_fabric.get(), host_transports.back().get(), &workers.back()->stream(), r, s, c);
    }
#endif
    transports.push_back(device ? device.get() : host_transports.back().get());
  }
  auto worker = [&](int dp_rank, int cp_rank, int stage) -> StageWorker& {
    return *workers[static_cast<size_t>(layout.rank(dp_rank, cp_rank, stage))];
  };
  on_every_worker(*backend, workers,
                  [&](StageWorker& w) { w.params().initialise(options.seed, options.init_std); });

  RunReport report;
  report.stages.resize(static_cast<size_t>(pp));
  for (int s = 0; s < pp; ++s) report.stages[static_cast<size_t>(s)].stage = s;
  for (int64_t step = 0; step < job.training.steps; ++step) {
    const TokenBatch batch = source.batch(step);
    CF_ASSIGN_OR_RETURN(Plan plan, source.plan(step, batch));
    const bool record = options.record_trace && step == 0;
    StepReport sr;
    sr.step = step;
    sr.tokens = plan.total_tokens();
    sr.chunks = static_cast<int>(plan.chunks.size());

    // The CP ranks of a stage run the same ops in lockstep: CP rank 0's are the measured trace.
    const StepClock::time_point t0 = StepClock::now();
    on_every_worker(*backend, workers, [&](StageWorker& w) {
      const int rank = layout.rank(w.dp_rank(), w.cp_rank(), w.stage());
      w.run_step(plan, batch, transports[static_cast<size_t>(rank)], t0,
                 record && w.cp_rank() == 0);
    });
    const StepClock::time_point t1 = StepClock::now();
    CF_CHECK_EQ(fabric.undelivered(), 0u) << "messages sent that no op received";
#ifdef CHUNKFLOW_HAVE_CUDA
    if (device_fabric) {
      CF_CHECK_EQ(device_fabric->undelivered(), 0u) << "device messages sent that no op received";
    }
#endif
    if (options.check_reference) {
      std::vector<const StageParams*> stages;  // gradients summed: any (DP, CP) rank's are these
      for (int s = 0; s < pp; ++s) stages.push_back(&worker(0, 0, s).params());
      sr.check = check_against_reference(job.model, stages, batch);
    }
    // The optimizer's clock continues where the pipeline's stopped (the check is not timed).
    const StepClock::time_point t2 = StepClock::now();
    const StepClock::time_point origin = t2 - (t1 - t0);
    on_every_worker(*backend, workers, [&](StageWorker& w) {
      w.optimizer_step(options.adamw, step + 1, origin, record && w.cp_rank() == 0);
    });
    const StepClock::time_point t3 = StepClock::now();
    sr.step_time_s = seconds_between(t0, t1) + seconds_between(t2, t3);
    for (auto& w : workers) {
      if (w->stage() == pp - 1) sr.loss += w->loss_sum();  // every CP rank's own tokens
    }

    std::vector<StageMemoryReport> peaks;  // CP rank 0's, for the trace
    for (auto& w : workers) {
      merge_stage_peak(worker_peak(*w), &report.stages);
      if (w->cp_rank() == 0) peaks.push_back(worker_peak(*w));
    }
    if (step == 0) {  // index dp_rank·pp + stage, CP rank 0
      for (int r = 0; r < dp; ++r) {
        for (int s = 0; s < pp; ++s) report.op_memory.push_back(worker(r, 0, s).op_memory());
      }
    }
    if (record) {
      for (auto& w : workers) {
        report.trace.ops.insert(report.trace.ops.end(), w->trace_ops().begin(),
                                w->trace_ops().end());
        report.trace.memory.insert(report.trace.memory.end(), w->memory_samples().begin(),
                                   w->memory_samples().end());
        w->clear_trace();
      }
      finish_trace(peaks, sr, &report.trace);
    }
    if (on_step) on_step(sr, job.training.steps);
    report.steps.push_back(std::move(sr));
  }
  report.backend = backend->description();
  report.device_memory = backend->device_memory();
  return report;
}

}  // namespace cf
