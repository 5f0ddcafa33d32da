// The chunk state store (state_store.h): K/V of dependent pieces and their fp32 dK/dV.
#include "executor/state_store.h"

#include <algorithm>

#include "core/check.h"

namespace cf {

void StateStore::put(int group, int64_t layer, int index, const float* k, const float* v,
                     int64_t tokens) {
  std::map<int, Piece>& group_pieces = pieces_[{group, layer}];
  CF_CHECK(group_pieces.count(index) == 0)
      << "group " << group << " layer " << layer << " piece " << index << " stored twice";
  Piece& p = group_pieces[index];
  p.tokens = tokens;
  p.k = FloatBuffer(tracker_, MemoryCategory::kStateStore, tokens * kv_width_);
  p.v = FloatBuffer(tracker_, MemoryCategory::kStateStore, tokens * kv_width_);
  std::copy(k, k + tokens * kv_width_, p.k.data());
  std::copy(v, v + tokens * kv_width_, p.v.data());
}

bool StateStore::has(int group, int64_t layer, int index) const {
  auto it = pieces_.find({group, layer});
  return it != pieces_.end() && it->second.count(index) > 0;
}

const StateStore::Piece& StateStore::piece(int group, int64_t layer, int index) const {
  auto it = pieces_.find({group, layer});
  CF_CHECK(it != pieces_.end()) << "no state for group " << group << " layer " << layer;
  auto p = it->second.find(index);
  CF_CHECK(p != it->second.end())
      << "group " << group << " layer " << layer << ": piece " << index << " not in the store";
  return p->second;
}

const float* StateStore::k(int group, int64_t layer, int index) const {
  return piece(group, layer, index).k.data();
}

const float* StateStore::v(int group, int64_t layer, int index) const {
  return piece(group, layer, index).v.data();
}

int64_t StateStore::prefix_tokens(int group, int64_t layer, int index) const {
  int64_t tokens = 0;
  for (int i = 0; i < index; ++i) tokens += piece(group, layer, i).tokens;
  return tokens;
}

void StateStore::gather_prefix(int group, int64_t layer, int index, float* k_out,
                               float* v_out) const {
  int64_t row = 0;
  for (int i = 0; i < index; ++i) {
    const Piece& p = piece(group, layer, i);
    const int64_t n = p.tokens * kv_width_;
    std::copy(p.k.data(), p.k.data() + n, k_out + row * kv_width_);
    std::copy(p.v.data(), p.v.data() + n, v_out + row * kv_width_);
    row += p.tokens;
  }
}

void StateStore::accumulate_prefix(int group, int64_t layer, int index, const float* dk,
                                   const float* dv) {
  int64_t row = 0;
  for (int i = 0; i < index; ++i) {
    Piece& p = piece(group, layer, i);
    const int64_t n = p.tokens * kv_width_;
    if (p.dk.empty()) {
      p.dk = FloatBuffer(tracker_, MemoryCategory::kStateStore, n);
      p.dv = FloatBuffer(tracker_, MemoryCategory::kStateStore, n);
    }
    const float* dk_rows = dk + row * kv_width_;
    const float* dv_rows = dv + row * kv_width_;
    for (int64_t e = 0; e < n; ++e) {
      p.dk[e] += dk_rows[e];
      p.dv[e] += dv_rows[e];
    }
    row += p.tokens;
  }
}

const float* StateStore::dk(int group, int64_t layer, int index) const {
  const Piece& p = piece(group, layer, index);
  return p.dk.empty() ? nullptr : p.dk.data();
}

const float* StateStore::dv(int group, int64_t layer, int index) const {
  const Piece& p = piece(group, layer, index);
  return p.dv.empty() ? nullptr : p.dv.data();
}

void StateStore::release(int group, int index, int64_t first_layer, int64_t end_layer) {
  for (auto it = pieces_.begin(); it != pieces_.end();) {
    const auto [g, layer] = it->first;
    if (g == group && layer >= first_layer && layer < end_layer) it->second.erase(index);
    it = it->second.empty() ? pieces_.erase(it) : std::next(it);
  }
}

}  // namespace cf
