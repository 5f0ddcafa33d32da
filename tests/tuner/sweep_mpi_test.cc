// Sweeps over MPI ranks (tuner/sweep_mpi.h), run under `mpirun -np 2` and `-np 3` (ctest label
// mpi): every rank tunes its round-robin share of the points of a small sweep, or shares a
// point's candidates with other ranks when points are fewer than ranks, and rank 0's gathered
// result prints exactly as one process's run_sweep (table, CSV, JSON), with the target
// answered.
#include "tuner/sweep_mpi.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "tuner/sweep.h"

namespace cf {
namespace {

constexpr const char* kSweep = "tests/tuner/data/sweep-mpi.yaml";

TEST(SweepOverMpi, RankZeroGathersWhatOneProcessTunes) {
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  StatusOr<SweepSpec> spec = load_sweep(kSweep);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  TuneOptions options;
  options.threads = 1;
  std::vector<int> counts;  // rank 0: the count given with each of its points
  StatusOr<MpiSweep> swept =
      run_sweep_mpi(*spec, options, [&](int k, int count, const std::string&) {
        EXPECT_EQ(k, static_cast<int>(counts.size()));
        counts.push_back(count);
      });
  ASSERT_TRUE(swept.ok()) << swept.status().message();
  EXPECT_EQ(swept->ranks, ranks);
  EXPECT_EQ(swept->root, rank == 0);
  if (rank != 0) {
    EXPECT_TRUE(counts.empty());
    EXPECT_TRUE(swept->result.points.empty());
    return;
  }
  // 8 points: rank 0 tunes points 0, N, 2N, ...
  const int share = (8 + ranks - 1) / ranks;
  EXPECT_EQ(counts, std::vector<int>(static_cast<size_t>(share), share));
  options.threads = 2;  // a different thread count: the same answer
  StatusOr<SweepResult> alone = run_sweep(*spec, options, {});
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  const SweepResult& gathered = swept->result;
  ASSERT_EQ(gathered.points.size(), 8u);
  EXPECT_EQ(sweep_table(gathered), sweep_table(*alone));
  EXPECT_EQ(sweep_csv(gathered), sweep_csv(*alone));
  EXPECT_EQ(sweep_json(gathered).dump(2), sweep_json(*alone).dump(2));
  ASSERT_EQ(gathered.target.size(), 2u);
  EXPECT_EQ(gathered.target[0].gpus, 4);
  // Not vacuous: tuned points, and the point that fits no layout says so.
  EXPECT_TRUE(gathered.points[0].best.has_value());
  EXPECT_GT(gathered.points[0].best->metrics.step_time_s, 0);
  EXPECT_NE(gathered.points[1].error.find("no layout"), std::string::npos);
}

// Fewer points than ranks: the ranks of a group share each point's search (bounds and
// simulations spread, state exchanged, search_peers.h), and rank 0 still prints what one
// process prints. One point puts every rank in one group; two points under 3 ranks give a
// group of two and a group of one.
TEST(SweepOverMpi, RanksShareThePointsCandidates) {
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  for (const std::vector<int64_t>& gpus : {std::vector<int64_t>{8}, std::vector<int64_t>{4, 8}}) {
    StatusOr<SweepSpec> spec = load_sweep(kSweep);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    spec->gpu_counts = gpus;
    spec->gpu_types = {"h100-sxm-80g"};
    spec->space.ks = {1, 2, 3, 4};
    TuneOptions options;
    options.threads = 1;
    int simulated_here = 0;  // feasible candidates this rank simulated itself
    options.feasible = [&](const Candidate&, const SimMetrics&) { ++simulated_here; };
    StatusOr<MpiSweep> swept = run_sweep_mpi(*spec, options, {});
    ASSERT_TRUE(swept.ok()) << swept.status().message();
    std::vector<int> counts(static_cast<size_t>(ranks), 0);
    MPI_Allgather(&simulated_here, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
    // Rank 0 shares a group with rank `groups` (= the point count): both simulate some.
    const int partner = static_cast<int>(gpus.size());
    if (partner < ranks) {
      EXPECT_GT(counts[0], 0) << gpus.size() << " points";
      EXPECT_GT(counts[static_cast<size_t>(partner)], 0) << gpus.size() << " points";
    }
    if (rank != 0) continue;
    TuneOptions alone_options;
    alone_options.threads = 2;
    StatusOr<SweepResult> alone = run_sweep(*spec, alone_options, {});
    ASSERT_TRUE(alone.ok()) << alone.status().message();
    const SweepResult& gathered = swept->result;
    ASSERT_EQ(gathered.points.size(), gpus.size());
    EXPECT_TRUE(gathered.points.back().best.has_value());
    EXPECT_EQ(sweep_table(gathered), sweep_table(*alone)) << gpus.size() << " points";
    EXPECT_EQ(sweep_csv(gathered), sweep_csv(*alone));
    EXPECT_EQ(sweep_json(gathered).dump(2), sweep_json(*alone).dump(2));
  }
}

}  // namespace
}  // namespace cf

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  const int failed = RUN_ALL_TESTS();
  MPI_Finalize();
  return failed;
}
