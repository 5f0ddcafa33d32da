// Tensor-core segment-table attention (Math::kBf16): FlashAttention-2-style tiled forward and
// backward (Dao 2023, "FlashAttention-2", Alg. 1 and 2) on nvcuda::wmma bf16 16×16×16
// fragments with fp32 accumulators. Global memory stays fp32; tiles are rounded to bf16 as
// they enter shared memory; softmax statistics, O, dK and dV accumulate in fp32. Same contract
// as kernels/cpu/attention.h. Not a Hopper wgmma/TMA kernel and not software-pipelined (no
// cp.async double buffering): docs/KERNELS-CUDA.md says what that leaves on the table.
//
// Tiling. A block has 4 warps and works on 64 query rows, 16 per warp (one wmma row tile).
//   Forward: block = (query head, 64-row query tile); key tiles of 64 stream through shared
//     memory. Per key tile each warp computes S = Q·Kᵀ for its 16 rows, updates its rows'
//     online softmax, writes P (bf16) and adds P·V into its O rows (fp32, shared memory).
//   Backward: block = (key tile of kKeys keys, kv head); it holds K, V and the fp32 dK, dV
//     accumulators of its keys and visits every (query head of the group, 64-row query tile)
//     that sees them: P from the saved lse, dP = dO·Vᵀ, dS = P∘(dP − D), then dV += Pᵀ·dO and
//     dK += dSᵀ·Q into shared memory and dQ += scale·dS·K into global memory with atomicAdd.
//     The block owns its (keys, kv head) slice of dK and dV: they are added once at the end
//     without atomics, and GQA needs no reduction.
// Masking. Every query row gets its key range [lo, hi) from its own segment (a tile may span
// several packed segments). Key tiles no row of the block sees are skipped; the others are
// masked element by element with the rows' ranges.
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_internal.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_reduce.cuh"
#include "kernels/cuda/kernels.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "attention_tc.cu needs bf16 wmma fragments (sm_80 or newer)"
#endif

namespace cf::cuda {
namespace {

namespace wmma = nvcuda::wmma;
using bf16 = __nv_bfloat16;

constexpr int kTile = 16;  // wmma m = n = k
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;  // 128
constexpr int kQueryRows = kWarps * kTile;    // Br: 64 query rows per block, 16 per warp
constexpr int kForwardKeys = 64;              // Bc of the forward
constexpr unsigned kFullMask = 0xffffffffu;
constexpr double kLog2e = 1.4426950408889634;  // softmax in base 2: e^x = 2^(x·log2 e)
constexpr float kLn2 = 0.693147180559945309f;

// Fragments: A (16 × 16) row-major, A given as its transpose in memory (col_major), B row- and
// column-major, and the fp32 accumulator. In wmma's col_major layout element (i, j) sits at
// ptr[j·ld + i], so a row-major (n, k) tile X read as col_major is Xᵀ.
using FragA = wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, bf16, wmma::row_major>;
using FragAT = wmma::fragment<wmma::matrix_a, kTile, kTile, kTile, bf16, wmma::col_major>;
using FragB = wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, bf16, wmma::row_major>;
using FragBT = wmma::fragment<wmma::matrix_b, kTile, kTile, kTile, bf16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, kTile, kTile, kTile, float>;

// Shared memory of one block: byte offsets from the dynamic shared memory base, each region on
// a 128-byte boundary. Leading dimensions (in elements) are padded by 16 bytes — bf16 +8,
// fp32 +4 — so the 8 rows one fragment load reads start in different banks. wmma needs ld a
// multiple of 16 bytes and fragment pointers 32-byte aligned: every fragment starts at a row
// that is a multiple of 16 and a column that is a multiple of 16, and 16 rows of each padded
// ld span a multiple of 32 bytes (16·(d+8)·2 = 32·(d+8); 16·(d+4)·4 = 64·(d+4)).
struct Layout {
  int ld_in = 0;   // bf16 tiles with head_dim columns (Q, dO, K, V): d + 8
  int ld_acc = 0;  // fp32 tiles with head_dim columns (O; dK, dV): d + 4
  int ld_s = 0;    // fp32 score tile (64 × keys): keys + 4
  int ld_p = 0;    // bf16 probability tiles (64 × keys; P, dS): keys + 8
  size_t q = 0, dout = 0, k = 0, v = 0, s = 0, p = 0, ds = 0, acc = 0, acc2 = 0, scratch = 0,
         rows = 0, bytes = 0;
};

__host__ __device__ inline size_t take(size_t& at, size_t bytes) {
  const size_t offset = at;
  at = (at + bytes + 127) / 128 * 128;
  return offset;
}

// The dynamic shared memory base is aligned by hand to 128 bytes (the declaration asks for it
// too, but the offsets above are what wmma's 32-byte rule rests on), from this much slack.
constexpr size_t kSmemSlack = 128;
__device__ inline unsigned char* align_smem(unsigned char* raw) {
  return reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(raw) + 127) &
                                          ~uintptr_t(127));
}

