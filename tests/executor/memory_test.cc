// Memory as the executor measures it: the tracker's peaks and breakdown, and the claim
// — with K = 1, ChunkFlow's peak activation memory stays flat while the longest sequence grows
// 8× (4 → 32 pieces of ChunkSize), apart from the (C, h) stage input each F* piece keeps for
// its recompute (DESIGN.md §4.2), 1/60 of a piece's activations on the tiny model, which is
// accounted exactly; the baseline's peak grows with the longest sequence. The host pool's size
// classes.
#include "executor/memory.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "executor/executor.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

TEST(MemoryTracker, PeakAndBreakdownAtThePeak) {
  MemoryTracker t;
  {
    FloatBuffer w(&t, MemoryCategory::kWeights, 100);     // 400 B
    FloatBuffer a(&t, MemoryCategory::kActivations, 51);  // 204 B
    EXPECT_EQ(t.live_total(), 604);
    {
      FloatBuffer tmp(&t, MemoryCategory::kTransient, 7);  // 28 B: the peak, 632 B
      IntBuffer ids(&t, MemoryCategory::kTransient, 1);    // 4 B: 636 B
    }
    a.reset();
    FloatBuffer s(&t, MemoryCategory::kStateStore, 40);  // 160 B: 560 B, below the peak
    FloatBuffer moved = std::move(s);                    // a move charges nothing
    EXPECT_EQ(t.live_total(), 560);
    EXPECT_EQ(t.live(MemoryCategory::kStateStore), 160);
  }
  EXPECT_EQ(t.live_total(), 0);
  EXPECT_EQ(t.peak_total(), 636);
  const MemoryBreakdown& at = t.breakdown_at_peak();
  EXPECT_EQ(at[MemoryCategory::kWeights], 400);
  EXPECT_EQ(at[MemoryCategory::kActivations], 204);
  EXPECT_EQ(at[MemoryCategory::kTransient], 32);
  EXPECT_EQ(at[MemoryCategory::kStateStore], 0);
  EXPECT_EQ(t.peak(MemoryCategory::kStateStore), 160);
  t.reset_peaks();
  EXPECT_EQ(t.peak_total(), 0);
}

constexpr int64_t kChunk = 32;

// Peak bytes of one category on the single stage, for a batch whose longest sequence is
// `pieces` × kChunk tokens, plus four short sequences.
int64_t activation_peak(const std::string& strategy, int64_t pieces, int64_t* total_peak) {
  test::TinyJob spec;
  spec.lengths = {20, kChunk * pieces, 9, 31, 5};
  spec.strategy = strategy;
  spec.max_length = 32 * kChunk;
  const Job job = test::tiny_job(spec);
  ExecutorOptions options;
  options.record_trace = false;
  StatusOr<RunReport> report = run_in_process(job, options);
  CF_CHECK(report.ok()) << report.status().message();
  const StageMemoryReport& stage = report->stages.at(0);
  if (total_peak != nullptr) *total_peak = stage.peak_bytes;
  return stage.category_peaks.activations;
}

// The pinned pool's size classes: never less than asked, a page at least, at most 25% more
// above a page, monotone, and few — four per power of two — over every size up to 64 GiB, so a
// pool that keeps freed blocks by class reuses them across the batches' piece lengths.
TEST(HostBlockSize, ClassesCoverEverySizeWithAQuarterAtMostToSpare) {
  EXPECT_EQ(host_block_size(1), 4096);
  EXPECT_EQ(host_block_size(4096), 4096);
  EXPECT_EQ(host_block_size(4097), 5120);  // 4096 + 1024
  EXPECT_EQ(host_block_size(8192), 8192);
  EXPECT_EQ(host_block_size(8193), 10240);  // 8192 + 2048
  EXPECT_EQ(host_block_size(14337), 16384);
  std::set<int64_t> classes;
  std::mt19937_64 rng(7);
  int64_t previous_bytes = 0, previous = 0;
  std::vector<int64_t> sizes;
  for (int i = 0; i < 20000; ++i) sizes.push_back(int64_t(rng() % (int64_t{64} << 30)) + 1);
  for (int64_t p = 1; p <= (int64_t{64} << 30); p *= 2) {
    sizes.insert(sizes.end(), {p - 1, p, p + 1});
  }
  std::sort(sizes.begin(), sizes.end());
  for (const int64_t bytes : sizes) {
    if (bytes <= 0) continue;
    const int64_t block = host_block_size(bytes);
    ASSERT_GE(block, bytes);
    ASSERT_GE(block, 4096);
    if (bytes > 4096) {
      ASSERT_LE(block, bytes + bytes / 4) << bytes;
    }
    if (bytes >= previous_bytes) {
      ASSERT_GE(block, previous) << bytes;
    }
    previous_bytes = bytes, previous = block;
    classes.insert(block);
  }
  EXPECT_LE(classes.size(), 4u * 24u + 1u);  // 4 KiB .. 64 GiB: 24 powers of two
}

TEST(ActivationMemory, ChunkFlowWithKOneStaysFlatAsTheLongestSequenceGrows8x) {
  const std::string strategy = fmt::format("{{kind: chunkflow, chunk_size: {}, k: 1}}", kChunk);
  const int64_t stage_input_bytes = kChunk * 64 * 4;  // (C, h) fp32 of the tiny model
  std::vector<int64_t> rest;
  for (int64_t pieces : {4, 8, 16, 32}) {
    const int64_t peak = activation_peak(strategy, pieces, nullptr);
    // At the peak (end of the last piece's F) every piece's stage input is live; all else
    // is one piece's activations, the same whatever the sequence's length. (With fewer than 4
    // pieces a standalone chunk, which keeps its own K/V, is the peak instead.)
    rest.push_back(peak - pieces * stage_input_bytes);
  }
  for (size_t i = 1; i < rest.size(); ++i) EXPECT_EQ(rest[i], rest[0]) << "pieces index " << i;
  EXPECT_GT(rest[0], 50 * stage_input_bytes);  // a piece's activations dwarf its stage input
}

TEST(ActivationMemory, BaselineGrowsWithTheLongestSequence) {
  const double per_sequence = static_cast<double>(activation_peak(
                                  "{kind: baseline, micro_batching: per_sequence}", 32, nullptr)) /
                              static_cast<double>(activation_peak(
                                  "{kind: baseline, micro_batching: per_sequence}", 4, nullptr));
  EXPECT_NEAR(per_sequence, 8.0, 0.05);  // activations are linear in a micro-batch's tokens
  // Packing puts the short sequences beside the 128-token one: 193 against 1024 tokens.
  const double pack =
      static_cast<double>(activation_peak("{kind: baseline, micro_batching: pack}", 32, nullptr)) /
      static_cast<double>(activation_peak("{kind: baseline, micro_batching: pack}", 4, nullptr));
  EXPECT_NEAR(pack, 1024.0 / 193.0, 0.05);
}

}  // namespace
}  // namespace cf
