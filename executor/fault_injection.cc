// The fault-injection test hook (fault_injection.h).
#include "executor/fault_injection.h"

#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "core/check.h"

namespace cf {
namespace {

constexpr const char* kVariable = "CHUNKFLOW_FAULT";

std::vector<std::string> split_colons(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ':')) parts.push_back(part);
  return parts;
}

// A whole decimal number ≥ 0, or nullopt.
std::optional<int64_t> non_negative(const std::string& text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

StatusOr<FaultSpec> parse_fault(const std::string& text) {
  static const std::map<std::string, FaultAction> kActions = {{"kill", FaultAction::kKill},
                                                              {"term", FaultAction::kTerm},
                                                              {"throw", FaultAction::kThrow},
                                                              {"oom", FaultAction::kOutOfMemory},
                                                              {"hang", FaultAction::kHang}};
  const std::vector<std::string> parts = split_colons(text);
  const std::optional<int64_t> rank =
      parts.size() == 5 ? non_negative(parts[1]) : std::optional<int64_t>();
  const std::optional<int64_t> ops =
      parts.size() == 5 ? non_negative(parts[3]) : std::optional<int64_t>();
  if (parts.size() != 5 || parts[0] != "rank" || parts[2] != "after_ops" || !rank || !ops ||
      *rank > INT32_MAX || kActions.count(parts[4]) == 0) {
    return Status::InvalidInput(std::string(kVariable) + "=" + text +
                                ": expected rank:R:after_ops:N:ACTION with R and N whole numbers "
                                "and ACTION one of kill, term, throw, oom, hang");
  }
  return FaultSpec{static_cast<int>(*rank), *ops, kActions.at(parts[4])};
}

StatusOr<std::optional<FaultSpec>> fault_from_environment() {
  const char* value = std::getenv(kVariable);
  if (value == nullptr || *value == '\0') return std::optional<FaultSpec>();
  CF_ASSIGN_OR_RETURN(FaultSpec spec, parse_fault(value));
  return std::optional<FaultSpec>(spec);
}

void inject_fault(FaultAction action, Allocator* allocator) {
  switch (action) {
    case FaultAction::kKill:
      std::raise(SIGKILL);
      break;
    case FaultAction::kTerm:
      std::raise(SIGTERM);
      break;
    case FaultAction::kThrow:
      throw std::runtime_error(std::string(kVariable) + ": an injected failure in the op");
    case FaultAction::kOutOfMemory:
      // 4 PiB: beyond any machine's memory and x86-64's 128 TiB of user address space.
      allocator->allocate(int64_t{1} << 52);
      break;
    case FaultAction::kHang:
      break;
  }
  for (;;) pause();  // hang; or the signal above is on its way
}

}  // namespace cf