// Per-row data after the tiles: lo, hi (int64 ×64 each), then two floats ×64.
constexpr size_t kRowBytes = size_t(kQueryRows) * (2 * sizeof(int64_t) + 2 * sizeof(float));

// Forward, d ≤ 256: Q, K, V bf16; S fp32; P bf16; O fp32. With the alignment slack, d = 128:
// 111.6 KiB (two blocks per SM on an H100: 227 KiB per block, 228 KiB per SM, 1 KiB reserved
// per block); d = 256: 191.6 KiB.
__host__ __device__ inline Layout forward_layout(int d) {
  Layout l;
  l.ld_in = d + 8, l.ld_acc = d + 4, l.ld_s = kForwardKeys + 4, l.ld_p = kForwardKeys + 8;
  size_t at = 0;
  l.q = take(at, size_t(kQueryRows) * l.ld_in * sizeof(bf16));
  l.k = take(at, size_t(kForwardKeys) * l.ld_in * sizeof(bf16));
  l.v = take(at, size_t(kForwardKeys) * l.ld_in * sizeof(bf16));
  l.s = take(at, size_t(kQueryRows) * l.ld_s * sizeof(float));
  l.p = take(at, size_t(kQueryRows) * l.ld_p * sizeof(bf16));
  l.acc = take(at, size_t(kQueryRows) * l.ld_acc * sizeof(float));
  l.rows = take(at, kRowBytes);
  l.bytes = at;
  return l;
}

// Backward with `keys` keys per block: K, V bf16 (keys rows); Q, dO bf16 (64 rows); dK, dV fp32
// accumulators (keys rows); S fp32, P and dS bf16 (64 × keys); one 16×16 fp32 staging tile per
// warp for the dQ atomics. With the alignment slack, keys 64, d 64: 110.6 KiB; keys 32, d 128:
// 108.6 KiB (two blocks per SM each); keys 32, d 256: 188.6 KiB.
__host__ __device__ inline Layout backward_layout(int d, int keys) {
  Layout l;
  l.ld_in = d + 8, l.ld_acc = d + 4, l.ld_s = keys + 4, l.ld_p = keys + 8;
  size_t at = 0;
  l.k = take(at, size_t(keys) * l.ld_in * sizeof(bf16));
  l.v = take(at, size_t(keys) * l.ld_in * sizeof(bf16));
  l.q = take(at, size_t(kQueryRows) * l.ld_in * sizeof(bf16));
  l.dout = take(at, size_t(kQueryRows) * l.ld_in * sizeof(bf16));
  l.acc = take(at, size_t(keys) * l.ld_acc * sizeof(float));   // dK (unscaled)
  l.acc2 = take(at, size_t(keys) * l.ld_acc * sizeof(float));  // dV
  l.s = take(at, size_t(kQueryRows) * l.ld_s * sizeof(float));
  l.p = take(at, size_t(kQueryRows) * l.ld_p * sizeof(bf16));
  l.ds = take(at, size_t(kQueryRows) * l.ld_p * sizeof(bf16));
  l.scratch = take(at, size_t(kWarps) * kTile * kTile * sizeof(float));
  l.rows = take(at, kRowBytes);
  l.bytes = at;
  return l;
}

// Keys per block of the backward: 64 for d ≤ 64, else 32 so that d = 128 still fits two
// blocks per SM (the choice is not tuned on hardware; see docs/KERNELS-CUDA.md).
int backward_keys(int64_t d) { return d <= 64 ? 64 : 32; }

// dst (rows, ld) bf16 ← rows [row0, row0 + rows) of a fp32 array with `total_rows` rows and row
// stride `stride`, columns [0, d) from `src` (the head's first column); rows past total_rows
// become 0, so padding keys and queries are finite and contribute nothing once masked.
// vec4: src and stride allow 16-byte loads (the launcher checked the base pointers; d, hence
// every head offset and row stride, is a multiple of 16 floats).
__device__ void load_tile_bf16(bf16* dst, int ld, const float* src, int64_t stride, int64_t row0,
                               int64_t total_rows, int rows, int d, bool vec4) {
  if (vec4) {
    const int quads = d / 4;
    for (int i = threadIdx.x; i < rows * quads; i += kThreads) {
      const int r = i / quads, c = (i % quads) * 4;
      const int64_t row = row0 + r;
      float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (row < total_rows) x = *reinterpret_cast<const float4*>(src + row * stride + c);
      // r·ld + c is a multiple of 4 elements (ld and c are): 8-byte aligned bf16 pairs.
      __nv_bfloat162* pair = reinterpret_cast<__nv_bfloat162*>(dst + r * ld + c);
      pair[0] = __floats2bfloat162_rn(x.x, x.y);
      pair[1] = __floats2bfloat162_rn(x.z, x.w);
    }
  } else {
    for (int i = threadIdx.x; i < rows * d; i += kThreads) {
      const int r = i / d, c = i % d;
      const int64_t row = row0 + r;
      dst[r * ld + c] = __float2bfloat16_rn(row < total_rows ? src[row * stride + c] : 0.0f);
    }
  }
}

