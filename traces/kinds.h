// The typed vocabulary shared by the plan, the simulator, the executor and their traces: the
// passes of a chunk (DESIGN.md §4.2), the kinds of timeline ops, and the memory categories
// with the breakdown of bytes by category. Strings exist only at the output boundaries
// (Chrome trace, JSON, tables): the *_name functions and their *_from_name inverses.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace cf {

// F: forward keeping activations. F*: forward keeping only the per-layer K/V (and the stage
// input). R: recompute forward of an F* chunk just before its backward. B: backward.
enum class Pass { kForward, kForwardKeepKV, kRecompute, kBackward };
const char* pass_name(Pass pass);                        // "F" | "F*" | "R" | "B"
const char* pass_name(const std::optional<Pass>& pass);  // as above, "" when empty
std::optional<Pass> pass_from_name(std::string_view name);
bool is_forward_pass(Pass pass);  // F, F*, R

// What a timeline op is. kCompute: a pass of a chunk over a stage's layers (a plan op).
// kSend: a message leaving a stage (predicted: its transfer on the link, from the moment it
// leaves to its arrival; measured: the sender's send call). kRecv: a stage waiting for its
// input before an op (from the moment it could start the op to the input's arrival).
// kDpReduce: the gradient sums after the stage's last backward. kOptimizer: its update.
enum class OpKind { kCompute, kSend, kRecv, kDpReduce, kOptimizer };
const char* op_kind_name(OpKind kind);  // "compute" | "send" | "recv" | "dp_reduce" | "optimizer"
std::optional<OpKind> op_kind_from_name(std::string_view name);
// Communication ops may overlap compute; they are not counted as a stage's busy time.
bool is_communication(OpKind kind);

// Where one GPU's (or one executor stage's) bytes go.
enum class MemoryCategory {
  kWeights,
  kGradients,
  kOptimizer,
  kActivations,  // kept for backward: activations, F* stage inputs
  kStateStore,   // K/V of open groups' chunks, fp32 dK/dV being accumulated
  kTransient,    // working memory of the op running now
};
inline constexpr int kMemoryCategories = 6;
inline constexpr std::array<MemoryCategory, kMemoryCategories> kAllMemoryCategories = {
    MemoryCategory::kWeights,     MemoryCategory::kGradients,  MemoryCategory::kOptimizer,
    MemoryCategory::kActivations, MemoryCategory::kStateStore, MemoryCategory::kTransient};
// "weights" | "gradients" | "optimizer" | "activations" | "state_store" | "transient"
const char* memory_category_name(MemoryCategory category);
std::optional<MemoryCategory> memory_category_from_name(std::string_view name);

// Bytes by category: the simulator's replay, the executor's tracker and both traces' peaks.
struct MemoryBreakdown {
  int64_t weights = 0;
  int64_t gradients = 0;
  int64_t optimizer = 0;
  int64_t activations = 0;
  int64_t state_store = 0;
  int64_t transient = 0;

  int64_t& operator[](MemoryCategory category);
  int64_t operator[](MemoryCategory category) const;
  int64_t total() const {
    return weights + gradients + optimizer + activations + state_store + transient;
  }
  int64_t model_states() const { return weights + gradients + optimizer; }
  int64_t dynamic() const { return activations + state_store + transient; }
  bool operator==(const MemoryBreakdown&) const = default;
};

}  // namespace cf
