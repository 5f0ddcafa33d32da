// The unit cost model: time in token units, backward twice the forward.
#include "sim/cost_unit.h"

namespace cf {

OpTime UnitCostModel::op_time(const OpQuery& query) const {
  const int64_t forward_ns = query.tokens * kUnitNsPerToken;
  OpTime time;
  time.total_ns = query.pass == Pass::kBackward ? 2 * forward_ns : forward_ns;
  return time;
}

}  // namespace cf
