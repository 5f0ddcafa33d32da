// Layer counts of an even or per-stage pipeline split (layer_split.h).
#include "sim/plan/layer_split.h"

#include <fmt/format.h>

#include <numeric>

#include "core/check.h"

namespace cf {

int64_t LayerSplit::model_chunk_layers(int stage) const {
  CF_CHECK(stage >= 0 && stage < pp) << "stage " << stage << " of pp " << pp;
  if (even()) return layers / (static_cast<int64_t>(pp) * vpp);
  CF_CHECK_EQ(static_cast<int>(per_stage.size()), pp) << "layers per stage";
  return per_stage[static_cast<size_t>(stage)];
}

int64_t LayerSplit::stage_layers(int stage) const { return vpp * model_chunk_layers(stage); }

int64_t LayerSplit::first_layer(int stage, int model_chunk) const {
  CF_CHECK(model_chunk >= 0 && model_chunk < vpp) << "model chunk " << model_chunk << " of " << vpp;
  if (even()) return (static_cast<int64_t>(model_chunk) * pp + stage) * model_chunk_layers(stage);
  CF_CHECK_EQ(model_chunk, 0) << "a per-stage split has one model chunk per stage";
  CF_CHECK(stage >= 0 && stage < static_cast<int>(per_stage.size())) << "stage " << stage;
  return std::accumulate(per_stage.begin(), per_stage.begin() + stage, int64_t{0});
}

LayerSplit layer_split(int64_t layers, const ParallelConfig& parallel) {
  return LayerSplit{parallel.pp, parallel.vpp, layers, parallel.layers_per_stage};
}

std::optional<SplitError> layer_split_error(const LayerSplit& split, std::string_view model) {
  const std::string key = "parallel.layers_per_stage";
  if (split.pp < 1 || split.vpp < 1) {
    return SplitError{"parallel.pp",
                      fmt::format("pp = {} and vpp = {} must be at least 1", split.pp, split.vpp)};
  }
  if (split.even()) {
    const int64_t model_chunks = static_cast<int64_t>(split.pp) * split.vpp;
    if (split.layers < 1 || split.layers % model_chunks != 0) {
      return SplitError{"model.layers",
                        fmt::format("pp·vpp = {}·{} does not divide the {} layers of {}", split.pp,
                                    split.vpp, split.layers, model)};
    }
    return std::nullopt;
  }
  if (split.vpp != 1) {
    return SplitError{key, fmt::format("a per-stage split needs vpp = 1 (the interleaved "
                                       "schedule's model chunks split the layers evenly), got "
                                       "vpp = {}",
                                       split.vpp)};
  }
  if (static_cast<int>(split.per_stage.size()) != split.pp) {
    return SplitError{key, fmt::format("{} entries for pp = {}: give one layer count per stage",
                                       split.per_stage.size(), split.pp)};
  }
  int64_t sum = 0;
  for (size_t s = 0; s < split.per_stage.size(); ++s) {
    if (split.per_stage[s] < 1) {
      return SplitError{
          fmt::format("{}[{}]", key, s),
          fmt::format("stage {} must hold at least 1 layer, got {}", s, split.per_stage[s])};
    }
    sum += split.per_stage[s];
  }
  if (sum != split.layers) {
    return SplitError{key, fmt::format("the stages hold {} layers in all, but {} has {}", sum,
                                       model, split.layers)};
  }
  return std::nullopt;
}

Status check_layer_split(const LayerSplit& split) {
  if (std::optional<SplitError> e = layer_split_error(split)) {
    return Status::InvalidInput(fmt::format("{}: {}", e->key, e->message));
  }
  return Status::Ok();
}

}  // namespace cf
