// make_cost_model: the cost model a job's cost_model section names.
#include "sim/cost_model.h"

#include "sim/cost_analytical.h"
#include "sim/cost_unit.h"

namespace cf {

StatusOr<std::unique_ptr<CostModel>> make_cost_model(const Job& job) {
  switch (job.cost_model.kind) {
    case CostModelKind::kUnit:
      return std::unique_ptr<CostModel>(std::make_unique<UnitCostModel>());
    case CostModelKind::kAnalytical:
      return std::unique_ptr<CostModel>(std::make_unique<AnalyticalCostModel>(
          job.model, job.cluster.gpu, job.cluster.gpus_per_node, job.parallel));
    case CostModelKind::kCalibrated:
      break;
  }
  return Status::InvalidInput(job.origin + ": cost_model.kind: \"" +
                              to_string(job.cost_model.kind) +
                              "\" has no cost model in this simulator; use analytical or unit");
}

}  // namespace cf