// Keys [lo, hi) that query row `row` sees: its segment's keys up to the bottom-right causal
// diagonal. Rows past the query block (padding of the last tile) see none: lo = hi = 0.
__device__ inline void row_keys(const AttentionSegment* segments, int64_t num_segments,
                                int64_t q_tokens, int64_t row, int64_t& lo, int64_t& hi) {
  lo = hi = 0;
  if (row >= q_tokens) return;
  const AttentionSegment seg = find_segment(segments, num_segments, row);
  lo = seg.kv_begin;
  hi = seg.kv_begin + seg.kv_len - seg.q_len + (row - seg.q_begin) + 1;
}

// Whether a row with keys [lo, hi) sees any key of the tile [j0, j0 + keys).
__device__ inline bool sees_tile(int64_t lo, int64_t hi, int64_t j0, int keys) {
  return lo < hi && lo < j0 + keys && hi > j0;
}

// One warp: out (16 × kKeys, ld_out) fp32 = A (16 × d) · Bᵀ, with A the warp's 16 rows of a
// bf16 (·, ld) tile and B the (kKeys × d) bf16 key tile (same ld). Bᵀ as matrix_b is B read
// col_major: element (k, n) of Bᵀ is B[n][k] = b[n·ld + k].
template <int kKeys>
__device__ inline void warp_scores(float* out, int ld_out, const bf16* a, const bf16* b, int ld,
                                   int d) {
  FragC acc[kKeys / kTile];
#pragma unroll
  for (int n = 0; n < kKeys / kTile; ++n) wmma::fill_fragment(acc[n], 0.0f);
  for (int kt = 0; kt < d; kt += kTile) {
    FragA a_frag;
    wmma::load_matrix_sync(a_frag, a + kt, ld);
#pragma unroll
    for (int n = 0; n < kKeys / kTile; ++n) {
      FragBT b_frag;
      wmma::load_matrix_sync(b_frag, b + n * kTile * ld + kt, ld);
      wmma::mma_sync(acc[n], a_frag, b_frag, acc[n]);
    }
  }
#pragma unroll
  for (int n = 0; n < kKeys / kTile; ++n) {
    wmma::store_matrix_sync(out + n * kTile, acc[n], ld_out, wmma::mem_row_major);
  }
}

