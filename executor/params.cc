// Parameter layout, seeded initialisation and the AdamW step of one stage (params.h).
#include "executor/params.h"

#include <cmath>

#include "core/check.h"
#include "sim/plan/plan_index.h"
#include "traces/random.h"

namespace cf {
namespace {

const char* const kSlotNames[kLayerSlots] = {
    "attn_norm", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "mlp_norm", "w_gate", "w_up", "w_down"};

// FNV-1a over the name: a platform-independent 64-bit hash (std::hash is not).
uint64_t name_hash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

ParamLayout::ParamLayout(const ModelConfig& model, const LayerSplit& split, int stage)
    : pp_(split.pp), stage_(stage) {
  const int pp = split.pp;
  CF_CHECK(stage >= 0 && stage < pp) << "pp " << pp << " stage " << stage;
  const std::optional<SplitError> bad = layer_split_error(split, model.name);
  CF_CHECK(split.layers == model.layers && !bad)
      << split.layers << " vs " << model.layers << " layers; " << (bad ? bad->message : "");
  const int64_t h = model.hidden, q = model.q_width(), kv = model.kv_width(), f = model.ffn_hidden;
  if (stage == 0) add("embedding", ParamKind::kEmbedding, -1, -1, model.vocab * h, false);
  for (int v = 0; v < split.vpp; ++v) {
    const StagePlace place = stage_place(split, stage, v);  // the plan's rule
    for (int64_t l = place.first_layer; l < place.end_layer; ++l) {
      const int64_t sizes[kLayerSlots] = {h,  q * h, q, kv * h, kv,    kv * h,
                                          kv, h * q, h, f * h,  f * h, h * f};
      for (int slot = 0; slot < kLayerSlots; ++slot) {
        const bool bias = slot == kBq || slot == kBk || slot == kBv;
        if (bias && !model.qkv_bias) continue;
        add("layers." + std::to_string(l) + "." + kSlotNames[slot], ParamKind::kLayer, l, slot,
            sizes[slot], slot == kAttnNorm || slot == kMlpNorm);
      }
    }
  }
  if (stage == pp - 1) {
    add("final_norm", ParamKind::kFinalNorm, -1, -1, h, true);
    if (!model.tied_embeddings) {
      add("lm_head", ParamKind::kLmHead, -1, -1, model.vocab * h, false);
    } else if (pp > 1) {
      tied_copy_offset_ = total_;
      add("embedding", ParamKind::kLmHead, -1, -1, model.vocab * h, false);
    }
  }
}

void ParamLayout::add(std::string name, ParamKind kind, int64_t layer, int slot, int64_t size,
                      bool norm) {
  tensors_.push_back(ParamTensor{std::move(name), kind, layer, slot, total_, size, norm});
  total_ += size;
}

int64_t ParamLayout::embedding_offset() const {
  CF_CHECK(first_stage()) << "stage " << stage_ << " holds no embedding";
  return 0;
}

int64_t ParamLayout::head_offset() const {
  for (const ParamTensor& t : tensors_) {
    if (t.kind == ParamKind::kLmHead) return t.offset;
  }
  CF_CHECK(last_stage() && first_stage()) << "stage " << stage_ << " holds no LM head";
  return embedding_offset();  // tied, pp = 1
}

int64_t ParamLayout::final_norm_offset() const {
  for (const ParamTensor& t : tensors_) {
    if (t.kind == ParamKind::kFinalNorm) return t.offset;
  }
  CF_CHECK(false) << "stage " << stage_ << " holds no final norm";
  return -1;
}

std::vector<int64_t> ParamLayout::layer_offsets(int64_t layer) const {
  std::vector<int64_t> offsets(kLayerSlots, -1);
  bool found = false;
  for (const ParamTensor& t : tensors_) {
    if (t.kind == ParamKind::kLayer && t.layer == layer) {
      offsets[static_cast<size_t>(t.slot)] = t.offset;
      found = true;
    }
  }
  CF_CHECK(found) << "stage " << stage_ << " holds no layer " << layer;
  return offsets;
}

const ParamTensor* ParamLayout::find(const std::string& name) const {
  for (const ParamTensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

LayerTensors layer_tensors(float* base, const ParamLayout& layout, int64_t layer) {
  LayerTensors out;
  const std::vector<int64_t> offsets = layout.layer_offsets(layer);
  for (int slot = 0; slot < kLayerSlots; ++slot) {
    const int64_t offset = offsets[static_cast<size_t>(slot)];
    out.t[slot] = offset < 0 ? nullptr : storage_at(base, offset);
  }
  return out;
}

StageParams::StageParams(const ModelConfig& model, const LayerSplit& split, int stage,
                         MemoryTracker* tracker, Stream* stream)
    : layout_(model, split, stage),
      stream_(stream),
      weights_(stream->allocator(), tracker, MemoryCategory::kWeights, layout_.total()),
      gradients_(stream->allocator(), tracker, MemoryCategory::kGradients, layout_.total()),
      adam_m_(stream->allocator(), tracker, MemoryCategory::kOptimizer, layout_.total()),
      adam_v_(stream->allocator(), tracker, MemoryCategory::kOptimizer, layout_.total()) {}

void StageParams::initialise(uint64_t seed, float init_std) {
  const double half_width = std::sqrt(3.0) * init_std;  // uniform[−w, w] has std w/√3
  std::vector<float> host;  // (t.size) one tensor's values before they are copied in
  for (const ParamTensor& t : layout_.tensors()) {
    float* w = storage_at(weights_.data(), t.offset);
    if (t.is_norm) {
      stream_->fill(w, 1.0f, t.size);
      continue;
    }
    const uint64_t key = rng::mix64(seed ^ name_hash(t.name));
    host.resize(static_cast<size_t>(t.size));
    for (int64_t i = 0; i < t.size; ++i) {
      const double u = rng::uniform_from_bits(rng::mix64(key + static_cast<uint64_t>(i)));
      host[static_cast<size_t>(i)] = static_cast<float>((2.0 * u - 1.0) * half_width);
    }
    stream_->copy_from_host(w, host.data(), t.size);
  }
  stream_->fill(adam_m_.data(), 0.0f, count());
  stream_->fill(adam_v_.data(), 0.0f, count());
  zero_gradients();
}

void StageParams::zero_gradients() { stream_->fill(gradients_.data(), 0.0f, count()); }

void StageParams::adamw_step(const AdamWHyper& hyper, int64_t step) {
  stream_->adamw_step(weights_.data(), adam_m_.data(), adam_v_.data(), gradients_.data(), count(),
                      hyper, step);
}

std::vector<float> StageParams::weights_on_host() const {
  std::vector<float> host(static_cast<size_t>(count()));  // (count)
  stream_->copy_to_host(host.data(), weights_.data(), count());
  return host;
}

std::vector<float> StageParams::gradients_on_host() const {
  std::vector<float> host(static_cast<size_t>(count()));  // (count)
  stream_->copy_to_host(host.data(), gradients_.data(), count());
  return host;
}

void StageParams::set_weights(const std::vector<float>& host) {
  CF_CHECK_EQ(static_cast<int64_t>(host.size()), count());
  stream_->copy_from_host(weights_.data(), host.data(), count());
}

}  // namespace cf
