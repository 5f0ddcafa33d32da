// The CPU reference backend: host memory and kernels/cpu, every call run inline on the calling
// thread (a stream is an empty queue). The specification a device backend is tested against;
// the executor's results on it are those of the kernels called directly. Not a thread pool.
#pragma once

#include <memory>

#include "executor/backend.h"

namespace cf {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  std::unique_ptr<Stream> create_stream() override;
};

// The process's CPU backend, and one stream of it shared by the executor's parts when they are
// built without one (tests, the profiler's probes). CPU streams hold no state, so threads may
// share them.
CpuBackend& cpu_backend();
Stream* cpu_stream();

}  // namespace cf
