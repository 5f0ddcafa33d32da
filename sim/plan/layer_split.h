// How a model's layers split over the pipeline: pp stages of vpp model chunks each, evenly
// (L/(pp·vpp) layers per model chunk) or, as Megatron-LM's uneven splits
// (--decoder-first-pipeline-num-layers, --decoder-last-pipeline-num-layers), a layer count
// per stage — fewer layers where a stage also runs the embedding or the LM head and loss.
// Only the counts; where a model chunk sits is plan_index.h's stage_place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/plan/job.h"

namespace cf {

struct LayerSplit {
  LayerSplit() = default;
  // `stage_layers` empty: the even split.
  LayerSplit(int stages, int model_chunks, int64_t model_layers,
             std::vector<int64_t> stage_layers = {})
      : pp(stages), vpp(model_chunks), layers(model_layers), per_stage(std::move(stage_layers)) {}

  int pp = 1;
  int vpp = 1;
  int64_t layers = 0;
  // Layers of each stage (pp entries, vpp = 1 only), or empty: the even split.
  std::vector<int64_t> per_stage;

  bool even() const { return per_stage.empty(); }
  // Layers of each model chunk of `stage` (its vpp model chunks hold as many each).
  int64_t model_chunk_layers(int stage) const;
  // Layers of `stage` over its vpp model chunks.
  int64_t stage_layers(int stage) const;
  // The first layer of model chunk `model_chunk` of `stage`, virtual stage v·pp + s: the
  // layers of virtual stages 0..v·pp + s − 1, which run before it.
  int64_t first_layer(int stage, int model_chunk) const;
  bool operator==(const LayerSplit&) const = default;
};

// The split a job's parallel section asks for over a model of `layers` layers.
LayerSplit layer_split(int64_t layers, const ParallelConfig& parallel);

// What makes `split` no split of its layers, with the key it concerns: "model.layers" when an
// even split's pp·vpp does not divide them; "parallel.layers_per_stage" (or one entry,
// "parallel.layers_per_stage[i]") when the per-stage counts are not pp counts ≥ 1 summing to
// the layers, or come with vpp > 1. nullopt for a valid split. `model` names the model in
// the message.
struct SplitError {
  std::string key;
  std::string message;
};
std::optional<SplitError> layer_split_error(const LayerSplit& split,
                                            std::string_view model = "the model");

// InvalidInput "key: message" for an invalid split (layer_split_error), else Ok.
Status check_layer_split(const LayerSplit& split);

}  // namespace cf
