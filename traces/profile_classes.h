// What a kernel or a CPU op of a PyTorch profile is, judged by its name: the classes
// `chunkflow profile` reports time in (docs/PROFILES.md, "Classes", states each rule). Not the
// reading of a profile (traces/profile.h).
#pragma once

#include <cstdint>
#include <string_view>

namespace cf {

// Device work by what it computes. kMemcpy is judged by the event's category (gpu_memcpy and
// gpu_memset), never by a kernel's name.
enum class KernelClass : uint8_t {
  kGemm,
  kAttention,
  kCollective,
  kMemcpy,
  kElementwise,
  kOther,
};
inline constexpr int kKernelClassCount = 6;
inline constexpr KernelClass kAllKernelClasses[kKernelClassCount] = {
    KernelClass::kGemm,   KernelClass::kAttention,   KernelClass::kCollective,
    KernelClass::kMemcpy, KernelClass::kElementwise, KernelClass::kOther};
const char* kernel_class_name(KernelClass kind);  // "gemm", "attention", ...

// A collective kernel (or CPU op) by the collective it runs.
enum class CollectiveKind : uint8_t {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kSendRecv,
  kBroadcast,
  kReduce,
  kOther,
};
inline constexpr int kCollectiveKindCount = 8;
const char* collective_kind_name(CollectiveKind kind);  // "all_reduce", "send_recv", ...

struct KernelClassification {
  KernelClass kind = KernelClass::kOther;
  CollectiveKind collective = CollectiveKind::kOther;  // meaningful for kCollective only
};

// A GPU kernel by its name (case-insensitive substrings, first rule that matches):
// collective, attention, gemm, elementwise, other. Never kMemcpy.
KernelClassification classify_kernel(std::string_view name);

// A CPU op (aten::addmm, aten::_softmax, c10d::allreduce_, ...) by its name: collective,
// attention, gemm, memcpy, elementwise, other. Used for CPU-only profiles, on self time.
KernelClass classify_cpu_op(std::string_view name);

// The collective a name speaks of (NCCL kernel names, c10d op names, the "Collective name"
// argument of record_param_comms: "allreduce", "_allgather_base", "reduce_scatter_tensor").
CollectiveKind collective_kind_of(std::string_view name);

}  // namespace cf