// Forward. out (tq, a·d), lse (tq, a); q (tq, a·d); k, v (tk, g·d). Block (h, y): query head h,
// query rows [64·t, 64·t + 64) with t = gridDim.y − 1 − y, so the tiles with the most keys of a
// causal sequence start first. scale_log2 = log2(e)/√d.
__global__ void __launch_bounds__(kThreads)
    attention_forward_tc_kernel(float* out, float* lse, const float* q, const float* k,
                                const float* v, const AttentionSegment* segments,
                                int64_t num_segments, AttentionShape shape, float scale_log2,
                                bool vec4) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  unsigned char* smem = align_smem(smem_raw);
  const int d = int(shape.head_dim);
  const Layout l = forward_layout(d);
  bf16* q_s = reinterpret_cast<bf16*>(smem + l.q);              // (64, ld_in)
  bf16* k_s = reinterpret_cast<bf16*>(smem + l.k);              // (64 keys, ld_in)
  bf16* v_s = reinterpret_cast<bf16*>(smem + l.v);              // (64 keys, ld_in)
  float* s_s = reinterpret_cast<float*>(smem + l.s);            // (64, ld_s)
  bf16* p_s = reinterpret_cast<bf16*>(smem + l.p);              // (64, ld_p)
  float* o_s = reinterpret_cast<float*>(smem + l.acc);          // (64, ld_acc)
  int64_t* row_lo = reinterpret_cast<int64_t*>(smem + l.rows);  // (64)
  int64_t* row_hi = row_lo + kQueryRows;                        // (64)

  const int64_t a = shape.heads, g = shape.kv_heads;
  const int64_t h = blockIdx.x, kv_head = h / (a / g);
  const int64_t q0 = (int64_t(gridDim.y) - 1 - blockIdx.y) * kQueryRows;
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;

  if (threadIdx.x < kQueryRows) {
    row_keys(segments, num_segments, shape.q_tokens, q0 + threadIdx.x, row_lo[threadIdx.x],
             row_hi[threadIdx.x]);
  }
  load_tile_bf16(q_s, l.ld_in, q + h * d, a * d, q0, shape.q_tokens, kQueryRows, d, vec4);
  for (int i = threadIdx.x; i < kQueryRows * l.ld_acc; i += kThreads) o_s[i] = 0.0f;
  __syncthreads();

  // [kv_min, kv_max): the union of the rows' key ranges; every row has at least one key.
  int64_t kv_min = INT64_MAX, kv_max = 0;
  for (int r = 0; r < kQueryRows; ++r) {
    if (row_lo[r] < row_hi[r]) {
      kv_min = row_lo[r] < kv_min ? row_lo[r] : kv_min;
      kv_max = row_hi[r] > kv_max ? row_hi[r] : kv_max;
    }
  }

  // Softmax lanes: lane 2i + half owns row i of the warp's 16 and the columns c ≡ half (mod 2)
  // of each score tile; both lanes of a row keep the same running max and sum (base 2).
  constexpr int kCols = kForwardKeys / 2;
  const int my_row = warp * kTile + lane / 2, half = lane % 2;
  const int64_t my_lo = row_lo[my_row], my_hi = row_hi[my_row];
  float row_max = -INFINITY, row_sum = 0.0f;
  float* s_row = s_s + my_row * l.ld_s;
  bf16* p_row = p_s + my_row * l.ld_p;
  float* o_row = o_s + my_row * l.ld_acc;

  for (int64_t j0 = kv_min; j0 < kv_max; j0 += kForwardKeys) {
    // A barrier (every warp is done with the previous K/V tile) that also skips, block-uniformly,
    // a key tile no row of the block sees (the gap between two packed segments' keys).
    const bool row_sees = threadIdx.x < kQueryRows &&
                          sees_tile(row_lo[threadIdx.x], row_hi[threadIdx.x], j0, kForwardKeys);
    if (!__syncthreads_or(row_sees)) continue;
    load_tile_bf16(k_s, l.ld_in, k + kv_head * d, g * d, j0, shape.kv_tokens, kForwardKeys, d,
                   vec4);
    load_tile_bf16(v_s, l.ld_in, v + kv_head * d, g * d, j0, shape.kv_tokens, kForwardKeys, d,
                   vec4);
    __syncthreads();
    // Warp-uniform: a warp whose 16 rows see none of these keys has nothing to add.
    const int64_t lane_row = warp * kTile + (lane % kTile);
    if (!__any_sync(kFullMask, sees_tile(row_lo[lane_row], row_hi[lane_row], j0, kForwardKeys))) {
      continue;
    }

    // S (16 × 64) = Q_w · Kᵀ for the warp's rows, into its rows of s_s.
    warp_scores<kForwardKeys>(s_s + warp * kTile * l.ld_s, l.ld_s, q_s + warp * kTile * l.ld_in,
                              k_s, l.ld_in, d);
    __syncwarp();

    // Online softmax in base 2: s2 = S·scale·log2 e, masked keys −∞.
    float s2[kCols];
    float tile_max = -INFINITY;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = half + 2 * i;
      const int64_t key = j0 + c;
      s2[i] = key >= my_lo && key < my_hi ? s_row[c] * scale_log2 : -INFINITY;
      tile_max = fmaxf(tile_max, s2[i]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, 1));
    const float new_max = fmaxf(row_max, tile_max);
    // A row that has seen no key yet (or a padding row) keeps max −∞; subtracting 0 instead
    // keeps exp2 away from −∞ − (−∞) = NaN (its O and sum are 0, and every p is 0).
    const float base = new_max == -INFINITY ? 0.0f : new_max;
    const float correction = exp2f(row_max - base);  // 0 on the row's first keys
    float tile_sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const float p = exp2f(s2[i] - base);
      tile_sum += p;
      p_row[half + 2 * i] = __float2bfloat16_rn(p);
    }
    tile_sum += __shfl_xor_sync(kFullMask, tile_sum, 1);
    row_sum = row_sum * correction + tile_sum;
    row_max = new_max;
    for (int c = half; c < d; c += 2) o_row[c] *= correction;
    __syncwarp();

    // O_w (16 × d) += P_w (16 × 64) · V (64 × d), O through the accumulator fragments.
    FragA p_frag[kForwardKeys / kTile];
