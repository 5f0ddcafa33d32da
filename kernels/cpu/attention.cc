// Segment-table attention on the CPU. Per segment and query head, query rows are taken in
// blocks of kQueryBlock; each block multiplies against the keys its last row may see, masks
// the rest, and uses Eigen products. Memory is O(kQueryBlock · kv_len), never O(q_len · kv_len).
#include "kernels/cpu/attention.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace cf {

void check_attention_args(const AttentionSegment* segments, int64_t num_segments,
                          const AttentionShape& shape) {
  CF_CHECK_GE(shape.q_tokens, 0);
  CF_CHECK_GE(shape.kv_tokens, 0);
  CF_CHECK_GT(shape.heads, 0);
  CF_CHECK_GT(shape.kv_heads, 0);
  CF_CHECK_GT(shape.head_dim, 0);
  CF_CHECK_EQ(shape.heads % shape.kv_heads, 0);
  CF_CHECK_GE(num_segments, 0);
  int64_t next_q = 0;
  for (int64_t s = 0; s < num_segments; ++s) {
    const AttentionSegment& seg = segments[s];
    CF_CHECK_EQ(seg.q_begin, next_q) << "segment " << s << " must start where the last ended";
    CF_CHECK_GE(seg.q_len, 0) << "segment " << s;
    CF_CHECK_GE(seg.kv_len, seg.q_len) << "segment " << s;
    CF_CHECK(seg.kv_begin >= 0 && seg.kv_begin + seg.kv_len <= shape.kv_tokens)
        << "segment " << s << " keys [" << seg.kv_begin << ", " << seg.kv_begin + seg.kv_len
        << ") outside [0, " << shape.kv_tokens << ")";
    next_q += seg.q_len;
  }
  CF_CHECK_EQ(next_q, shape.q_tokens) << "segments must cover every query row";
}

}  // namespace cf

