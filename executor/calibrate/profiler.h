// The op-cost measurements behind `chunkflow calibrate --backend cpu`: the executor's own code
// paths (its F and B ops on one stage, the head and embedding, the CPU kernels, the
// in-process transport, the AdamW step) timed on this machine over grids of sizes, with
// warm-up, repetitions and the fastest of wall-clock and thread-CPU time. Not the table
// (profile_table.h turns the measurements into one; sim/calibration_table.h is its format).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "executor/executor.h"
#include "models/model.h"

namespace cf {

// The speed probe's default sequence length (speed_probe_ns).
inline constexpr int64_t kSpeedProbeTokens = 128;

struct ProfileOptions {
  int warmup = 2;
  int repetitions = 7;
  std::vector<int64_t> tokens;            // layer, head, embedding, GEMM, elementwise grids
  std::vector<int64_t> attention_q;       // query tokens of one segment
  std::vector<int64_t> attention_prefix;  // key prefix before it (the first must be 0)
  std::vector<int64_t> message_bytes;     // transport grid
  std::vector<int64_t> optimizer_params;  // AdamW grid
  uint64_t seed = 1;
  int64_t probe_tokens = kSpeedProbeTokens;  // the speed probe's sequences
  // Called before each measurement series: what is measured, series done, series in all.
  std::function<void(const std::string& what, int done, int total)> progress;

