// The compact record of one profile file that the streaming reader keeps
// (traces/profile_reader.cc) and the summary reduces to a RankProfile
// (traces/profile_summary.cc): 24 bytes per kept event, names interned once. Internal to
// traces/ and its tests; the public face is traces/profile.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "traces/profile.h"

namespace cf {

// What a device activity is, by its category.
enum class DeviceActivity : uint8_t { kKernel, kMemcpy, kMemset };
inline constexpr int kDeviceActivityCount = 3;

// One kept event: a device activity or a CPU op. `track` indexes ProfileEvents::device_tracks
// (or a CPU thread), `name` the matching name table.
struct ProfileInterval {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  int32_t track = 0;
  int32_t name = 0;
};
static_assert(sizeof(ProfileInterval) == 24);

struct ProfileName {
  std::string text;
  DeviceActivity activity = DeviceActivity::kKernel;  // device names only
  KernelClassification classification;                // CPU ops: .kind only
};

// Names interned per kind of event: a name is stored and classified once.
class ProfileNameTable {
 public:
  // `device`: names of device activities (classified by classify_kernel, memcpy and memset
  // by their kind), else of CPU ops (classify_cpu_op).
  explicit ProfileNameTable(bool device) : device_(device) {}
  // The id of (kind, name), adding it when new; -1 when adding it would pass
  // limits::kMaxProfileNameBytes of text in all (`bytes` is shared by the tables of a file).
  // `kind`: a DeviceActivity for device names, 0 for CPU ops.
  int32_t intern(int kind, const std::string& name, int64_t* bytes);
  const std::vector<ProfileName>& names() const { return names_; }

 private:
  bool device_;
  std::unordered_map<std::string, int32_t> index_[kDeviceActivityCount];
  std::vector<ProfileName> names_;
};

// The work of one CPU op whose input shapes the trace records (record_shapes=True), as the
// calibration reads it: FLOPs of a GEMM (aten::mm, addmm, bmm, baddbmm, _scaled_mm) or of a
// fused attention (scaled_dot_product_* and flash_attn ops: 4·head_dim FLOPs per computed
// (query, key) pair, causal when the query and key lengths are equal), bytes of an elementwise
// op (its tensor inputs read and one output the size of the largest input written).
struct ProfileOpWork {
  int64_t interval = 0;  // index in ProfileEvents::cpu
  KernelClass kind = KernelClass::kOther;
  bool backward = false;  // an attention backward
  double flops = 0;
  double bytes = 0;          // elementwise: moved; collective: the whole array (nccl-tests' S)
  int64_t external_id = -1;  // Kineto's "External id": the kernels this op launched
  CollectiveKind collective = CollectiveKind::kOther;  // a record_param_comms op
  int64_t group_size = 0;
};

// A collective kernel that carries its sizes (newer Kineto copies record_param_comms' args to
// it): timed by itself.
struct ProfileCollectiveCall {
  CollectiveKind kind = CollectiveKind::kOther;
  double bytes = 0;  // the whole array, nccl-tests' S
  int64_t group_size = 0;
  int64_t duration_ns = 0;
};

inline constexpr int64_t kMaxProfileWorkOps = int64_t{1} << 21;

// Collective sizes keyed by (name, dtype, group size).
using ProfileCollectiveKey = std::tuple<std::string, std::string, int64_t>;

struct ProfileEvents {
  std::string path;
  ProfileFormat format = ProfileFormat::kKineto;
  std::optional<int64_t> rank, world_size;
  std::string backend;

  std::vector<ProfileStep> steps;  // name, start and duration only

  std::vector<ProfileInterval> device;                     // kernels, memcpys, memsets
  std::vector<std::pair<int64_t, int64_t>> device_tracks;  // (device, stream)
  ProfileNameTable device_names{true};
  std::vector<ProfileInterval> cpu;  // CPU ops; track = a (pid, tid) thread
  int32_t cpu_tracks = 0;
  ProfileNameTable cpu_names{false};

  // From record_param_comms CPU ops, and from collective kernels that carry the same args
  // (newer Kineto copies them); the first is reported when it has any entry.
  std::map<ProfileCollectiveKey, ProfileCollective> op_collectives, kernel_collectives;
  std::map<int64_t, ProfileDevice> devices;

  int64_t events = 0, flows = 0;
  std::map<std::string, int64_t> skipped;

  // For the calibration: the work of the CPU ops with shapes, the kernels' External ids
  // ((id, index in `device`)), and how many CPU ops carried "Input Dims" at all.
  // Each list holds at most kMaxProfileWorkOps (40 and 16 bytes an entry: 80 and 32 MiB);
  // ops past the bound are counted in work_ops_dropped and not fitted.
  std::vector<ProfileOpWork> cpu_work;
  std::vector<std::pair<int64_t, int32_t>> kernel_external;
  std::vector<ProfileCollectiveCall> kernel_collective_calls;  // as many, at most
  ProfileMarks marks;  // in file order; sorted by the summary
  int64_t cpu_ops_with_dims = 0;
  int64_t work_ops_dropped = 0;
};

// The ops with work (cpu_work) timed and grouped into RankProfile::work (profile_work.cc).
void summarize_work(const ProfileEvents& events, RankProfile* r);

// Steps sorted by start, busy time per step, class totals, self times, top lists.
RankProfile summarize_profile(ProfileEvents events, int file_index);

// Bytes per element of a torch dtype name ("Float" 4, "BFloat16" 2, ...); 0 when unknown.
int64_t torch_dtype_bytes(const std::string& dtype);

}  // namespace cf