#pragma unroll
    for (int kk = 0; kk < kForwardKeys / kTile; ++kk) {
      wmma::load_matrix_sync(p_frag[kk], p_s + warp * kTile * l.ld_p + kk * kTile, l.ld_p);
    }
    for (int n0 = 0; n0 < d; n0 += kTile) {
      float* o_tile = o_s + warp * kTile * l.ld_acc + n0;
      FragC o_frag;
      wmma::load_matrix_sync(o_frag, o_tile, l.ld_acc, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kForwardKeys / kTile; ++kk) {
        FragB v_frag;
        wmma::load_matrix_sync(v_frag, v_s + kk * kTile * l.ld_in + n0, l.ld_in);
        wmma::mma_sync(o_frag, p_frag[kk], v_frag, o_frag);
      }
      wmma::store_matrix_sync(o_tile, o_frag, l.ld_acc, wmma::mem_row_major);
    }
    // The next tile's softmax reads o_s after its own __syncwarp.
  }
  __syncwarp();

  // out = O / sum, one row at a time across the warp (coalesced); lse = ln Σ e^s.
  for (int r = 0; r < kTile; ++r) {
    const float sum_r = __shfl_sync(kFullMask, row_sum, 2 * r);
    const int64_t row = q0 + warp * kTile + r;
    if (row >= shape.q_tokens) break;  // warp-uniform: padding rows are the last ones
    const float* o_r = o_s + (warp * kTile + r) * l.ld_acc;
    float* out_r = out + (row * a + h) * d;
    for (int c = lane; c < d; c += kWarpSize) out_r[c] = o_r[c] / sum_r;
  }
  if (half == 0 && q0 + my_row < shape.q_tokens) {
    lse[(q0 + my_row) * a + h] = (row_max + log2f(row_sum)) * kLn2;
  }
}

// D (tq·a) = rowsum(dO ∘ O) per query row and head, one warp each (FlashAttention-2's
// preprocessing step). dout, out (tq·a, d) as (row, head) rows of d.
__global__ void out_dot_kernel(float* out_dot, const float* dout, const float* out, int64_t rows,
                               int64_t d) {
  const int64_t w = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / kWarpSize;
  if (w >= rows) return;  // warp-uniform
  float part = 0.0f;
  for (int64_t c = threadIdx.x % kWarpSize; c < d; c += kWarpSize) {
    part += dout[w * d + c] * out[w * d + c];
  }
  part = warp_sum(part);
  if (threadIdx.x % kWarpSize == 0) out_dot[w] = part;
}

// What a backward block keeps in shared memory, by name.
struct BackwardTiles {
  bf16 *k, *v, *q, *dout, *p, *ds;
  float *dk, *dv, *s, *scratch;
  int64_t *row_lo, *row_hi;
  float *row_lse2, *row_dot;  // lse·log2 e and D of the query tile's rows
  Layout l;
};

