// Context parallelism's parts, compared exactly (context_parallel.h): the load-balanced shards
// tile a chunk and balance its causal work, a shard's inputs let every row see exactly the keys
// it sees in the whole chunk, the in-process CP collectives move and sum exactly within their
// groups, K/V gathered from the CP ranks' shards (state-store prefix included) equal the
// single-rank K/V bit for bit, and dK/dV reduce-scattered equal the sum of every rank's
// contribution. Odd sizes throughout; sums of small integers, so exact in fp32.
#include "executor/context_parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

#include "executor/cpu_backend.h"
#include "executor/executor.h"
#include "executor/inproc_transport.h"
#include "executor/state_store.h"
#include "executor/tokens.h"
#include "sim/plan/plan_builder.h"
#include "tests/support/executor_fixture.h"
#include "traces/random.h"

namespace cf {
namespace {

// Runs fn(rank) on one thread per rank and waits for all (collectives block until all arrive).
void on_every_rank(int ranks, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) threads.emplace_back(fn, r);
  for (std::thread& t : threads) t.join();
}

TEST(CpShards, PiecesTileTheChunkInRankOrderThenReverseAndDifferByAtMostOneToken) {
  for (const int64_t tokens : {0, 1, 2, 3, 5, 17, 81, 987}) {
    for (const int cp : {1, 2, 3, 4}) {
      SCOPED_TRACE(testing::Message() << tokens << " tokens, cp " << cp);
      const int64_t small = tokens / (2 * cp);
      std::vector<std::pair<int64_t, int>> pieces;  // (first row, rank) of non-empty pieces
      std::vector<int> owner(static_cast<size_t>(tokens), -1);
      int64_t held = 0;
      for (int r = 0; r < cp; ++r) {
        const std::array<RowRange, 2> ranges = cp_shard_ranges(tokens, cp, r);
        EXPECT_LE(ranges[0].end, ranges[1].begin) << "rank " << r << ": chunk order";
        for (const RowRange& range : ranges) {
          EXPECT_TRUE(range.rows() == small || range.rows() == small + 1) << range.rows();
          for (int64_t row = range.begin; row < range.end; ++row) {
            EXPECT_EQ(owner[static_cast<size_t>(row)], -1) << "row " << row << " held twice";
            owner[static_cast<size_t>(row)] = r;
          }
          if (range.rows() > 0) pieces.push_back({range.begin, r});
        }
        EXPECT_EQ(cp_shard_tokens(tokens, cp, r), ranges[0].rows() + ranges[1].rows());
        held += cp_shard_tokens(tokens, cp, r);
      }
      EXPECT_EQ(held, tokens);
      EXPECT_EQ(std::count(owner.begin(), owner.end(), -1), 0) << "every row held";
      // Along the chunk the pieces belong to ranks 0, 1, …, cp−1, cp−1, …, 1, 0.
      std::sort(pieces.begin(), pieces.end());
      for (size_t j = 0; j < pieces.size(); ++j) {
        const int want =
            j < static_cast<size_t>(cp) ? static_cast<int>(j) : 2 * cp - 1 - static_cast<int>(j);
        EXPECT_EQ(pieces[j].second, want) << "piece " << j;
      }
    }
  }
}

// Causal work of a row is the keys it sees, row + 1: when 2·cp divides the chunk every rank
// gets the same work (the reason for the two-piece assignment).
TEST(CpShards, EveryRankGetsTheSameCausalWorkWhenTheChunkSplitsEvenly) {
  for (const int cp : {2, 3, 4}) {
    for (const int64_t per_piece : {1, 5, 17}) {
      const int64_t tokens = 2 * cp * per_piece;
      std::vector<int64_t> work;
      for (int r = 0; r < cp; ++r) {
        int64_t w = 0;
        for (const RowRange& range : cp_shard_ranges(tokens, cp, r)) {
          for (int64_t row = range.begin; row < range.end; ++row) w += row + 1;
        }
        work.push_back(w);
      }
      EXPECT_EQ(std::count(work.begin(), work.end(), work[0]), cp) << "cp " << cp;
      EXPECT_EQ(work[0] * cp, tokens * (tokens + 1) / 2);
    }
  }
}

// Keys [first, last] that local query row `row` of a segment table sees.
std::pair<int64_t, int64_t> visible_keys(const std::vector<AttentionSegment>& segments,
                                         int64_t row) {
  for (const AttentionSegment& s : segments) {
    if (row >= s.q_begin && row < s.q_begin + s.q_len) {
      return {s.kv_begin, s.kv_begin + (s.kv_len - s.q_len) + (row - s.q_begin)};
    }
  }
  ADD_FAILURE() << "row " << row << " in no segment";
  return {-1, -1};
}

TEST(ShardInputs, EveryRowSeesExactlyTheKeysItSeesInTheWholeChunk) {
  // Packed chunks of odd sequences and the pieces of split ones (81 = 31 + 31 + 19).
  test::TinyJob spec;
  spec.lengths = {81, 7, 1, 13, 5, 17, 3};
  spec.strategy = "{kind: chunkflow, chunk_size: 31, k: 1}";
  const Job job = test::tiny_job(spec);
  StatusOr<Plan> plan = build_plan(job, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const TokenBatch batch = synthetic_tokens(spec.lengths, job.model.vocab, 3, 0);
  int dependent = 0, packed = 0;
  for (const Chunk& chunk : plan->chunks) {
    const ChunkInputs whole = chunk_inputs(chunk, batch);
    dependent += whole.dependent && whole.prefix_tokens > 0 ? 1 : 0;
    packed += whole.segments.size() > 1 ? 1 : 0;
    const int64_t keys = whole.prefix_tokens + whole.chunk_tokens;
    for (const int cp : {1, 2, 3}) {
      int64_t rows = 0;
      for (int r = 0; r < cp; ++r) {
        SCOPED_TRACE(testing::Message() << "chunk " << chunk.id << " cp " << cp << " rank " << r);
        const ChunkInputs shard = shard_inputs(whole, CpRank{cp, r});
        EXPECT_EQ(shard.cp, cp);
        EXPECT_EQ(shard.cp_rank, r);
        EXPECT_EQ(shard.chunk_tokens, whole.chunk_tokens);
        EXPECT_EQ(shard.prefix_tokens, whole.prefix_tokens);
        EXPECT_EQ(shard.sequence_tokens, whole.sequence_tokens);
        EXPECT_EQ(whole.sequence_tokens, whole.dependent ? 81 : 0);  // the one split sequence
        ASSERT_EQ(shard.tokens(), cp_shard_tokens(whole.chunk_tokens, cp, r));
        // The kernels' own precondition: segments tile the rows, keys inside (prefix + chunk).
        check_attention_args(shard.segments.data(), static_cast<int64_t>(shard.segments.size()),
                             AttentionShape{shard.tokens(), keys, 4, 2, 16});
        int64_t local = 0;
        for (const RowRange& range : cp_shard_ranges(whole.chunk_tokens, cp, r)) {
          for (int64_t row = range.begin; row < range.end; ++row, ++local) {
            const size_t i = static_cast<size_t>(local), w = static_cast<size_t>(row);
            EXPECT_EQ(shard.ids[i], whole.ids[w]);
            EXPECT_EQ(shard.targets[i], whole.targets[w]);
            EXPECT_EQ(shard.positions[i], whole.positions[w]);
            EXPECT_EQ(visible_keys(shard.segments, local), visible_keys(whole.segments, row))
                << "chunk row " << row;
          }
        }
        if (cp == 1) {
          ASSERT_EQ(shard.segments.size(), whole.segments.size());
          for (size_t s = 0; s < whole.segments.size(); ++s) {
            EXPECT_EQ(shard.segments[s].q_begin, whole.segments[s].q_begin);
            EXPECT_EQ(shard.segments[s].kv_len, whole.segments[s].kv_len);
          }
        }
        rows += shard.tokens();
      }
      EXPECT_EQ(rows, whole.chunk_tokens);
    }
  }
  EXPECT_GT(dependent, 0) << "the batch has pieces with a K/V prefix";
  EXPECT_GT(packed, 0) << "the batch has packed chunks";
}

TEST(CpCollectives, InProcessAllGatherAndReduceScatterAreExactWithinTheirGroup) {
  // dp = 2 DP ranks of cp = 3: the CP groups of the two DP ranks must not mix. Uneven counts,
  // one of them 0 (a rank holding no row of a chunk).
  const int dp = 2, cp = 3;
  const std::vector<int64_t> counts = {5, 0, 17};
  const int64_t total = 22;
  InProcessFabric fabric(dp, /*pp=*/1, cp);
  std::vector<std::vector<float>> gathered(dp * cp), scattered(dp * cp), summed(dp * cp);
  on_every_rank(dp * cp, [&](int rank) {
    const int d = rank / cp, c = rank % cp;
    InProcessTransport transport(&fabric, d, /*stage=*/0, c);
    // All-gather: element i of rank (d, c)'s part is d·1000 + c·100 + i.
    std::vector<float> mine(static_cast<size_t>(counts[static_cast<size_t>(c)]));
    for (size_t i = 0; i < mine.size(); ++i) mine[i] = static_cast<float>(d * 1000 + c * 100 + i);
    std::vector<float>& out = gathered[static_cast<size_t>(rank)];
    out.assign(static_cast<size_t>(total), -1.0f);
    transport.allgather_cp(mine.data(), out.data(), counts);
    // Reduce-scatter: element j of every rank's (Σ counts) is (d + 1)·(c + 1)·(j − 11).
    std::vector<float> all(static_cast<size_t>(total));
    for (size_t j = 0; j < all.size(); ++j) {
      all[j] = static_cast<float>((d + 1) * (c + 1) * (static_cast<int>(j) - 11));
    }
    std::vector<float>& part = scattered[static_cast<size_t>(rank)];
    part.assign(static_cast<size_t>(counts[static_cast<size_t>(c)]), -1.0f);
    transport.reduce_scatter_cp(all.data(), part.data(), counts);
    // The gradient sum spans every DP and CP rank of the stage: Σ (d·cp + c + 1) = 21.
    std::vector<float>& grad = summed[static_cast<size_t>(rank)];
    grad.assign(7, static_cast<float>(d * cp + c + 1));
    transport.allreduce_dp(grad.data(), static_cast<int64_t>(grad.size()));
  });
  for (int rank = 0; rank < dp * cp; ++rank) {
    const int d = rank / cp, c = rank % cp;
    int64_t offset = 0, j = 0;
    for (int from = 0; from < cp; ++from) {
      for (int64_t i = 0; i < counts[static_cast<size_t>(from)]; ++i, ++j) {
        EXPECT_EQ(gathered[static_cast<size_t>(rank)][static_cast<size_t>(j)],
                  static_cast<float>(d * 1000 + from * 100 + i))
            << "rank " << rank << " element " << j;
      }
      if (from < c) offset += counts[static_cast<size_t>(from)];
    }
    for (int64_t i = 0; i < counts[static_cast<size_t>(c)]; ++i) {
      // Σ_c' (d + 1)·(c' + 1)·(j − 11) over c' = 0..2: 6·(d + 1)·(j − 11).
      EXPECT_EQ(scattered[static_cast<size_t>(rank)][static_cast<size_t>(i)],
                static_cast<float>(6 * (d + 1) * (offset + i - 11)))
          << "rank " << rank << " element " << i;
    }
    EXPECT_EQ(summed[static_cast<size_t>(rank)], std::vector<float>(7, 21.0f)) << "rank " << rank;
  }
}

// The K (or V) rows of a group of whole pieces: seeded values, distinct per operand.
std::vector<float> seeded_rows(int64_t rows, int64_t width, uint64_t seed) {
  std::vector<float> out(static_cast<size_t>(rows * width));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<float>(rng::uniform_from_bits(rng::mix64(seed + i)) - 0.5);
  }
  return out;
}

// This rank's rows of `whole` (Σ pieces, width): its shard of each piece, concatenated.
std::vector<float> rank_rows(const std::vector<float>& whole, const std::vector<int64_t>& pieces,
                             size_t first_piece, size_t end_piece, int64_t width, CpRank cp) {
  std::vector<float> out;
  int64_t piece_begin = 0;
  for (size_t p = 0; p < end_piece; ++p) {
    if (p >= first_piece) {
      for (const RowRange& range : cp_shard_ranges(pieces[p], cp.size, cp.rank)) {
        out.insert(out.end(), whole.begin() + (piece_begin + range.begin) * width,
                   whole.begin() + (piece_begin + range.end) * width);
      }
    }
    piece_begin += pieces[p];
  }
  return out;
}

// A dependent group of three pieces (17, 17, 9 tokens): pieces 0 and 1 sit in each rank's
// state store as its shard, piece 2 is being run. The all-gather of (store prefix, own rows)
// gives the single-rank K/V; the reduce-scatter of every rank's dK over the gathered keys gives
// each rank the sum at its rows, which the store accumulates per piece.
TEST(CpGather, KVGatheredFromTheShardsEqualTheSingleRankKVAndGradientsComeBackSummed) {
  const std::vector<int64_t> pieces = {17, 17, 9};
  const int64_t width = 6, keys = 43, group = 0, layer = 0;
  const std::vector<float> k_whole = seeded_rows(keys, width, 101);
  const std::vector<float> v_whole = seeded_rows(keys, width, 202);
  for (const int cp : {2, 3}) {
    SCOPED_TRACE(testing::Message() << "cp " << cp);
    InProcessFabric fabric(/*dp=*/1, /*pp=*/1, cp);
    std::vector<std::vector<float>> k_got(cp), v_got(cp), dk_got(cp), stored_dk(cp);
    std::vector<int64_t> prefix_rows(cp), prefix_tokens(cp);
    on_every_rank(cp, [&](int r) {
      const CpRank me{cp, r};
      InProcessTransport transport(&fabric, 0, 0, r);
      MemoryTracker tracker;
      StateStore store(&tracker, width);
      for (size_t p = 0; p < 2; ++p) {
        const std::vector<float> k = rank_rows(k_whole, pieces, p, p + 1, width, me);
        const std::vector<float> v = rank_rows(v_whole, pieces, p, p + 1, width, me);
        store.put(group, layer, static_cast<int>(p), k.data(), v.data(),
                  static_cast<int64_t>(k.size()) / width, pieces[p]);
      }
      prefix_rows[r] = store.prefix_rows(group, layer, 2);
      prefix_tokens[r] = store.prefix_tokens(group, layer, 2);
      // This rank's rows, as layer.cc lays them out: the store's prefix rows, then its own.
      const std::vector<float> k_own = rank_rows(k_whole, pieces, 2, 3, width, me);
      const std::vector<float> v_own = rank_rows(v_whole, pieces, 2, 3, width, me);
      const size_t prefix = static_cast<size_t>(prefix_rows[r] * width);
      std::vector<float> k_local(prefix + k_own.size(), 0.0f), v_local(k_local.size(), 0.0f);
      store.gather_prefix(group, layer, 2, k_local.data(), v_local.data());
      std::copy(k_own.begin(), k_own.end(), k_local.begin() + static_cast<long>(prefix));
      std::copy(v_own.begin(), v_own.end(), v_local.begin() + static_cast<long>(prefix));
      const CpGroup cp_group{me, &transport, cpu_stream(), &tracker};
      k_got[r].assign(static_cast<size_t>(keys * width), 0.0f);
      v_got[r].assign(static_cast<size_t>(keys * width), 0.0f);
      cp_all_gather_rows(k_got[r].data(), k_local.data(), pieces, width, cp_group);
      cp_all_gather_rows(v_got[r].data(), v_local.data(), pieces, width, cp_group);

      // dK of rank r over all gathered keys: (r + 1)·((element mod 9) − 4), small integers.
      std::vector<float> dk_all(static_cast<size_t>(keys * width));
      for (size_t e = 0; e < dk_all.size(); ++e) {
        dk_all[e] = static_cast<float>((r + 1) * (static_cast<int>(e % 9) - 4));
      }
      dk_got[r].assign(k_local.size(), -1.0f);
      cp_reduce_scatter_rows(dk_got[r].data(), dk_all.data(), pieces, width, cp_group);
      store.accumulate_prefix(group, layer, 2, dk_got[r].data(), dk_got[r].data());
      for (int p = 0; p < 2; ++p) {
        const float* dk = store.dk(group, layer, p);
        const int64_t n = cp_shard_tokens(pieces[static_cast<size_t>(p)], cp, r) * width;
        stored_dk[r].insert(stored_dk[r].end(), dk, dk + n);
      }
    });
    // Σ_r (r + 1) = cp(cp + 1)/2 times the element's (e mod 9) − 4.
    std::vector<float> dk_sum(static_cast<size_t>(keys * width));
    for (size_t e = 0; e < dk_sum.size(); ++e) {
      dk_sum[e] = static_cast<float>(cp * (cp + 1) / 2 * (static_cast<int>(e % 9) - 4));
    }
    for (int r = 0; r < cp; ++r) {
      EXPECT_EQ(k_got[r], k_whole) << "rank " << r;
      EXPECT_EQ(v_got[r], v_whole) << "rank " << r;
      EXPECT_EQ(prefix_tokens[r], 34);
      EXPECT_EQ(prefix_rows[r], cp_shard_tokens(17, cp, r) * 2);
      const std::vector<float> want = rank_rows(dk_sum, pieces, 0, 3, width, CpRank{cp, r});
      EXPECT_EQ(dk_got[r], want) << "rank " << r;
      EXPECT_EQ(stored_dk[r],
                std::vector<float>(want.begin(), want.begin() + prefix_rows[r] * width))
          << "rank " << r << ": the prefix rows went to pieces 0 and 1";
    }
  }
}

// The state store holds one shard per CP rank: with every piece of 30 tokens (4 pieces of 7 or 8
// tokens, 15 rows per rank) a rank's store peaks at exactly half the cp = 1 store.
TEST(CpRun, StateStorePeakIsTheShardsOfOneRank) {
  test::TinyJob spec;
  spec.lengths = {90, 7};
  spec.strategy = "{kind: chunkflow, chunk_size: 30, k: 1}";
  ExecutorOptions options;
  options.record_trace = false;
  StatusOr<RunReport> whole = run_in_process(test::tiny_job(spec), options);
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  spec.cp = 2;
  StatusOr<RunReport> sharded = run_in_process(test::tiny_job(spec), options);
  ASSERT_TRUE(sharded.ok()) << sharded.status().message();
  const int64_t store_whole = whole->stages[0].category_peaks[MemoryCategory::kStateStore];
  EXPECT_GT(store_whole, 0);
  EXPECT_EQ(sharded->stages[0].category_peaks[MemoryCategory::kStateStore] * 2, store_whole);
  // Each rank's loss is that of its own tokens; their sum is the batch's.
  EXPECT_NEAR(sharded->loss(), whole->loss(), 1e-5);
}

}  // namespace
}  // namespace cf
