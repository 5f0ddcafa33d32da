// The executor trains: over 50 AdamW steps on a small fixed dataset (12 arithmetic
// progressions mod 256 in tests/executor/data/progressions.jsonl, the whole file each step),
// the loss falls, with ChunkFlow splitting the long sequences across a 2-stage pipeline.
#include <gtest/gtest.h>

#include <cmath>

#include "executor/executor.h"
#include "tests/support/executor_fixture.h"

namespace cf {
namespace {

TEST(Training, LossFallsOver50Steps) {
  test::TinyJob spec;
  spec.lengths = std::vector<int64_t>(12, 1);  // global_batch = 12; lengths come from the file
  spec.pp = 2;
  spec.steps = 50;
  spec.strategy = "{kind: chunkflow, chunk_size: 48, k: 1}";
  const Job job = test::tiny_job(spec);
  ExecutorOptions options;
  options.tokens_path = "tests/executor/data/progressions.jsonl";
  options.adamw.lr = 3e-3f;
  options.record_trace = false;
  StatusOr<RunReport> report = run_in_process(job, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ(report->steps.size(), 50u);
  // 439 tokens in 12 sequences; the 190-token one is split into a group of 4 pieces.
  EXPECT_EQ(report->steps[0].tokens, 439);
  const double first = report->steps.front().loss;
  const double last = report->steps.back().loss;
  // Near-uniform predictions at the start: ln 256 = 5.545.
  EXPECT_NEAR(first, std::log(256.0), 0.1);
  for (const StepReport& s : report->steps) EXPECT_TRUE(std::isfinite(s.loss));
  // The next token is the previous one plus a per-sequence stride: learnable, and the batch
  // repeats, so 50 steps take the loss far below its start.
  EXPECT_LT(last, 0.5 * first) << "first " << first << ", last " << last;
  // Falling on the whole, not by luck at the end: each 10-step window's mean below the last.
  double previous = first + 1;
  for (int w = 0; w < 5; ++w) {
    double mean = 0;
    for (int i = 0; i < 10; ++i) mean += report->steps[static_cast<size_t>(10 * w + i)].loss;
    mean /= 10;
    EXPECT_LT(mean, previous) << "window " << w;
    previous = mean;
  }
}

}  // namespace
}  // namespace cf
