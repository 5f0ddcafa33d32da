// check_plan: verifies every rule a Plan must keep (DESIGN §4.1-4.3, the dependencies in
// plan_index.h) before a simulator or executor runs it. Not a cost or memory check.
#pragma once

#include "core/status.h"
#include "sim/plan/plan.h"

namespace cf {

// OK, or InvalidInput whose message starts "plan rule <name>:" and names the rank, stage and
// op where it applies. Rules, checked in this order:
//   shape           pp/vpp/dp/k/layers consistent, dp ranks with pp stages, chunk id = index
//   chunk-tokens    tokens = Σ segment lengths, segments inside their sequence
//   chunk-size      no chunk over chunk_size
//   coverage        every token of every sequence in exactly one chunk
//   group-pieces    a standalone segment is a whole sequence; a group's pieces have
//                   consecutive ids, indices 0..N-1, one segment each, contiguous offsets
//   dp-assignment   every chunk in exactly one rank's list (its dp_rank), lists ascending
//   group-one-rank  all pieces of a group on one DP rank
//   op-ids-unique   no op id twice in the plan
//   op-fields       an op's chunk is fed to its rank, its model chunk is in [0, vpp)
//   pass-kind       forwards are F* exactly for pieces 0..N-K-1 of a group, else F; R only
//                   for F* chunks
//   ops-once        per stage and model chunk, every chunk of the rank has one forward, one
//                   B, and one R exactly when its forward is F*
//   order           B after the chunk's forward; R immediately before its B
//   group-order     per stage and model chunk, a group's forwards ascending, backwards
//                   descending
//   k-limit         per stage and model chunk, at most K pieces of a group hold activations
//                   (F holds until B, F* holds nothing, R holds until B)
//   deadlock        the op graph (stream order and each op's input, plan_index.h) has no
//                   cycle; otherwise names the lowest stuck stage, its op and what it waits on
Status check_plan(const Plan& plan);

// check_plan for a plan about to be used (printed, simulated): a plan it rejects is a planner
// defect, never used, since its numbers would mean nothing — a Runtime error (exit 1) naming
// the step and the rule.
Status require_valid_plan(const Plan& plan, int64_t step);

}  // namespace cf
