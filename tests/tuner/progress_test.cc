// The progress line of tune and sweep (tuner/progress.h) on fixed inputs: the bar, the counts,
// the times and the estimate, the best so far cut to the terminal's width.
#include "tuner/progress.h"

#include <gtest/gtest.h>

#include <cmath>

namespace cf {
namespace {

// Code points, as a terminal counts the columns of these lines.
int columns_of(const std::string& text) {
  int n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

SearchProgress tune_progress() {
  SearchProgress p;
  p.what = "tune";
  p.done = 410;
  p.total = 1666;
  p.best = "1.8549 s/step ChunkSize 8192 K 4 tp4 pp4 dp2 sp selective 1f1b";
  p.elapsed_s = 3.1;
  p.fraction = 410.0 / 1666;  // 3.1 · (1 − f) / f = 9.4966 s left
  return p;
}

TEST(ProgressLine, BarCountsTimesAndBest) {
  EXPECT_EQ(progress_line(tune_progress(), 200),
            "tune [####................]  410/1666  24%  3.1 s, at most ~9.5 s left  "
            "best 1.8549 s/step ChunkSize 8192 K 4 tp4 pp4 dp2 sp selective 1f1b");
}

TEST(ProgressLine, BestIsCutToTheWidth) {
  const std::string line = progress_line(tune_progress(), 80);
  EXPECT_EQ(line,
            "tune [####................]  410/1666  24%  3.1 s, at most ~9.5 s left  "
            "best 1.…");
  EXPECT_EQ(columns_of(line), 80);
  // Too narrow for any of the best: the counts and times alone.
  EXPECT_EQ(progress_line(tune_progress(), 75),
            "tune [####................]  410/1666  24%  3.1 s, at most ~9.5 s left");
}

TEST(ProgressLine, SweepPointWithMultibyteLabel) {
  SearchProgress p;
  // 69 columns of label ("×" is two bytes, one column), 70 of bar, counts and times.
  p.what = "sweep 2/8 qwen2.5-7b, lmsys-chat-1m, 16 × h100-sxm-80g, 262144 tokens";
  p.done = 7;
  p.total = 7;
  p.elapsed_s = 75;
  p.fraction = 2.0 / 8;  // 75 · 3 = 225 s left
  p.best = "2.7548 s/step ChunkSize 8192 K 4 tp2 pp2 dp4 sp none 1f1b";
  const std::string line = progress_line(p, 150);
  EXPECT_EQ(line,
            "sweep 2/8 qwen2.5-7b, lmsys-chat-1m, 16 × h100-sxm-80g, 262144 tokens "
            "[####################] 7/7 100%  1 min 15 s, at most ~3 min 45 s left  best 2.7…");
  EXPECT_EQ(columns_of(line), 150);
  // Narrower than label and counts: the label is cut, the counts and times stay whole.
  const std::string narrow = progress_line(p, 100);
  EXPECT_EQ(narrow,
            "sweep 2/8 qwen2.5-7b, lmsys-c… [####################] 7/7 100%  1 min 15 s, at "
            "most ~3 min 45 s left");
  EXPECT_EQ(columns_of(narrow), 100);
}

TEST(ProgressLine, EstimatingBeforeOnePercentAndNothingFound) {
  SearchProgress p;
  p.what = "tune";
  p.done = 3;
  p.total = 20160;
  p.elapsed_s = 9.3;
  p.fraction = 3.0 / 20160;
  EXPECT_EQ(progress_line(p), "tune [....................]     3/20160   0%  9.3 s, estimating");
  p.done = p.total = 0;
  p.fraction = 0;
  EXPECT_EQ(progress_line(p), "tune [....................] 0/0   0%  9.3 s, estimating");
}

TEST(ProgressLine, RemainingEstimate) {
  EXPECT_DOUBLE_EQ(*remaining_estimate_s(10, 0.25), 30);
  EXPECT_DOUBLE_EQ(*remaining_estimate_s(10, 1), 0);
  EXPECT_FALSE(remaining_estimate_s(10, 0.005).has_value());
  EXPECT_FALSE(remaining_estimate_s(10, std::nan("")).has_value());
  EXPECT_FALSE(remaining_estimate_s(std::nan(""), 0.5).has_value());
}

TEST(ProgressLine, Durations) {
  EXPECT_EQ(format_duration(0.04), "0.0 s");
  EXPECT_EQ(format_duration(9.94), "9.9 s");
  EXPECT_EQ(format_duration(9.96), "10 s");
  EXPECT_EQ(format_duration(59.4), "59 s");
  EXPECT_EQ(format_duration(59.6), "1 min 00 s");
  EXPECT_EQ(format_duration(185), "3 min 05 s");
  EXPECT_EQ(format_duration(3725), "1 h 02 min");
  EXPECT_EQ(format_duration(-3), "0.0 s");
}

}  // namespace
}  // namespace cf
