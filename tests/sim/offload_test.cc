// K/V offload (strategy.kv_offload, sim/offload_cost.h, megatron_op_memory with offload): the
// bytes each op moves, the state store leaving the GPU for the host (every byte freed by the
// step's end), the stall when the host link is slower than the compute and none when it is
// not, a line (kv_offload_min_tokens) below which sequences keep their K/V on the GPU, `auto`
// offloading only a job that does not fit and only its longest sequences, and the jobs refused.
#include <gtest/gtest.h>

#include "sim/memory_model.h"
#include "sim/offload_cost.h"
#include "tests/sim/simulator_test_util.h"

namespace cf {
namespace {

SimMetrics offload_run(const Job& job) {
  StatusOr<SimResult> result = simulate_job(job);
  CF_CHECK(result.ok()) << result.status().message();
  return result->metrics;
}

Job with_offload(Job job, KvOffload offload) {
  job.strategy.kv_offload = offload;
  return job;
}

// One long sequence split into many pieces on two stages, with short ones beside it.
Job long_job(const std::string& cost = "analytical", int k = 2) {
  return test::tiny_job(2, 2, 1, "sp: true",
                        "{kind: chunkflow, chunk_size: 512, k: " + std::to_string(k) + "}",
                        "6000, 300, 77, 129", cost);
}

TEST(Offload, TrafficOfEachPass) {
  const Job job = long_job();
  const MemoryModel memory(job.model, job.parallel, job.training);
  const int64_t layers = 2, tokens = 512, prefix = 1536;
  const int64_t own = memory.kv_bytes_of_layers(layers, tokens);
  const int64_t before = memory.kv_bytes_of_layers(layers, prefix);
  EXPECT_EQ(before, 3 * own);
  for (Pass pass : {Pass::kForward, Pass::kForwardKeepKV}) {
    const HostTraffic t = offload_traffic(memory, pass, layers, tokens, prefix);
    EXPECT_EQ(t.in_bytes, before);
    EXPECT_EQ(t.out_bytes, own);
  }
  EXPECT_EQ(offload_traffic(memory, Pass::kRecompute, layers, tokens, prefix).out_bytes, 0);
  const HostTraffic b = offload_traffic(memory, Pass::kBackward, layers, tokens, prefix);
  EXPECT_EQ(b.in_bytes, before + own + 2 * before);  // K/V in bf16, dK/dV in fp32
  EXPECT_EQ(b.out_bytes, 2 * before);
}

TEST(Offload, TheStoreLeavesTheGpuForTheHost) {
  for (int k : {1, 3}) {
    SCOPED_TRACE(k);
    const Job job = long_job("analytical", k);
    const SimMetrics on_device = offload_run(job);
    const SimMetrics offloaded = offload_run(with_offload(job, KvOffload::kAll));
    EXPECT_EQ(offloaded.kv_offload, "all");
    int64_t store = 0;
    for (size_t s = 0; s < static_cast<size_t>(job.parallel.pp); ++s) {
      const StageMetrics& a = on_device.stages[s];
      const StageMetrics& b = offloaded.stages[s];
      EXPECT_EQ(a.host_peak_bytes, 0);
      EXPECT_GT(a.peak_breakdown.state_store, 0);
      // On the host: at most what the store held, at least all but the piece being made.
      EXPECT_GT(b.host_peak_bytes, 0);
      EXPECT_LE(b.host_peak_bytes, a.peak_breakdown.state_store + a.peak_breakdown.activations);
      // On the GPU: only the piece its forward makes (the peak may fall at another moment).
      EXPECT_LE(b.peak_breakdown.state_store, a.peak_breakdown.state_store);
      EXPECT_LT(b.peak_memory_bytes, a.peak_memory_bytes);
      EXPECT_GT(b.host_traffic_bytes, 0);
      store = std::max(store, b.host_peak_bytes);
    }
    // The node's host memory holds the busiest stage's bytes on each of its GPUs.
    EXPECT_EQ(offloaded.host_bytes_per_node, store * job.cluster.gpus);
    // The simulator checks every byte allocated is freed by the step's end, host ones included
    // (memory_left_bytes), or it fails the run.
    EXPECT_EQ(offloaded.memory_left_bytes, 0);
  }
}

TEST(Offload, AFastLinkHidesTheCopiesASlowOneStalls) {
  const Job job = long_job();
  const SimMetrics on_device = offload_run(job);
  const SimMetrics fast = offload_run(with_offload(job, KvOffload::kAll));
  // The tiny model's attention over 6000 tokens outlasts its K/V copies at 64 GB/s / 2.
  EXPECT_EQ(fast.step_time_s, on_device.step_time_s);
  for (const StageMetrics& st : fast.stages) EXPECT_EQ(st.offload_stall_s, 0);
  Job slow = with_offload(job, KvOffload::kAll);
  slow.cluster.gpu.host_link_bandwidth_bytes_per_s = 1e6;  // 1 MB/s
  const SimMetrics stalled = offload_run(slow);
  EXPECT_GT(stalled.step_time_s, on_device.step_time_s);
  double stall = 0;
  for (const StageMetrics& st : stalled.stages) stall += st.offload_stall_s;
  EXPECT_GT(stall, 0);
  // The stall is the copies' time beyond the compute: at 0.8 × 1 MB/s over 2 GPUs per link,
  // each stalled op's copies take bytes / 400 kB/s; the busiest stage waits at least its
  // traffic's larger half at that rate minus its busy time.
  const StageMetrics& st = stalled.stages[0];
  EXPECT_GE(st.offload_stall_s + 1e-6,
            static_cast<double>(st.host_traffic_bytes) / 2 / 4e5 - fast.stages[0].busy_s);
}

TEST(Offload, AutoOffloadsOnlyWhatDoesNotFit) {
  const Job job = long_job();
  const SimMetrics fits = offload_run(with_offload(job, KvOffload::kAuto));
  EXPECT_EQ(fits.kv_offload, "auto: none");
  EXPECT_EQ(fits.step_time_s, offload_run(job).step_time_s);
  EXPECT_EQ(fits.stages[0].host_peak_bytes, 0);
  // A GPU too small for the store, large enough for the rest: auto offloads.
  Job tight = with_offload(job, KvOffload::kAuto);
  const SimMetrics all = offload_run(with_offload(job, KvOffload::kAll));
  int64_t offloaded_peak = 0;
  for (const StageMetrics& st : all.stages)
    offloaded_peak = std::max(offloaded_peak, st.peak_memory_bytes);
  tight.cluster.gpu.hbm_bytes = offloaded_peak + tight.cluster.gpu.reserved_bytes + (1 << 20);
  const SimMetrics decided = offload_run(tight);
  EXPECT_EQ(decided.kv_offload, "auto: all");
  EXPECT_TRUE(decided.feasible) << decided.infeasible_reason;
  EXPECT_FALSE(offload_run(with_offload(tight, KvOffload::kNone)).feasible);
}

// kv_offload_min_tokens: only the pieces of sequences at least that long leave the GPU. With
// two split sequences (6000 and 1500 tokens), a line at 6000 moves the longer one's K/V only
// (less host traffic than offloading both, none of the shorter one's), one above every
// sequence is no offload, one at the shorter split sequence is everything.
TEST(Offload, OnlySequencesAboveTheLineLeaveTheGpu) {
  const Job job = test::tiny_job(2, 2, 1, "sp: true", "{kind: chunkflow, chunk_size: 512, k: 2}",
                                 "6000, 1500, 300, 77", "analytical");
  auto line_at = [&](int64_t tokens) {
    Job lined = with_offload(job, KvOffload::kAll);
    lined.strategy.kv_offload_min_tokens = tokens;
    return offload_run(lined);
  };
  const SimMetrics none = offload_run(job);
  const SimMetrics all = offload_run(with_offload(job, KvOffload::kAll));
  const SimMetrics longest = line_at(6000);
  EXPECT_EQ(longest.kv_offload, "all ≥ 6000 tokens");
  EXPECT_EQ(longest.kv_offload_min_tokens, 6000);
  for (size_t s = 0; s < static_cast<size_t>(job.parallel.pp); ++s) {
    SCOPED_TRACE(s);
    EXPECT_GT(longest.stages[s].host_traffic_bytes, 0);
    EXPECT_LT(longest.stages[s].host_traffic_bytes, all.stages[s].host_traffic_bytes);
    EXPECT_GT(longest.stages[s].host_peak_bytes, 0);
    EXPECT_LE(longest.stages[s].host_peak_bytes, all.stages[s].host_peak_bytes);
    EXPECT_LE(all.stages[s].peak_memory_bytes, longest.stages[s].peak_memory_bytes);
    EXPECT_LE(longest.stages[s].peak_memory_bytes, none.stages[s].peak_memory_bytes);
  }
  EXPECT_LT(worst_stage_peak_bytes(longest), worst_stage_peak_bytes(none));
  // The text names the line and gives each stage's host peak, traffic and stall.
  const std::string table = metrics_table(longest);
  EXPECT_NE(table.find("K/V offload       all ≥ 6000 tokens"), std::string::npos) << table;
  EXPECT_NE(table.find("(K/V offload)\n    0 "), std::string::npos) << table;
  EXPECT_EQ(metrics_table(none).find("K/V offload"), std::string::npos);
  const SimMetrics above = line_at(6001);
  EXPECT_EQ(worst_stage_peak_bytes(above), worst_stage_peak_bytes(none));
  EXPECT_EQ(above.step_time_s, none.step_time_s);
  for (const StageMetrics& st : above.stages) EXPECT_EQ(st.host_traffic_bytes, 0);
  const SimMetrics shorter = line_at(1500);
  EXPECT_EQ(shorter.step_time_s, all.step_time_s);
  EXPECT_EQ(worst_stage_peak_bytes(shorter), worst_stage_peak_bytes(all));
  EXPECT_EQ(shorter.stages[0].host_traffic_bytes, all.stages[0].host_traffic_bytes);
}

// auto draws the line itself: on a GPU that holds the job once the longest sequence's K/V are
// off it, but not with them, auto offloads that sequence alone — the same run as the line drawn
// by hand — and says so.
TEST(Offload, AutoOffloadsTheLongestSequencesFirst) {
  Job job = test::tiny_job(2, 2, 1, "sp: true", "{kind: chunkflow, chunk_size: 512, k: 2}",
                           "6000, 1500, 300, 77", "analytical");
  Job lined = with_offload(job, KvOffload::kAll);
  lined.strategy.kv_offload_min_tokens = 6000;
  const int64_t fits_lined = worst_stage_peak_bytes(offload_run(lined));
  ASSERT_LT(fits_lined, worst_stage_peak_bytes(offload_run(job)));
  job.cluster.gpu.hbm_bytes = fits_lined + job.cluster.gpu.reserved_bytes;
  lined.cluster.gpu.hbm_bytes = job.cluster.gpu.hbm_bytes;
  const SimMetrics decided = offload_run(with_offload(job, KvOffload::kAuto));
  EXPECT_EQ(decided.kv_offload, "auto: all ≥ 6000 tokens");
  EXPECT_EQ(decided.kv_offload_min_tokens, 6000);
  EXPECT_TRUE(decided.feasible) << decided.infeasible_reason;
  EXPECT_EQ(decided.step_time_s, offload_run(lined).step_time_s);
  EXPECT_FALSE(offload_run(job).feasible);
  // One byte less and the longest alone is not enough: both go (the line at the shorter one is
  // every split sequence: auto: all) — or, if that does not fit either, auto: all, infeasible.
  job.cluster.gpu.hbm_bytes -= 1;
  const SimMetrics more = offload_run(with_offload(job, KvOffload::kAuto));
  EXPECT_EQ(more.kv_offload, "auto: all");
  EXPECT_EQ(more.kv_offload_min_tokens, 0);
}

TEST(Offload, HostMemoryIsAResourceToo) {
  Job job = with_offload(long_job(), KvOffload::kAll);
  job.cluster.gpu.host_memory_bytes = 1024;
  const SimMetrics m = offload_run(job);
  EXPECT_FALSE(m.feasible);
  EXPECT_NE(m.infeasible_reason.find("out of host memory"), std::string::npos)
      << m.infeasible_reason;
}

TEST(Offload, JobsThatCannotOffloadAreRefused) {
  Job job = with_offload(long_job(), KvOffload::kAll);
  job.cluster.gpu.host_link_bandwidth_bytes_per_s = 0;
  const Status no_link = validate_job(job);
  EXPECT_FALSE(no_link.ok());
  EXPECT_NE(no_link.message().find("strategy.kv_offload"), std::string::npos) << no_link.message();
  // A baseline has no split sequences to offload.
  const std::string text =
      "model: tiny\ncluster: {gpu: h100-sxm-80g, gpus: 2, gpus_per_node: 2}\n"
      "dataset: {lengths: [5, 3], max_length: 8}\ntraining: {global_batch: 2, steps: 1}\n"
      "parallel: {tp: 1, pp: 2, dp: 1}\nstrategy: {kind: baseline, kv_offload: all}\n";
  const StatusOr<Job> baseline = parse_job(text, "<test>");
  ASSERT_FALSE(baseline.ok());
  EXPECT_NE(baseline.status().message().find("strategy.kv_offload: applies to kind: chunkflow"),
            std::string::npos)
      << baseline.status().message();
}

// kv_offload_min_tokens is read with the line and key named, and only where it means something;
// the resolved job carries it, and reads back the same.
TEST(Offload, TheLineIsCheckedWhereItIsRead) {
  const std::string head =
      "model: tiny\ncluster: {gpu: h100-sxm-80g, gpus: 2, gpus_per_node: 2}\n"
      "dataset: {lengths: [5000, 3], max_length: 8192}\ntraining: {global_batch: 2, steps: 1}\n"
      "parallel: {tp: 1, pp: 2, dp: 1}\n";
  struct Bad {
    const char* strategy;
    const char* message;
  };
  for (const Bad& bad :
       {Bad{"{kind: chunkflow, kv_offload: all, kv_offload_min_tokens: -1}", "must be >= 0"},
        Bad{"{kind: chunkflow, kv_offload: none, kv_offload_min_tokens: 9}",
            "kv_offload: all only"},
        Bad{"{kind: chunkflow, kv_offload: auto, kv_offload_min_tokens: 9}", "auto picks it"},
        Bad{"{kind: chunkflow, kv_offload_min_tokens: 9}", "kv_offload: all only"},
        Bad{"{kind: chunkflow, kv_offload: all, kv_offload_min_tokens: 1e300}", ""},
        Bad{"{kind: baseline, kv_offload_min_tokens: 9}", "applies to kind: chunkflow"}}) {
    SCOPED_TRACE(bad.strategy);
    const StatusOr<Job> job = parse_job(head + "strategy: " + bad.strategy + "\n", "bad.yaml");
    ASSERT_FALSE(job.ok());
    EXPECT_EQ(job.status().exit_code(), 2);
    EXPECT_NE(job.status().message().find("bad.yaml:6"), std::string::npos)
        << job.status().message();
    EXPECT_NE(job.status().message().find("strategy.kv_offload_min_tokens"), std::string::npos)
        << job.status().message();
    EXPECT_NE(job.status().message().find(bad.message), std::string::npos)
        << job.status().message();
  }
  const StatusOr<Job> lined = parse_job(
      head + "strategy: {kind: chunkflow, kv_offload: all, kv_offload_min_tokens: 4096}\n",
      "lined.yaml");
  ASSERT_TRUE(lined.ok()) << lined.status().message();
  EXPECT_EQ(kv_offload_policy(*lined), (KvOffloadPolicy{true, 4096}));
  EXPECT_NE(resolved_table(*lined).find("strategy.kv_offload_min_tokens"), std::string::npos);
  const StatusOr<Job> again = parse_job(resolved_yaml(*lined), "resolved.yaml");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(kv_offload_policy(*again), kv_offload_policy(*lined));
}

}  // namespace
}  // namespace cf
