// Pipeline schedules (DESIGN §4.3): the op stream of every stage of one DP rank for 1F1B,
// GPipe and interleaved 1F1B, made state-aware (group-aware backward order, F*/R passes).
// Not chunk construction (chunking.h) and not op ids (assigned by build_plan).
#pragma once

#include <vector>

#include "sim/plan/job.h"
#include "sim/plan/plan.h"

namespace cf {

// What one DP rank feeds its pipeline.
struct PipelineInput {
  std::vector<int> chunks;          // chunk ids in feed order (m of them)
  std::vector<Pass> forward;        // per feed position: kForward or kForwardKeepKV
  std::vector<int> backward_order;  // feed positions in the order their backwards run
};

// Megatron's microbatch_group_size_per_vp_stage for interleaved 1F1B; its default, pp.
inline int interleaved_group_size(int pp) { return pp; }

// Warm-up forwards of `stage` (virtual forwards for interleaved), m chunks on the rank:
//   1F1B:        min(pp - s - 1, m)                         [MLM schedules.py:929-986]
//   interleaved: min(2(pp - s - 1) + (v - 1)·G, m·v)         [MLM schedules.py:958-977]
//   GPipe:       m (every forward before the first backward)
int warmup_forwards(ScheduleKind schedule, int pp, int vpp, int stage, int m);

// Megatron's interleaved table: forward virtual microbatch k → (microbatch, model chunk).
// Microbatches go in groups of G; each group runs model chunk 0 for all its microbatches,
// then chunk 1, ...; the last group takes every remaining microbatch (m mod G of them when G
// does not divide m; all m when m < G).
// (PP=2, G=3, M=5, VP=2 → microbatches 0 1 2 0 1 2 3 4 3 4, chunks 0 0 0 1 1 1 0 0 1 1.)
struct VirtualMicrobatch {
  int microbatch = 0;
  int model_chunk = 0;
  bool operator==(const VirtualMicrobatch&) const = default;
};
std::vector<VirtualMicrobatch> interleaved_table(int m, int vpp, int group_size);

// The op streams of the pp stages (ids left 0), for every m ≥ 0. Every schedule follows one
// pattern per stage: run the warm-up forwards; then for each backward in order, run one
// forward (while any are left) and, state-aware, further forwards until that backward's
// forward has run on this stage; then the backward, preceded by R when its chunk's forward
// was F*. The backward order is `backward_order` (for interleaved: Megatron's table over it,
// model chunks reversed). Interleaved streams then go through a zero-time replay that moves a
// forward earlier wherever all stages would wait on each other (a last group smaller than pp:
// pipeline_schedule.cc, unblock_streams), so they are deadlock-free whatever m is.
std::vector<StagePlan> schedule_pipeline(const PipelineInput& input, ScheduleKind schedule, int pp,
                                         int vpp);

}  // namespace cf
