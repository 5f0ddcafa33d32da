// A timeline of one training step, predicted (simulator) or measured (executor), and its
// Chrome Trace Event form (opens in Perfetto). Ops join across the two on
// (dp_rank, stage, kind, chunk, pass, model_chunk) and carry the Plan's op id.
// Not the comparison itself (traces/compare.h).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "traces/kinds.h"
#include "traces/profile_classes.h"

namespace cf {

// Times a Chrome trace holds: microseconds as doubles, exact to the nanosecond below 2^50 ns
// (13 days); a trace of a longer step is refused before it is recorded.
inline constexpr int64_t kMaxTraceTimeNs = int64_t{1} << 50;

// Nanoseconds of an op by the class of the kernels it runs, indexed by KernelClass (gemm,
// attention, collective, memcpy, elementwise, other): a cost model's split of a predicted
// op, in the classes a PyTorch profile's kernels are sorted into (profile_classes.h).
using ClassNs = std::array<int64_t, kKernelClassCount>;

struct TraceOp {
  int dp_rank = 0;
  int stage = 0;
  OpKind kind = OpKind::kCompute;
  // Compute ops: their pass. Send / recv: the pass the message serves (F or F* for an
  // activation going forward, B for a gradient going back). Empty otherwise.
  std::optional<Pass> pass;
  int chunk = -1;       // plan chunk id, -1 when not chunk-bound (optimizer, dp_reduce)
  int model_chunk = 0;  // compute: its virtual stage's model chunk; send / recv: the receiver's
  int op_id = -1;       // the Plan's op id (send: of the producing op, recv: of the consumer)
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  int64_t tokens = 0;
  int group = -1;
  int index = 0;        // position in the group
  int peer_stage = -1;  // send / recv: the stage at the other end
  int64_t bytes = 0;    // send / recv: the message's bytes
  // Compute ops of a cost model that splits its times (the analytical one): the duration by
  // kernel class, summing to duration_ns(). Empty otherwise (unit and calibrated models,
  // measured traces, traces written before the split existed).
  std::optional<ClassNs> class_ns = std::nullopt;
  int64_t duration_ns() const { return end_ns - start_ns; }
  bool operator==(const TraceOp&) const = default;
};

// One point of a memory counter track: live bytes of `category` (or of all categories, the
// total, when empty) on (dp_rank, stage) from `time_ns` on.
struct MemorySample {
  int dp_rank = 0;
  int stage = 0;
  int64_t time_ns = 0;
  std::optional<MemoryCategory> category;  // empty: the total
  int64_t bytes = 0;
  bool operator==(const MemorySample&) const = default;
};

struct Trace {
  std::string source;  // "predicted" | "measured"
  std::vector<TraceOp> ops;
  std::vector<MemorySample> memory;
  // Per (dp_rank, stage) bytes by category at the moment of the total's peak.
  std::map<std::pair<int, int>, MemoryBreakdown> peak_memory;
  std::map<std::string, double> metrics;          // e.g. step_time_s, bubble_ratio
  bool operator==(const Trace&) const = default;  // exact (a NaN metric never compares equal)
};

// Chrome Trace Event JSON: pid = DP rank, tid = stage, "X" events for ops (name "F3", "B3",
// "send 3", ...; args carry op_id, chunk, pass, kind, tokens, group, index, model_chunk, and
// gemm_ns, attention_ns, collective_ns, memcpy_ns, elementwise_ns, other_ns when the op has a
// class split: optional on reading, all six or none), "C" counter events for memory, metadata
// events naming the tracks, and a top-level "chunkflow" object with source, metrics and peak
// memory. Sends go on a track of their own per stage (tid kSendTrack + stage): a predicted transfer
// overlaps the stage's next ops. Times in µs with ns precision.
inline constexpr int kSendTrack = 1000;
std::string trace_to_chrome_json(const Trace& trace);
StatusOr<Trace> trace_from_chrome_json(const std::string& text, const std::string& origin);

}  // namespace cf
