// check_plan (plan_checker.h): the chunk rules, the stream rules and a zero-time dependency
// replay. Not a builder: it only reads the plan and names the first rule broken.
#include "sim/plan/plan_checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/strong_components.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/plan/chunk_schedule.h"
#include "sim/plan/plan_index.h"

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
  if (std::optional<SplitError> e = layer_split_error(plan.split())) {
    return broken("shape", "the layers do not split over the stages: {}: {}", e->key, e->message);
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

// The op graph: op i of the index before the next op of its stream and before the op whose
// input it is. Every stage runs its stream in order and an op runs once its input is done, so
// the ops that never run are those on a cycle of this graph and everything after them. Cycles
// are the graph's strong components of more than one op (Boost.Graph).
using OpGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;

// Per op: whether it never runs.
std::vector<char> stuck_ops(const OpGraph& graph) {
  const size_t n = boost::num_vertices(graph);
  std::vector<int> component(n);
  const int count = boost::strong_components(graph, component.data());
  std::vector<char> stuck(n, 0);
  if (static_cast<size_t>(count) == n) return stuck;  // no cycle
  std::vector<int> size(static_cast<size_t>(count), 0);
  for (int c : component) ++size[static_cast<size_t>(c)];
  std::vector<size_t> pending;
  for (size_t v = 0; v < n; ++v) {
    if (size[static_cast<size_t>(component[v])] > 1) pending.push_back(v), stuck[v] = 1;
  }
  while (!pending.empty()) {
    const size_t v = pending.back();
    pending.pop_back();
    for (auto [e, end] = boost::out_edges(v, graph); e != end; ++e) {
      const size_t w = boost::target(*e, graph);
      if (!stuck[w]) pending.push_back(w), stuck[w] = 1;
    }
  }
  return stuck;
}

// Names the first stuck op of the lowest stuck (rank, stage) and the input it waits on.
Status check_deadlock(const Plan& plan) {
  StatusOr<PlanIndex> built = PlanIndex::build(plan, WireFormat{});
  CF_CHECK(built.ok()) << "a plan that keeps the stream rules has every input: "
                       << built.status().message();
  const PlanIndex& index = *built;
  OpGraph graph(static_cast<size_t>(index.size()));
  for (int i = 0; i < index.size(); ++i) {
    const IndexedOp& op = index.op(i);
    if (i + 1 < index.stream_end(op.dp_rank, op.stage)) boost::add_edge(i, i + 1, graph);
    if (op.input >= 0) boost::add_edge(op.input, i, graph);
  }
  const std::vector<char> stuck = stuck_ops(graph);
  for (int i = 0; i < index.size(); ++i) {
    if (!stuck[static_cast<size_t>(i)]) continue;
    const IndexedOp& op = index.op(i);
    CF_CHECK_GE(op.input, 0) << "a stuck op with nothing to wait on";
    const IndexedOp& from = index.op(op.input);
    return broken("deadlock", "{} waits on {} of chunk {} model chunk {} on stage {}",
                  where(op.dp_rank, op.stage, *op.op),
                  from.op->pass == Pass::kBackward ? "B" : "the forward", op.op->chunk,
                  from.op->model_chunk, from.stage);
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
  return check_deadlock(plan);
}

Status require_valid_plan(const Plan& plan, int64_t step) {
  if (Status status = check_plan(plan); !status.ok()) {
    return Status::Runtime(
        fmt::format("internal error: the plan of step {} breaks a planner rule and is not used: {}",
                    step, status.message()));
  }
  return Status::Ok();
}

}  // namespace cf