// One (query head h, query tile t) against the block's key tile [j0, j0 + kKeys): the inner
// loop of the backward. Every thread of the block calls it (it holds block barriers).
template <int kKeys>
__device__ void backward_query_tile(const BackwardTiles& m, float* dq, const float* dout,
                                    const float* q, const float* lse, const float* out_dot,
                                    const AttentionSegment* segments, int64_t num_segments,
                                    const AttentionShape& shape, int64_t h, int64_t t, int64_t j0,
                                    float scale, float scale_log2, bool vec4) {
  const Layout& l = m.l;
  const int64_t a = shape.heads;
  const int d = int(shape.head_dim);
  const int64_t q0 = t * kQueryRows;
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;

  __syncthreads();  // the previous query tile is done with q, dout, p, ds and the row data
  load_tile_bf16(m.q, l.ld_in, q + h * d, a * d, q0, shape.q_tokens, kQueryRows, d, vec4);
  load_tile_bf16(m.dout, l.ld_in, dout + h * d, a * d, q0, shape.q_tokens, kQueryRows, d, vec4);
  if (threadIdx.x < kQueryRows) {
    const int r = threadIdx.x;
    const int64_t row = q0 + r;
    row_keys(segments, num_segments, shape.q_tokens, row, m.row_lo[r], m.row_hi[r]);
    const bool valid = row < shape.q_tokens;
    m.row_lse2[r] = valid ? lse[row * a + h] * float(kLog2e) : 0.0f;
    m.row_dot[r] = valid ? out_dot[row * a + h] : 0.0f;
  }
  __syncthreads();

  // P and dS for the warp's 16 rows (lanes as in the forward: two per row, alternate columns).
  constexpr int kCols = kKeys / 2;
  const int my_row = warp * kTile + lane / 2, half = lane % 2;
  const float* s_row = m.s + my_row * l.ld_s;
  bf16* p_row = m.p + my_row * l.ld_p;
  bf16* ds_row = m.ds + my_row * l.ld_p;
  const int64_t lane_row = warp * kTile + (lane % kTile);
  if (__any_sync(kFullMask, sees_tile(m.row_lo[lane_row], m.row_hi[lane_row], j0, kKeys))) {
    float* s_w = m.s + warp * kTile * l.ld_s;
    warp_scores<kKeys>(s_w, l.ld_s, m.q + warp * kTile * l.ld_in, m.k, l.ld_in, d);  // S
    __syncwarp();
    const int64_t lo = m.row_lo[my_row], hi = m.row_hi[my_row];
    const float lse2 = m.row_lse2[my_row];
    float p[kCols];
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = half + 2 * i;
      const int64_t key = j0 + c;
      p[i] = key >= lo && key < hi ? exp2f(s_row[c] * scale_log2 - lse2) : 0.0f;
    }
    __syncwarp();  // every lane has read its scores before dP overwrites them
    warp_scores<kKeys>(s_w, l.ld_s, m.dout + warp * kTile * l.ld_in, m.v, l.ld_in, d);  // dP
    __syncwarp();
    const float dot = m.row_dot[my_row];
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int c = half + 2 * i;
      p_row[c] = __float2bfloat16_rn(p[i]);
      ds_row[c] = __float2bfloat16_rn(p[i] * (s_row[c] - dot));  // dS = P∘(dP − D), unscaled
    }
  } else {
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      p_row[half + 2 * i] = __float2bfloat16_rn(0.0f);
      ds_row[half + 2 * i] = __float2bfloat16_rn(0.0f);
    }
  }
  __syncthreads();  // dV, dK and dQ below read every warp's rows of p and ds

  // dV (kKeys × d) += Pᵀ·dO and dK += dSᵀ·Q over the tile's 64 query rows: 2·(kKeys/16)·(d/16)
  // output tiles dealt round-robin to the warps (each tile has one owner: no races on the
  // accumulators). Pᵀ as matrix_a is P read col_major: element (key i, row r) = p[r·ld_p + i].
  const int col_tiles = d / kTile;
  const int acc_tiles = (kKeys / kTile) * col_tiles;
  for (int u = warp; u < 2 * acc_tiles; u += kWarps) {
    const bool key_grad = u >= acc_tiles;
    const int key_tile = (u % acc_tiles) / col_tiles, n0 = (u % acc_tiles) % col_tiles * kTile;
    float* acc = (key_grad ? m.dk : m.dv) + key_tile * kTile * l.ld_acc + n0;
    const bf16* left = key_grad ? m.ds : m.p;     // (64 rows, ld_p); its transpose is A
    const bf16* right = key_grad ? m.q : m.dout;  // (64 rows, ld_in)
    FragC c_frag;
    wmma::load_matrix_sync(c_frag, acc, l.ld_acc, wmma::mem_row_major);
#pragma unroll
    for (int r0 = 0; r0 < kQueryRows; r0 += kTile) {
      FragAT at_frag;
      wmma::load_matrix_sync(at_frag, left + r0 * l.ld_p + key_tile * kTile, l.ld_p);
      FragB b_frag;
      wmma::load_matrix_sync(b_frag, right + r0 * l.ld_in + n0, l.ld_in);
      wmma::mma_sync(c_frag, at_frag, b_frag, c_frag);
    }
    wmma::store_matrix_sync(acc, c_frag, l.ld_acc, wmma::mem_row_major);
  }

  // dQ (64 × d) += scale·dS (64 × kKeys) · K (kKeys × d): each 16×16 tile goes through the warp's
  // staging tile to atomicAdd, a half-warp per row (64 contiguous bytes). Rows that see none of
  // the keys have dS = 0 and are left alone.
  float* stage = m.scratch + warp * kTile * kTile;
  for (int u = warp; u < (kQueryRows / kTile) * col_tiles; u += kWarps) {
    const int row_tile = u / col_tiles, n0 = u % col_tiles * kTile;
    FragC c_frag;
    wmma::fill_fragment(c_frag, 0.0f);
#pragma unroll
    for (int kk = 0; kk < kKeys; kk += kTile) {
      FragA ds_frag;
      wmma::load_matrix_sync(ds_frag, m.ds + row_tile * kTile * l.ld_p + kk, l.ld_p);
      FragB k_frag;
      wmma::load_matrix_sync(k_frag, m.k + kk * l.ld_in + n0, l.ld_in);
      wmma::mma_sync(c_frag, ds_frag, k_frag, c_frag);
    }
    wmma::store_matrix_sync(stage, c_frag, kTile, wmma::mem_row_major);
    __syncwarp();
    for (int e = lane; e < kTile * kTile; e += kWarpSize) {
      const int r = row_tile * kTile + e / kTile;
      const int64_t row = q0 + r;
      if (row < shape.q_tokens && sees_tile(m.row_lo[r], m.row_hi[r], j0, kKeys)) {
        atomicAdd(&dq[(row * a + h) * d + n0 + e % kTile], scale * stage[e]);
      }
    }
    __syncwarp();  // the stage is read before the next tile overwrites it
  }
}

