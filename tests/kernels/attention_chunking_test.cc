// The chunking contract at the attention kernel (DESIGN.md §4.1-4.2): packing sequences into one
// chunk changes no output or gradient, and splitting a sequence into dependent chunks — each
// attending to the K/V prefix of the chunks before it, backwards run last chunk first and
// summing into one dK/dV — gives the same output rows and the same total dQ, dK, dV as
// processing the whole sequence at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>

#include "kernels/cpu/attention.h"
#include "tests/kernels/kernel_test_util.h"

namespace cf::test {
namespace {

// Rows [begin, end) of a (tokens, width) array.
std::vector<float> Rows(const std::vector<float>& x, int64_t width, int64_t begin, int64_t end) {
  return std::vector<float>(x.begin() + begin * width, x.begin() + end * width);
}

struct Result {
  std::vector<float> out, lse, dq, dk, dv;
};

// Forward then backward on zeroed gradient buffers.
Result RunAttention(const std::vector<float>& q, const std::vector<float>& k,
                    const std::vector<float>& v, const std::vector<float>& dout,
                    const std::vector<AttentionSegment>& segments, const AttentionShape& s) {
  Result r{NaNs(q.size()), NaNs(s.q_tokens * s.heads), std::vector<float>(q.size(), 0.0f),
           std::vector<float>(k.size(), 0.0f), std::vector<float>(v.size(), 0.0f)};
  cpu::attention_forward(r.out.data(), r.lse.data(), q.data(), k.data(), v.data(), segments.data(),
                         int64_t(segments.size()), s);
  cpu::attention_backward(r.dq.data(), r.dk.data(), r.dv.data(), dout.data(), q.data(), k.data(),
                          v.data(), r.out.data(), r.lse.data(), segments.data(),
                          int64_t(segments.size()), s);
  return r;
}

struct Heads {
  int64_t heads, kv_heads, head_dim;
};

class PackedVsAlone : public ::testing::TestWithParam<uint32_t> {};

// Each packed segment is computed from its own rows only, by the same code on the same tiles,
// so packing is exact: outputs and gradients are bitwise those of the sequence alone.
TEST_P(PackedVsAlone, BitwiseEqual) {
  const uint32_t seed = GetParam();
  const Heads h{3, 1, 8};
  const std::vector<int64_t> lengths = {5, 1, 17, 70};
  std::vector<AttentionSegment> segments;
  int64_t tokens = 0;
  for (int64_t len : lengths) {
    segments.push_back({tokens, len, tokens, len});
    tokens += len;
  }
  const int64_t qw = h.heads * h.head_dim, kw = h.kv_heads * h.head_dim;
  const AttentionShape packed_shape{tokens, tokens, h.heads, h.kv_heads, h.head_dim};
  const auto q = RandomNormal(tokens * qw, seed), k = RandomNormal(tokens * kw, seed + 1),
             v = RandomNormal(tokens * kw, seed + 2), dout = RandomNormal(tokens * qw, seed + 3);
  const Result packed = RunAttention(q, k, v, dout, segments, packed_shape);
  EXPECT_TRUE(NonZeroAndFinite(packed.out));
  EXPECT_TRUE(NonZeroAndFinite(packed.dk));

  for (const AttentionSegment& seg : segments) {
    SCOPED_TRACE(::testing::Message() << "segment at " << seg.q_begin << " of " << seg.q_len);
    const int64_t b = seg.q_begin, e = seg.q_begin + seg.q_len;
    const AttentionShape alone_shape{seg.q_len, seg.q_len, h.heads, h.kv_heads, h.head_dim};
    const Result alone =
        RunAttention(Rows(q, qw, b, e), Rows(k, kw, b, e), Rows(v, kw, b, e), Rows(dout, qw, b, e),
                     {{0, seg.q_len, 0, seg.q_len}}, alone_shape);
    EXPECT_TRUE(BitwiseEqual(alone.out, Rows(packed.out, qw, b, e)));
    EXPECT_TRUE(BitwiseEqual(alone.lse, Rows(packed.lse, h.heads, b, e)));
    EXPECT_TRUE(BitwiseEqual(alone.dq, Rows(packed.dq, qw, b, e)));
    EXPECT_TRUE(BitwiseEqual(alone.dk, Rows(packed.dk, kw, b, e)));
    EXPECT_TRUE(BitwiseEqual(alone.dv, Rows(packed.dv, kw, b, e)));
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, PackedVsAlone, ::testing::Values(1u, 2u, 3u));

struct SplitCase {
  int64_t length;
  std::vector<int64_t> chunk_lengths;  // sum to length
  Heads heads;
  uint32_t seed;
};

void PrintTo(const SplitCase& c, std::ostream* os) {
  *os << "length " << c.length << " in chunks";
  for (int64_t len : c.chunk_lengths) *os << " " << len;
  *os << ", heads " << c.heads.heads << ":" << c.heads.kv_heads << " d " << c.heads.head_dim;
}

class DependentSplit : public ::testing::TestWithParam<SplitCase> {};

// Chunk j holds query rows [b_j, e_j) and attends to keys [0, e_j): the K/V of chunks 1..j−1
// (the state store's prefix) followed by its own, with segment {0, e_j − b_j, 0, e_j}. Its
// dK/dV cover the prefix too and are added straight into the group's buffer, whose first e_j
// rows are exactly chunk j's key array. Backwards run N..1 as the schedule runs them.
TEST_P(DependentSplit, SameRowsAndGradientsAsTheWholeSequence) {
  const SplitCase& c = GetParam();
  const Heads& h = c.heads;
  const int64_t qw = h.heads * h.head_dim, kw = h.kv_heads * h.head_dim, n = c.length;
  const auto q = RandomNormal(n * qw, c.seed), k = RandomNormal(n * kw, c.seed + 1),
             v = RandomNormal(n * kw, c.seed + 2), dout = RandomNormal(n * qw, c.seed + 3);
  const Result whole = RunAttention(q, k, v, dout, {{0, n, 0, n}},
                                    AttentionShape{n, n, h.heads, h.kv_heads, h.head_dim});

  std::vector<int64_t> begins = {0};
  for (int64_t len : c.chunk_lengths) begins.push_back(begins.back() + len);
  ASSERT_EQ(begins.back(), n);
  const int64_t chunks = int64_t(c.chunk_lengths.size());
  auto out = NaNs(n * qw), lse = NaNs(n * h.heads);
  std::vector<float> dq(n * qw, 0.0f), dk(n * kw, 0.0f), dv(n * kw, 0.0f);
  for (int64_t j = 0; j < chunks; ++j) {  // forwards 1..N
    const int64_t b = begins[j], e = begins[j + 1];
    const auto kv_k = Rows(k, kw, 0, e), kv_v = Rows(v, kw, 0, e), chunk_q = Rows(q, qw, b, e);
    const AttentionSegment seg{0, e - b, 0, e};
    const AttentionShape shape{e - b, e, h.heads, h.kv_heads, h.head_dim};
    cpu::attention_forward(out.data() + b * qw, lse.data() + b * h.heads, chunk_q.data(),
                           kv_k.data(), kv_v.data(), &seg, 1, shape);
  }
  for (int64_t j = chunks - 1; j >= 0; --j) {  // backwards N..1
    const int64_t b = begins[j], e = begins[j + 1];
    const auto kv_k = Rows(k, kw, 0, e), kv_v = Rows(v, kw, 0, e), chunk_q = Rows(q, qw, b, e);
    const AttentionSegment seg{0, e - b, 0, e};
    const AttentionShape shape{e - b, e, h.heads, h.kv_heads, h.head_dim};
    cpu::attention_backward(dq.data() + b * qw, dk.data(), dv.data(), dout.data() + b * qw,
                            chunk_q.data(), kv_k.data(), kv_v.data(), out.data() + b * qw,
                            lse.data() + b * h.heads, &seg, 1, shape);
  }
  // Both sides are fp32 with different summation orders over keys (outputs) and over chunks
  // (dK/dV): the contract's relative 1e-5 (DESIGN.md §4.7) with an equal absolute floor.
  const Tolerance contract{1e-5, 1e-5};
  EXPECT_TRUE(AllClose(out, whole.out, contract));
  EXPECT_TRUE(AllClose(lse, whole.lse, contract));
  EXPECT_TRUE(AllClose(dq, whole.dq, contract));
  EXPECT_TRUE(AllClose(dk, whole.dk, contract));
  EXPECT_TRUE(AllClose(dv, whole.dv, contract));
  EXPECT_TRUE(NonZeroAndFinite(whole.dk));
}

INSTANTIATE_TEST_SUITE_P(Splits, DependentSplit,
                         ::testing::Values(SplitCase{37, {16, 16, 5}, {3, 1, 8}, 1},
                                           SplitCase{37, {1, 35, 1}, {3, 1, 8}, 2},
                                           SplitCase{17, {17}, {2, 2, 4}, 3},
                                           SplitCase{150, {64, 64, 22}, {6, 2, 16}, 4},
                                           SplitCase{81, {27, 27, 27}, {3, 3, 2}, 5}));

}  // namespace
}  // namespace cf::test
