// The unit cost model (DESIGN.md §6): forward time = tokens, backward = 2 × forward, no
// communication, no DP reduction or optimizer. For schedules checked against hand-computed
// numbers (§4.3). One token costs kUnitNsPerToken, so a Chrome trace (µs) reads in tokens.
#pragma once

#include "sim/cost_model.h"

namespace cf {

class UnitCostModel final : public CostModel {
 public:
  static constexpr int64_t kUnitNsPerToken = 1000;

  std::string name() const override { return "unit"; }
  // F, F*, R: tokens; B: 2 × tokens — whatever the layers, stage or recompute policy.
  OpTime op_time(const OpQuery& query) const override;
  int64_t p2p_time_ns(const P2pQuery&) const override { return 0; }
  int64_t dp_reduce_time_ns(int) const override { return 0; }
  int64_t optimizer_time_ns(int) const override { return 0; }
};

}  // namespace cf