  // The default grids (powers of two and their 1.5× midpoints up to `max_tokens`).
  static ProfileOptions defaults(int64_t max_tokens);
};

// The fastest of the repetitions of one size. `probes` are the indices (first, last) into
// MachineProfile::speed_probe of the speed probes taken while it was measured; profile_cpu
// rescales every sample from the machine's speed then to the reference speed.
struct Sample {
  double x = 0;
  double wall_ns = 0;
  double cpu_ns = 0;
  std::pair<int, int> probes{-1, -1};
};
using Series = std::vector<Sample>;

struct GemmProfile {
  std::string name;
  int64_t in_features = 0;
  int64_t out_features = 0;
  Series forward;   // linear_forward
  Series backward;  // linear_backward: dx and dW (and db with a bias)
};

struct NamedSeries {
  std::string name;
  Series series;
};

struct ModelProfile {
  std::string name;
  ModelConfig model;
  // The executor's own F and B ops over all layers (a one-stage StageWorker over one-sequence
  // micro-batches of t tokens): embedding, every layer and head, as measured.
  Series stack_forward;
  Series stack_backward;
  // One layer: (stack − embedding − head) / layers, at least 1 ns; profile_cpu derives it once
  // every sample is at the reference speed, so the terms subtracted are at the same speed.
  Series layer_forward;
  Series layer_backward;
  Series embedding_forward, embedding_backward;
  Series head_forward;   // final norm, logits, loss and dlogits
  Series head_backward;  // LM head backward, final norm backward, freeing the head's tensors
  std::vector<double> attention_q, attention_prefix;
  std::vector<std::vector<Sample>> attention_forward;  // [q][prefix], x = q
  std::vector<std::vector<Sample>> attention_backward;
  std::vector<GemmProfile> gemm;
  std::vector<NamedSeries> elementwise;
};

struct MachineProfile {
  std::string cpu_model;
  int cores = 1;
  double load_average = 0;
  // speed_probe_ns() taken before every measurement series, every in-situ layer run and,
  // in the series measured in shuffled rounds (embedding, head, attention), before every visit
  // or every few, in order: how the machine's speed moved while it was calibrated. The probe
  // is spiky (the machine's other tenants take it away for tens of milliseconds at a time) and
  // its cores change speed for tens of seconds, so a sample's speed is the fastest of the
  // probes from two before its first to two after its last, and every sample is rescaled from
  // that to `speed_reference_ns`, the fastest of all probes: the slow phases are taken out,
  // the bursts are left out by the fastest of the repetitions.
  std::vector<double> speed_probe;
  double speed_reference_ns = 0;  // the fastest probe
  double speed_probe_min_ns = 0, speed_probe_max_ns = 0, speed_probe_mean_ns = 0;
  double speed_probe_median_ns = 0;
  int64_t speed_probe_tokens = kSpeedProbeTokens;
  Series send;       // InProcessTransport::send of x bytes
  Series p2p;        // one-way: send on one thread until recv returns on a waiting one
  Series allreduce;  // InProcessTransport::allreduce_dp over 2 DP ranks, x bytes
  Series optimizer;  // adamw_step and gradient zeroing over x parameters
  std::vector<ModelProfile> models;
};

// The executor's own ops on one stage: a StageWorker (pp = dp = 1) runs `count` sequences of
// t tokens after one warm-up, one per micro-batch (the baseline, per sequence), so its stream
// is F B F B ...; each op is the embedding, every layer and the head. Appends the timed ops'
// durations (ns) and returns the run's thread-CPU share of its wall time.
double executor_op_times(const ModelConfig& model, int64_t tokens, int count, uint64_t seed,
                         std::vector<double>* forward, std::vector<double>* backward);

// The median of the values (the mean of the middle two for an even count); CHECKs non-empty.
double median(std::vector<double> values);

// The arithmetic mean; CHECKs non-empty.
double mean(const std::vector<double>& values);

// The statistic of repeated timings in calibration and validation: the fastest (the minimum;
// CHECKs non-empty). On a machine shared with other tenants their load only ever adds time,
// in bursts of tens of milliseconds that hit a varying share of the repetitions (on the 2-core
// machine of docs/VALIDATION.md, the speed probe's median moved 32..47 ms between three
// calibrations minutes apart while its fastest stayed at 23.6..24.1 ms). The fastest is the
// figure that repeats; what the load adds to a whole step is the step fit's
// (CalibrationTable::concurrency_slowdown: mean step times of whole runs, over the op curves'
// prediction, at the load its probes saw).
double fastest(const std::vector<double>& values);

// How fast this machine runs the executor right now: the wall time of a fixed piece of its
// work, the F and B ops of the built-in `tiny` model over two sequences of `tokens` tokens
// (kSpeedProbeTokens unless a calibration says otherwise) on one stage, after a warm-up one.
// Calibration takes it through every series and keeps the fastest as its reference; a run
// probed later (run_with_speed_probe) over that reference is the machine's load then (on a
// shared or virtual machine, tens of percent within minutes).
double speed_probe_ns(int64_t tokens = kSpeedProbeTokens, uint64_t seed = 1);

// An in-process executor run with speed_probe_ns(probe_tokens) taken before its first step
// and after every step (outside the steps' clocks). `load` is the mean of those probes over
// `reference_ns` (a calibration's reference, its fastest probe of the same tokens): how much
// longer than at its fastest the machine took for a fixed piece of work around the run (1: no
// longer). The machine's other tenants take time from the run in bursts, in proportion to its
// length, so the mean (not the median, which jumps between the bursts' share and none) is
// the probe's estimate of that proportion. One run's few probes are noisy: the step fit and
// the validation matrix average the loads of many runs.
struct ProbedRun {
  RunReport report;
  double load = 1;
};
StatusOr<ProbedRun> run_with_speed_probe(const Job& job, const ExecutorOptions& options,
                                         double reference_ns, int64_t probe_tokens);

// One model's measurements; `step` is called before each series with what it measures
// (profile_model_steps() calls in all) and returns the index of a speed probe taken then;
// `probe` takes one more (before each in-situ run, and through the series measured in
// rounds) and returns its index. Samples carry the probes taken while they were measured.
ModelProfile profile_model(const std::string& name, const ModelConfig& model,
                           const ProfileOptions& options,
                           const std::function<int(const std::string&)>& step,
                           const std::function<int()>& probe);
int profile_model_steps();

// Measures everything for each (name, model). Runs on the calling thread (and helper threads
// for the transport series). Takes seconds to minutes: see the grids.
MachineProfile profile_cpu(const std::vector<std::pair<std::string, ModelConfig>>& models,
                           const ProfileOptions& options);

// This machine: the CPU model (/proc/cpuinfo), the cores this process may use, the 1-minute
// load average.
std::string cpu_model_name();
int usable_cores();
double load_average_1min();

// The calling thread's CPU time so far (CLOCK_THREAD_CPUTIME_ID), ns: read around a timed call,
// what the call itself consumed.
double thread_cpu_ns();

}  // namespace cf
