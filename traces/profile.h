// What a PyTorch profiler trace says about one rank's training: its steps, how busy the GPU
// was in each, device time by kernel class, the largest kernels, the collectives' sizes.
// Reads the Kineto Chrome-trace JSON of torch 2.x (and 1.x with Kineto) and the bare event list
// torch 1.x writes without Kineto, plain or gzip-compressed, as a stream with bounded memory
// (traces/profile_reader.cc). docs/PROFILES.md describes the formats and every rule.
// Not chunkflow's own trace format (traces/trace.h) and not the comparison with a prediction.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "traces/profile_classes.h"
#include "traces/profile_marks.h"

namespace cf {

enum class ProfileFormat : uint8_t {
  kKineto,      // {"traceEvents": [...], "distributedInfo": ..., "deviceProperties": ...}
  kLegacyList,  // [{"name", "ph": "X", "ts", "dur", "tid", "pid": "CPU functions"}, ...]
};
const char* profile_format_name(ProfileFormat format);  // "kineto", "legacy_list"

// Busy time of one device (or of one of its streams) inside a step's time range.
struct ProfileStreamBusy {
  int64_t device = 0;
  int64_t stream = 0;
  int64_t busy_ns = 0;
  bool operator==(const ProfileStreamBusy&) const = default;
};

// One ProfilerStep#N range (a CPU-side user annotation) and the device work inside it.
struct ProfileStep {
  std::string name;  // "ProfilerStep#N"
  int64_t start_ns = 0;
  int64_t duration_ns = 0;
  // Time in [start, start + duration) when at least one device activity (kernel, memcpy,
  // memset) of any device of this rank ran: the measure of the union of their intervals.
  int64_t gpu_busy_ns = 0;
  int64_t gpu_idle_ns() const { return duration_ns - gpu_busy_ns; }
  std::vector<ProfileStreamBusy> devices;  // per device (stream = -1), by device
  std::vector<ProfileStreamBusy> streams;  // per (device, stream), in that order
  // The measure of the union of the main CPU thread's op intervals in the step: the busy time
  // of a CPU-only profile. The main thread is the one whose ops cover the most time over the
  // profile; chunkflow marks ("chunkflow:..." ranges, CPU ops in a legacy list) do not count.
  int64_t cpu_busy_ns = 0;
  // Time by class in the step: the durations of the device activities that start in it when
  // the profile has any, else the CPU self time of the ops (of every thread, chunkflow marks
  // left out) that end in it.
  std::array<int64_t, kKernelClassCount> by_class_ns{};
  bool operator==(const ProfileStep&) const = default;
};

// A kernel (or CPU op) name and its total time over the profile.
struct ProfileNameTotal {
  std::string name;
  KernelClass kind = KernelClass::kOther;
  int64_t total_ns = 0;
  int64_t count = 0;
  bool operator==(const ProfileNameTotal&) const = default;
};

// Collectives as record_param_comms recorded them, grouped by (name, dtype, group size).
struct ProfileCollective {
  std::string name;  // "allreduce", "_allgather_base", ... as the trace spells it
  CollectiveKind kind = CollectiveKind::kOther;
  std::string dtype;       // "Float", "BFloat16", ... ("" when not recorded)
  int64_t group_size = 0;  // 0 when not recorded
  int64_t count = 0;
  int64_t in_nelems = 0;  // summed over the calls
  int64_t out_nelems = 0;
  int64_t dtype_bytes = 0;  // bytes per element of dtype, 0 when unknown
  bool operator==(const ProfileCollective&) const = default;
};

// A device as deviceProperties and the memory events describe it.
struct ProfileDevice {
  int64_t id = 0;
  std::string name;                // "" when the trace has no deviceProperties entry
  int64_t total_memory_bytes = 0;  // totalGlobalMem
  int compute_major = 0, compute_minor = 0;
  int64_t peak_allocated_bytes = -1;  // largest "Total Allocated" of its [memory] events; -1: none
  bool operator==(const ProfileDevice&) const = default;
};

// CPU ops of one name and one size whose work the trace's input shapes give (ProfileWork).
struct ProfileWorkSample {
  std::string name;  // "aten::mm", "aten::_scaled_dot_product_flash_attention", "aten::add"
  KernelClass kind = KernelClass::kOther;  // gemm, attention, elementwise or collective
  bool backward = false;                   // an attention backward
  double flops = 0;                        // gemm and attention, per call
  double bytes = 0;        // elementwise: moved per call; collective: the array (nccl-tests' S)
  int64_t group_size = 0;  // collective: ranks in its group
  int64_t count = 0;
  int64_t total_ns = 0;  // device time of the kernels they launched, or their CPU time
  bool operator==(const ProfileWorkSample&) const = default;
};

// What `calibrate --from-profile` fits: the ops whose work the input shapes give, timed by
// the kernels each launched (joined on Kineto's "External id") when the profile has device
// activity, else by the op's own CPU time (its duration, children included: a CPU profile).
struct ProfileWork {
  bool device_times = false;
  int64_t ops_with_dims = 0;        // CPU ops that carried "Input Dims" at all
  int64_t ops_without_kernels = 0;  // ops with work but no kernel of their External id (device)
  int64_t samples_dropped = 0;  // ops past the bounds (2^21 ops with work, 2^16 distinct samples)
  std::vector<ProfileWorkSample> samples;  // by kind, name, flops, bytes, group size
  // Kernels back to back on one stream: the gaps under 20 µs between one kernel's end and the
  // next one's start (a queued kernel waits only for the launch), their count and median.
  int64_t launch_gaps = 0;
  int64_t launch_gap_median_ns = 0;
  bool operator==(const ProfileWork&) const = default;
};
inline constexpr int kMaxProfileWorkSamples = 1 << 16;

struct RankProfile {
  std::string path;
  ProfileFormat format = ProfileFormat::kKineto;
  int rank = 0;                  // distributedInfo.rank, else the file's position
  bool rank_from_trace = false;  // whether distributedInfo gave the rank
  int world_size = 0;            // 0 when the trace does not say
  std::string backend;           // distributedInfo.backend ("nccl"), or ""

