// The chunk state store (state_store.h): K/V of dependent pieces and their fp32 dK/dV.
#include "executor/state_store.h"

#include "core/check.h"

namespace cf {

void StateStore::put(int group, int64_t layer, int index, const float* k, const float* v,
                     int64_t rows, int64_t whole_tokens, int64_t sequence_tokens) {
  std::map<int, Piece>& group_pieces = pieces_[{group, layer}];
  CF_CHECK(group_pieces.count(index) == 0)
      << "group " << group << " layer " << layer << " piece " << index << " stored twice";
  CF_CHECK(whole_tokens < 0 || whole_tokens >= rows) << whole_tokens << " < " << rows << " rows";
  Piece& p = group_pieces[index];
  p.rows = rows;
  p.whole_tokens = whole_tokens < 0 ? rows : whole_tokens;
  p.on_host = host_ != nullptr && sequence_tokens >= min_tokens_;
  CF_CHECK(index == 0 || p.on_host == group_pieces.begin()->second.on_host)
      << "group " << group << ": pieces of one sequence in two places";
  p.k = buffer(rows * kv_width_, p.on_host);
  p.v = buffer(rows * kv_width_, p.on_host);
  const int64_t n = rows * kv_width_;
  if (p.on_host) {
    stream_->offload(p.k.data(), k, n);
    stream_->offload(p.v.data(), v, n);
    host_copy_bytes_ += 2 * n * static_cast<int64_t>(sizeof(float));
  } else {
    stream_->copy(p.k.data(), k, n);
    stream_->copy(p.v.data(), v, n);
  }
}

void StateStore::offload_to_host(MemoryTracker* host, int64_t min_tokens) {
  CF_CHECK(pieces_.empty()) << "the store's place changes only between steps";
  CF_CHECK_GE(min_tokens, 0);
  host_ = host;
  min_tokens_ = min_tokens;
}

void StateStore::read(float* dst, const float* src, int64_t n, bool on_host) {
  if (on_host) {
    stream_->fetch(dst, src, n);
    host_copy_bytes_ += n * static_cast<int64_t>(sizeof(float));
  } else {
    stream_->copy(dst, src, n);
  }
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

void StateStore::gather_prefix(int group, int64_t layer, int index, float* k_out, float* v_out) {
  int64_t row = 0;
  for (int i = 0; i < index; ++i) {
    const Piece& p = piece(group, layer, i);
    const int64_t n = p.rows * kv_width_;
    read(storage_at(k_out, row * kv_width_), p.k.data(), n, p.on_host);
    read(storage_at(v_out, row * kv_width_), p.v.data(), n, p.on_host);
    row += p.rows;
  }
}

StateStore::Rows StateStore::fetch_keys(int group, int64_t layer, int index, bool own,
                                        int64_t extra_rows, MemoryTracker* tracker) {
  CF_CHECK_GE(extra_rows, 0);
  Rows rows;
  rows.store_rows = prefix_rows(group, layer, index) + (own ? piece(group, layer, index).rows : 0);
  const int64_t n = (rows.store_rows + extra_rows) * kv_width_;
  rows.k = FloatBuffer(stream_->allocator(), tracker, MemoryCategory::kTransient, n);
  rows.v = FloatBuffer(stream_->allocator(), tracker, MemoryCategory::kTransient, n);
  gather_prefix(group, layer, index, rows.k.data(), rows.v.data());
  if (own) {
    const Piece& p = piece(group, layer, index);
    const int64_t at = prefix_rows(group, layer, index) * kv_width_;
    read(storage_at(rows.k.data(), at), p.k.data(), p.rows * kv_width_, p.on_host);
    read(storage_at(rows.v.data(), at), p.v.data(), p.rows * kv_width_, p.on_host);
  }
  return rows;
}

StateStore::Gradients StateStore::fetch_gradients(int group, int64_t layer, int index,
                                                  MemoryTracker* tracker) {
  Gradients fetched;
  if (!offloaded(group, layer)) return fetched;
  const int64_t rows = prefix_rows(group, layer, index) + piece(group, layer, index).rows;
  fetched.dk =
      FloatBuffer(stream_->allocator(), tracker, MemoryCategory::kTransient, rows * kv_width_);
  fetched.dv =
      FloatBuffer(stream_->allocator(), tracker, MemoryCategory::kTransient, rows * kv_width_);
  int64_t row = 0;
  for (int i = 0; i <= index; ++i) {
    const Piece& p = piece(group, layer, i);
    const int64_t n = p.rows * kv_width_;
    if (!p.dk.empty()) {  // otherwise the zeros of the fresh buffer
      read(storage_at(fetched.dk.data(), row * kv_width_), p.dk.data(), n, true);
      read(storage_at(fetched.dv.data(), row * kv_width_), p.dv.data(), n, true);
    }
    row += p.rows;
  }
  return fetched;
}

void StateStore::backward_gradients(int group, int64_t layer, int index, const float* dk,
                                    const float* dv, float* own_dk, float* own_dv,
                                    Gradients* fetched) {
  const int64_t own = piece(group, layer, index).rows * kv_width_;
  if (!offloaded(group, layer)) {
    accumulate_prefix(group, layer, index, dk, dv);
    if (has_gradients(group, layer, index)) {
      stream_->residual_add(own_dk, this->dk(group, layer, index), own);
      stream_->residual_add(own_dv, this->dv(group, layer, index), own);
    }
    return;
  }
  CF_CHECK(fetched != nullptr && !fetched->dk.empty())
      << "an offloaded store's backward adds to the fetched dK/dV (fetch_gradients)";
  ready();
  // The earlier pieces' accumulators: add, then back to the host pool (the fetched buffers stay
  // alive until the caller drops them, so the copies out run beside its later work).
  int64_t row = 0;
  for (int i = 0; i < index; ++i) {
    Piece& p = piece(group, layer, i);
    const int64_t n = p.rows * kv_width_;
    float* acc_k = storage_at(fetched->dk.data(), row * kv_width_);
    float* acc_v = storage_at(fetched->dv.data(), row * kv_width_);
    stream_->residual_add(acc_k, storage_at(dk, row * kv_width_), n);
    stream_->residual_add(acc_v, storage_at(dv, row * kv_width_), n);
    if (p.dk.empty()) {
      p.dk = buffer(n, true);
      p.dv = buffer(n, true);
    }
    stream_->offload(p.dk.data(), acc_k, n);
    stream_->offload(p.dv.data(), acc_v, n);
    host_copy_bytes_ += 2 * n * static_cast<int64_t>(sizeof(float));
    row += p.rows;
  }
  if (has_gradients(group, layer, index)) {
    stream_->residual_add(own_dk, storage_at(fetched->dk.data(), row * kv_width_), own);
    stream_->residual_add(own_dv, storage_at(fetched->dv.data(), row * kv_width_), own);
  }
}

void StateStore::accumulate_prefix(int group, int64_t layer, int index, const float* dk,
                                   const float* dv) {
  CF_CHECK(!offloaded(group, layer))
      << "offloaded pieces accumulate in fetched rows (backward_gradients)";
  int64_t row = 0;
  for (int i = 0; i < index; ++i) {
    Piece& p = piece(group, layer, i);
    const int64_t n = p.rows * kv_width_;
    if (p.dk.empty()) {  // zero-filled: the first contribution adds to 0
      p.dk = buffer(n, false);
      p.dv = buffer(n, false);
    }
    stream_->residual_add(p.dk.data(), storage_at(dk, row * kv_width_), n);
    stream_->residual_add(p.dv.data(), storage_at(dv, row * kv_width_), n);
    row += p.rows;
  }
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