// Backward. dq (tq, a·d) += ∂L/∂Q; dk, dv (tk, g·d) += ∂L/∂K, ∂L/∂V. Block (x, kv head):
// keys [kKeys·x, kKeys·x + kKeys). out_dot (tq·a): D from out_dot_kernel.
template <int kKeys>
__global__ void __launch_bounds__(kThreads)
    attention_backward_tc_kernel(float* dq, float* dk, float* dv, const float* dout, const float* q,
                                 const float* k, const float* v, const float* lse,
                                 const float* out_dot, const AttentionSegment* segments,
                                 int64_t num_segments, AttentionShape shape, float scale,
                                 float scale_log2, bool vec4) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  unsigned char* smem = align_smem(smem_raw);
  const int d = int(shape.head_dim);
  BackwardTiles m;
  m.l = backward_layout(d, kKeys);
  m.k = reinterpret_cast<bf16*>(smem + m.l.k);               // (kKeys, ld_in)
  m.v = reinterpret_cast<bf16*>(smem + m.l.v);               // (kKeys, ld_in)
  m.q = reinterpret_cast<bf16*>(smem + m.l.q);               // (64, ld_in)
  m.dout = reinterpret_cast<bf16*>(smem + m.l.dout);         // (64, ld_in)
  m.dk = reinterpret_cast<float*>(smem + m.l.acc);           // (kKeys, ld_acc)
  m.dv = reinterpret_cast<float*>(smem + m.l.acc2);          // (kKeys, ld_acc)
  m.s = reinterpret_cast<float*>(smem + m.l.s);              // (64, ld_s)
  m.p = reinterpret_cast<bf16*>(smem + m.l.p);               // (64, ld_p)
  m.ds = reinterpret_cast<bf16*>(smem + m.l.ds);             // (64, ld_p)
  m.scratch = reinterpret_cast<float*>(smem + m.l.scratch);  // (4 warps, 16·16)
  m.row_lo = reinterpret_cast<int64_t*>(smem + m.l.rows);
  m.row_hi = m.row_lo + kQueryRows;
  m.row_lse2 = reinterpret_cast<float*>(m.row_hi + kQueryRows);
  m.row_dot = m.row_lse2 + kQueryRows;

  const int64_t a = shape.heads, g = shape.kv_heads, group = a / g;
  const int64_t j0 = int64_t(blockIdx.x) * kKeys, kv_head = blockIdx.y;
  load_tile_bf16(m.k, m.l.ld_in, k + kv_head * d, g * d, j0, shape.kv_tokens, kKeys, d, vec4);
  load_tile_bf16(m.v, m.l.ld_in, v + kv_head * d, g * d, j0, shape.kv_tokens, kKeys, d, vec4);
  for (int i = threadIdx.x; i < kKeys * m.l.ld_acc; i += kThreads) m.dk[i] = m.dv[i] = 0.0f;
  // (backward_query_tile starts with a barrier: these are visible before any use.)

  // The query tiles that see keys [j0, j0 + kKeys): row r of a segment sees keys
  // [kv_begin, diag + r + 1) with diag = kv_begin + kv_len − q_len, so if the segment's keys
  // reach the tile, its rows r ≥ j0 − diag do. Segments are in query order, so these tiles come
  // in increasing order; last_tile keeps a tile that holds rows of several segments from being
  // visited twice (one visit handles all its rows, each masked by its own segment).
  bool any_tile = false;  // block-uniform, like every branch of these loops
  for (int64_t hh = 0; hh < group; ++hh) {
    const int64_t h = kv_head * group + hh;
    int64_t last_tile = -1;
    for (int64_t s = 0; s < num_segments; ++s) {
      const AttentionSegment seg = segments[s];
      if (seg.q_len == 0 || seg.kv_begin >= j0 + kKeys || seg.kv_begin + seg.kv_len <= j0) continue;
      const int64_t diag = seg.kv_begin + seg.kv_len - seg.q_len;
      const int64_t first_row = seg.q_begin + (j0 > diag ? j0 - diag : 0);
      const int64_t end_row = seg.q_begin + seg.q_len;
      if (first_row >= end_row) continue;
      const int64_t first_tile = first_row / kQueryRows;
      for (int64_t t = first_tile > last_tile ? first_tile : last_tile + 1;
           t <= (end_row - 1) / kQueryRows; ++t) {
        backward_query_tile<kKeys>(m, dq, dout, q, lse, out_dot, segments, num_segments, shape, h,
                                   t, j0, scale, scale_log2, vec4);
        last_tile = t;
        any_tile = true;
      }
    }
  }
  if (!any_tile) return;  // no query sees these keys: dK, dV stay as they are
  __syncthreads();        // every warp's accumulator tiles are stored

  for (int i = threadIdx.x; i < kKeys * d; i += kThreads) {
    const int r = i / d, c = i % d;
    const int64_t key = j0 + r;
    if (key < shape.kv_tokens) {
      const int64_t at = (key * g + kv_head) * d + c;
      dk[at] += scale * m.dk[r * m.l.ld_acc + c];
      dv[at] += m.dv[r * m.l.ld_acc + c];
    }
  }
}

