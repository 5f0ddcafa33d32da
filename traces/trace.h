// A timeline of one training step, predicted (simulator) or measured (executor), and its
// Chrome Trace Event form (opens in Perfetto). Ops join across the two on
// (dp_rank, stage, kind, chunk, pass, model_chunk) and carry the Plan's op id.
// Not the comparison itself (traces/compare.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace cf {

struct TraceOp {
  int dp_rank = 0;
  int stage = 0;
  std::string kind;     // "compute" for plan ops; "send", "recv", "tp_comm", "dp_reduce", "optimizer"
  std::string pass;     // "F" | "F*" | "R" | "B" for compute ops; "" otherwise
  int chunk = -1;       // plan chunk id, -1 when not chunk-bound (optimizer, dp_reduce)
  int model_chunk = 0;
  int op_id = -1;       // the Plan's op id, -1 when not a plan op
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  int64_t tokens = 0;
  int group = -1;
  int index = 0;        // position in the group
  int64_t duration_ns() const { return end_ns - start_ns; }
  bool operator==(const TraceOp&) const = default;
};

// One point of a memory counter track: live bytes of `category` on (dp_rank, stage) from
// `time_ns` on. Categories: "weights", "gradients", "optimizer", "activations",
// "state_store", "transient", and "total".
struct MemorySample {
  int dp_rank = 0;
  int stage = 0;
  int64_t time_ns = 0;
  std::string category;
  int64_t bytes = 0;
  bool operator==(const MemorySample&) const = default;
};

struct Trace {
  std::string source;  // "predicted" | "measured"
  std::vector<TraceOp> ops;
  std::vector<MemorySample> memory;
  // Per (dp_rank, stage) peak bytes by category at the moment of the total's peak.
  std::map<std::pair<int, int>, std::map<std::string, int64_t>> peak_memory;
  std::map<std::string, double> metrics;  // e.g. step_time_s, bubble_ratio
  bool operator==(const Trace&) const = default;  // exact (a NaN metric never compares equal)
};

// Chrome Trace Event JSON: pid = DP rank, tid = stage, "X" events for ops (name "F3", "B3",
// "send 3", ...; args carry op_id, chunk, pass, kind, tokens, group, index, model_chunk),
// "C" counter events for memory, metadata events naming the tracks, and a top-level
// "chunkflow" object with source, metrics and peak memory. Times in µs with ns precision.
std::string trace_to_chrome_json(const Trace& trace);
StatusOr<Trace> trace_from_chrome_json(const std::string& text, const std::string& origin);

}  // namespace cf
