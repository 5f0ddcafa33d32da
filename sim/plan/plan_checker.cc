// check_plan (plan_checker.h): the chunk rules, the stream rules and a zero-time dependency
// replay. Not a builder: it only reads the plan and names the first rule broken.
#include "sim/plan/plan_checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/plan/chunk_schedule.h"

namespace cf {
namespace {

// "plan rule <rule>: <message>", the message formatted by fmt.
template <typename... Args>
Status broken(const char* rule, fmt::format_string<Args...> format, Args&&... args) {
  return Status::InvalidInput(
      fmt::format("plan rule {}: {}", rule, fmt::format(format, std::forward<Args>(args)...)));
}

// "dp rank R stage S op ID (PASS chunk C model chunk V)".
std::string where(int rank, int stage, const Op& op) {
  return fmt::format("dp rank {} stage {} op {} ({} chunk {} model chunk {})", rank, stage, op.id,
                     pass_name(op.pass), op.chunk, op.model_chunk);
}

Status check_shape(const Plan& plan) {
  if (plan.pp < 1 || plan.vpp < 1 || plan.dp < 1 || plan.k < 1) {
    return broken("shape", "pp {}, vpp {}, dp {}, k {} must all be >= 1", plan.pp, plan.vpp,
                  plan.dp, plan.k);
  }
  if (plan.layers < 1 || plan.layers % (plan.pp * plan.vpp) != 0) {
    return broken("shape", "{} layers do not split over pp·vpp = {} model chunks", plan.layers,
                  plan.pp * plan.vpp);
  }
  if (static_cast<int>(plan.ranks.size()) != plan.dp) {
    return broken("shape", "{} ranks for dp {}", plan.ranks.size(), plan.dp);
  }
  for (size_t r = 0; r < plan.ranks.size(); ++r) {
    if (plan.ranks[r].dp_rank != static_cast<int>(r) ||
        static_cast<int>(plan.ranks[r].stages.size()) != plan.pp) {
      return broken("shape", "dp rank {} has dp_rank {} and {} stages for pp {}", r,
                    plan.ranks[r].dp_rank, plan.ranks[r].stages.size(), plan.pp);
    }
  }
  for (size_t c = 0; c < plan.chunks.size(); ++c) {
    if (plan.chunks[c].id != static_cast<int>(c)) {
      return broken("shape", "chunk at index {} has id {}", c, plan.chunks[c].id);
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
        return broken("chunk-tokens", "chunk {} segment ({}, {}, {}) is outside its sequence",
                      chunk.id, seg.sequence, seg.offset, seg.length);
      }
      tokens += seg.length;
      pieces[static_cast<size_t>(seg.sequence)].push_back({seg.offset, seg.length});
    }
    if (chunk.segments.empty() || tokens != chunk.tokens) {
      return broken("chunk-tokens", "chunk {} records {} tokens, its segments hold {}", chunk.id,
                    chunk.tokens, tokens);
    }
    if (chunk.tokens > plan.chunk_size) {
      return broken("chunk-size", "chunk {} holds {} tokens, over chunk_size {}", chunk.id,
                    chunk.tokens, plan.chunk_size);
    }
  }
  for (size_t s = 0; s < pieces.size(); ++s) {
    std::sort(pieces[s].begin(), pieces[s].end());
    int64_t covered = 0;  // tokens [0, covered) seen exactly once so far
    for (const auto& [offset, length] : pieces[s]) {
      if (offset != covered) {
        return broken("coverage", "sequence {} token {} is in {}", s, std::min(offset, covered),
                      offset < covered ? "two chunks" : "no chunk");
      }
      covered += length;
    }
    if (covered != plan.sequence_lengths[s]) {
      return broken("coverage", "sequence {} token {} is in no chunk", s, covered);
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
          return broken("group-pieces", "standalone chunk {} holds part of sequence {}", first.id,
                        seg.sequence);
        }
      }
      if (first.group != -1) {
        return broken("group-pieces", "standalone chunk {} has group {}", first.id, first.group);
      }
      ++c;
      continue;
    }
    const int n = first.group_size;
    if (first.index != 0 || first.group != expected_group || n < 1 ||
        c + static_cast<size_t>(n) > plan.chunks.size()) {
      return broken("group-pieces",
                    "chunk {} starts group {} at piece {} (expected group {}, piece 0, {} pieces "
                    "in the plan)",
                    first.id, first.group, first.index, expected_group, n);
    }
    int64_t next_offset = 0;
    for (int i = 0; i < n; ++i) {
      const Chunk& piece = plan.chunks[c + static_cast<size_t>(i)];
      if (piece.kind != ChunkKind::kDependent || piece.group != first.group || piece.index != i ||
          piece.group_size != n || piece.segments.size() != 1 ||
          piece.segments[0].sequence != first.segments[0].sequence ||
          piece.segments[0].offset != next_offset) {
        return broken("group-pieces",
                      "chunk {} is not piece {} of group {} in order and contiguous", piece.id, i,
                      first.group);
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
        return broken("dp-assignment", "dp rank {} lists chunk {} out of place", rank.dp_rank, id);
      }
      ++seen[static_cast<size_t>(id)];
    }
  }
  for (const Chunk& chunk : plan.chunks) {
    if (seen[static_cast<size_t>(chunk.id)] != 1) {
      return broken("dp-assignment", "chunk {} is fed to {} ranks", chunk.id,
                    seen[static_cast<size_t>(chunk.id)]);
    }
    if (chunk.kind == ChunkKind::kDependent && chunk.index > 0 &&
        plan.chunks[static_cast<size_t>(chunk.id - 1)].dp_rank != chunk.dp_rank) {
      return broken("group-one-rank", "group {} spans dp ranks {} and {}", chunk.group,
                    plan.chunks[static_cast<size_t>(chunk.id - 1)].dp_rank, chunk.dp_rank);
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
          return broken("op-ids-unique", "{} reuses its id", where(rank.dp_rank, s, op));
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
          return broken("op-fields", "{} names a chunk or model chunk this rank does not run",
                        where(rank.dp_rank, s, op));
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
    auto at = [&] { return where(rank.dp_rank, s, op); };  // built only on failure
    Seen& mine = seen[static_cast<size_t>(op.chunk)];
    const Pass forward = expected_forward(plan, chunk);
    const bool dependent = chunk.kind == ChunkKind::kDependent;
    const size_t g = dependent ? static_cast<size_t>(chunk.group) : 0;
    if ((op.pass == Pass::kForward || op.pass == Pass::kForwardKeepKV) && op.pass != forward) {
      return broken("pass-kind", "{}: expected {}", at(), pass_name(forward));
    }
    if (op.pass == Pass::kRecompute && forward != Pass::kForwardKeepKV) {
      return broken("pass-kind", "{}: R of a chunk whose forward is F", at());
    }
    int* slot = op.pass == Pass::kBackward    ? &mine.backward
                : op.pass == Pass::kRecompute ? &mine.recompute
                                              : &mine.forward;
    if (*slot != -1) return broken("ops-once", "{} appears twice", at());
    *slot = static_cast<int>(i);
    if (op.pass == Pass::kRecompute && mine.forward == -1) {
      return broken("order", "{} before the chunk's forward", at());
    }
    if (op.pass == Pass::kBackward) {
      if (mine.forward == -1) return broken("order", "{} before the chunk's forward", at());
      if (forward == Pass::kForwardKeepKV && mine.recompute != static_cast<int>(i) - 1) {
        return broken("order", "{} not immediately after its R", at());
      }
    }
    if (!dependent) continue;
    if (op.pass == Pass::kForward || op.pass == Pass::kForwardKeepKV) {
      if (chunk.index <= last_forward_index[g]) {
        return broken("group-order", "{}: forward of piece {} after piece {}", at(), chunk.index,
                      last_forward_index[g]);
      }
      last_forward_index[g] = chunk.index;
    }
    if (op.pass == Pass::kBackward) {
      if (last_backward_index[g] != -1 && chunk.index >= last_backward_index[g]) {
        return broken("group-order", "{}: backward of piece {} after piece {}", at(), chunk.index,
                      last_backward_index[g]);
      }
      last_backward_index[g] = chunk.index;
    }
    // Activations: F and R hold from the op to the chunk's B; F* holds only K/V.
    if (op.pass == Pass::kForward || op.pass == Pass::kRecompute) {
      if (++held[g] > plan.k) {
        return broken("k-limit", "{}: {} pieces of group {} hold activations, k = {}", at(),
                      held[g], g, plan.k);
      }
    }
    if (op.pass == Pass::kBackward) --held[g];
  }
  for (int id : rank.chunks) {
    const Seen& mine = seen[static_cast<size_t>(id)];
    const bool needs_r =
        expected_forward(plan, plan.chunks[static_cast<size_t>(id)]) == Pass::kForwardKeepKV;
    if (mine.forward == -1 || mine.backward == -1 || (mine.recompute != -1) != needs_r) {
      return broken("ops-once", "dp rank {} stage {} model chunk {}: chunk {} lacks its {}",
                    rank.dp_rank, s, v, id,
                    mine.forward == -1    ? "forward"
                    : mine.backward == -1 ? "B"
                                          : "R");
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
        if (need.stage >= 0 && !done[need.backward][static_cast<size_t>(need.stage)]
                                    [slot(op.chunk, need.model_chunk)]) {
          break;
        }
        if (op.pass != Pass::kRecompute) {
          done[op.pass == Pass::kBackward][static_cast<size_t>(s)][slot(op.chunk, op.model_chunk)] =
              1;
        }
      }
    }
  }
  for (int s = 0; s < pp; ++s) {
    const std::vector<Op>& ops = rank.stages[static_cast<size_t>(s)].ops;
    const size_t i = next[static_cast<size_t>(s)];
    if (i == ops.size()) continue;
    const Need need = need_of(s, ops[i], pp, vpp);
    return broken("deadlock", "{} waits on {} of chunk {} model chunk {} on stage {}",
                  where(rank.dp_rank, s, ops[i]), need.backward ? "B" : "the forward", ops[i].chunk,
                  need.model_chunk, need.stage);
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
