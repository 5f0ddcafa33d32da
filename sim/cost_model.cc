// make_cost_model: the cost model a job's cost_model section names.
#include "sim/cost_model.h"

#include <fmt/format.h>

#include "core/check.h"
#include "sim/cost_analytical.h"
#include "sim/cost_calibrated.h"
#include "sim/cost_unit.h"
#include "sim/offload_cost.h"

namespace cf {

OpQuery op_query(Pass pass, int dp_rank, int stage, int model_chunk, const StagePlace& place,
                 int64_t tokens, std::span<const AttentionSpan> spans) {
  OpQuery query;
  query.pass = pass;
  query.dp_rank = dp_rank;
  query.stage = stage;
  query.model_chunk = model_chunk;
  query.layers = place.layers();
  query.embedding = place.first;
  query.lm_head = place.last;
  query.tokens = tokens;
  query.spans = spans;
  return query;
}

void CostModel::op_times(std::span<const OpQuery> queries, std::span<OpTime> out) const {
  CF_CHECK_EQ(queries.size(), out.size());
  for (size_t i = 0; i < queries.size(); ++i) out[i] = op_time(queries[i]);
}

namespace {

StatusOr<std::unique_ptr<CostModel>> make_base_cost_model(const Job& job) {
  // The models price each stage's parameters by its layers; a job edited after loading (the
  // tuner's layouts) may carry a split of another pp.
  if (Status split = check_layer_split(layer_split(job.model.layers, job.parallel)); !split.ok()) {
    return Status::InvalidInput(job.origin + ": " + split.message());
  }
  switch (job.cost_model.kind) {
    case CostModelKind::kUnit:
      return std::unique_ptr<CostModel>(std::make_unique<UnitCostModel>());
    case CostModelKind::kAnalytical:
      return std::unique_ptr<CostModel>(std::make_unique<AnalyticalCostModel>(
          job.model, job.cluster.gpu, job.cluster.gpus_per_node, job.parallel, job.training,
          job.overlap));
    case CostModelKind::kCalibrated: {
      // The table's own errors name its file and key path; the job's key leads them.
      const std::string in_job = job.origin + ": cost_model.table";
      StatusOr<CalibrationTable> table = load_calibration(job.cost_model.table);
      if (!table.ok()) return table.status().prefixed(in_job);
      StatusOr<std::unique_ptr<CalibratedCostModel>> model =
          CalibratedCostModel::create(job, std::move(*table), job.cost_model.table);
      if (!model.ok()) return model.status().prefixed(in_job);
      return std::unique_ptr<CostModel>(std::move(*model));
    }
  }
  return Status::InvalidInput(job.origin + ": cost_model.kind: \"" +
                              to_string(job.cost_model.kind) +
                              "\" has no cost model in this simulator; use analytical or unit");
}

}  // namespace

// With K/V offload the model's op times gain the host copies they wait for (offload_cost.h);
// the unit model's times are not seconds, so it prices none.
StatusOr<std::unique_ptr<CostModel>> make_cost_model(const Job& job) {
  CF_ASSIGN_OR_RETURN(std::unique_ptr<CostModel> base, make_base_cost_model(job));
  if (!kv_offload_policy(job).enabled || job.cost_model.kind == CostModelKind::kUnit) {
    return base;
  }
  return std::unique_ptr<CostModel>(std::make_unique<OffloadCostModel>(
      std::move(base), MemoryModel(job.model, job.parallel, job.training), job.cluster.gpu));
}

}  // namespace cf
