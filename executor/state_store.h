// The chunk state store of one pipeline stage (DESIGN.md §4.2): per dependent group and per
// layer the stage owns, the K and V (after RoPE) of every piece forwarded so far and the fp32
// dK/dV that later pieces' backwards accumulate for earlier ones, in storage of the stage's
// backend, moved and summed on its stream. Not the attention itself.
//
// Lifetimes (the simulator's memory_timeline.cc counts the same): piece j's K/V are stored by
// its first forward (F or F*) and freed by its backward; piece i's dK/dV are allocated by the
// first backward that contributes to it (the group's highest piece) and freed by B i, which
// consumes them. After B of piece 0 nothing of the group is left.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "executor/backend.h"
#include "executor/cpu_backend.h"
#include "executor/memory.h"

namespace cf {

class StateStore {
 public:
  // Pointers in and out are storage of `stream`'s backend (host arrays on the CPU backend).
  StateStore(MemoryTracker* tracker, int64_t kv_width, Stream* stream = cpu_stream())
      : tracker_(tracker), stream_(stream), kv_width_(kv_width) {}

  // Copies piece `index`'s K and V (tokens, kv_width) for `layer` into the store.
  void put(int group, int64_t layer, int index, const float* k, const float* v, int64_t tokens);
  bool has(int group, int64_t layer, int index) const;
  const float* k(int group, int64_t layer, int index) const;  // (tokens, kv_width)
  const float* v(int group, int64_t layer, int index) const;

  // Tokens of pieces 0..index−1 (the prefix of piece `index`); CHECKs they are all stored.
  int64_t prefix_tokens(int group, int64_t layer, int index) const;
  // Writes the K and V of pieces 0..index−1 into rows [0, prefix) of k_out and v_out
  // (each (≥ prefix, kv_width), row-major).
  void gather_prefix(int group, int64_t layer, int index, float* k_out, float* v_out) const;
  // Adds rows [0, prefix) of dk and dv (the gradients for piece `index`'s prefix) into the
  // fp32 accumulators of pieces 0..index−1, allocating those on first use.
  void accumulate_prefix(int group, int64_t layer, int index, const float* dk, const float* dv);
  // Whether later pieces accumulated dK/dV for piece `index` (whether or not storage exists).
  bool has_gradients(int group, int64_t layer, int index) const;
  // The dK/dV accumulated for piece `index` by later pieces, nullptr when none did.
  const float* dk(int group, int64_t layer, int index) const;
  const float* dv(int group, int64_t layer, int index) const;

  // Frees piece `index`'s K/V and dK/dV on layers [first_layer, end_layer) (after its
  // backward over those layers, one model chunk of this stage).
  void release(int group, int index, int64_t first_layer, int64_t end_layer);
  bool empty() const { return pieces_.empty(); }

 private:
  struct Piece {
    int64_t tokens = 0;
    FloatBuffer k, v;    // (tokens, kv_width)
    FloatBuffer dk, dv;  // (tokens, kv_width), fp32 accumulators; empty until first use
  };
  using Key = std::pair<int, int64_t>;  // (group, layer)
  const Piece& piece(int group, int64_t layer, int index) const;
  Piece& piece(int group, int64_t layer, int index) {
    return const_cast<Piece&>(static_cast<const StateStore*>(this)->piece(group, layer, index));
  }

  FloatBuffer buffer(int64_t count) {
    return FloatBuffer(stream_->allocator(), tracker_, MemoryCategory::kStateStore, count);
  }

  MemoryTracker* tracker_;
  Stream* stream_;
  int64_t kv_width_;
  std::map<Key, std::map<int, Piece>> pieces_;
};

}  // namespace cf
