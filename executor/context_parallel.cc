// Context parallelism's shards, inputs and K/V row movement (context_parallel.h).
#include "executor/context_parallel.h"

#include <algorithm>

#include "core/check.h"

namespace cf {
namespace {

// Piece j of 2·cp: the first tokens mod 2·cp pieces get one extra token.
RowRange piece(int64_t tokens, int cp, int j) {
  const int64_t pieces = 2 * static_cast<int64_t>(cp);
  const int64_t base = tokens / pieces, extra = tokens % pieces;
  const int64_t begin = j * base + std::min<int64_t>(j, extra);
  return RowRange{begin, begin + base + (j < extra ? 1 : 0)};
}

int64_t total_rows(const std::vector<int64_t>& counts) {
  int64_t n = 0;
  for (const int64_t c : counts) n += c;
  return n;
}

std::vector<int64_t> scaled(const std::vector<int64_t>& rows, int64_t width) {
  std::vector<int64_t> out;
  for (const int64_t r : rows) out.push_back(r * width);
  return out;
}

}  // namespace

std::array<RowRange, 2> cp_shard_ranges(int64_t tokens, int cp, int cp_rank) {
  CF_CHECK(cp >= 1 && cp_rank >= 0 && cp_rank < cp) << "cp " << cp << " rank " << cp_rank;
  CF_CHECK_GE(tokens, 0);
  return {piece(tokens, cp, cp_rank), piece(tokens, cp, 2 * cp - 1 - cp_rank)};
}

int64_t cp_shard_tokens(int64_t tokens, int cp, int cp_rank) {
  const std::array<RowRange, 2> ranges = cp_shard_ranges(tokens, cp, cp_rank);
  return ranges[0].rows() + ranges[1].rows();
}

ChunkInputs shard_inputs(const ChunkInputs& whole, CpRank cp) {
  CF_CHECK_EQ(whole.cp, 1) << "shard_inputs takes a whole chunk's inputs";
  CF_CHECK_EQ(whole.tokens(), whole.chunk_tokens);
  ChunkInputs in;
  in.prefix_tokens = whole.prefix_tokens;
  in.chunk_tokens = whole.chunk_tokens;
  in.sequence_tokens = whole.sequence_tokens;
  in.dependent = whole.dependent;
  in.group = whole.group;
  in.index = whole.index;
  in.cp = cp.size;
  in.cp_rank = cp.rank;
  if (cp.size == 1) {  // the whole chunk, its segment table untouched
    in.ids = whole.ids;
    in.targets = whole.targets;
    in.positions = whole.positions;
    in.segments = whole.segments;
    return in;
  }
  int64_t local = 0;  // this rank's row where the range starts
  for (const RowRange& range : cp_shard_ranges(whole.chunk_tokens, cp.size, cp.rank)) {
    for (int64_t row = range.begin; row < range.end; ++row) {
      const size_t i = static_cast<size_t>(row);
      in.ids.push_back(whole.ids[i]);
      in.targets.push_back(whole.targets[i]);
      in.positions.push_back(whole.positions[i]);
    }
    // Row q_begin + i of a segment sees keys kv_begin .. kv_begin + (kv_len − q_len) + i; its
    // rows [x, y) alone are a segment with the same first key and kv_len cut at y's limit.
    for (const AttentionSegment& seg : whole.segments) {
      const int64_t x = std::max(range.begin, seg.q_begin);
      const int64_t y = std::min(range.end, seg.q_begin + seg.q_len);
      if (x >= y) continue;
      in.segments.push_back(AttentionSegment{local + (x - range.begin), y - x, seg.kv_begin,
                                             seg.kv_len - seg.q_len + (y - seg.q_begin)});
    }
    local += range.rows();
  }
  return in;
}

std::vector<int64_t> cp_contribution_rows(const std::vector<int64_t>& pieces, int cp) {
  std::vector<int64_t> rows(static_cast<size_t>(cp), 0);
  for (int r = 0; r < cp; ++r) {
    for (const int64_t tokens : pieces)
      rows[static_cast<size_t>(r)] += cp_shard_tokens(tokens, cp, r);
  }
  return rows;
}

std::vector<RowRun> cp_gather_runs(const std::vector<int64_t>& pieces, int cp) {
  std::vector<RowRun> runs;
  int64_t gathered = 0;
  for (int r = 0; r < cp; ++r) {
    int64_t piece_begin = 0;  // the piece's first row in piece order
    for (const int64_t tokens : pieces) {
      for (const RowRange& range : cp_shard_ranges(tokens, cp, r)) {
        if (range.rows() == 0) continue;
        runs.push_back(RowRun{gathered, piece_begin + range.begin, range.rows()});
        gathered += range.rows();
      }
      piece_begin += tokens;
    }
  }
  return runs;
}

void cp_all_gather_rows(float* whole, const float* local, const std::vector<int64_t>& pieces,
                        int64_t width, const CpGroup& group) {
  const std::vector<int64_t> counts = scaled(cp_contribution_rows(pieces, group.cp.size), width);
  Stream& s = *group.stream;
  // (Σ pieces, width) in the all-gather's layout: rank 0's rows, then rank 1's, …
  FloatBuffer gathered(s.allocator(), group.tracker, MemoryCategory::kTransient,
                       total_rows(counts));
  s.synchronize();  // the transport reads `local` as the stream left it
  group.transport->allgather_cp(local, gathered.data(), counts);
  for (const RowRun& run : cp_gather_runs(pieces, group.cp.size)) {
    s.copy(storage_at(whole, run.whole_row * width),
           storage_at(gathered.data(), run.gathered_row * width), run.rows * width);
  }
}

void cp_reduce_scatter_rows(float* local, const float* whole, const std::vector<int64_t>& pieces,
                            int64_t width, const CpGroup& group) {
  const std::vector<int64_t> counts = scaled(cp_contribution_rows(pieces, group.cp.size), width);
  Stream& s = *group.stream;
  // (Σ pieces, width): `whole` reordered into the CP ranks' parts.
  FloatBuffer parts(s.allocator(), group.tracker, MemoryCategory::kTransient, total_rows(counts));
  for (const RowRun& run : cp_gather_runs(pieces, group.cp.size)) {
    s.copy(storage_at(parts.data(), run.gathered_row * width),
           storage_at(whole, run.whole_row * width), run.rows * width);
  }
  s.synchronize();  // the transport reads `parts` as the stream left it
  group.transport->reduce_scatter_cp(parts.data(), local, counts);
}

}  // namespace cf
