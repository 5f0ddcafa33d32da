// The shipped model and GPU presets (models/*.yaml, models/hardware/*.yaml) for tests whose
// subject is not the loader: a preset that does not load aborts with the loader's message.
#pragma once

#include <string>

#include "core/check.h"
#include "models/hardware.h"
#include "models/model.h"

namespace cf::test {

inline ModelConfig shipped_model(const std::string& name) {
  StatusOr<ModelConfig> model = load_model(name);
  CF_CHECK(model.ok()) << name << ": " << model.status().message();
  return *model;
}

inline GpuSpec shipped_gpu(const std::string& name) {
  StatusOr<GpuSpec> gpu = load_gpu(name);
  CF_CHECK(gpu.ok()) << name << ": " << gpu.status().message();
  return *gpu;
}

}  // namespace cf::test
