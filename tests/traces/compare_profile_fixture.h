// Predicted traces and profile files for the tests of a prediction against PyTorch profiles:
// ops placed by hand at whole microseconds, profiles written by ProfileBuilder and read back
// through read_profiled_ranks, so every number the comparison reports is known exactly.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"
#include "tests/traces/profile_builder.h"
#include "traces/compare_profile.h"

namespace cf::test {

// One predicted op of (dp_rank, stage) over [start_us, start_us + dur_us).
inline TraceOp predicted_op(int dp_rank, int stage, OpKind kind, std::optional<Pass> pass,
                            int chunk, int64_t start_us, int64_t dur_us, int model_chunk = 0) {
  TraceOp op;
  op.dp_rank = dp_rank;
  op.stage = stage;
  op.kind = kind;
  op.pass = pass;
  op.chunk = chunk;
  op.model_chunk = model_chunk;
  op.start_ns = start_us * 1000;
  op.end_ns = (start_us + dur_us) * 1000;
  return op;
}

// A compute op whose duration is split as gemm, attention, elementwise and other (µs).
inline TraceOp split_op(int dp_rank, int stage, Pass pass, int chunk, int64_t start_us,
                        int64_t gemm_us, int64_t attention_us, int64_t elementwise_us,
                        int64_t other_us, int model_chunk = 0) {
  TraceOp op = predicted_op(dp_rank, stage, OpKind::kCompute, pass, chunk, start_us,
                            gemm_us + attention_us + elementwise_us + other_us, model_chunk);
  ClassNs split{};
  split[static_cast<int>(KernelClass::kGemm)] = gemm_us * 1000;
  split[static_cast<int>(KernelClass::kAttention)] = attention_us * 1000;
  split[static_cast<int>(KernelClass::kElementwise)] = elementwise_us * 1000;
  split[static_cast<int>(KernelClass::kOther)] = other_us * 1000;
  op.class_ns = split;
  return op;
}

inline void set_layout(Trace* trace, int tp, int cp, int dp, int pp) {
  trace->metrics["layout_tp"] = tp;
  trace->metrics["layout_cp"] = cp;
  trace->metrics["layout_dp"] = dp;
  trace->metrics["layout_pp"] = pp;
}

// Profiles written to a directory and read as compare reads them.
class ProfileFiles {
 public:
  std::string add(const std::string& name, const ProfileBuilder& profile) {
    paths_.push_back(dir_.write(name, profile.json()));
    return paths_.back();
  }
  std::vector<ProfiledRank> read() const {
    StatusOr<std::vector<ProfiledRank>> ranks = read_profiled_ranks(paths_);
    EXPECT_TRUE(ranks.ok()) << ranks.status().message();
    return ranks.ok() ? *ranks : std::vector<ProfiledRank>{};
  }
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  TempDir dir_;
  std::vector<std::string> paths_;
};

inline ProfileCompareReport compare_ok(const Trace& predicted,
                                       const std::vector<ProfiledRank>& ranks,
                                       const LayoutFlags& flags = {}) {
  StatusOr<ProfileCompareReport> report = compare_with_profiles(predicted, ranks, flags);
  EXPECT_TRUE(report.ok()) << report.status().message();
  return report.ok() ? *report : ProfileCompareReport{};
}

}  // namespace cf::test