// Raises a kernel's dynamic shared memory limit to `layout_bytes` + the alignment slack (the
// most any head_dim needs, so threads launching with different head dims never lower it under
// one another) after checking the device allows it.
template <typename Kernel>
void allow_shared_memory(Kernel kernel, size_t layout_bytes) {
  const size_t bytes = layout_bytes + kSmemSlack;
  int device = 0, optin = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  CF_CHECK_LE(bytes, size_t(optin))
      << "tensor-core attention needs " << bytes
      << " bytes of shared memory per block; the device allows " << optin;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <int kKeys>
void launch_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                     const float* k, const float* v, const float* lse, const float* out_dot,
                     const AttentionSegment* segments, int64_t num_segments,
                     const AttentionShape& shape, bool vec4) {
  const int d = int(shape.head_dim);
  const int max_d = kKeys == 64 ? 64 : int(kMaxAttentionHeadDim);  // see backward_keys
  allow_shared_memory(attention_backward_tc_kernel<kKeys>, backward_layout(max_d, kKeys).bytes);
  const double scale = 1.0 / std::sqrt(double(d));
  const dim3 grid(blocks_for(shape.kv_tokens, kKeys), unsigned(shape.kv_heads));
  attention_backward_tc_kernel<kKeys>
      <<<grid, kThreads, backward_layout(d, kKeys).bytes + kSmemSlack, current_stream()>>>(
          dq, dk, dv, dout, q, k, v, lse, out_dot, segments, num_segments, shape, float(scale),
          float(scale * kLog2e), vec4);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

bool tensor_core_attention_supports(const AttentionShape& shape) {
  return shape.head_dim % kTile == 0 && shape.head_dim <= kMaxAttentionHeadDim;
}

void attention_forward_tc(float* out, float* lse, const float* q, const float* k, const float* v,
                          const AttentionSegment* device_segments, int64_t num_segments,
                          const AttentionShape& shape) {
  CF_CHECK(tensor_core_attention_supports(shape)) << "head_dim " << shape.head_dim;
  const int d = int(shape.head_dim);
  const int64_t tiles = (shape.q_tokens + kQueryRows - 1) / kQueryRows;
  CF_CHECK_LE(tiles, int64_t(65535)) << "q_tokens " << shape.q_tokens;
  CF_CHECK_LE(shape.heads, int64_t(INT32_MAX));
  allow_shared_memory(attention_forward_tc_kernel, forward_layout(int(kMaxAttentionHeadDim)).bytes);
  const bool vec4 = aligned16(q) && aligned16(k) && aligned16(v);
  const double scale_log2 = kLog2e / std::sqrt(double(d));
  const dim3 grid(unsigned(shape.heads), unsigned(tiles));
  attention_forward_tc_kernel<<<grid, kThreads, forward_layout(d).bytes + kSmemSlack,
                                current_stream()>>>(out, lse, q, k, v, device_segments,
                                                    num_segments, shape, float(scale_log2), vec4);
  CUDA_CHECK_LAUNCH();
}

void attention_backward_tc(float* dq, float* dk, float* dv, const float* dout, const float* q,
                           const float* k, const float* v, const float* out, const float* lse,
                           const AttentionSegment* device_segments, int64_t num_segments,
                           const AttentionShape& shape) {
  CF_CHECK(tensor_core_attention_supports(shape)) << "head_dim " << shape.head_dim;
  CF_CHECK_LE(shape.kv_heads, int64_t(65535));
  const int64_t rows = shape.q_tokens * shape.heads;
  const StreamScratch<float> out_dot(rows);  // D, (tq·a)
  constexpr int kDotWarps = 8;
  out_dot_kernel<<<blocks_for(rows, kDotWarps), kDotWarps * kWarpSize, 0, current_stream()>>>(
      out_dot.get(), dout, out, rows, shape.head_dim);
  CUDA_CHECK_LAUNCH();
  const bool vec4 = aligned16(q) && aligned16(k) && aligned16(v) && aligned16(dout);
  if (backward_keys(shape.head_dim) == 64) {
    launch_backward<64>(dq, dk, dv, dout, q, k, v, lse, out_dot.get(), device_segments,
                        num_segments, shape, vec4);
  } else {
    launch_backward<32>(dq, dk, dv, dout, q, k, v, lse, out_dot.get(), device_segments,
                        num_segments, shape, vec4);
  }
}

}  // namespace cf::cuda
