// The plan index (plan_index.h): the rule functions and their application to every op of a
// plan. Producers are found through one slot per (chunk, model chunk, stage, pass class).
#include "sim/plan/plan_index.h"

#include <fmt/format.h>

#include "core/check.h"
#include "core/numeric.h"

namespace cf {

void attention_spans(const Chunk& chunk, std::vector<AttentionSpan>* out) {
  for (const Segment& seg : chunk.segments) {
    out->push_back({seg.length, chunk.kind == ChunkKind::kDependent ? seg.offset : 0});
  }
}

StagePlace stage_place(const LayerSplit& split, int stage, int model_chunk) {
  const int pp = split.pp, vpp = split.vpp;
  CF_CHECK(stage >= 0 && stage < pp) << "stage " << stage << " of pp " << pp;
  CF_CHECK(model_chunk >= 0 && model_chunk < vpp) << "model chunk " << model_chunk << " of " << vpp;
  StagePlace place;
  place.virtual_stage = model_chunk * pp + stage;
  place.first_layer = split.first_layer(stage, model_chunk);
  place.end_layer = place.first_layer + split.model_chunk_layers(stage);
  place.first = place.virtual_stage == 0;
  place.last = place.virtual_stage == pp * vpp - 1;
  return place;
}

OpInput input_of(Pass pass, int stage, int model_chunk, int pp, int vpp) {
  const int s = stage, v = model_chunk;
  switch (pass) {
    case Pass::kRecompute:
      return {};
    case Pass::kForward:
    case Pass::kForwardKeepKV:
      if (s == 0 && v == 0) return {};
      return s > 0 ? OpInput{InputSource::kForward, s - 1, v}
                   : OpInput{InputSource::kForward, pp - 1, v - 1};
    case Pass::kBackward:
      if (s == pp - 1 && v == vpp - 1) return {InputSource::kOwnLoss, s, v};
      return s < pp - 1 ? OpInput{InputSource::kBackward, s + 1, v}
                        : OpInput{InputSource::kBackward, 0, v + 1};
  }
  CF_CHECK(false) << "unknown pass " << static_cast<int>(pass);
  return {};
}

int64_t boundary_bytes(int64_t tokens, const WireFormat& wire) {
  CF_CHECK_GT(wire.shards, 0);
  return ceil_div(tokens * wire.hidden * wire.element_bytes, wire.shards);
}

std::string op_label(const Op& op) {
  std::string label = fmt::format("op {} ({}{}", op.id, pass_name(op.pass), op.chunk);
  if (op.model_chunk > 0) label += fmt::format(" v{}", op.model_chunk);
  return label + ")";
}

namespace {

// Slots: per (chunk, model chunk, stage) the index of its forward (F or F*), its R and its B.
enum Slot { kForwardSlot = 0, kRecomputeSlot = 1, kBackwardSlot = 2 };

Slot slot_of(Pass pass) {
  if (pass == Pass::kRecompute) return kRecomputeSlot;
  return pass == Pass::kBackward ? kBackwardSlot : kForwardSlot;
}

size_t slot_at(const Plan& plan, int chunk, int model_chunk, int stage, Slot slot) {
  return static_cast<size_t>(((chunk * plan.vpp + model_chunk) * plan.pp + stage) * 3 + slot);
}

}  // namespace

StatusOr<PlanIndex> PlanIndex::build(const Plan& plan, const WireFormat& wire) {
  PlanIndex index;
  CF_RETURN_IF_ERROR(index.rebuild(plan, wire));
  return index;
}

Status PlanIndex::rebuild(const Plan& plan, const WireFormat& wire) {
  CF_CHECK(plan.pp >= 1 && plan.vpp >= 1 && static_cast<int>(plan.ranks.size()) == plan.dp)
      << "a plan of pp " << plan.pp << ", vpp " << plan.vpp << ", " << plan.ranks.size()
      << " ranks for dp " << plan.dp;
  for (const RankPlan& rank : plan.ranks) {
    CF_CHECK_EQ(static_cast<int>(rank.stages.size()), plan.pp) << "stages of a rank";
  }
  plan_ = &plan;
  ops_.clear();
  stream_begin_.clear();
  spans_.clear();
  span_begin_.assign(1, 0);
  // Spans of the chunks some op runs (a one-rank plan leaves the others' unscheduled).
  std::vector<char> runs(plan.chunks.size(), 0);
  for (const RankPlan& rank : plan.ranks) {
    for (const StagePlan& stage : rank.stages) {
      for (const Op& op : stage.ops) {
        if (op.chunk >= 0 && op.chunk < static_cast<int>(runs.size())) {
          runs[static_cast<size_t>(op.chunk)] = 1;
        }
      }
    }
  }
  for (size_t c = 0; c < plan.chunks.size(); ++c) {
    if (runs[c]) attention_spans(plan.chunks[c], &spans_);
    span_begin_.push_back(static_cast<int>(spans_.size()));
  }
  slots_.assign(plan.chunks.size() * static_cast<size_t>(plan.vpp * plan.pp * 3), -1);
  CF_RETURN_IF_ERROR(check_layer_split(plan.split()));
  places_.clear();  // places_[v·pp + s]
  const LayerSplit split = plan.split();
  for (int v = 0; v < plan.vpp; ++v) {
    for (int s = 0; s < plan.pp; ++s) places_.push_back(stage_place(split, s, v));
  }
  ops_.reserve(static_cast<size_t>(plan.op_count()));
  for (int r = 0; r < plan.dp; ++r) {
    const RankPlan& rank = plan.ranks[static_cast<size_t>(r)];
    for (int s = 0; s < plan.pp; ++s) {
      stream_begin_.push_back(size());
      for (const Op& op : rank.stages[static_cast<size_t>(s)].ops) {
        if (op.chunk < 0 || op.chunk >= static_cast<int>(plan.chunks.size()) ||
            op.model_chunk < 0 || op.model_chunk >= plan.vpp) {
          return Status::InvalidInput(fmt::format(
              "plan: {} on dp rank {} stage {} names a chunk or model chunk outside the plan",
              op_label(op), r, s));
        }
        int& slot = slots_[slot_at(plan, op.chunk, op.model_chunk, s, slot_of(op.pass))];
        if (slot >= 0) {
          return Status::InvalidInput(fmt::format(
              "plan: {} on dp rank {} stage {} repeats a pass of its chunk", op_label(op), r, s));
        }
        slot = size();
        ops_.push_back(
            IndexedOp{&op, r, s, places_[static_cast<size_t>(op.model_chunk * plan.pp + s)]});
      }
    }
  }
  stream_begin_.push_back(size());
  // Inputs: the rule's producer, found in its slot.
  auto slot = [&](int chunk, const OpInput& need, Slot kind) {
    return slots_[slot_at(plan, chunk, need.model_chunk, need.stage, kind)];
  };
  for (IndexedOp& entry : ops_) {
    const Op& op = *entry.op;
    const OpInput need = input_of(op.pass, entry.stage, op.model_chunk, plan.pp, plan.vpp);
    if (need.source == InputSource::kNone) continue;
    int producer = -1;
    if (need.source == InputSource::kOwnLoss) {
      producer = slot(op.chunk, need, kRecomputeSlot);
      if (producer < 0) producer = slot(op.chunk, need, kForwardSlot);
    } else {
      producer = slot(op.chunk, need,
                      need.source == InputSource::kBackward ? kBackwardSlot : kForwardSlot);
    }
    if (producer < 0) {
      return Status::InvalidInput(fmt::format(
          "plan: {} on dp rank {} stage {} needs the {} of chunk {} on stage {}, which is not in "
          "the plan",
          op_label(op), entry.dp_rank, entry.stage,
          op.pass == Pass::kBackward ? "backward or forward" : "forward", op.chunk, need.stage));
    }
    entry.input = producer;
    entry.input_crosses = need.stage != entry.stage;
    if (entry.input_crosses) {
      entry.input_bytes = boundary_bytes(plan.chunks[static_cast<size_t>(op.chunk)].tokens, wire);
      ops_[static_cast<size_t>(producer)].consumer = static_cast<int>(&entry - &ops_[0]);
    }
  }
  return Status::Ok();
}

std::span<const AttentionSpan> PlanIndex::spans(int chunk) const {
  const size_t c = static_cast<size_t>(chunk);
  return std::span<const AttentionSpan>(spans_).subspan(
      static_cast<size_t>(span_begin_[c]),
      static_cast<size_t>(span_begin_[c + 1] - span_begin_[c]));
}

TraceOp compute_trace_op(const PlanIndex& index, int i, int64_t start_ns, int64_t end_ns) {
  const IndexedOp& entry = index.op(i);
  const Op& op = *entry.op;
  const Chunk& chunk = index.plan().chunks[static_cast<size_t>(op.chunk)];
  TraceOp t;
  t.dp_rank = entry.dp_rank;
  t.stage = entry.stage;
  t.kind = OpKind::kCompute;
  t.pass = op.pass;
  t.chunk = op.chunk;
  t.model_chunk = op.model_chunk;
  t.op_id = op.id;
  t.start_ns = start_ns;
  t.end_ns = end_ns;
  t.tokens = chunk.tokens;
  t.group = chunk.group;
  t.index = chunk.index;
  return t;
}

TraceOp message_trace_op(const PlanIndex& index, int consumer, OpKind kind, int64_t start_ns,
                         int64_t end_ns) {
  const IndexedOp& to = index.op(consumer);
  CF_CHECK(to.input_crosses) << op_label(*to.op) << " receives no message";
  const IndexedOp& from = index.op(to.input);
  const bool send = kind == OpKind::kSend;
  CF_CHECK(send || kind == OpKind::kRecv) << op_kind_name(kind) << " is not a message";
  TraceOp t = compute_trace_op(index, send ? to.input : consumer, start_ns, end_ns);
  t.kind = kind;
  t.model_chunk = to.op->model_chunk;  // the receiver's: one key for both ends
  t.peer_stage = send ? to.stage : from.stage;
  t.bytes = to.input_bytes;
  return t;
}

}  // namespace cf
