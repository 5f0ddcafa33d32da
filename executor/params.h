// The parameters one pipeline stage owns: their layout in flat fp32 buffers (weights,
// gradients, AdamW m and v) in storage of the stage's backend, named as the whole model names
// them, and their seeded initialisation, which depends only on (seed, tensor name, element) so
// that any split into stages starts from the same model. Not the forward/backward math.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "executor/backend.h"
#include "executor/cpu_backend.h"
#include "executor/memory.h"
#include "kernels/cpu/adamw.h"
#include "models/model.h"
#include "sim/plan/layer_split.h"

namespace cf {

// The tensors of one transformer layer, in layout order. Shapes in the PyTorch layout
// (out_features, in_features); biases only with qkv_bias.
enum LayerSlot {
  kAttnNorm,  // (h)
  kWq,        // (a·d, h)
  kBq,        // (a·d)
  kWk,        // (g·d, h)
  kBk,        // (g·d)
  kWv,        // (g·d, h)
  kBv,        // (g·d)
  kWo,        // (h, a·d)
  kMlpNorm,   // (h)
  kWGate,     // (f, h)
  kWUp,       // (f, h)
  kWDown,     // (h, f)
  kLayerSlots,
};

enum class ParamKind { kEmbedding, kLayer, kFinalNorm, kLmHead };

struct ParamTensor {
  // As the whole model names it: "embedding", "layers.3.wq", "final_norm", "lm_head". With tied
  // embeddings and pp > 1 the last stage's copy of the embedding is also named "embedding"
  // (kind kLmHead): the same tensor, kept in sync by summing the two gradients.
  std::string name;
  ParamKind kind = ParamKind::kLayer;
  int64_t layer = -1;  // kLayer: the global layer index
  int slot = -1;       // kLayer: a LayerSlot
  int64_t offset = 0;  // elements into the stage's flat buffers
  int64_t size = 0;
  bool is_norm = false;  // initialised to 1
};

// Which tensors stage `stage` of `split` (pp stages of vpp model chunks, even or uneven) holds,
// in order: the embedding (stage 0), the layers of its model chunks ascending, the final norm
// and LM head (stage pp−1; with tied embeddings and pp = 1 the head reuses the embedding).
class ParamLayout {
 public:
  ParamLayout(const ModelConfig& model, const LayerSplit& split, int stage);

  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  int64_t total() const { return total_; }
  bool first_stage() const { return stage_ == 0; }
  bool last_stage() const { return stage_ == pp_ - 1; }
  // Offset of the embedding on the last stage when it is a tied copy, else −1.
  int64_t tied_copy_offset() const { return tied_copy_offset_; }
  int64_t embedding_offset() const;  // CHECKs the stage holds it
  int64_t head_offset() const;       // the LM head (the embedding itself when tied, pp = 1)
  int64_t final_norm_offset() const;
  // Offsets of layer `layer`'s slots, −1 for an absent bias. CHECKs the stage holds it.
  std::vector<int64_t> layer_offsets(int64_t layer) const;
  const ParamTensor* find(const std::string& name) const;

 private:
  void add(std::string name, ParamKind kind, int64_t layer, int slot, int64_t size, bool norm);
  std::vector<ParamTensor> tensors_;
  int64_t total_ = 0;
  int pp_ = 1;
  int stage_ = 0;
  int64_t tied_copy_offset_ = -1;
};

// Pointers to one layer's tensors inside a flat buffer (weights or gradients; null storage
// gives null pointers).
struct LayerTensors {
  float* t[kLayerSlots] = {};
  float* operator[](int slot) const { return t[slot]; }
};
LayerTensors layer_tensors(float* base, const ParamLayout& layout, int64_t layer);

// A stage's parameters and their training state, all charged to the stage's tracker, in
// storage from `stream` (whose backend must outlive them) and updated on it.
class StageParams {
 public:
  StageParams(const ModelConfig& model, const LayerSplit& split, int stage, MemoryTracker* tracker,
              Stream* stream = cpu_stream());
  // Seeded initialisation: norms 1, every other element uniform in [−√3·std, √3·std]
  // (standard deviation `init_std`) from a hash of (seed, tensor name, element index),
  // computed on the host and copied in tensor by tensor.
  void initialise(uint64_t seed, float init_std);
  void zero_gradients();
  // One AdamW step (kernels/cpu/adamw.h) over every tensor; `step` ≥ 1.
  void adamw_step(const AdamWHyper& hyper, int64_t step);
  // Host copies of all weights or gradients (count), and the weights set from one.
  std::vector<float> weights_on_host() const;
  std::vector<float> gradients_on_host() const;
  void set_weights(const std::vector<float>& host);

  const ParamLayout& layout() const { return layout_; }
  float* weights() { return weights_.data(); }
  const float* weights() const { return weights_.data(); }
  float* gradients() { return gradients_.data(); }
  const float* gradients() const { return gradients_.data(); }
  int64_t count() const { return layout_.total(); }

 private:
  ParamLayout layout_;
  Stream* stream_;
  FloatBuffer weights_;    // (count)
  FloatBuffer gradients_;  // (count), fp32, summed over chunks and DP ranks
  FloatBuffer adam_m_;     // (count)
  FloatBuffer adam_v_;     // (count)
};

}  // namespace cf
