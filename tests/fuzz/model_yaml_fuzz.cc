// Fuzz target: the YAML readers of models/ — model architectures (parse_model_yaml, the form
// of models/*.yaml) and GPUs (parse_gpu_yaml, models/hardware/*.yaml), each given every input.
// A model read is held to tests/fuzz/model_check.h.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "models/hardware.h"
#include "models/model.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/model_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = cf::fuzz::as_text(data, size);
  const std::string origin = "fuzz.yaml";
  cf::StatusOr<cf::ModelConfig> model = cf::parse_model_yaml(text, origin);
  if (model.ok()) {
    cf::fuzz::check_model(*model, origin);
  } else {
    cf::fuzz::expect_refusal(model.status(), origin);
  }
  cf::StatusOr<cf::GpuSpec> gpu = cf::parse_gpu_yaml(text, origin);
  if (!gpu.ok()) {
    cf::fuzz::expect_refusal(gpu.status(), origin);
    return 0;
  }
  CF_CHECK(gpu->peak_bf16_flops > 0 && gpu->hbm_bytes > 0);
  for (double flops : {1.0, 1e9, 1e15}) {
    const double efficiency = gpu->gemm_efficiency_at(flops);
    CF_CHECK(efficiency > 0 && efficiency <= 1) << efficiency << " at " << flops << " FLOPs";
  }
  return 0;
}
