// Pipeline schedules (DESIGN §4.3): 1F1B, GPipe and interleaved 1F1B over the chunks of one
// DP rank, with the state-aware rule. Not the dependency replay (plan_checker.cc).
#include "sim/plan/pipeline_schedule.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/check.h"
#include "sim/plan/plan_index.h"

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

std::vector<VirtualMicrobatch> interleaved_table(int m, int vpp, int group_size) {
  CF_CHECK_GE(group_size, 1);
  std::vector<VirtualMicrobatch> table;
  for (int first = 0; first < m; first += group_size) {
    // [MLM schedules.py:989-1016]: the last group runs every remaining microbatch (fewer than
    // group_size when group_size does not divide m).
    const int last = std::min(first + group_size, m);
    for (int chunk = 0; chunk < vpp; ++chunk) {
      for (int mb = first; mb < last; ++mb) table.push_back({mb, chunk});
    }
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
  // (feed position · vpp + model chunk) → index in `forwards`.
  int vpp = 1;
  for (const VirtualMicrobatch& f : forwards) vpp = std::max(vpp, f.model_chunk + 1);
  auto key = [&](const VirtualMicrobatch& v) {
    return static_cast<size_t>(v.microbatch) * static_cast<size_t>(vpp) +
           static_cast<size_t>(v.model_chunk);
  };
  std::vector<size_t> forward_slot(input.chunks.size() * static_cast<size_t>(vpp), 0);
  for (size_t i = 0; i < forwards.size(); ++i) forward_slot[key(forwards[i])] = i;
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
    furthest = std::max(furthest, forward_slot[key(b)]);
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

// A zero-time replay of one rank's streams: an op runs once its input (input_of,
// plan_index.h) has run, an R together with the B it precedes. For unblock_streams.
class StreamReplay {
 public:
  StreamReplay(const PipelineInput& input, const std::vector<VirtualMicrobatch>& forwards, int vpp,
               std::vector<StagePlan>* stages)
      : forwards_(forwards),
        stages_(*stages),
        pp_(static_cast<int>(stages->size())),
        vpp_(vpp),
        m_(input.chunks.size()),
        table_index_(m_ * static_cast<size_t>(vpp)),
        forward_done_(static_cast<size_t>(pp_) * m_ * static_cast<size_t>(vpp), 0),
        backward_done_(forward_done_.size(), 0),
        next_(stages->size(), 0) {
    int last_id = 0;
    for (int id : input.chunks) last_id = std::max(last_id, id);
    position_.assign(static_cast<size_t>(last_id) + 1, 0);
    for (size_t i = 0; i < m_; ++i) position_[static_cast<size_t>(input.chunks[i])] = i;
    for (size_t i = 0; i < forwards.size(); ++i) {
      table_index_[static_cast<size_t>(forwards[i].microbatch) * static_cast<size_t>(vpp) +
                   static_cast<size_t>(forwards[i].model_chunk)] = i;
    }
  }

  // Runs every op that can run; true when every stream has run to its end.
  bool run() {
    for (bool progress = true; progress;) {
      progress = false;
      for (int s = 0; s < pp_; ++s) {
        const std::vector<Op>& ops = stream(s);
        for (size_t& i = next_[static_cast<size_t>(s)]; i < ops.size() && runnable(s);
             ++i, progress = true) {
          if (is_forward(ops[i])) forward_done_[slot(s, ops[i].chunk, ops[i].model_chunk)] = 1;
          if (ops[i].pass == Pass::kBackward) {
            backward_done_[slot(s, ops[i].chunk, ops[i].model_chunk)] = 1;
          }
        }
      }
    }
    for (int s = 0; s < pp_; ++s) {
      if (next_[static_cast<size_t>(s)] < stream(s).size()) return false;
    }
    return true;
  }

  // Where every unfinished stage waits: moves the oldest forward not yet run (first in the
  // table, then lowest stage), which can run, ahead of the op its stage waits at.
  void pull_oldest_forward() {
    int stage = -1;
    size_t at = 0, oldest = forwards_.size();
    for (int s = 0; s < pp_; ++s) {
      const std::vector<Op>& ops = stream(s);
      size_t i = next_[static_cast<size_t>(s)];
      while (i < ops.size() && !is_forward(ops[i])) ++i;
      if (i == ops.size()) continue;
      const size_t entry =
          table_index_[position_[static_cast<size_t>(ops[i].chunk)] * static_cast<size_t>(vpp_) +
                       static_cast<size_t>(ops[i].model_chunk)];
      if (entry < oldest) stage = s, at = i, oldest = entry;
    }
    CF_CHECK_GE(stage, 0) << "stages wait on each other with every forward run";
    std::vector<Op>& ops = stages_[static_cast<size_t>(stage)].ops;
    CF_CHECK(input_ran(stage, ops[at])) << "the oldest forward left waits";
    const auto first = ops.begin() + static_cast<std::ptrdiff_t>(next_[static_cast<size_t>(stage)]);
    const auto moved = ops.begin() + static_cast<std::ptrdiff_t>(at);
    std::rotate(first, moved, moved + 1);
  }

 private:
  static bool is_forward(const Op& op) {
    return op.pass == Pass::kForward || op.pass == Pass::kForwardKeepKV;
  }
  const std::vector<Op>& stream(int s) const { return stages_[static_cast<size_t>(s)].ops; }
  // (stage, feed position of the chunk, model chunk) → index of the done flags.
  size_t slot(int stage, int chunk, int model_chunk) const {
    return (static_cast<size_t>(stage) * m_ + position_[static_cast<size_t>(chunk)]) *
               static_cast<size_t>(vpp_) +
           static_cast<size_t>(model_chunk);
  }
  bool input_ran(int s, const Op& op) const {
    const OpInput in = input_of(op.pass, s, op.model_chunk, pp_, vpp_);
    if (in.source == InputSource::kForward) {
      return forward_done_[slot(in.stage, op.chunk, in.model_chunk)] != 0;
    }
    if (in.source == InputSource::kBackward) {
      return backward_done_[slot(in.stage, op.chunk, in.model_chunk)] != 0;
    }
    return true;  // none, or its own loss: an earlier op of this stream
  }
  // Whether stage s can run its next op (an R: with the B right after it).
  bool runnable(int s) const {
    const std::vector<Op>& ops = stream(s);
    const size_t i = next_[static_cast<size_t>(s)];
    if (ops[i].pass != Pass::kRecompute) return input_ran(s, ops[i]);
    CF_CHECK(i + 1 < ops.size() && ops[i + 1].pass == Pass::kBackward);
    return input_ran(s, ops[i + 1]);
  }

  const std::vector<VirtualMicrobatch>& forwards_;
  std::vector<StagePlan>& stages_;
  int pp_, vpp_;
  size_t m_;
  std::vector<size_t> position_;     // chunk id → feed position
  std::vector<size_t> table_index_;  // (feed position, model chunk) → forward table index
  std::vector<char> forward_done_, backward_done_;  // per slot()
  std::vector<size_t> next_;                        // per stage: its next op
};

// Interleaved 1F1B with a last microbatch group smaller than pp (m mod pp in 1..pp−1, or
// m < pp) can deadlock as laid out: stage 0's forward of model chunk v+1 waits on stage pp−1's
// forward of chunk v, which stage pp−1 runs only after a backward that waits on stage 0
// (Megatron refuses such m for its "dependency bubbles", schedules.py:1170-1181). This pass
// replays the streams in zero time and, wherever every unfinished stage waits, moves the
// oldest forward not yet run ahead of the op its stage waits at. That forward can always
// run: its input is an earlier table entry, or the same entry on an earlier stage. Once every
// forward has run, the backwards cannot wait on each other in a cycle either (a backward
// waits on the same table entry on a later stage, or on an earlier entry), so the streams
// run to the end: deadlock-free for every m. Only forwards move, and only earlier, past
// backwards and R: the group, order and K rules of the streams still hold. Streams that never
// wait this way (m a multiple of pp, in every test so far) are left as they are.
void unblock_streams(const PipelineInput& input, const std::vector<VirtualMicrobatch>& forwards,
                     int vpp, std::vector<StagePlan>* stages) {
  if (input.chunks.empty()) return;
  StreamReplay replay(input, forwards, vpp, stages);
  while (!replay.run()) replay.pull_oldest_forward();
}

}  // namespace

std::vector<StagePlan> schedule_pipeline(const PipelineInput& input, ScheduleKind schedule, int pp,
                                         int vpp) {
  const int m = static_cast<int>(input.chunks.size());
  CF_CHECK_EQ(input.forward.size(), input.chunks.size());
  CF_CHECK_EQ(input.backward_order.size(), input.chunks.size());
  CF_CHECK(pp >= 1 && vpp >= 1) << "pp " << pp << " vpp " << vpp;
  CF_CHECK(schedule == ScheduleKind::kInterleaved || vpp == 1)
      << "vpp " << vpp << " needs the interleaved schedule";
  std::vector<VirtualMicrobatch> forwards;
  std::vector<VirtualMicrobatch> backwards;
  if (schedule == ScheduleKind::kInterleaved) {
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
  if (schedule == ScheduleKind::kInterleaved) unblock_streams(input, forwards, vpp, &stages);
  return stages;
}

}  // namespace cf
