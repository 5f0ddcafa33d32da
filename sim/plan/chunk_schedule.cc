// State-aware chunk scheduling (DESIGN §4.2): the per-group pass order and the group-aware
// backward order. Not the pipeline schedules that interleave groups (pipeline_schedule.cc).
#include "sim/plan/chunk_schedule.h"

#include "core/check.h"

namespace cf {

Pass group_forward_pass(int index, int n, int k) {
  CF_CHECK(index >= 0 && index < n) << "piece " << index << " of " << n;
  CF_CHECK_GE(k, 1);
  // Pieces 0..n-k-1 drop their activations and keep only per-layer K/V (§4.2).
  return index < dropped_pieces(n, k) ? Pass::kForwardKeepKV : Pass::kForward;
}

std::vector<GroupStep> group_schedule(int n, int k) {
  CF_CHECK_GE(n, 1);
  CF_CHECK_GE(k, 1);
  std::vector<GroupStep> steps;
  for (int i = 0; i < n; ++i) steps.push_back({group_forward_pass(i, n, k), i});
  // Backwards descending: backward j needs the dK/dV of every later piece.
  for (int j = n - 1; j >= 0; --j) {
    if (group_forward_pass(j, n, k) == Pass::kForwardKeepKV) {
      steps.push_back({Pass::kRecompute, j});
    }
    steps.push_back({Pass::kBackward, j});
  }
  return steps;
}

std::string group_schedule_string(const std::vector<GroupStep>& steps) {
  std::string out;
  for (const GroupStep& step : steps) {
    if (!out.empty()) out += ' ';
    out += pass_name(step.pass);
    out += std::to_string(step.index + 1);
  }
  return out;
}

std::vector<int> group_aware_backward_order(const std::vector<Chunk>& chunks,
                                            const std::vector<int>& feed) {
  std::vector<int> order;
  order.reserve(feed.size());
  size_t pos = 0;
  while (pos < feed.size()) {
    const Chunk& chunk = chunks.at(static_cast<size_t>(feed[pos]));
    if (chunk.kind != ChunkKind::kDependent) {
      order.push_back(static_cast<int>(pos));
      ++pos;
      continue;
    }
    // A whole group, contiguous and ascending in the feed (a group never spans DP ranks).
    CF_CHECK_EQ(chunk.index, 0) << "group " << chunk.group << " enters the feed at piece "
                                << chunk.index;
    const size_t end = pos + static_cast<size_t>(chunk.group_size);
    CF_CHECK_LE(end, feed.size()) << "group " << chunk.group << " is cut off in the feed";
    for (size_t p = pos; p < end; ++p) {
      const Chunk& piece = chunks.at(static_cast<size_t>(feed[p]));
      CF_CHECK(piece.kind == ChunkKind::kDependent && piece.group == chunk.group &&
               piece.index == static_cast<int>(p - pos))
          << "group " << chunk.group << " is not contiguous in the feed at position " << p;
    }
    for (size_t p = end; p > pos; --p) order.push_back(static_cast<int>(p - 1));
    pos = end;
  }
  return order;
}

}  // namespace cf
