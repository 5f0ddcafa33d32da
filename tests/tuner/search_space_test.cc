// The search space: the ChunkSize grid, layouts a cluster admits, the strict `tune:` reader
// (unknown keys, impossible ranges and values that cannot work name file:line:col and the
// key) and the flag overrides.
#include "tuner/search_space.h"

#include <gtest/gtest.h>

#include <cmath>

namespace cf {
namespace {

Job job_with_tune(const std::string& tune) {
  StatusOr<Job> job = parse_job(
      "model: qwen2.5-7b\ncluster: {gpu: h100-sxm-80g, gpus: 32, gpus_per_node: 8}\n"
      "dataset: {distribution: lmsys-chat-1m, max_length: 262144, seed: 7}\n"
      "parallel: {tp: 4, pp: 4, dp: 2, sp: true, recompute: selective}\n"
      "strategy: {kind: chunkflow, chunk_size: 8192, k: 4}\n" +
          tune,
      "job.yaml");
  EXPECT_TRUE(job.ok()) << job.status().message();
  return *job;
}

TEST(SearchSpaceTest, ChunkSizeGridIsPowersOfTwoAndMidpoints) {
  EXPECT_EQ(chunk_size_grid(1024, 8192),
            (std::vector<int64_t>{1024, 1536, 2048, 3072, 4096, 6144, 8192}));
  EXPECT_EQ(chunk_size_grid(1000, 5000), (std::vector<int64_t>{1024, 1536, 2048, 3072, 4096}));
  EXPECT_EQ(chunk_size_grid(1024, 262144).size(), 17u);
  EXPECT_TRUE(chunk_size_grid(5000, 6000).empty());
}

TEST(SearchSpaceTest, DefaultsFollowTheJob) {
  const Job job = job_with_tune("");
  StatusOr<SearchSpace> space = read_search_space(job, {});
  ASSERT_TRUE(space.ok()) << space.status().message();
  EXPECT_EQ(space->ks.size(), 64u);
  EXPECT_EQ(resolve_chunk_sizes(*space, job).size(), 17u);
  const std::vector<ParallelLayout> layouts = resolve_layouts(*space, job);
  ASSERT_EQ(layouts.size(), 1u);
  EXPECT_EQ(describe(layouts[0]), "tp4 pp4 dp2 sp selective 1f1b");
  EXPECT_DOUBLE_EQ(space->memory_margin, 0.05);
}

TEST(SearchSpaceTest, AllLayoutsOfQwen7bOn32Gpus) {
  // tp divides 32 GPUs, the 28 heads and 4 KV heads, within a node: 1, 2, 4. pp divides the
  // 28 layers and 32 / tp: 1, 2, 4. Three recompute policies each.
  const Job job = job_with_tune("tune: {tp: all, pp: all, recompute: all}\n");
  StatusOr<SearchSpace> space = read_search_space(job, {});
  ASSERT_TRUE(space.ok()) << space.status().message();
  const std::vector<ParallelLayout> layouts = resolve_layouts(*space, job);
  ASSERT_EQ(layouts.size(), 27u);
  EXPECT_EQ(describe(layouts.front()), "tp1 pp1 dp32 none 1f1b");
  EXPECT_EQ(describe(layouts.back()), "tp4 pp4 dp2 sp full 1f1b");
  for (const ParallelLayout& l : layouts) EXPECT_EQ(l.tp * l.pp * l.dp, 32);
  // The baseline's layouts add context parallelism, cp in {1, 2, 4, 8}: (tp, cp, pp) powers of
  // two with tp·cp·pp dividing 32 — 32 triples — times three recompute policies; the 27 above
  // are those with cp = 1.
  const std::vector<ParallelLayout> all = all_layouts(job);
  EXPECT_EQ(all.size(), 96u);
  int without_cp = 0;
  for (const ParallelLayout& l : all) {
    EXPECT_EQ(l.tp * l.cp * l.pp * l.dp, 32);
    EXPECT_TRUE(l.cp == 1 || l.cp == 2 || l.cp == 4 || l.cp == 8) << l.cp;
    without_cp += l.cp == 1;
  }
  EXPECT_EQ(without_cp, 27);
}

TEST(SearchSpaceTest, FlagsOverrideTheSection) {
  const Job job = job_with_tune("tune: {k: [1, 2], packer: ffd, split: even}\n");
  SpaceFlags flags;
  flags.k_max = 3;
  flags.parallel = true;
  flags.chunk_sizes = "4096, 8192,4096";
  flags.memory_margin = 0.1;
  StatusOr<SearchSpace> space = read_search_space(job, flags);
  ASSERT_TRUE(space.ok()) << space.status().message();
  EXPECT_EQ(space->ks, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(space->chunk_sizes, (std::vector<int64_t>{4096, 8192}));
  EXPECT_EQ(space->packers, (std::vector<Packer>{Packer::kFirstFitDecreasing}));
  EXPECT_EQ(space->splits, (std::vector<SplitKind>{SplitKind::kEven}));
  // --parallel: every tp, pp, cp ∈ {1, 2, 4, 8} and recompute (as all_layouts).
  EXPECT_EQ(resolve_layouts(*space, job).size(), 96u);
  EXPECT_DOUBLE_EQ(space->memory_margin, 0.1);
  // --cp narrows the context-parallel sizes: cp 1 and 2 leave 9 (tp, pp) pairs each.
  flags.cp = "1,2";
  StatusOr<SearchSpace> narrowed = read_search_space(job, flags);
  ASSERT_TRUE(narrowed.ok()) << narrowed.status().message();
  EXPECT_EQ(narrowed->cps, (std::vector<int>{1, 2}));
  EXPECT_EQ(resolve_layouts(*narrowed, job).size(), 54u);
  flags.cp = "3";
  EXPECT_FALSE(read_search_space(job, flags).ok());  // 3 does not divide the 32 GPUs
}

struct BadCase {
  std::string tune;
  std::string expected;
};

TEST(SearchSpaceTest, BadSectionsNameLineAndKey) {
  // The tune: section starts on line 6 of the job.
  const std::vector<BadCase> cases = {
      {"tune:\n  chunk_size: 4096\n", "job.yaml:7:3: tune.chunk_size: unknown key"},
      {"tune:\n  tp: [2, 3]\n",
       "job.yaml:7:11: tune.tp: tp 3 does not divide the 28 attention heads"},
      {"tune:\n  pp: 5\n", "job.yaml:7:7: tune.pp: pp 5 does not divide the 28 layers"},
      {"tune:\n  chunk_sizes: [4096, 524288]\n",
       "job.yaml:7:23: tune.chunk_sizes: ChunkSize 524288 exceeds"},
      {"tune:\n  chunk_size_min: 8192\n  chunk_size_max: 4096\n",
       "job.yaml:8:19: tune.chunk_size_max: 4096 is below"},
      {"tune:\n  k: [1]\n  k_max: 4\n", "job.yaml:7:6: tune.k: give either k or k_max"},
      {"tune:\n  recompute: [none, some]\n",
       "job.yaml:7:21: tune.recompute: unknown value \"some\""},
      {"tune:\n  memory_margin: 1.5\n", "job.yaml:7:18: tune.memory_margin"},
      {"tune:\n  memory_margin: .nan\n",
       "job.yaml:7:18: tune.memory_margin: expected a finite number"},
      {"tune:\n  memory_margin: -0.05\n", "job.yaml:7:18: tune.memory_margin"},
      {"tune:\n  top: 0\n", "job.yaml:7:8: tune.top: must be between 1 and 1000, got 0"},
      {"tune:\n  k_max: 0\n", "job.yaml:7:10: tune.k_max: must be between 1 and 4096"},
      {"tune:\n  chunk_sizes: []\n", "job.yaml:7:16: tune.chunk_sizes: expected a value"},
      {"tune:\n  chunk_size_min: 1100\n  chunk_size_max: 1200\n",
       "tune: no ChunkSize to try in [1100, 1200]"},
      {"tune:\n  cp: [0]\n", "job.yaml:7:8: tune.cp: cp must be >= 1, got 0"},
      {"tune:\n  split: [even, skewed]\n", "job.yaml:7:17: tune.split: unknown value \"skewed\""},
      {"tune:\n  tp: [1]\n  dp: [3]\n", "tune.dp: dp 3 does not divide the 32 GPUs"},
      {"tune:\n  tp: [1]\n  pp: [1]\n  dp: [2]\n", "job.yaml:7:3: tune: no layout"},
      {"tune:\n  objective: speed\n", "job.yaml:7:14: tune.objective"},
  };
  for (const BadCase& c : cases) {
    const std::string text =
        "model: qwen2.5-7b\ncluster: {gpu: h100-sxm-80g, gpus: 32, gpus_per_node: 8}\n"
        "dataset: {distribution: lmsys-chat-1m, max_length: 262144, seed: 7}\n"
        "parallel: {tp: 4, pp: 4, dp: 2, sp: true, recompute: selective}\n"
        "strategy: {kind: chunkflow, chunk_size: 8192, k: 4}\n" +
        c.tune;
    StatusOr<Job> job = parse_job(text, "job.yaml");
    ASSERT_TRUE(job.ok()) << job.status().message();
    StatusOr<SearchSpace> space = read_search_space(*job, {});
    ASSERT_FALSE(space.ok()) << c.tune;
    EXPECT_EQ(space.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(space.status().message().find(c.expected), std::string::npos)
        << space.status().message() << "\nexpected: " << c.expected;
  }
}

TEST(SearchSpaceTest, BadFlagsNameTheFlag) {
  const Job job = job_with_tune("");
  auto flags = [](auto set) {
    SpaceFlags f;
    set(f);
    return f;
  };
  const std::vector<std::pair<SpaceFlags, std::string>> cases = {
      {flags([](SpaceFlags& f) { f.tp = "2,x"; }), "--tp: expected integers"},
      {flags([](SpaceFlags& f) { f.tp = "3"; }), "--tp: tp 3 does not divide"},
      {flags([](SpaceFlags& f) { f.recompute = "most"; }), "--recompute: unknown value \"most\""},
      {flags([](SpaceFlags& f) { f.chunk_sizes = "all"; }),
       "--chunk-sizes: \"all\" is not accepted"},
      {flags([](SpaceFlags& f) {
         f.k = "1";
         f.k_max = 4;
       }),
       "--k and --k-max"},
      {flags([](SpaceFlags& f) { f.memory_margin = 0.95; }), "--margin"},
      {flags([](SpaceFlags& f) { f.pp = "7"; }), "--pp: pp 7 does not divide the 32 GPUs"},
      {flags([](SpaceFlags& f) { f.dp = "32"; }), "the search space is empty: no layout"},
      // Given, but empty or zero: errors, not "left out".
      {flags([](SpaceFlags& f) { f.chunk_sizes = ""; }), "--chunk-sizes: empty list"},
      {flags([](SpaceFlags& f) { f.k = " "; }), "--k: empty list"},
      {flags([](SpaceFlags& f) { f.tp = ""; }), "--tp: empty list"},
      {flags([](SpaceFlags& f) { f.packer = ""; }), "--packer: empty list"},
      {flags([](SpaceFlags& f) { f.split = ""; }), "--split: empty list"},
      {flags([](SpaceFlags& f) { f.split = "even,lopsided"; }),
       "--split: unknown value \"lopsided\""},
      {flags([](SpaceFlags& f) { f.k_max = 0; }), "--k-max: must be in [1, 4096], got 0"},
      {flags([](SpaceFlags& f) { f.top = 0; }), "--top: must be in [1, 1000], got 0"},
      {flags([](SpaceFlags& f) { f.memory_margin = std::nan(""); }),
       "--margin: must be in [0, 0.9], got nan"},
      {flags([](SpaceFlags& f) { f.memory_margin = -0.1; }),
       "--margin: must be in [0, 0.9], got -0.1"},
      {flags([](SpaceFlags& f) { f.cp = "0"; }), "--cp: cp must be >= 1, got 0"},
      {flags([](SpaceFlags& f) { f.cp = "2,x"; }), "--cp: expected integers"},
      {flags([](SpaceFlags& f) { f.tp = "1,0"; }), "--tp: tp must be >= 1, got 0"},
      {flags([](SpaceFlags& f) { f.objective = ""; }), "--objective: expected"},
  };
  for (const auto& [flags, expected] : cases) {
    StatusOr<SearchSpace> space = read_search_space(job, flags);
    ASSERT_FALSE(space.ok()) << expected;
    EXPECT_EQ(space.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(space.status().message().find(expected), std::string::npos)
        << space.status().message();
  }
}

}  // namespace
}  // namespace cf
