// The chunk state store (state_store.h): K/V of dependent pieces and their fp32 dK/dV.
#include "executor/state_store.h"

#include "core/check.h"

namespace cf {

void StateStore::put(int group, int64_t layer, int index, const float* k, const float* v,
                     int64_t rows, int64_t whole_tokens) {
  std::map<int, Piece>& group_pieces = pieces_[{group, layer}];
  CF_CHECK(group_pieces.count(index) == 0)
      << "group " << group << " layer " << layer << " piece " << index << " stored twice";
  CF_CHECK(whole_tokens < 0 || whole_tokens >= rows) << whole_tokens << " < " << rows << " rows";
  Piece& p = group_pieces[index];
  p.rows = rows;
  p.whole_tokens = whole_tokens < 0 ? rows : whole_tokens;
  p.k = buffer(rows * kv_width_);
  p.v = buffer(rows * kv_width_);
  const auto start = std::chrono::steady_clock::now();
  stream_->copy(p.k.data(), k, rows * kv_width_);
  stream_->copy(p.v.data(), v, rows * kv_width_);
  count_copy(2 * rows * kv_width_, start);
}

void StateStore::offload_to_host(MemoryTracker* host) {
  CF_CHECK(pieces_.empty()) << "the store's place changes only between steps";
  host_ = host;
}

void StateStore::count_copy(int64_t floats, std::chrono::steady_clock::time_point start) const {
  if (host_ == nullptr) return;
  host_copy_bytes_ += floats * static_cast<int64_t>(sizeof(float));
  host_copy_ns_ +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
}

bool StateStore::has(int group, int64_t layer, int index) const {
  auto it = pieces_.find({group, layer});
  return it != pieces_.end() && it->second.count(index) > 0;
}

const StateStore::Piece& StateStore::piece(int group, int64_t layer, int index) const {
  auto it = pieces_.find({group, layer});
  CF_CHECK(it != pieces_.end()) << "no state for group " << group << " layer " << layer;
  auto p = it->second.find(index);
  CF_CHECK(p != it->second.end()) << "group " << group << " layer " << layer << ": piece " << index
                                  << " not in the store";
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
  for (int i = 0; i < index; ++i) tokens += piece(group, layer, i).whole_tokens;
  return tokens;
}

std::vector<int64_t> StateStore::prefix_piece_tokens(int group, int64_t layer, int index) const {
  std::vector<int64_t> tokens;
  for (int i = 0; i < index; ++i) tokens.push_back(piece(group, layer, i).whole_tokens);
  return tokens;
}

int64_t StateStore::prefix_rows(int group, int64_t layer, int index) const {
  int64_t rows = 0;
  for (int i = 0; i < index; ++i) rows += piece(group, layer, i).rows;
  return rows;
}

void StateStore::gather_prefix(int group, int64_t layer, int index, float* k_out,
                               float* v_out) const {
  int64_t row = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < index; ++i) {
    const Piece& p = piece(group, layer, i);
    const int64_t n = p.rows * kv_width_;
    stream_->copy(storage_at(k_out, row * kv_width_), p.k.data(), n);
    stream_->copy(storage_at(v_out, row * kv_width_), p.v.data(), n);
    row += p.rows;
  }
  count_copy(2 * row * kv_width_, start);
}

void StateStore::accumulate_prefix(int group, int64_t layer, int index, const float* dk,
                                   const float* dv) {
  int64_t row = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < index; ++i) {
    Piece& p = piece(group, layer, i);
    const int64_t n = p.rows * kv_width_;
    if (p.dk.empty()) {  // zero-filled: the first contribution adds to 0
      p.dk = buffer(n);
      p.dv = buffer(n);
    }
    stream_->residual_add(p.dk.data(), storage_at(dk, row * kv_width_), n);
    stream_->residual_add(p.dv.data(), storage_at(dv, row * kv_width_), n);
    row += p.rows;
  }
  // Read from the host pool, added to and written back: both ways.
  count_copy(2 * 2 * row * kv_width_, start);
}

bool StateStore::has_gradients(int group, int64_t layer, int index) const {
  return !piece(group, layer, index).dk.empty();
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
