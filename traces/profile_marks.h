// The chunkflow marks of a PyTorch profile: the torch.profiler.record_function ranges a
// training script names after the plan's ops ("chunkflow:F:chunk=12", docs/PROFILES.md,
// "Marks"), parsed, with their times. The reader keeps them (RankProfile::marks, from
// profile_events.cc); not the rest of the profile (profile.h) nor the comparison
// (compare_profile.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "traces/kinds.h"

namespace cf {

// The prefix of the record_function ranges a training script names after the plan's ops
// (docs/PROFILES.md, "Marks"; traces/profile_marks.h reads them).
inline constexpr std::string_view kMarkPrefix = "chunkflow:";

// The plan op a mark names: what joins it to a predicted op (OpKey, less the place, which
// the file's rank gives). Send and recv marks carry no pass; compare takes it from the
// prediction.
struct MarkOp {
  OpKind kind = OpKind::kCompute;
  std::optional<Pass> pass;  // compute marks only
  int chunk = -1;            // compute, send, recv
  int model_chunk = 0;       // ":mc=M", 0 when absent
  bool operator==(const MarkOp&) const = default;
};

// What a "chunkflow:..." name is: an op's mark, a name of no op (counted, not an error), or a
// malformed mark — one with a chunk= or mc= field, or a known kind, that breaks the grammar
// (`why` says how).
struct ParsedMark {
  enum class Result : uint8_t { kOp, kUnknown, kMalformed };
  Result result = Result::kUnknown;
  MarkOp op;
  std::string why;
};
// `name` must start with kMarkPrefix ("chunkflow:").
ParsedMark parse_mark(std::string_view name);
// The name parse_mark reads back to `op`: "chunkflow:F*:chunk=3:mc=1", "chunkflow:optimizer".
std::string mark_name(const MarkOp& op);

struct ProfileMark {
  MarkOp op;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  int64_t event_index = 0;  // its place in traceEvents (or in the list)
  bool operator==(const ProfileMark&) const = default;
};

// Read with the rest of a profile (read_profile): a malformed mark is InvalidInput
// "PATH: traceEvents[I]: malformed chunkflow mark \"NAME\": WHY" (a list: "event [I]"); more
// than kMaxProfileMarks marks are refused (48 bytes each: 48 MiB; a step of a 1F1B plan marks
// thousands of ops, a profile holds tens of steps).
inline constexpr int64_t kMaxProfileMarks = int64_t{1} << 20;
struct ProfileMarks {
  // The CPU-side ranges: Kineto's user_annotation events (cpu_op also read), or a legacy
  // list's X events; by start, then event index.
  std::vector<ProfileMark> cpu;
  // Kineto's gpu_user_annotation copies on the device timeline, by start, then event index.
  std::vector<ProfileMark> device;
  // "chunkflow:..." names of no op, with their counts (64 names, then "(more names)").
  std::map<std::string, int64_t> unknown;
  bool operator==(const ProfileMarks&) const = default;
};

// A name for messages: quoted, cut to 80 bytes, bytes that are not UTF-8 replaced.
std::string mark_text(const std::string& name);

}  // namespace cf
