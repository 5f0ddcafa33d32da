// The MPI driver (mpi_run.h): one StageWorker per rank, results gathered on rank 0.
#include "executor/mpi_run.h"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <optional>

#include "core/check.h"
#include "executor/fault_injection.h"
#include "executor/memory.h"
#include "executor/mpi_transport.h"
#ifdef CHUNKFLOW_HAVE_NCCL
#include "executor/nccl_transport.h"
#endif
#include "executor/mpi_wait.h"
#include "executor/rank_layout.h"
#include "executor/stage.h"

namespace cf {
namespace {

constexpr int kPeakFields = 3 + 2 * kMemoryCategories + 3;

std::vector<int64_t> pack_peak(const StageWorker& w, const MemoryTracker& t) {
  std::vector<int64_t> out = {w.stage(), w.dp_rank(), t.peak_total()};
  for (MemoryCategory c : kAllMemoryCategories) out.push_back(t.breakdown_at_peak()[c]);
  for (MemoryCategory c : kAllMemoryCategories) out.push_back(t.category_peaks()[c]);
  out.push_back(w.host_tracker().peak_total());
  out.push_back(w.store().host_copy_bytes());
  out.push_back(static_cast<int64_t>(w.store().host_copy_s() * 1e9));
  return out;
}

StageMemoryReport unpack_peak(const int64_t* p) {
  StageMemoryReport r;
  r.stage = static_cast<int>(p[0]);
  r.dp_rank = static_cast<int>(p[1]);
  r.peak_bytes = p[2];
  for (int i = 0; i < kMemoryCategories; ++i) {
    const MemoryCategory c = kAllMemoryCategories[static_cast<size_t>(i)];
    r.at_peak[c] = p[3 + i];
    r.category_peaks[c] = p[3 + kMemoryCategories + i];
  }
  r.host_peak_bytes = p[3 + 2 * kMemoryCategories];
  r.host_copy_bytes = p[4 + 2 * kMemoryCategories];
  r.host_copy_s = static_cast<double>(p[5 + 2 * kMemoryCategories]) * 1e-9;
  return r;
}

int int_count(int64_t n) {
  CF_CHECK(n >= 0 && n <= INT32_MAX) << n;
  return static_cast<int>(n);
}

// Completes `request` or, after `timeout_s` (> 0), ends the job naming `what`.
void wait(MPI_Request* request, double timeout_s, const char* what) {
  wait_or_abort(request, MPI_STATUS_IGNORE, timeout_s, [what] { return std::string(what); });
}

// Rank 0 runs the reference from every stage's weights and summed gradients (those of DP rank
// 0, CP rank 0). `comm` is a duplicate of the world reserved for these messages (tags 0 and 1).
std::optional<GradientCheck> gathered_check(const Job& job, const RankLayout& layout,
                                            StageWorker& worker, int rank, const TokenBatch& batch,
                                            MPI_Comm comm, double timeout_s) {
  const int pp = job.parallel.pp;
  if (rank != 0) {
    if (worker.dp_rank() == 0 && worker.cp_rank() == 0) {
      // Host copies: the stage's storage may be device memory (the CUDA backend).
      const StageParams& p = worker.params();
      const std::vector<float> weights = p.weights_on_host(), gradients = p.gradients_on_host();
      MPI_Request sends[2];
      MPI_Isend(weights.data(), int_count(p.count()), MPI_FLOAT, 0, 0, comm, &sends[0]);
      MPI_Isend(gradients.data(), int_count(p.count()), MPI_FLOAT, 0, 1, comm, &sends[1]);
      wait_or_abort(2, sends, MPI_STATUSES_IGNORE, timeout_s, [] {
        return std::string("rank 0 to take this stage's weights and gradients for the check");
      });
    }
    return std::nullopt;
  }
  MemoryTracker tracker;  // the copies are the check's, not the stage's
  std::vector<std::unique_ptr<StageParams>> copies;
  std::vector<const StageParams*> stages = {&worker.params()};
  for (int s = 1; s < pp; ++s) {
    copies.push_back(std::make_unique<StageParams>(
        job.model, layer_split(job.model.layers, job.parallel), s, &tracker));
    StageParams& p = *copies.back();
    const int from = layout.rank(0, 0, s);
    MPI_Request recvs[2];
    MPI_Irecv(p.weights(), int_count(p.count()), MPI_FLOAT, from, 0, comm, &recvs[0]);
    MPI_Irecv(p.gradients(), int_count(p.count()), MPI_FLOAT, from, 1, comm, &recvs[1]);
    wait_or_abort(2, recvs, MPI_STATUSES_IGNORE, timeout_s, [from, s] {
      return fmt::format("the weights and gradients of stage {} from rank {} for the check", s,
                         from);
    });
    stages.push_back(&p);
  }
  return check_against_reference(job.model, stages, batch);
}

// Every rank's trace ops and memory samples, merged on rank 0 (serialised as Chrome JSON).
Status gather_trace(StageWorker& worker, int rank, int size, double timeout_s, Trace* out) {
  Trace part;
  part.source = "measured";
  part.ops = worker.trace_ops();
  part.memory = worker.memory_samples();
  worker.clear_trace();
  const std::string text = trace_to_chrome_json(part);
  int length = int_count(static_cast<int64_t>(text.size()));
  std::vector<int> lengths(static_cast<size_t>(size)), displs(static_cast<size_t>(size));
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_Igather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD, &request);
  wait(&request, timeout_s, "every rank's trace length (MPI_Igather to rank 0)");
  std::string all;
  if (rank == 0) {
    int64_t total = 0;
    for (int r = 0; r < size; ++r) {
      displs[static_cast<size_t>(r)] = int_count(total);
      total += lengths[static_cast<size_t>(r)];
    }
    all.resize(static_cast<size_t>(total));
  }
  MPI_Igatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), displs.data(), MPI_CHAR,
               0, MPI_COMM_WORLD, &request);
  wait(&request, timeout_s, "every rank's trace (MPI_Igatherv to rank 0)");
  if (rank != 0) return Status::Ok();
  for (int r = 0; r < size; ++r) {
    StatusOr<Trace> t =
        trace_from_chrome_json(all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                                          static_cast<size_t>(lengths[static_cast<size_t>(r)])),
                               fmt::format("<rank {}>", r));
    if (!t.ok()) return Status::Runtime("gathering the measured trace: " + t.status().message());
    out->ops.insert(out->ops.end(), t->ops.begin(), t->ops.end());
    out->memory.insert(out->memory.end(), t->memory.begin(), t->memory.end());
  }
  return Status::Ok();
}

}  // namespace

