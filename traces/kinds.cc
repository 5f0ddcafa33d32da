// Names of the trace vocabulary (kinds.h), and the breakdown's access by category.
#include "traces/kinds.h"

#include "core/check.h"

namespace cf {
namespace {

// Looks `name` up in a table of (enum, name) pairs.
template <typename Enum, size_t N>
std::optional<Enum> from_name(const std::array<std::pair<Enum, const char*>, N>& table,
                              std::string_view name) {
  for (const auto& [value, text] : table) {
    if (name == text) return value;
  }
  return std::nullopt;
}

template <typename Enum, size_t N>
const char* to_name(const std::array<std::pair<Enum, const char*>, N>& table, Enum value,
                    const char* what) {
  for (const auto& [v, text] : table) {
    if (v == value) return text;
  }
  CF_CHECK(false) << "unknown " << what << " " << static_cast<int>(value);
  return "";
}

constexpr std::array<std::pair<Pass, const char*>, 4> kPassNames = {{
    {Pass::kForward, "F"},
    {Pass::kForwardKeepKV, "F*"},
    {Pass::kRecompute, "R"},
    {Pass::kBackward, "B"},
}};

constexpr std::array<std::pair<OpKind, const char*>, 5> kOpKindNames = {{
    {OpKind::kCompute, "compute"},
    {OpKind::kSend, "send"},
    {OpKind::kRecv, "recv"},
    {OpKind::kDpReduce, "dp_reduce"},
    {OpKind::kOptimizer, "optimizer"},
}};

constexpr std::array<std::pair<MemoryCategory, const char*>, kMemoryCategories> kCategoryNames = {{
    {MemoryCategory::kWeights, "weights"},
    {MemoryCategory::kGradients, "gradients"},
    {MemoryCategory::kOptimizer, "optimizer"},
    {MemoryCategory::kActivations, "activations"},
    {MemoryCategory::kStateStore, "state_store"},
    {MemoryCategory::kTransient, "transient"},
}};

}  // namespace

const char* pass_name(Pass pass) { return to_name(kPassNames, pass, "pass"); }
const char* pass_name(const std::optional<Pass>& pass) { return pass ? pass_name(*pass) : ""; }
std::optional<Pass> pass_from_name(std::string_view name) { return from_name(kPassNames, name); }
bool is_forward_pass(Pass pass) { return pass != Pass::kBackward; }

const char* op_kind_name(OpKind kind) { return to_name(kOpKindNames, kind, "op kind"); }
std::optional<OpKind> op_kind_from_name(std::string_view name) {
  return from_name(kOpKindNames, name);
}
bool is_communication(OpKind kind) {
  return kind == OpKind::kSend || kind == OpKind::kRecv || kind == OpKind::kDpReduce;
}

const char* memory_category_name(MemoryCategory category) {
  return to_name(kCategoryNames, category, "memory category");
}
std::optional<MemoryCategory> memory_category_from_name(std::string_view name) {
  return from_name(kCategoryNames, name);
}

int64_t& MemoryBreakdown::operator[](MemoryCategory category) {
  switch (category) {
    case MemoryCategory::kWeights:
      return weights;
    case MemoryCategory::kGradients:
      return gradients;
    case MemoryCategory::kOptimizer:
      return optimizer;
    case MemoryCategory::kActivations:
      return activations;
    case MemoryCategory::kStateStore:
      return state_store;
    case MemoryCategory::kTransient:
      return transient;
  }
  CF_CHECK(false) << "unknown memory category " << static_cast<int>(category);
  return transient;
}

int64_t MemoryBreakdown::operator[](MemoryCategory category) const {
  return (*const_cast<MemoryBreakdown*>(this))[category];
}

}  // namespace cf
