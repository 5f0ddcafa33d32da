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
// K/V offload (strategy.kv_offload: all, docs/BEYOND.md): the pieces' K/V and fp32 dK/dV live
// in the stream's host pool (backend.h: pinned host memory on the CUDA backend), counted by a
// tracker of their own, not the stage's. A piece's K/V leave for the pool on the stream's copy
// queue as its forward stores them; a reader gets the rows it needs back in transient buffers
// of the stage (fetch_keys, fetch_gradients), copied on that queue from the moment it asks —
// early, so the copies run beside the kernels before the attention — and waits for them only
// when it reads (ready). A backward adds its contribution to the earlier pieces' dK/dV in the
// fetched rows and sends them back. The arithmetic is the same, so are the gradients.
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

  // Copies piece `index`'s K and V (rows, kv_width) for `layer` into the store: the piece's
  // `whole_tokens` tokens, or this CP rank's `rows` of them (whole_tokens < 0: rows). Its
  // sequence's length decides where the group's pieces live (offload_to_host).
  void put(int group, int64_t layer, int index, const float* k, const float* v, int64_t rows,
           int64_t whole_tokens = -1, int64_t sequence_tokens = 0);
  bool has(int group, int64_t layer, int index) const;
  // The stored rows (rows, kv_width): host pool storage when offloaded, which only the CPU
  // backend's code may read (fetch_keys reads them on any backend).
  const float* k(int group, int64_t layer, int index) const;
  const float* v(int group, int64_t layer, int index) const;

  // Whole tokens of pieces 0..index−1 (the prefix of piece `index`), in total and piece by
  // piece; CHECKs they are all stored.
  int64_t prefix_tokens(int group, int64_t layer, int index) const;
  std::vector<int64_t> prefix_piece_tokens(int group, int64_t layer, int index) const;
  // Rows the store holds of pieces 0..index−1 (prefix_tokens without context parallelism).
  int64_t prefix_rows(int group, int64_t layer, int index) const;
  // Writes the K and V rows of pieces 0..index−1 into rows [0, prefix_rows) of k_out and v_out
  // (each (≥ prefix_rows, kv_width), row-major). Offloaded: call ready() before reading them.
  void gather_prefix(int group, int64_t layer, int index, float* k_out, float* v_out);
  // Adds rows [0, prefix_rows) of dk and dv (the gradients for piece `index`'s prefix) into the
  // fp32 accumulators of pieces 0..index−1, allocating those on first use (a store that is not
  // offloaded; backward_gradients does either).
  void accumulate_prefix(int group, int64_t layer, int index, const float* dk, const float* dv);
  // Whether later pieces accumulated dK/dV for piece `index` (whether or not storage exists).
  bool has_gradients(int group, int64_t layer, int index) const;
  // The dK/dV accumulated for piece `index` by later pieces, nullptr when none did.
  const float* dk(int group, int64_t layer, int index) const;
  const float* dv(int group, int64_t layer, int index) const;

  // The rows attention reads from the store for piece `index`: the K and V of pieces
  // 0..index−1, then (own) those of the piece itself, then `extra_rows` rows left for the
  // caller, in transient buffers of `tracker` from the stream's storage, ((rows held) +
  // extra_rows, kv_width). Offloaded, the copies start now: call ready() before reading.
  struct Rows {
    FloatBuffer k, v;
    int64_t store_rows = 0;  // rows filled from the store
  };
  Rows fetch_keys(int group, int64_t layer, int index, bool own, int64_t extra_rows,
                  MemoryTracker* tracker);
  // The dK/dV accumulators of pieces 0..index (the earlier pieces', which piece `index`'s
  // backward adds to, then its own) in transient buffers of `tracker`, zero where no later
  // piece contributed yet: what an offloaded store's backward reads (empty when not offloaded:
  // the accumulators are added to in place). The copies start now.
  struct Gradients {
    FloatBuffer dk, dv;
  };
  Gradients fetch_gradients(int group, int64_t layer, int index, MemoryTracker* tracker);
  // The stream's later work sees what was fetched (waits for the copy queue when offloading).
  void ready() {
    if (offloading()) stream_->wait_copies();
  }
  // Piece `index`'s backward: adds rows [0, prefix_rows) of dk and dv to the accumulators of
  // pieces 0..index−1 (`fetched`, sent back to the host pool, when offloaded), then the
  // accumulated dK/dV of the piece itself, if any, to its own rows `own_dk` and `own_dv`.
  void backward_gradients(int group, int64_t layer, int index, const float* dk, const float* dv,
                          float* own_dk, float* own_dv, Gradients* fetched);

  // Frees piece `index`'s K/V and dK/dV on layers [first_layer, end_layer) (after its
  // backward over those layers, one model chunk of this stage).
  void release(int group, int index, int64_t first_layer, int64_t end_layer);
  bool empty() const { return pieces_.empty(); }

  // Keeps the pieces of sequences of at least `min_tokens` tokens in the stream's host pool,
  // counted by `host`, from now on (the store must be empty); nullptr: all in the stream's
  // storage again.
  void offload_to_host(MemoryTracker* host, int64_t min_tokens = 0);
  bool offloading() const { return host_ != nullptr; }
  // Whether the group's pieces on `layer` live in the host pool (its piece 0 must be stored).
  bool offloaded(int group, int64_t layer) const { return piece(group, layer, 0).on_host; }
  // Bytes moved into and out of the host pool, and the seconds the copy queue spent moving
  // them, since the store was made. take_copy_time adds the queue's time so far (it waits for
  // the queue): the stage's thread calls it at the end of a step.
  int64_t host_copy_bytes() const { return host_copy_bytes_; }
  double host_copy_s() const { return host_copy_s_; }
  void take_copy_time() {
    if (offloading()) host_copy_s_ += stream_->take_copy_seconds();
  }

 private:
  struct Piece {
    int64_t rows = 0;          // held here: the whole piece, or this CP rank's shard
    int64_t whole_tokens = 0;  // of the whole piece
    FloatBuffer k, v;          // (rows, kv_width)
    FloatBuffer dk, dv;        // (rows, kv_width), fp32 accumulators; empty until first use
    bool on_host = false;      // in the host pool
  };
  using Key = std::pair<int, int64_t>;  // (group, layer)
  const Piece& piece(int group, int64_t layer, int index) const;
  Piece& piece(int group, int64_t layer, int index) {
    return const_cast<Piece&>(static_cast<const StateStore*>(this)->piece(group, layer, index));
  }

  FloatBuffer buffer(int64_t count, bool on_host) {
    if (on_host) {
      return FloatBuffer(stream_->host_pool(), host_, MemoryCategory::kStateStore, count);
    }
    return FloatBuffer(stream_->allocator(), tracker_, MemoryCategory::kStateStore, count);
  }
  // dst (n) = src (n) of the store: a copy within the stream's storage, or a fetch from the
  // host pool (counted).
  void read(float* dst, const float* src, int64_t n, bool on_host);

  MemoryTracker* tracker_;
  MemoryTracker* host_ = nullptr;
  int64_t min_tokens_ = 0;
  int64_t host_copy_bytes_ = 0;
  double host_copy_s_ = 0;
  Stream* stream_;
  int64_t kv_width_;
  std::map<Key, std::map<int, Piece>> pieces_;
};

}  // namespace cf