MpiSession::MpiSession() {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    // Funneled: a process may run threads (the tuner's workers in `chunkflow sweep`), but only
    // the thread that initialised MPI calls it.
    int provided = MPI_THREAD_SINGLE;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    owns_ = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  // A failure names its rank in mpirun's merged output: MPI errors and CHECK failures.
  set_abort_error_handler(MPI_COMM_WORLD);
  set_check_failure_context(fmt::format("rank {}", rank_));
}

MpiSession::~MpiSession() {
  if (owns_) MPI_Finalize();
}

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr ||
         std::getenv("PMIX_RANK") != nullptr;
}

StatusOr<MpiRunResult> run_with_mpi(const Job& job, const ExecutorOptions& options,
                                    const StepCallback& on_step) {
  // Bad input is found here, by every rank alike, so every rank returns it.
  CF_RETURN_IF_ERROR(validate_for_executor(job));
  CF_ASSIGN_OR_RETURN(const std::optional<FaultSpec> fault, fault_from_environment());
  retain_freed_memory();
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int dp = job.parallel.dp, pp = job.parallel.pp, vpp = job.parallel.vpp;
  const RankLayout layout{dp, job.parallel.cp, pp};
  if (size != layout.size()) {
    return Status::InvalidInput(fmt::format(
        "{}: parallel: the job needs dp × cp × pp = {} × {} × {} = {} MPI ranks (rank = "
        "(stage·dp + dp_rank)·cp + cp_rank), but mpirun started {}",
        job.origin, dp, layout.cp, pp, layout.size(), size));
  }
  CF_ASSIGN_OR_RETURN(TokenSource source, TokenSource::open(job, options));
  // A rank that cannot open its device returns it like bad input (every rank of a host sees
  // the same devices); a failure on one rank only ends the job from the first collective.
  CF_ASSIGN_OR_RETURN(const std::shared_ptr<Backend> backend, open_backend(options));
  CF_RETURN_IF_ERROR(check_device_memory(job, options, *backend));
  StageWorker worker(job.model, layer_split(job.model.layers, job.parallel),
                     layout.dp_rank_of(rank), layout.stage_of(rank), backend.get(),
                     CpRank{layout.cp, layout.cp_rank_of(rank)});
  worker.set_kv_offload(kv_offload_policy(job));
  if (fault && fault->rank == rank) {
    worker.set_before_op([&worker, spec = *fault](int64_t ops_run) {
      if (ops_run == spec.after_ops) inject_fault(spec.action, worker.stream().allocator());
    });
  }
  worker.params().initialise(options.seed, options.init_std);
  MpiTransport host_transport(MPI_COMM_WORLD, dp, pp, vpp, job.model.tied_embeddings, layout.cp,
                              options.mpi_timeout_s);
  // A CUDA rank's storage is device memory: NCCL carries its messages and sums.
  std::unique_ptr<Transport> device_transport;
#ifdef CHUNKFLOW_HAVE_NCCL
  if (backend->device_storage()) {
    device_transport = make_nccl_transport(layout, job.model.tied_embeddings, &worker.stream(),
                                           options.mpi_timeout_s);
  }
#endif
  CF_CHECK(device_transport || !backend->device_storage())
      << "a device backend under mpirun needs the NCCL transport (built with CUDA and MPI)";
  Transport& transport = device_transport ? *device_transport : host_transport;
  MPI_Comm check_comm = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &check_comm);
  struct FreeComm {
    MPI_Comm* comm;
    ~FreeComm() { MPI_Comm_free(comm); }
  } free_check_comm{&check_comm};
  const double timeout_s = options.mpi_timeout_s;

  MpiRunResult result;
  result.root = rank == 0;
  RunReport& report = result.report;
  report.stages.resize(static_cast<size_t>(pp));
  for (int s = 0; s < pp; ++s) report.stages[static_cast<size_t>(s)].stage = s;
  // From here a failure is this rank's own: returning would leave the others waiting on it, so
  // it ends the job. Caught here, an exception unwinds nothing that waits on a peer.
  try {
    for (int64_t step = 0; step < job.training.steps; ++step) {
      const TokenBatch batch = source.batch(step);
      CF_ASSIGN_OR_RETURN(Plan plan, source.plan(step, batch));  // the same on every rank
      const bool record = options.record_trace && step == 0;
      const bool record_here = record && worker.cp_rank() == 0;  // CP rank 0 is the trace's
      StepReport sr;
      sr.step = step;
      sr.tokens = plan.total_tokens();
      sr.chunks = static_cast<int>(plan.chunks.size());

      MPI_Request barrier = MPI_REQUEST_NULL;
      MPI_Ibarrier(MPI_COMM_WORLD, &barrier);
      wait(&barrier, timeout_s, "every rank to start the step (MPI_Ibarrier)");
      const StepClock::time_point t0 = StepClock::now();
      worker.run_step(plan, batch, &transport, t0, record_here);
      const StepClock::time_point t1 = StepClock::now();
      if (options.check_reference) {
        sr.check = gathered_check(job, layout, worker, rank, batch, check_comm, timeout_s);
      }
      const StepClock::time_point t2 = StepClock::now();
      worker.optimizer_step(options.adamw, step + 1, t2 - (t1 - t0), record_here);
      const StepClock::time_point t3 = StepClock::now();

      // The step lasts until the slowest rank is done.
      const double local_s = std::chrono::duration<double>((t1 - t0) + (t3 - t2)).count();
      const double local_loss = worker.stage() == pp - 1 ? worker.loss_sum() : 0.0;
      const std::vector<int64_t> mine = pack_peak(worker, worker.tracker());
      std::vector<int64_t> all(static_cast<size_t>(kPeakFields * size));
      MPI_Request sums[3];
      MPI_Ireduce(&local_s, &sr.step_time_s, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD, &sums[0]);
      MPI_Ireduce(&local_loss, &sr.loss, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD, &sums[1]);
      MPI_Igather(mine.data(), kPeakFields, MPI_INT64_T, all.data(), kPeakFields, MPI_INT64_T, 0,
                  MPI_COMM_WORLD, &sums[2]);
      wait_or_abort(3, sums, MPI_STATUSES_IGNORE, timeout_s, [] {
        return std::string("every rank's step time, loss and peak memory (to rank 0)");
      });
      std::vector<StageMemoryReport> peaks;  // CP rank 0's, for the trace
      for (int r = 0; r < size && rank == 0; ++r) {
        const StageMemoryReport peak =
            unpack_peak(all.data() + static_cast<size_t>(r) * kPeakFields);
        merge_stage_peak(peak, &report.stages);
        if (layout.cp_rank_of(r) == 0) peaks.push_back(peak);
      }
      if (record) {
        const Status gathered = gather_trace(worker, rank, size, timeout_s, &report.trace);
        if (!gathered.ok()) abort_mpi_job(gathered.message());
        if (rank == 0) finish_trace(peaks, sr, &report.trace);
      }
      if (on_step && rank == 0) on_step(sr, job.training.steps);
      report.steps.push_back(std::move(sr));
    }
    report.backend = backend->description();
    report.device_memory = backend->device_memory();  // rank 0's device
  } catch (const std::bad_alloc& e) {
    abort_mpi_job(std::string("out of memory (") + e.what() + ")");
  } catch (const std::exception& e) {
    abort_mpi_job(std::string("exception: ") + e.what());
  }
  return result;
}

}  // namespace cf
