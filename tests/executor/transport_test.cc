// The transports a device backend uses, tested on the CPU: host staging (staged_transport.h)
// over the in-process transport gives what the bare transport gives — messages, the DP and
// tied sums, the CP all-gather and reduce-scatter with uneven parts on every CP rank — and the
// property the NCCL transport relies on (nccl_transport.h): on every directed link between two
// stages, for each kind (activations, gradients), the plan's messages are received in the order
// they are sent, over the schedules, strategies and layouts the executor runs (under
// interleaving the two kinds on one link interleave differently at its ends: a link per kind).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <numeric>
#include <thread>
#include <tuple>
#include <vector>

#include "executor/cpu_backend.h"
#include "executor/inproc_transport.h"
#include "executor/staged_transport.h"
#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_index.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

// Runs fn(i) on n threads and waits.
void on_threads(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(fn, i);
  for (std::thread& t : threads) t.join();
}

std::vector<float> iota(int64_t n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(StagedTransport, MessagesBetweenStagesArriveWhole) {
  InProcessFabric fabric(1, 2);
  InProcessTransport t0(&fabric, 0, 0), t1(&fabric, 0, 1);
  StagedTransport s0(&t0, cpu_stream(), 0), s1(&t1, cpu_stream(), 0);
  const std::vector<float> a = iota(37, 1), g = iota(5, -3);
  std::vector<float> got_a(a.size()), got_g(g.size());
  on_threads(2, [&](int stage) {
    if (stage == 0) {
      s0.send(1, {3, 0, false}, a.data(), 37);
      s0.recv(1, {3, 0, true}, got_g.data(), 5);
      s0.finish_step();
    } else {
      s1.recv(0, {3, 0, false}, got_a.data(), 37);
      s1.send(0, {3, 0, true}, g.data(), 5);
      s1.finish_step();
    }
  });
  EXPECT_EQ(got_a, a);
  EXPECT_EQ(got_g, g);
  EXPECT_EQ(fabric.undelivered(), 0u);
}

TEST(StagedTransport, SumsOverDpRanksAndTheTiedPair) {
  InProcessFabric fabric(3, 1);
  std::vector<std::vector<float>> data = {iota(11, 0), iota(11, 100), iota(11, -7)};
  on_threads(3, [&](int r) {
    InProcessTransport host(&fabric, r, 0);
    StagedTransport staged(&host, cpu_stream(), 0);
    staged.allreduce_dp(data[static_cast<size_t>(r)].data(), 11);
  });
  for (size_t i = 0; i < 11; ++i) {
    const float want = float(i) + float(100 + i) + float(-7 + int(i));
    for (int r = 0; r < 3; ++r) EXPECT_EQ(data[static_cast<size_t>(r)][i], want) << r << " " << i;
  }
  InProcessFabric pair(1, 3);
  std::vector<std::vector<float>> tied = {iota(4, 1), {}, iota(4, 10)};
  on_threads(3, [&](int stage) {
    if (stage == 1) return;
    InProcessTransport host(&pair, 0, stage);
    StagedTransport staged(&host, cpu_stream(), 0);
    staged.allreduce_tied(tied[static_cast<size_t>(stage)].data(), 4);
  });
  EXPECT_EQ(tied[0], (std::vector<float>{11, 13, 15, 17}));
  EXPECT_EQ(tied[2], tied[0]);
}

// Uneven parts (5, 0, 3): each CP rank's own count is the one staged, an empty part included.
TEST(StagedTransport, CpCollectivesWithUnevenPartsOnEveryRank) {
  const std::vector<int64_t> counts = {5, 0, 3};
  InProcessFabric fabric(1, 1, 3);
  std::vector<std::vector<float>> parts = {iota(5, 1), {}, iota(3, 50)};
  std::vector<std::vector<float>> gathered(3, std::vector<float>(8, -1.0f));
  std::vector<std::vector<float>> full = {iota(8, 0), iota(8, 10), iota(8, 20)};
  std::vector<std::vector<float>> scattered = {std::vector<float>(5), {}, std::vector<float>(3)};
  on_threads(3, [&](int c) {
    InProcessTransport host(&fabric, 0, 0, c);
    StagedTransport staged(&host, cpu_stream(), c);
    const size_t i = static_cast<size_t>(c);
    staged.allgather_cp(parts[i].data(), gathered[i].data(), counts);
    staged.reduce_scatter_cp(full[i].data(), scattered[i].data(), counts);
  });
  const std::vector<float> want = {1, 2, 3, 4, 5, 50, 51, 52};
  for (int c = 0; c < 3; ++c) EXPECT_EQ(gathered[static_cast<size_t>(c)], want) << "CP rank " << c;
  EXPECT_EQ(scattered[0], (std::vector<float>{30, 33, 36, 39, 42}));  // Σ of 0.., 10.., 20..
  EXPECT_EQ(scattered[2], (std::vector<float>{45, 48, 51}));
}

// The keys sent from stage a to stage b of one pipeline, in a's stream order, and those b
// receives from a, in b's.
using Key = std::tuple<int, int, bool>;
using Links = std::map<std::tuple<int, int, bool>, std::vector<Key>>;  // (from, to, gradient)

void link_orders(const PlanIndex& index, int dp_rank, int pp, Links* sent, Links* received) {
  for (int s = 0; s < pp; ++s) {
    for (int i = index.stream_begin(dp_rank, s); i < index.stream_end(dp_rank, s); ++i) {
      const IndexedOp& op = index.op(i);
      if (op.consumer >= 0) {
        const IndexedOp& to = index.op(op.consumer);
        const bool gradient = op.op->pass == Pass::kBackward;
        (*sent)[{s, to.stage, gradient}].emplace_back(op.op->chunk, to.op->model_chunk, gradient);
      }
      if (op.input_crosses) {
        const bool gradient = op.op->pass == Pass::kBackward;
        (*received)[{index.op(op.input).stage, s, gradient}].emplace_back(
            op.op->chunk, op.op->model_chunk, gradient);
      }
    }
  }
}

TEST(NcclLinkOrder, EveryLinkReceivesInTheOrderItSends) {
  struct Spec {
    std::string name;
    test::TinyJob job;
  };
  std::vector<Spec> specs;
  const char* const datasets[] = {"longbench", "lmsys-chat-1m", "chatqa2-long-sft"};
  int n = 0;
  for (int pp : {2, 3, 4}) {
    for (const char* strategy :
         {"{kind: chunkflow, chunk_size: 30, k: 1}", "{kind: chunkflow, chunk_size: 48, k: 2}",
          "{kind: chunkflow, chunk_size: 40, k: 64, packer: ffd}",
          "{kind: baseline, micro_batching: pack}"}) {
      test::TinyJob job;
      job.lengths = test::scaled_batch(datasets[n % 3], 11, 157, 900 + n);
      job.pp = pp;
      job.dp = n % 2 + 1;
      job.max_length = 160;
      job.strategy = strategy;
      job.model = pp == 2   ? "tiny"  // 4 layers: pp 2, vpp 2
                  : pp == 3 ? "tests/executor/data/tiny-6.yaml"
                            : "tests/executor/data/tiny-12-layers.yaml";  // pp 4, vpp 3
      specs.push_back({fmt::format("pp{} dp{} {}", pp, job.dp, strategy), job});
      if (std::string(strategy).find("chunkflow") != std::string::npos) {
        job.vpp = pp == 4 ? 3 : 2;
        job.schedule = "interleaved";
        specs.push_back({fmt::format("pp{} vpp{} interleaved {}", pp, job.vpp, strategy), job});
      }
      ++n;
    }
  }
  for (const Spec& spec : specs) {
    SCOPED_TRACE(spec.name);
    const Job job = test::tiny_job(spec.job);
    StatusOr<Plan> plan = build_plan(job, 0);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    StatusOr<PlanIndex> index = PlanIndex::build(*plan, WireFormat{job.model.hidden, 4, 1});
    ASSERT_TRUE(index.ok()) << index.status().message();
    for (int r = 0; r < plan->dp; ++r) {
      Links sent, received;
      link_orders(*index, r, plan->pp, &sent, &received);
      EXPECT_EQ(sent, received) << "DP rank " << r;
      EXPECT_FALSE(sent.empty());
    }
  }
}

}  // namespace
}  // namespace cf
