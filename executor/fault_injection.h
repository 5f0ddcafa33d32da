// A test hook, not a feature: CHUNKFLOW_FAULT=rank:R:after_ops:N:ACTION makes MPI rank R of
// `mpirun … chunkflow run` fail once its stage has run N ops (counted over the steps; N = 0:
// before its first op), so the fault tests (tests/executor/run_command_fault_test.cc) can check
// that the job ends, naming the rank and the reason, instead of hanging. Unset, as everywhere
// but in those tests, it costs one getenv per run. docs/EXECUTOR.md, "Faults".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"
#include "executor/memory.h"

namespace cf {

enum class FaultAction {
  kKill,         // kill: SIGKILL, as the kernel's out-of-memory killer sends
  kTerm,         // term: SIGTERM
  kThrow,        // throw: a std::runtime_error out of the op
  kOutOfMemory,  // oom: the stage's allocator is asked for more than any machine has
  kHang,         // hang: sleeps until killed, alive and silent
};

struct FaultSpec {
  int rank = 0;
  int64_t after_ops = 0;
  FaultAction action = FaultAction::kKill;
};

// Parses a CHUNKFLOW_FAULT value; InvalidInput naming the variable and the form otherwise.
StatusOr<FaultSpec> parse_fault(const std::string& text);

// CHUNKFLOW_FAULT, parsed; nullopt when it is unset or empty.
StatusOr<std::optional<FaultSpec>> fault_from_environment();

// Does `action` to this process; `allocator` is the stage's (kOutOfMemory). Returns only for
// kThrow, by throwing.
[[noreturn]] void inject_fault(FaultAction action, Allocator* allocator);

}  // namespace cf
