// The chunk state store of one pipeline stage (DESIGN.md §4.2): per dependent group and per
// layer the stage owns, the K and V (after RoPE) of every piece forwarded so far and the fp32
// dK/dV that later pieces' backwards accumulate for earlier ones, in storage of the stage's
// backend, moved and summed on its stream. Not the attention itself.
//
// With context parallelism (context_parallel.h) the store holds this CP rank's shard of each
// piece's K/V, and its dK/dV, as Megatron-Core and Llama 3 keep the local K/V and gather them
// again for every attention: the store then costs 1/cp of a piece per rank, and a later piece's
// all-gather of the prefix (its own shards plus the other ranks') is the one the piece's own
// K/V needs anyway. A stored piece records its whole token count beside its rows.
//
// Lifetimes (the simulator's memory_timeline.cc counts the same): piece j's K/V are stored by
// its first forward (F or F*) and freed by its backward; piece i's dK/dV are allocated by the
// first backward that contributes to it (the group's highest piece) and freed by B i, which
// consumes them. After B of piece 0 nothing of the group is left.
//
// K/V offload (strategy.kv_offload: all, docs/BEYOND.md): the pieces' K/V and dK/dV live in a
// separate host pool (host memory, counted by its own tracker, not the stage's), and every
// move into or out of it — storing a piece, gathering a prefix, accumulating into dK/dV — is
// a copy counted and timed. On the CPU backend the math is the same, so are the gradients.
#pragma once

#include <chrono>
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

  // Copies piece `index`'s K and V (rows, kv_width) for `layer` into the store: the piece's
  // `whole_tokens` tokens, or this CP rank's `rows` of them (whole_tokens < 0: rows).
  void put(int group, int64_t layer, int index, const float* k, const float* v, int64_t rows,
           int64_t whole_tokens = -1);
  bool has(int group, int64_t layer, int index) const;
  const float* k(int group, int64_t layer, int index) const;  // (rows, kv_width)
  const float* v(int group, int64_t layer, int index) const;

  // Whole tokens of pieces 0..index−1 (the prefix of piece `index`), in total and piece by
  // piece; CHECKs they are all stored.
  int64_t prefix_tokens(int group, int64_t layer, int index) const;
  std::vector<int64_t> prefix_piece_tokens(int group, int64_t layer, int index) const;
  // Rows the store holds of pieces 0..index−1 (prefix_tokens without context parallelism).
  int64_t prefix_rows(int group, int64_t layer, int index) const;
  // Writes the K and V rows of pieces 0..index−1 into rows [0, prefix_rows) of k_out and v_out
  // (each (≥ prefix_rows, kv_width), row-major).
  void gather_prefix(int group, int64_t layer, int index, float* k_out, float* v_out) const;
  // Adds rows [0, prefix_rows) of dk and dv (the gradients for piece `index`'s prefix) into the
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

  // Keeps the pieces in host memory counted by `host` from now on (the store must be empty);
  // nullptr: in the stream's storage again. Host storage is the CPU backend's own: a device
  // backend cannot read it in its kernels (the executor refuses offload there).
  void offload_to_host(MemoryTracker* host);
  bool offloaded() const { return host_ != nullptr; }
  // Bytes moved into and out of the host pool, and the time those moves took, since the last
  // reset_copy_counts.
  int64_t host_copy_bytes() const { return host_copy_bytes_; }
  double host_copy_s() const { return static_cast<double>(host_copy_ns_) * 1e-9; }
  void reset_copy_counts() { host_copy_bytes_ = 0, host_copy_ns_ = 0; }

 private:
  struct Piece {
    int64_t rows = 0;          // held here: the whole piece, or this CP rank's shard
    int64_t whole_tokens = 0;  // of the whole piece
    FloatBuffer k, v;          // (rows, kv_width)
    FloatBuffer dk, dv;        // (rows, kv_width), fp32 accumulators; empty until first use
  };
  using Key = std::pair<int, int64_t>;  // (group, layer)
  const Piece& piece(int group, int64_t layer, int index) const;
  Piece& piece(int group, int64_t layer, int index) {
    return const_cast<Piece&>(static_cast<const StateStore*>(this)->piece(group, layer, index));
  }

  FloatBuffer buffer(int64_t count) {
    if (host_ != nullptr) {
      return FloatBuffer(host_allocator(), host_, MemoryCategory::kStateStore, count);
    }
    return FloatBuffer(stream_->allocator(), tracker_, MemoryCategory::kStateStore, count);
  }
  // Counts a move of `floats` into or out of the host pool that started at `start`.
  void count_copy(int64_t floats, std::chrono::steady_clock::time_point start) const;

  MemoryTracker* tracker_;
  MemoryTracker* host_ = nullptr;
  mutable int64_t host_copy_bytes_ = 0;
  mutable int64_t host_copy_ns_ = 0;
  Stream* stream_;
  int64_t kv_width_;
  std::map<Key, std::map<int, Piece>> pieces_;
};

}  // namespace cf
