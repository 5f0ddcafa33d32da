// Pipeline schedules (DESIGN §4.3): 1F1B, GPipe and interleaved 1F1B over the chunks of one
// DP rank, with the state-aware rule. Not the dependency replay (plan_checker.cc).
#include "sim/plan/pipeline_schedule.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "core/check.h"

namespace cf {

int warmup_forwards(ScheduleKind schedule, int pp, int vpp, int stage, int m) {
  CF_CHECK(stage >= 0 && stage < pp) << "stage " << stage << " of pp " << pp;
  switch (schedule) {
    case ScheduleKind::kOneFOneB:
      return std::min(pp - stage - 1, m);
    case ScheduleKind::kGPipe:
      return m;
    case ScheduleKind::kInterleaved: {
      const int warmup = 2 * (pp - stage - 1) + (vpp - 1) * interleaved_group_size(pp);
      return std::min(warmup, m * vpp);
    }
  }
  CF_CHECK(false) << "unknown schedule " << static_cast<int>(schedule);
  return 0;
}

Status check_interleaved_microbatches(int m, int pp) {
  if (m == 0) return Status::Ok();
  const int group = interleaved_group_size(pp);
  if (m < group) {
    return Status::InvalidInput(
        "parallel.schedule: interleaved 1F1B needs at least pp = " + std::to_string(pp) +
        " chunks per DP rank (Megatron: p <= G <= m, G = pp), got m = " + std::to_string(m));
  }
  const int remainder = m % group;
  if (remainder != 0 && remainder < pp) {
    return Status::InvalidInput(
        "parallel.schedule: interleaved 1F1B needs the chunks per DP rank m = " +
        std::to_string(m) + " to leave a remainder mod G = " + std::to_string(group) +
        " of 0 or >= pp (Megatron's dependency-bubble rule), got " + std::to_string(remainder));
  }
  return Status::Ok();
}

std::vector<VirtualMicrobatch> interleaved_table(int m, int vpp, int group_size) {
  CF_CHECK_GE(group_size, 1);
  std::vector<VirtualMicrobatch> table;
  for (int first = 0; first < m; first += group_size) {
    // [MLM schedules.py:989-1016]: the last group runs every remaining microbatch.
    const int last = first + group_size >= m ? m : first + group_size;
    for (int chunk = 0; chunk < vpp; ++chunk) {
      for (int mb = first; mb < last; ++mb) table.push_back({mb, chunk});
    }
    if (last == m) break;
  }
  return table;
}

namespace {

// One stage's stream from the forward and backward virtual lists (feed position, model chunk).
// Before the k-th backward the stage has run max(warmup + k + 1, furthest + 1 + lead)
// forwards: the first term is Megatron's steady state (one F, one B after the warm-up); the
// second is the state-aware rule — every forward a backward so far needed ("furthest" is the
// largest forward slot among backwards 0..k) — plus the stage's lead over the last stage.
// Without the lead, a group whose backwards wait for all its forwards leaves every stage
// with no forward in hand when the group's backwards start, and each later backward then
// waits a full pipeline round trip (measured: 84% bubble for Qwen2.5-72B at 256K, pp = 8).
std::vector<Op> stage_stream(const PipelineInput& input,
                             const std::vector<VirtualMicrobatch>& forwards,
                             const std::vector<VirtualMicrobatch>& backwards, size_t warmup,
                             size_t lead) {
  std::map<std::pair<int, int>, size_t> forward_slot;  // (feed pos, model chunk) → index
  for (size_t i = 0; i < forwards.size(); ++i) {
    forward_slot[{forwards[i].microbatch, forwards[i].model_chunk}] = i;
  }
  std::vector<Op> ops;
  size_t next_forward = 0;
  auto emit_forward = [&]() {
    const VirtualMicrobatch& f = forwards[next_forward++];
    ops.push_back(Op{0, input.forward[static_cast<size_t>(f.microbatch)],
                     input.chunks[static_cast<size_t>(f.microbatch)], f.model_chunk});
  };
  while (next_forward < warmup) emit_forward();
  size_t furthest = 0;
  for (size_t k = 0; k < backwards.size(); ++k) {
    const VirtualMicrobatch& b = backwards[k];
    furthest = std::max(furthest, forward_slot.at({b.microbatch, b.model_chunk}));
    const size_t target = std::min(forwards.size(), std::max(warmup + k + 1, furthest + 1 + lead));
    while (next_forward < target) emit_forward();
    const int chunk = input.chunks[static_cast<size_t>(b.microbatch)];
    if (input.forward[static_cast<size_t>(b.microbatch)] == Pass::kForwardKeepKV) {
      ops.push_back(Op{0, Pass::kRecompute, chunk, b.model_chunk});
    }
    ops.push_back(Op{0, Pass::kBackward, chunk, b.model_chunk});
  }
  CF_CHECK_EQ(next_forward, forwards.size());
  return ops;
}

// Forwards a stage keeps ahead of the last stage in steady state: 1F1B's pp − s − 1. GPipe
// runs every forward first. Interleaved 1F1B keeps Megatron's table alone (lead 0): extra
// forwards of a later model chunk there can wait on a stage that waits on this one's
// backward (a deadlock the plan checker finds on random plans).
size_t stage_lead(ScheduleKind schedule, int pp, int stage) {
  return schedule == ScheduleKind::kOneFOneB ? static_cast<size_t>(pp - stage - 1) : 0;
}

}  // namespace

StatusOr<std::vector<StagePlan>> schedule_pipeline(const PipelineInput& input,
                                                   ScheduleKind schedule, int pp, int vpp) {
  const int m = static_cast<int>(input.chunks.size());
  CF_CHECK_EQ(input.forward.size(), input.chunks.size());
  CF_CHECK_EQ(input.backward_order.size(), input.chunks.size());
  CF_CHECK(pp >= 1 && vpp >= 1) << "pp " << pp << " vpp " << vpp;
  CF_CHECK(schedule == ScheduleKind::kInterleaved || vpp == 1)
      << "vpp " << vpp << " needs the interleaved schedule";
  std::vector<VirtualMicrobatch> forwards;
  std::vector<VirtualMicrobatch> backwards;
  if (schedule == ScheduleKind::kInterleaved) {
    CF_RETURN_IF_ERROR(check_interleaved_microbatches(m, pp));
    forwards = interleaved_table(m, vpp, interleaved_group_size(pp));
    // Backward virtual microbatch k: the same table entry over the backward order, with the
    // model chunk reversed [MLM schedules.py get_model_chunk_id(forward=False)].
    for (const VirtualMicrobatch& entry : forwards) {
      backwards.push_back({input.backward_order[static_cast<size_t>(entry.microbatch)],
                           vpp - 1 - entry.model_chunk});
    }
  } else {
    for (int pos = 0; pos < m; ++pos) forwards.push_back({pos, 0});
    for (int pos : input.backward_order) backwards.push_back({pos, 0});
  }
  std::vector<StagePlan> stages(static_cast<size_t>(pp));
  for (int s = 0; s < pp; ++s) {
    stages[static_cast<size_t>(s)].ops = stage_stream(
        input, forwards, backwards, static_cast<size_t>(warmup_forwards(schedule, pp, vpp, s, m)),
        stage_lead(schedule, pp, s));
  }
  return stages;
}

}  // namespace cf
