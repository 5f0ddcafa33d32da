// The derived quantities of a model read by a fuzz target: a model a reader accepts passes
// validate_model, and its parameter counts and FLOPs are positive and finite (no int64
// overflow: the sanitizers report one).
#pragma once

#include <cmath>
#include <string>

#include "core/check.h"
#include "models/model.h"

namespace cf::fuzz {

inline void check_model(const ModelConfig& model, const std::string& origin) {
  const Status valid = validate_model(model, origin);
  CF_CHECK(valid.ok()) << "a model read is not valid: " << valid.message();
  CF_CHECK_GT(model.params_per_layer(), 0);
  CF_CHECK_GT(model.params_total(), 0);
  CF_CHECK_GT(model.kv_bytes_per_token(2), 0);
  for (double flops :
       {model.linear_flops_per_token_per_layer(), model.attention_flops_per_pair_per_layer(),
        model.lm_head_flops_per_token()}) {
    CF_CHECK(std::isfinite(flops) && flops > 0) << flops;
  }
}

}  // namespace cf::fuzz
