// The calibrated cost model (DESIGN.md §4.5): op times from a table `chunkflow calibrate`
// measured on the machine that runs the executor (calibration_table.h), interpolated; every
// lookup outside the measured grid is flagged in OpTime::extrapolation. Priced for the CPU
// executor (tp = 1, recompute: none, stages as threads of one process). Not analytical: no
// FLOP or byte counts, only what was measured.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "sim/calibration_table.h"
#include "sim/cost_model.h"

namespace cf {

class CalibratedCostModel final : public CostModel {
 public:
  // InvalidInput when the table has no measurements for the job's layer shape, or the job
  // needs what the measured backend does not have (tensor parallelism, a recompute policy).
  static StatusOr<std::unique_ptr<CalibratedCostModel>> create(const Job& job,
                                                               CalibrationTable table,
                                                               const std::string& origin);

  std::string name() const override { return "calibrated"; }
  OpTime op_time(const OpQuery& query) const override;
  int64_t p2p_time_ns(const P2pQuery& query) const override;
  int64_t dp_reduce_time_ns(int stage) const override;
  int64_t optimizer_time_ns(int stage) const override;
  int message_element_bytes() const override { return 4; }  // the executor's fp32

  // The factor compute ops are slowed by in a step with `threads` stage threads on this
  // machine: the table's measured step slowdown (a whole step's time over the op curves'
  // prediction, so the machine's other load, threads waiting on each other and cores of
  // unequal speed are in it); beyond the threads measured, the last factor while the threads
  // fit the machine's cores, growing in proportion to the threads beyond them.
  double concurrency_slowdown(int threads) const;
  const CalibrationTable& table() const { return table_; }

 private:
  CalibratedCostModel(const Job& job, CalibrationTable table);
  // One layer's forward or backward over a chunk: the measured layer at `tokens` tokens
  // (one standalone segment), its single-segment attention replaced by the chunk's spans.
  Lookup layer(bool backward, int64_t tokens, std::span<const AttentionSpan> spans) const;

  ModelConfig model_;
  ParallelConfig parallel_;
  LayerSplit split_;  // parallel_'s, for each stage's parameters
  CalibrationTable table_;
  const ModelCalibration* calibration_ = nullptr;  // inside table_
  double slowdown_ = 1;                            // concurrency_slowdown(dp·pp)
};

}  // namespace cf