namespace cf::cpu {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<>;
using ConstBlock = Eigen::Map<const RowMajor, 0, Strided>;
using Block = Eigen::Map<RowMajor, 0, Strided>;

constexpr int64_t kQueryBlock = 64;

// One (segment, query head, query block) tile: row r of the tile is query row q_row0 + r of the
// query block and sees the first visible(r) = key_offset + r + 1 keys of the segment's keys.
struct Tile {
  int64_t q_row0 = 0;      // first query row of the tile in the query block
  int64_t rows = 0;        // query rows in the tile
  int64_t key_offset = 0;  // (kv_len − q_len) + the tile's first row index in its segment
  int64_t kv_row0 = 0;     // the segment's first key row
  int64_t cols = 0;        // keys visible to the tile's last row: key_offset + rows
  int64_t head = 0;        // query head h
  int64_t kv_head = 0;     // h / (a / g)
};

template <typename Fn>
void for_each_tile(const AttentionSegment* segments, int64_t num_segments,
                   const AttentionShape& shape, Fn&& fn) {
  const int64_t group = shape.heads / shape.kv_heads;
  for (int64_t s = 0; s < num_segments; ++s) {
    const AttentionSegment& seg = segments[s];
    for (int64_t h = 0; h < shape.heads; ++h) {
      for (int64_t i0 = 0; i0 < seg.q_len; i0 += kQueryBlock) {
        Tile tile;
        tile.q_row0 = seg.q_begin + i0;
        tile.rows = std::min(kQueryBlock, seg.q_len - i0);
        tile.key_offset = seg.kv_len - seg.q_len + i0;
        tile.kv_row0 = seg.kv_begin;
        tile.cols = tile.key_offset + tile.rows;
        tile.head = h;
        tile.kv_head = h / group;
        fn(tile);
      }
    }
  }
}

// Views of one head's columns over rows [row0, row0 + rows) of a (tokens, heads·d) array.
ConstBlock head_view(const float* base, int64_t row0, int64_t rows, int64_t head, int64_t heads,
                     int64_t d) {
  return ConstBlock(base + row0 * heads * d + head * d, rows, d, Strided(heads * d));
}
Block head_view(float* base, int64_t row0, int64_t rows, int64_t head, int64_t heads, int64_t d) {
  return Block(base + row0 * heads * d + head * d, rows, d, Strided(heads * d));
}

// probs (rows, cols) ← scale·Q·Kᵀ masked to the causal keys of each row, then
// exp(s − lse_row); with lse == nullptr the row's own log-sum-exp is computed and returned in
// lse_out (rows). Masked entries are exactly 0.
void tile_probs(RowMajor& probs, const Tile& tile, const ConstBlock& q_tile,
                const ConstBlock& k_tile, float scale, const float* lse, int64_t lse_stride,
                float* lse_out) {
  probs.resize(tile.rows, tile.cols);
  probs.noalias() = q_tile * k_tile.transpose();
  for (int64_t r = 0; r < tile.rows; ++r) {
    const int64_t visible = tile.key_offset + r + 1;
    auto row = probs.row(r);
    row.head(visible) *= scale;
    float row_lse;
    if (lse != nullptr) {
      row_lse = lse[r * lse_stride];
    } else {
      const float max_s = row.head(visible).maxCoeff();
      double sum = 0.0;
      for (int64_t c = 0; c < visible; ++c) sum += std::exp(double(row(c)) - max_s);
      row_lse = float(double(max_s) + std::log(sum));
      lse_out[r * lse_stride] = row_lse;
    }
    row.head(visible) = (row.head(visible).array() - row_lse).exp().matrix();
    row.tail(tile.cols - visible).setZero();
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionSegment* segments, int64_t num_segments,
                       const AttentionShape& shape) {
  check_attention_args(segments, num_segments, shape);
  const int64_t a = shape.heads, g = shape.kv_heads, d = shape.head_dim;
  const float scale = float(1.0 / std::sqrt(double(d)));
  RowMajor probs;  // (rows, cols) scratch
  for_each_tile(segments, num_segments, shape, [&](const Tile& tile) {
    const ConstBlock q_tile = head_view(q, tile.q_row0, tile.rows, tile.head, a, d);
    const ConstBlock k_tile = head_view(k, tile.kv_row0, tile.cols, tile.kv_head, g, d);
    const ConstBlock v_tile = head_view(v, tile.kv_row0, tile.cols, tile.kv_head, g, d);
    float* lse_tile = lse + tile.q_row0 * a + tile.head;  // (rows) with stride a
    tile_probs(probs, tile, q_tile, k_tile, scale, nullptr, a, lse_tile);
    head_view(out, tile.q_row0, tile.rows, tile.head, a, d).noalias() = probs * v_tile;
  });
}

// With P = softmax(S), S = scale·Q·Kᵀ, O = P·V (Dao et al. 2022, FlashAttention, Alg. 2):
//   dV = Pᵀ·dO;  dP = dO·Vᵀ;  D_i = dO_i·O_i;  dS = P ∘ (dP − D);  dQ = scale·dS·K;
//   dK = scale·dSᵀ·Q.  Masked entries have P = 0, hence dS = 0.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const AttentionSegment* segments, int64_t num_segments,
                        const AttentionShape& shape) {
  check_attention_args(segments, num_segments, shape);
  const int64_t a = shape.heads, g = shape.kv_heads, d = shape.head_dim;
  const float scale = float(1.0 / std::sqrt(double(d)));
  RowMajor probs, dprobs;   // (rows, cols) scratch
  Eigen::VectorXf out_dot;  // (rows) D_i
  for_each_tile(segments, num_segments, shape, [&](const Tile& tile) {
    const ConstBlock q_tile = head_view(q, tile.q_row0, tile.rows, tile.head, a, d);
    const ConstBlock o_tile = head_view(out, tile.q_row0, tile.rows, tile.head, a, d);
    const ConstBlock do_tile = head_view(dout, tile.q_row0, tile.rows, tile.head, a, d);
    const ConstBlock k_tile = head_view(k, tile.kv_row0, tile.cols, tile.kv_head, g, d);
    const ConstBlock v_tile = head_view(v, tile.kv_row0, tile.cols, tile.kv_head, g, d);
    tile_probs(probs, tile, q_tile, k_tile, scale, lse + tile.q_row0 * a + tile.head, a, nullptr);
    head_view(dv, tile.kv_row0, tile.cols, tile.kv_head, g, d).noalias() +=
        probs.transpose() * do_tile;
    dprobs.resize(tile.rows, tile.cols);
    dprobs.noalias() = do_tile * v_tile.transpose();
    out_dot = (do_tile.array() * o_tile.array()).rowwise().sum();
    dprobs = (probs.array() * (dprobs.colwise() - out_dot).array()) * scale;  // scale·dS
    head_view(dq, tile.q_row0, tile.rows, tile.head, a, d).noalias() += dprobs * k_tile;
    head_view(dk, tile.kv_row0, tile.cols, tile.kv_head, g, d).noalias() +=
        dprobs.transpose() * q_tile;
  });
}

}  // namespace cf::cpu