  std::vector<ProfileStep> steps;  // by start time
  // Set when steps × (devices + streams) is past 2^18 (only a hostile file): the steps then
  // carry their total busy time without the per-device and per-stream lists.
  bool step_detail_omitted = false;

  // Device activities over the whole profile (sums of durations; overlapping streams add).
  int64_t kernel_ns = 0, kernel_count = 0;
  int64_t memcpy_ns = 0, memcpy_count = 0;
  int64_t memset_ns = 0, memset_count = 0;
  std::array<int64_t, kKernelClassCount> device_by_class_ns{};  // kernels + memcpy + memset
  std::array<int64_t, kCollectiveKindCount> collective_ns{};    // the collective class, split
  std::vector<ProfileNameTotal> top_kernels;                    // by total time, at most 10

  // CPU ops (cat cpu_op, or every X event of a legacy list): self time, the time an op ran
  // with none of its children on the same thread, so nested ops are counted once.
  int64_t cpu_op_ns = 0, cpu_op_count = 0;
  std::array<int64_t, kKernelClassCount> cpu_by_class_ns{};
  std::vector<ProfileNameTotal> top_cpu_ops;  // by self time, at most 10

  // The first start and the last end of any kernel, memcpy, memset or CPU op (0, 0 when
  // there is none): the span `compare` takes for a step when a profile marks none.
  int64_t activity_start_ns = 0, activity_end_ns = 0;
  // Busy time over the whole profile, as ProfileStep's gpu_busy_ns and cpu_busy_ns are in a
  // step: the union of all device activities, and of the main CPU thread's ops.
  int64_t gpu_busy_ns = 0, cpu_busy_ns = 0;

  std::vector<ProfileCollective> collectives;  // by name, dtype, group size
  std::vector<ProfileDevice> devices;          // by id
  ProfileWork work;                            // ops with input shapes (record_shapes)
  ProfileMarks marks;                          // chunkflow's record_function ranges

  int64_t events = 0;  // elements of traceEvents (or of the list)
  int64_t flows = 0;   // s / f / t flow events (ac2g, fwdbwd, cpu_to_cuda)
  // Events of kinds this reader does not know, by "ph X" or "ph X, cat C": skipped, counted.
  std::map<std::string, int64_t> skipped;

  bool has_device_activity() const { return kernel_count + memcpy_count + memset_count > 0; }
  bool operator==(const RankProfile&) const = default;
  // What by_class_s reports: device time when there is any, else CPU self time.
  const std::array<int64_t, kKernelClassCount>& by_class_ns() const {
    return has_device_activity() ? device_by_class_ns : cpu_by_class_ns;
  }
};

// Called as bytes of a file are read (the file's position and size on disk).
using ProfileProgress = std::function<void(int64_t read_bytes, int64_t file_bytes)>;

// One profile file, `file_index` its position on the command line (the rank when the trace
// has no distributedInfo). InvalidInput "PATH: ..." for a file that is no regular file, is
// empty, is malformed JSON ("at byte N"), breaks a bound of core/limits.h, or holds a value of
// the wrong type or range ("traceEvents[I].KEY: ... at byte N"). For a .gz file (by its magic
// bytes, whatever its name) N counts decompressed bytes.
StatusOr<RankProfile> read_profile(const std::string& path, int file_index,
                                   const ProfileProgress& progress = nullptr);

// The profiles of one run, each read with its position as file_index, checked as a set:
// refused when two claim the same rank or when there are more than limits::kMaxGpus.
// Sorted by rank.
StatusOr<std::vector<RankProfile>> check_profile_ranks(std::vector<RankProfile> ranks);
// read_profile of every file in order, then check_profile_ranks.
StatusOr<std::vector<RankProfile>> read_profiles(const std::vector<std::string>& paths,
                                                 const ProfileProgress& progress = nullptr);

// `chunkflow profile --json`: {"ranks": [{"rank", "steps": [{"name", "duration_s", ...}],
// "gpu_kernel_s", "by_class_s": {"gemm", "attention", "collective", "memcpy", "elementwise",
// "other"}, ...}]} (docs/PROFILES.md lists every key).
std::string profile_report_json(const std::vector<RankProfile>& ranks);
// The same as tables, one section per rank.
std::string profile_report_text(const std::vector<RankProfile>& ranks);

}  // namespace cf
