// check_plan (plan_checker.h): the chunk rules, the stream rules and a zero-time dependency
// replay. Not a builder: it only reads the plan and names the first rule broken.
#include "sim/plan_checker.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/chunk_schedule.h"

namespace cf {
namespace {

Status broken(const std::string& rule, const std::string& detail) {
  return Status::InvalidInput("plan rule " + rule + ": " + detail);
}

std::string where(int rank, int stage, const Op& op) {
  return "dp rank " + std::to_string(rank) + " stage " + std::to_string(stage) + " op " +
         std::to_string(op.id) + " (" + pass_name(op.pass) + " chunk " +
         std::to_string(op.chunk) + " model chunk " + std::to_string(op.model_chunk) + ")";
}

std::string str(int64_t value) { return std::to_string(value); }

Status check_shape(const Plan& plan) {
  if (plan.pp < 1 || plan.vpp < 1 || plan.dp < 1 || plan.k < 1) {
    return broken("shape", "pp " + str(plan.pp) + ", vpp " + str(plan.vpp) + ", dp " +
                               str(plan.dp) + ", k " + str(plan.k) + " must all be >= 1");
  }
  if (plan.layers < 1 || plan.layers % (plan.pp * plan.vpp) != 0) {
    return broken("shape", str(plan.layers) + " layers do not split over pp·vpp = " +
                               str(plan.pp * plan.vpp) + " model chunks");
  }
  if (static_cast<int>(plan.ranks.size()) != plan.dp) {
    return broken("shape", str(plan.ranks.size()) + " ranks for dp " + str(plan.dp));
  }
  for (size_t r = 0; r < plan.ranks.size(); ++r) {
    if (plan.ranks[r].dp_rank != static_cast<int>(r) ||
        static_cast<int>(plan.ranks[r].stages.size()) != plan.pp) {
      return broken("shape", "dp rank " + str(r) + " has dp_rank " +
                                 str(plan.ranks[r].dp_rank) + " and " +
                                 str(plan.ranks[r].stages.size()) + " stages for pp " +
                                 str(plan.pp));
    }
  }
  for (size_t c = 0; c < plan.chunks.size(); ++c) {
    if (plan.chunks[c].id != static_cast<int>(c)) {
      return broken("shape", "chunk at index " + str(c) + " has id " + str(plan.chunks[c].id));
    }
  }
  return Status::Ok();
}

Status check_chunks(const Plan& plan) {
  const int64_t sequences = static_cast<int64_t>(plan.sequence_lengths.size());
  // Per sequence: the (offset, length) pieces found in chunks.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> pieces(plan.sequence_lengths.size());
  for (const Chunk& chunk : plan.chunks) {
    int64_t tokens = 0;
    for (const Segment& seg : chunk.segments) {
      if (seg.sequence < 0 || seg.sequence >= sequences || seg.offset < 0 || seg.length < 1 ||
          seg.offset + seg.length > plan.sequence_lengths[static_cast<size_t>(seg.sequence)]) {
        return broken("chunk-tokens", "chunk " + str(chunk.id) + " segment (" +
                                          str(seg.sequence) + ", " + str(seg.offset) + ", " +
                                          str(seg.length) + ") is outside its sequence");
      }
      tokens += seg.length;
      pieces[static_cast<size_t>(seg.sequence)].push_back({seg.offset, seg.length});
    }
    if (chunk.segments.empty() || tokens != chunk.tokens) {
      return broken("chunk-tokens", "chunk " + str(chunk.id) + " records " +
                                        str(chunk.tokens) + " tokens, its segments hold " +
                                        str(tokens));
    }
    if (chunk.tokens > plan.chunk_size) {
      return broken("chunk-size", "chunk " + str(chunk.id) + " holds " + str(chunk.tokens) +
                                      " tokens, over chunk_size " + str(plan.chunk_size));
    }
  }
  for (size_t s = 0; s < pieces.size(); ++s) {
    std::sort(pieces[s].begin(), pieces[s].end());
    int64_t covered = 0;  // tokens [0, covered) seen exactly once so far
    for (const auto& [offset, length] : pieces[s]) {
      if (offset != covered) {
        return broken("coverage", "sequence " + str(s) + " token " + str(std::min(offset,
                                      covered)) + (offset < covered ? " is in two chunks"
                                                                    : " is in no chunk"));
      }
      covered += length;
    }
    if (covered != plan.sequence_lengths[s]) {
      return broken("coverage", "sequence " + str(s) + " token " + str(covered) +
                                    " is in no chunk");
    }
  }
  return Status::Ok();
}

Status check_groups(const Plan& plan) {
  int expected_group = 0;
  for (size_t c = 0; c < plan.chunks.size();) {
    const Chunk& first = plan.chunks[c];
    if (first.kind == ChunkKind::kStandalone) {
      for (const Segment& seg : first.segments) {
        if (seg.offset != 0 ||
            seg.length != plan.sequence_lengths[static_cast<size_t>(seg.sequence)]) {
          return broken("group-pieces", "standalone chunk " + str(first.id) +
                                            " holds part of sequence " + str(seg.sequence));
        }
      }
      if (first.group != -1) {
        return broken("group-pieces", "standalone chunk " + str(first.id) + " has group " +
                                          str(first.group));
      }
      ++c;
      continue;
    }
    const int n = first.group_size;
    if (first.index != 0 || first.group != expected_group || n < 1 ||
        c + static_cast<size_t>(n) > plan.chunks.size()) {
      return broken("group-pieces", "chunk " + str(first.id) + " starts group " +
                                        str(first.group) + " at piece " + str(first.index) +
                                        " (expected group " + str(expected_group) +
                                        ", piece 0, " + str(n) + " pieces in the plan)");
    }
    int64_t next_offset = 0;
    for (int i = 0; i < n; ++i) {
      const Chunk& piece = plan.chunks[c + static_cast<size_t>(i)];
      if (piece.kind != ChunkKind::kDependent || piece.group != first.group ||
          piece.index != i || piece.group_size != n || piece.segments.size() != 1 ||
          piece.segments[0].sequence != first.segments[0].sequence ||
          piece.segments[0].offset != next_offset) {
        return broken("group-pieces", "chunk " + str(piece.id) + " is not piece " + str(i) +
                                          " of group " + str(first.group) +
                                          " in order and contiguous");
      }
      next_offset += piece.tokens;
    }
    ++expected_group;
    c += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status check_dp(const Plan& plan) {
  std::vector<int> seen(plan.chunks.size(), 0);
  for (const RankPlan& rank : plan.ranks) {
    for (size_t i = 0; i < rank.chunks.size(); ++i) {
      const int id = rank.chunks[i];
      if (id < 0 || id >= static_cast<int>(plan.chunks.size()) ||
          plan.chunks[static_cast<size_t>(id)].dp_rank != rank.dp_rank ||
          (i > 0 && id <= rank.chunks[i - 1])) {
        return broken("dp-assignment", "dp rank " + str(rank.dp_rank) + " lists chunk " +
                                           str(id) + " out of place");
      }
      ++seen[static_cast<size_t>(id)];
    }
  }
  for (const Chunk& chunk : plan.chunks) {
    if (seen[static_cast<size_t>(chunk.id)] != 1) {
      return broken("dp-assignment", "chunk " + str(chunk.id) + " is fed to " +
                                         str(seen[static_cast<size_t>(chunk.id)]) + " ranks");
    }
    if (chunk.kind == ChunkKind::kDependent && chunk.index > 0 &&
        plan.chunks[static_cast<size_t>(chunk.id - 1)].dp_rank != chunk.dp_rank) {
      return broken("group-one-rank", "group " + str(chunk.group) + " spans dp ranks " +
                                          str(plan.chunks[chunk.id - 1].dp_rank) + " and " +
                                          str(chunk.dp_rank));
    }
  }
  return Status::Ok();
}

Status check_op_fields(const Plan& plan) {
  std::set<int> ids;
  for (const RankPlan& rank : plan.ranks) {
    for (int s = 0; s < plan.pp; ++s) {
      for (const Op& op : rank.stages[static_cast<size_t>(s)].ops) {
        if (!ids.insert(op.id).second) {
          return broken("op-ids-unique", where(rank.dp_rank, s, op) + " reuses its id");
        }
      }
    }
  }
  for (const RankPlan& rank : plan.ranks) {
    for (int s = 0; s < plan.pp; ++s) {
      for (const Op& op : rank.stages[static_cast<size_t>(s)].ops) {
        if (op.chunk < 0 || op.chunk >= static_cast<int>(plan.chunks.size()) ||
            plan.chunks[static_cast<size_t>(op.chunk)].dp_rank != rank.dp_rank ||
            op.model_chunk < 0 || op.model_chunk >= plan.vpp) {
          return broken("op-fields", where(rank.dp_rank, s, op) +
                                         " names a chunk or model chunk this rank does not run");
        }
      }
    }
  }
  return Status::Ok();
}

// The forward pass a chunk must get.
Pass expected_forward(const Plan& plan, const Chunk& chunk) {
  return chunk.kind == ChunkKind::kDependent
             ? group_forward_pass(chunk.index, chunk.group_size, plan.k)
             : Pass::kForward;
}

// Rules on one (stage, model chunk) sub-stream of a rank: pass-kind, ops-once, order,
// group-order, k-limit.
Status check_substream(const Plan& plan, const RankPlan& rank, int s, int v) {
  const std::vector<Op>& ops = rank.stages[static_cast<size_t>(s)].ops;
  // Per chunk: position (in `ops`) of its forward, R and B on this model chunk; -1 if none.
  struct Seen {
    int forward = -1, recompute = -1, backward = -1;
  };
  std::vector<Seen> seen(plan.chunks.size());
  std::vector<int> last_forward_index(static_cast<size_t>(plan.groups()), -1);
  std::vector<int> last_backward_index(static_cast<size_t>(plan.groups()), -1);
  std::vector<int> held(static_cast<size_t>(plan.groups()), 0);  // pieces with activations
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (op.model_chunk != v) continue;
    const Chunk& chunk = plan.chunks[static_cast<size_t>(op.chunk)];
    const std::string at = where(rank.dp_rank, s, op);
    Seen& mine = seen[static_cast<size_t>(op.chunk)];
    const Pass forward = expected_forward(plan, chunk);
    const bool dependent = chunk.kind == ChunkKind::kDependent;
    const size_t g = dependent ? static_cast<size_t>(chunk.group) : 0;
    if ((op.pass == Pass::kForward || op.pass == Pass::kForwardKeepKV) && op.pass != forward) {
      return broken("pass-kind", at + ": expected " + pass_name(forward));
    }
    if (op.pass == Pass::kRecompute && forward != Pass::kForwardKeepKV) {
      return broken("pass-kind", at + ": R of a chunk whose forward is F");
    }
    int* slot = op.pass == Pass::kBackward    ? &mine.backward
                : op.pass == Pass::kRecompute ? &mine.recompute
                                              : &mine.forward;
    if (*slot != -1) return broken("ops-once", at + " appears twice");
    *slot = static_cast<int>(i);
    if (op.pass == Pass::kRecompute && mine.forward == -1) {
      return broken("order", at + " before the chunk's forward");
    }
    if (op.pass == Pass::kBackward) {
      if (mine.forward == -1) return broken("order", at + " before the chunk's forward");
      if (forward == Pass::kForwardKeepKV && mine.recompute != static_cast<int>(i) - 1) {
        return broken("order", at + " not immediately after its R");
      }
    }
    if (!dependent) continue;
    if (op.pass == Pass::kForward || op.pass == Pass::kForwardKeepKV) {
      if (chunk.index <= last_forward_index[g]) {
        return broken("group-order", at + ": forward of piece " + str(chunk.index) +
                                         " after piece " + str(last_forward_index[g]));
      }
      last_forward_index[g] = chunk.index;
    }
    if (op.pass == Pass::kBackward) {
      if (last_backward_index[g] != -1 && chunk.index >= last_backward_index[g]) {
        return broken("group-order", at + ": backward of piece " + str(chunk.index) +
                                         " after piece " + str(last_backward_index[g]));
      }
      last_backward_index[g] = chunk.index;
    }
    // Activations: F and R hold from the op to the chunk's B; F* holds only K/V.
    if (op.pass == Pass::kForward || op.pass == Pass::kRecompute) {
      if (++held[g] > plan.k) {
        return broken("k-limit", at + ": " + str(held[g]) + " pieces of group " + str(g) +
                                     " hold activations, k = " + str(plan.k));
      }
    }
    if (op.pass == Pass::kBackward) --held[g];
  }
  for (int id : rank.chunks) {
    const Seen& mine = seen[static_cast<size_t>(id)];
    const bool needs_r = expected_forward(plan, plan.chunks[static_cast<size_t>(id)]) ==
                         Pass::kForwardKeepKV;
    if (mine.forward == -1 || mine.backward == -1 || (mine.recompute != -1) != needs_r) {
      return broken("ops-once", "dp rank " + str(rank.dp_rank) + " stage " + str(s) +
                                    " model chunk " + str(v) + ": chunk " + str(id) +
                                    " lacks its " +
                                    (mine.forward == -1    ? "forward"
                                     : mine.backward == -1 ? "B"
                                                           : "R"));
    }
  }
  return Status::Ok();
}

// What an op waits on from another stage (plan.h): a forward or a backward of the same chunk
// on `stage` with `model_chunk`; stage -1 when it waits on nothing.
struct Need {
  int stage = -1;
  bool backward = false;
  int model_chunk = 0;
};

Need need_of(int s, const Op& op, int pp, int vpp) {
  const int v = op.model_chunk;
  if (op.pass == Pass::kRecompute) return {};  // reuses the stage input its F* kept
  if (op.pass == Pass::kBackward) {
    if (s == pp - 1 && v == vpp - 1) return {s, false, v};  // from its own loss
    return s < pp - 1 ? Need{s + 1, true, v} : Need{0, true, v + 1};
  }
  if (s == 0 && v == 0) return {};  // embeddings
  return s > 0 ? Need{s - 1, false, v} : Need{pp - 1, false, v - 1};
}

// Zero-time replay of one rank: each stage runs its next op once what it needs is done.
Status check_deadlock(const Plan& plan, const RankPlan& rank) {
  const int pp = plan.pp, vpp = plan.vpp;
  const size_t slots = plan.chunks.size() * static_cast<size_t>(vpp);
  // done[backward][stage][chunk·vpp + model chunk]
  std::vector<std::vector<char>> done[2] = {
      std::vector<std::vector<char>>(static_cast<size_t>(pp), std::vector<char>(slots, 0)),
      std::vector<std::vector<char>>(static_cast<size_t>(pp), std::vector<char>(slots, 0))};
  auto slot = [vpp](int chunk, int v) { return static_cast<size_t>(chunk * vpp + v); };
  std::vector<size_t> next(static_cast<size_t>(pp), 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int s = 0; s < pp; ++s) {
      const std::vector<Op>& ops = rank.stages[static_cast<size_t>(s)].ops;
      for (size_t& i = next[static_cast<size_t>(s)]; i < ops.size(); ++i, progress = true) {
        const Op& op = ops[i];
        const Need need = need_of(s, op, pp, vpp);
        if (need.stage >= 0 &&
            !done[need.backward][static_cast<size_t>(need.stage)][slot(op.chunk,
                                                                       need.model_chunk)]) {
          break;
        }
        if (op.pass != Pass::kRecompute) {
          done[op.pass == Pass::kBackward][static_cast<size_t>(s)][slot(op.chunk,
                                                                        op.model_chunk)] = 1;
        }
      }
    }
  }
  for (int s = 0; s < pp; ++s) {
    const std::vector<Op>& ops = rank.stages[static_cast<size_t>(s)].ops;
    const size_t i = next[static_cast<size_t>(s)];
    if (i == ops.size()) continue;
    const Need need = need_of(s, ops[i], pp, vpp);
    return broken("deadlock", where(rank.dp_rank, s, ops[i]) + " waits on " +
                                  (need.backward ? "B" : "the forward") + " of chunk " +
                                  str(ops[i].chunk) + " model chunk " + str(need.model_chunk) +
                                  " on stage " + str(need.stage));
  }
  return Status::Ok();
}

}  // namespace

Status check_plan(const Plan& plan) {
  CF_RETURN_IF_ERROR(check_shape(plan));
  CF_RETURN_IF_ERROR(check_chunks(plan));
  CF_RETURN_IF_ERROR(check_groups(plan));
  CF_RETURN_IF_ERROR(check_dp(plan));
  CF_RETURN_IF_ERROR(check_op_fields(plan));
  for (const RankPlan& rank : plan.ranks) {
    for (int s = 0; s < plan.pp; ++s) {
      for (int v = 0; v < plan.vpp; ++v) CF_RETURN_IF_ERROR(check_substream(plan, rank, s, v));
    }
  }
  for (const RankPlan& rank : plan.ranks) CF_RETURN_IF_ERROR(check_deadlock(plan, rank));
  return Status::Ok();
}

}  // namespace cf
