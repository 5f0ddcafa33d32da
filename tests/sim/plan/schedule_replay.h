// Test helper: a zero-communication list-scheduling replay of one DP rank under the unit
// cost model (F = F* = R = tokens, B = 2·tokens): an op starts when its stage is free and the
// op it depends on (input_of, plan_index.h) has finished. Only for checking schedules against
// hand-computed numbers; the simulator's engine is sim/engine.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "sim/plan/plan.h"
#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_index.h"

namespace cf::test {

// Plan inputs of a ChunkFlow job on `lengths`: 4 layers per virtual stage.
inline PlanInputs chunkflow(std::vector<int64_t> lengths, int64_t chunk_size, int k, int pp,
                            ScheduleKind schedule = ScheduleKind::kOneFOneB, int vpp = 1,
                            int dp = 1) {
  PlanInputs in;
  in.sequence_lengths = std::move(lengths);
  in.strategy.kind = StrategyKind::kChunkFlow;
  in.strategy.chunk_size = chunk_size;
  in.strategy.k = k;
  in.schedule = schedule;
  in.pp = pp;
  in.vpp = vpp;
  in.dp = dp;
  in.layers = 4 * pp * vpp;
  return in;
}

struct UnitReplay {
  int64_t makespan = 0;
  int64_t busy = 0;  // Σ over stages of busy time
  bool deadlocked = false;
  double bubble_ratio(int pp) const {
    return 1.0 - static_cast<double>(busy) / (static_cast<double>(pp) * makespan);
  }
};

inline int64_t unit_cost(const Plan& plan, const Op& op) {
  const int64_t tokens = plan.chunks[static_cast<size_t>(op.chunk)].tokens;
  return op.pass == Pass::kBackward ? 2 * tokens : tokens;
}

inline UnitReplay replay_unit(const Plan& plan, int dp_rank = 0) {
  const RankPlan& rank = plan.ranks[static_cast<size_t>(dp_rank)];
  const int pp = plan.pp, vpp = plan.vpp;
  // End time of (backward?, stage, chunk, model chunk).
  std::map<std::tuple<bool, int, int, int>, int64_t> end;
  std::vector<size_t> next(static_cast<size_t>(pp), 0);
  std::vector<int64_t> free_at(static_cast<size_t>(pp), 0);
  UnitReplay out;
  for (bool progress = true; progress;) {
    progress = false;
    for (int s = 0; s < pp; ++s) {
      const std::vector<Op>& ops = rank.stages[static_cast<size_t>(s)].ops;
      for (size_t& i = next[static_cast<size_t>(s)]; i < ops.size(); ++i, progress = true) {
        const Op& op = ops[i];
        const int v = op.model_chunk;
        int64_t ready = 0;
        // The plan's input rule (plan_index.h); the last virtual stage's B follows its own
        // forward (its R, if any, runs just before it on the same stage).
        const OpInput need = input_of(op.pass, s, v, pp, vpp);
        if (need.source != InputSource::kNone) {
          const std::tuple<bool, int, int, int> dep{need.source == InputSource::kBackward,
                                                    need.stage, op.chunk, need.model_chunk};
          auto it = end.find(dep);
          if (it == end.end()) break;
          ready = it->second;
        }
        const int64_t start = std::max(ready, free_at[static_cast<size_t>(s)]);
        const int64_t cost = unit_cost(plan, op);
        free_at[static_cast<size_t>(s)] = start + cost;
        out.busy += cost;
        out.makespan = std::max(out.makespan, start + cost);
        if (op.pass != Pass::kRecompute) {
          end[{op.pass == Pass::kBackward, s, op.chunk, v}] = start + cost;
        }
      }
    }
  }
  for (int s = 0; s < pp; ++s) {
    if (next[static_cast<size_t>(s)] != rank.stages[static_cast<size_t>(s)].ops.size()) {
      out.deadlocked = true;
    }
  }
  return out;
}

// A stage's stream as text: "F0 F*1 B0 R1 B1"; with vpp > 1 each op also names its model
// chunk: "F0.1".
inline std::string stream_string(const Plan& plan, int dp_rank, int stage) {
  std::string out;
  for (const Op& op :
       plan.ranks[static_cast<size_t>(dp_rank)].stages[static_cast<size_t>(stage)].ops) {
    if (!out.empty()) out += ' ';
    out += pass_name(op.pass);
    out += std::to_string(op.chunk);
    if (plan.vpp > 1) {
      out += '.';
      out += std::to_string(op.model_chunk);
    }
  }
  return out;
}

}  // namespace cf::test
