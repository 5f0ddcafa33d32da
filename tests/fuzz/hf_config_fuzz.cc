// Fuzz target: Hugging Face config.json import (models/model.h import_hf_config). A model
// imported is held to tests/fuzz/model_check.h.
#include <cstddef>
#include <cstdint>
#include <string>

#include "models/model.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/model_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string origin = "fuzz/config.json";
  cf::StatusOr<cf::ModelConfig> model = cf::import_hf_config(cf::fuzz::as_text(data, size), origin);
  if (model.ok()) {
    cf::fuzz::check_model(*model, origin);
  } else {
    cf::fuzz::expect_refusal(model.status(), origin);
  }
  return 0;
}
