// The Plan's small accessors (plan.h) and its JSON form (plan_to_json, plan_builder.h).
// Not the construction of a plan (plan_builder.cc) nor its verification (plan_checker.cc).
#include "sim/plan/plan.h"

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "sim/plan/plan_builder.h"

namespace cf {

int64_t Chunk::attention_pairs() const {
  // Causal chunk of q queries after a prefix of p keys: q·p + q(q+1)/2 unmasked pairs
  // (docs/COSTS-REFERENCE.md §5); a standalone segment has no prefix (block-diagonal mask).
  int64_t pairs = 0;
  for (const Segment& seg : segments) {
    const int64_t prefix = kind == ChunkKind::kDependent ? seg.offset : 0;
    pairs += seg.length * prefix + seg.length * (seg.length + 1) / 2;
  }
  return pairs;
}

bool Plan::offloaded(const Chunk& c, const KvOffloadPolicy& offload) const {
  return c.kind == ChunkKind::kDependent &&
         offload.offloads(sequence_lengths.at(static_cast<size_t>(c.segments.front().sequence)));
}

int64_t Plan::total_tokens() const {
  int64_t tokens = 0;
  for (int64_t length : sequence_lengths) tokens += length;
  return tokens;
}

int Plan::groups() const {
  int count = 0;
  for (const Chunk& chunk : chunks) {
    if (chunk.kind == ChunkKind::kDependent && chunk.index == 0) ++count;
  }
  return count;
}

int Plan::op_count() const {
  int count = 0;
  for (const RankPlan& rank : ranks) {
    for (const StagePlan& stage : rank.stages) count += static_cast<int>(stage.ops.size());
  }
  return count;
}

std::string plan_to_json(const Plan& plan) {
  // ordered_json keeps the documented key order; every array is in plan order, so the text
  // is a pure function of the Plan (DESIGN §5, determinism).
  using Json = nlohmann::ordered_json;
  Json out;
  out["strategy"] = to_string(plan.strategy);
  out["schedule"] = to_string(plan.schedule);
  out["pp"] = plan.pp;
  out["vpp"] = plan.vpp;
  out["dp"] = plan.dp;
  if (!plan.layers_per_stage.empty()) out["layers_per_stage"] = plan.layers_per_stage;
  out["k"] = plan.k;
  out["chunk_size"] = plan.chunk_size;
  out["sequence_lengths"] = plan.sequence_lengths;
  Json chunks = Json::array();
  for (const Chunk& chunk : plan.chunks) {
    Json segments = Json::array();
    for (const Segment& seg : chunk.segments) {
      segments.push_back(Json::array({seg.sequence, seg.offset, seg.length}));
    }
    chunks.push_back(
        Json{{"id", chunk.id},
             {"kind", chunk.kind == ChunkKind::kDependent ? "dependent" : "standalone"},
             {"tokens", chunk.tokens},
             {"segments", std::move(segments)},
             {"group", chunk.group},
             {"index", chunk.index}});
  }
  out["chunks"] = std::move(chunks);
  Json ranks = Json::array();
  for (const RankPlan& rank : plan.ranks) {
    Json stages = Json::array();
    for (size_t s = 0; s < rank.stages.size(); ++s) {
      Json ops = Json::array();
      for (const Op& op : rank.stages[s].ops) {
        ops.push_back(Json{{"id", op.id},
                           {"op", pass_name(op.pass)},
                           {"chunk", op.chunk},
                           {"model_chunk", op.model_chunk}});
      }
      stages.push_back(Json{{"stage", static_cast<int>(s)}, {"ops", std::move(ops)}});
    }
    ranks.push_back(
        Json{{"dp_rank", rank.dp_rank}, {"chunks", rank.chunks}, {"stages", std::move(stages)}});
  }
  out["ranks"] = std::move(ranks);
  return out.dump(1) + "\n";
}

}  // namespace cf
