// The calibrated cost model: each op priced as the executor runs it (executor/stage.cc), from
// the measured curves of calibration_table.h. Interpolation: log-log piecewise linear over
// sizes; attention bilinear over (log q, prefix). Compute is scaled by the step slowdown
// measured with as many stage threads as the job has.
#include "sim/cost_calibrated.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/numeric.h"
#include "sim/memory_model.h"

namespace cf {
namespace {

int64_t round_ns(double ns) { return whole_ns(ns); }

struct Sum {
  double ns = 0;
  double extrapolation = 1;
  void add(const Lookup& l, double times = 1) {
    ns += times * l.ns;
    extrapolation = std::max(extrapolation, l.extrapolation);
  }
};

}  // namespace

StatusOr<std::unique_ptr<CalibratedCostModel>> CalibratedCostModel::create(
    const Job& job, CalibrationTable table, const std::string& origin) {
  if (job.parallel.tp != 1) {
    return Status::InvalidInput(fmt::format(
        "{}: parallel.tp: the calibrated cost model prices the measured {} backend, which has "
        "no tensor parallelism (tp must be 1, got {})",
        job.origin, table.machine.backend, job.parallel.tp));
  }
  if (job.parallel.recompute != Recompute::kNone) {
    return Status::InvalidInput(fmt::format(
        "{}: parallel.recompute: the calibrated cost model prices the executor, which runs "
        "recompute: none (ChunkFlow's F*/R are plan ops); got {}",
        job.origin, to_string(job.parallel.recompute)));
  }
  const ModelShape shape = ModelShape::of(job.model);
  if (table.find(shape) == nullptr) {
    std::string measured;
    for (const ModelCalibration& m : table.models) {
      measured +=
          fmt::format("{}{} ({})", measured.empty() ? "" : ", ", m.name, to_string(m.shape));
    }
    return Status::InvalidInput(fmt::format(
        "{}: cost_model.table: {} has no measurements for model {} ({}); it holds {}. Run "
        "`chunkflow calibrate --model {}`",
        job.origin, origin, job.model_name, to_string(shape), measured, job.model_name));
  }
  return std::unique_ptr<CalibratedCostModel>(new CalibratedCostModel(job, std::move(table)));
}

CalibratedCostModel::CalibratedCostModel(const Job& job, CalibrationTable table)
    : model_(job.model),
      parallel_(job.parallel),
      split_(layer_split(job.model.layers, job.parallel)),
      table_(std::move(table)) {
  calibration_ = table_.find(ModelShape::of(model_));
  CF_CHECK(calibration_ != nullptr);
  slowdown_ = concurrency_slowdown(parallel_.pp * parallel_.dp);
}

// The executor runs dp·pp stage threads. Measured for k = 1..n threads (calibrate's step
// jobs, n at most the cores); beyond n the last factor holds while the threads fit the
// machine's cores, and grows in proportion to the threads beyond them (the cores shared
// evenly).
double CalibratedCostModel::concurrency_slowdown(int threads) const {
  const std::vector<double>& s = table_.concurrency_slowdown;
  CF_CHECK(!s.empty());
  const int measured = static_cast<int>(s.size());
  if (threads <= measured) return s[static_cast<size_t>(std::max(threads, 1) - 1)];
  const int cores = std::max(table_.machine.cores, measured);
  return s.back() * std::max(1.0, static_cast<double>(threads) / cores);
}

Lookup CalibratedCostModel::layer(bool backward, int64_t tokens,
                                  std::span<const AttentionSpan> spans) const {
  const ModelCalibration& c = *calibration_;
  const AttentionGrid& grid = backward ? c.attention_backward : c.attention_forward;
  // layer(t) − attention(t as one segment) + Σ attention(segment): the kernel loops over the
  // segments independently, so its time is their sum.
  const Lookup whole =
      interpolate(backward ? c.layer_backward : c.layer_forward, static_cast<double>(tokens));
  const Lookup one_segment = interpolate(grid, static_cast<double>(tokens), 0);
  Sum sum;
  sum.add(Lookup{std::max(whole.ns - one_segment.ns, 0.0),
                 std::max(whole.extrapolation, one_segment.extrapolation)});
  for (const AttentionSpan& span : spans) {
    sum.add(
        interpolate(grid, static_cast<double>(span.q_len), static_cast<double>(span.kv_prefix)));
  }
  return Lookup{sum.ns, sum.extrapolation};
}

// An op of the executor: its layers, the embedding on the first virtual stage, the final
// norm, LM head and loss on the last, and the copy of the message it sends (F and F* send
// their output up unless they end the model; B sends its gradient down unless it starts it;
// R sends nothing). Waiting for an input is not part of an op (stage.cc receives first).
OpTime CalibratedCostModel::op_time(const OpQuery& query) const {
  const ModelCalibration& c = *calibration_;
  const bool backward = query.pass == Pass::kBackward;
  const double tokens = static_cast<double>(query.tokens);
  Sum sum;
  sum.add(layer(backward, query.tokens, query.spans), static_cast<double>(query.layers));
  if (query.embedding) {
    sum.add(interpolate(backward ? c.embedding_backward : c.embedding_forward, tokens));
  }
  if (query.lm_head) sum.add(interpolate(backward ? c.head_backward : c.head_forward, tokens));
  const bool sends = backward ? !query.embedding : query.pass != Pass::kRecompute && !query.lm_head;
  if (sends) sum.add(interpolate(table_.send, 4.0 * tokens * static_cast<double>(model_.hidden)));
  OpTime time;
  time.total_ns = round_ns(sum.ns * slowdown_);
  time.extrapolation = sum.extrapolation;
  const int threads = parallel_.pp * parallel_.dp;
  const int measured = static_cast<int>(table_.concurrency_slowdown.size());
  if (threads > measured) {
    time.extrapolation = std::max(time.extrapolation, static_cast<double>(threads) / measured);
  }
  return time;
}

int64_t CalibratedCostModel::p2p_time_ns(const P2pQuery& query) const {
  return round_ns(interpolate(table_.p2p, static_cast<double>(query.bytes)).ns);
}

// The executor's gradient sums after a stage's last op (stage.cc run_step): the tied
// embedding pair between stages 0 and pp−1, then DP. The in-process sum was measured over 2
// participants; its work grows with the participants it adds up.
int64_t CalibratedCostModel::dp_reduce_time_ns(int stage) const {
  double ns = 0;
  const int pp = parallel_.pp, dp = parallel_.dp;
  if (model_.tied_embeddings && pp > 1 && (stage == 0 || stage == pp - 1)) {
    ns += interpolate(table_.allreduce, 4.0 * model_.vocab * model_.hidden).ns;
  }
  if (dp > 1) {
    const double params = static_cast<double>(stage_local_parameters(model_, 1, split_, stage));
    ns += interpolate(table_.allreduce, 4.0 * params).ns * dp / 2.0;
  }
  return round_ns(ns);
}

// AdamW over the stage's parameters and the gradient zeroing (StageWorker::optimizer_step),
// every stage thread at once.
int64_t CalibratedCostModel::optimizer_time_ns(int stage) const {
  const double params = static_cast<double>(stage_local_parameters(model_, 1, split_, stage));
  return round_ns(interpolate(table_.optimizer, params).ns * slowdown_);
}

}  // namespace cf
