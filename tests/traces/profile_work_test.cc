// What the profile reader keeps for `calibrate --from-profile` (traces/profile.h ProfileWork):
// each op's work from its recorded input shapes (GEMM and attention FLOPs, elementwise bytes),
// timed by its own CPU time or by the kernels of its External id; shapes that are malformed
// or past the bounds leave the op without work, never fail the file.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/subprocess.h"
#include "traces/profile.h"

namespace cf {
namespace {

using test::TempDir;

// A cpu_op with its args ("Input Dims", ...) as Kineto writes them with record_shapes=True.
std::string cpu_op(const std::string& name, const std::string& ts, const std::string& dur,
                   const std::string& args) {
  return R"({"ph": "X", "cat": "cpu_op", "name": ")" + name + R"(", "pid": 1, "tid": 1, "ts": )" +
         ts + R"(, "dur": )" + dur + R"(, "args": {)" + args + "}}";
}

std::string gemm_kernel(const std::string& ts, const std::string& dur, int external_id) {
  return R"({"ph": "X", "cat": "kernel", "name": "sm90_xmma_gemm", "pid": 0, "tid": 7, "ts": )" +
         ts + R"(, "dur": )" + dur + R"(, "args": {"External id": )" + std::to_string(external_id) +
         "}}";
}

RankProfile read(const TempDir& dir, const std::string& events) {
  const std::string path = dir.write("p.json", R"({"traceEvents": [)" + events + "]}");
  StatusOr<RankProfile> r = read_profile(path, 0);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : RankProfile{};
}

const ProfileWorkSample* find(const ProfileWork& w, const std::string& name) {
  for (const ProfileWorkSample& s : w.samples) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(ProfileWork, GemmFlopsFromInputDimsOnTheCpu) {
  TempDir dir;
  // mm (37, 53)·(53, 11): 2·37·53·11 = 43,142 FLOPs, twice (10 and 14 µs); addmm's bias is its
  // first input: (5, 7)·(7, 3) = 210; bmm (4, 9, 6)·(4, 6, 2): 2·4·9·6·2 = 864; linear is a
  // wrapper (its mm carries the work) and has none.
  const RankProfile r = read(
      dir, cpu_op("aten::mm", "0", "10", R"("Input Dims": [[37, 53], [53, 11]])") + "," +
               cpu_op("aten::mm", "20", "14", R"("Input Dims": [[37, 53], [53, 11]])") + "," +
               cpu_op("aten::addmm", "40", "3", R"("Input Dims": [[3], [5, 7], [7, 3], [], []])") +
               "," + cpu_op("aten::bmm", "50", "2", R"("Input Dims": [[4, 9, 6], [4, 6, 2]])") +
               "," + cpu_op("aten::linear", "60", "9", R"("Input Dims": [[5, 7], [3, 7], [3]])"));
  EXPECT_FALSE(r.work.device_times);
  EXPECT_EQ(r.work.ops_with_dims, 5);
  ASSERT_EQ(r.work.samples.size(), 3u);
  const ProfileWorkSample* mm = find(r.work, "aten::mm");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->kind, KernelClass::kGemm);
  EXPECT_DOUBLE_EQ(mm->flops, 43'142);
  EXPECT_EQ(mm->count, 2);
  EXPECT_EQ(mm->total_ns, 24'000);
  EXPECT_DOUBLE_EQ(find(r.work, "aten::addmm")->flops, 210);
  EXPECT_DOUBLE_EQ(find(r.work, "aten::bmm")->flops, 864);
  EXPECT_EQ(find(r.work, "aten::linear"), nullptr);
}

TEST(ProfileWork, ElementwiseBytesFromShapesAndTypes) {
  TempDir dir;
  // add of (3, 5) and (5,) floats: reads 15 + 5, writes 15: 35 · 4 B = 140 B. mul of two
  // (2, 8) bf16 tensors and a scalar: 16 + 16 + 16 = 48 · 2 B = 96 B.
  const RankProfile r = read(
      dir,
      cpu_op("aten::add", "0", "1",
             R"("Input Dims": [[3, 5], [5], []], "Input type": ["float", "float", "Scalar"])") +
          "," +
          cpu_op(
              "aten::mul", "5", "2",
              R"("Input type": ["c10::BFloat16", "c10::BFloat16", "Scalar"], "Input Dims": [[2, 8], [2, 8], []])"));
  const ProfileWorkSample* add = find(r.work, "aten::add");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->kind, KernelClass::kElementwise);
  EXPECT_DOUBLE_EQ(add->bytes, 140);
  const ProfileWorkSample* mul = find(r.work, "aten::mul");
  ASSERT_NE(mul, nullptr);
  EXPECT_DOUBLE_EQ(mul->bytes, 96);
  EXPECT_EQ(mul->total_ns, 2000);
}

TEST(ProfileWork, AttentionFlopsAreCausalPairs) {
  TempDir dir;
  // SDPA flash, q and k (2, 3, 17, 8) (batch, heads, seq, head_dim): causal 17·18/2 = 153
  // pairs, 4·8·3·2·153 = 29,376 FLOPs. flash_attn layout (batch, seq, heads, head_dim) with q of
  // 5 after a 7-key prefix (k 12): 5·7 + 5·6/2 = 50 pairs, 4·16·2·1·50 = 6,400. The backward's
  // first input is dO.
  const RankProfile r = read(
      dir,
      cpu_op("aten::_scaled_dot_product_flash_attention", "0", "4",
             R"("Input Dims": [[2, 3, 17, 8], [2, 3, 17, 8], [2, 3, 17, 8], [], []])") +
          "," +
          cpu_op("flash_attn::_flash_attn_forward", "10", "3",
                 R"("Input Dims": [[1, 5, 2, 16], [1, 12, 2, 16], [1, 12, 2, 16]])") +
          "," +
          cpu_op("aten::_scaled_dot_product_flash_attention_backward", "20", "9",
                 R"("Input Dims": [[2, 3, 17, 8], [2, 3, 17, 8], [2, 3, 17, 8], [2, 3, 17, 8]])"));
  const ProfileWorkSample* fwd = find(r.work, "aten::_scaled_dot_product_flash_attention");
  ASSERT_NE(fwd, nullptr);
  EXPECT_EQ(fwd->kind, KernelClass::kAttention);
  EXPECT_FALSE(fwd->backward);
  EXPECT_DOUBLE_EQ(fwd->flops, 29'376);
  EXPECT_DOUBLE_EQ(find(r.work, "flash_attn::_flash_attn_forward")->flops, 6'400);
  const ProfileWorkSample* bwd = find(r.work, "aten::_scaled_dot_product_flash_attention_backward");
  ASSERT_NE(bwd, nullptr);
  EXPECT_TRUE(bwd->backward);
  EXPECT_DOUBLE_EQ(bwd->flops, 29'376);
}

TEST(ProfileWork, DeviceTimesComeFromTheKernelsOfTheExternalId) {
  TempDir dir;
  // The mm launched two kernels (5 + 6 µs) under External id 41; the addmm's (id 42) has none:
  // counted, not timed by its CPU time, since the profile has device activity.
  const RankProfile r = read(
      dir, cpu_op("aten::mm", "0", "30", R"("External id": 41, "Input Dims": [[8, 8], [8, 8]])") +
               "," + gemm_kernel("40", "5", 41) + "," + gemm_kernel("50", "6", 41) + "," +
               cpu_op("aten::addmm", "60", "3",
                      R"("Input Dims": [[8], [8, 8], [8, 8]], "External id": 42)"));
  EXPECT_TRUE(r.work.device_times);
  ASSERT_EQ(r.work.samples.size(), 1u);
  EXPECT_EQ(r.work.samples[0].name, "aten::mm");
  EXPECT_EQ(r.work.samples[0].total_ns, 11'000);
  EXPECT_EQ(r.work.ops_without_kernels, 1);
}

TEST(ProfileWork, CollectivesFromTheirKernelsOrTheirOpsExternalId) {
  TempDir dir;
  // The op's args on its kernel (newer Kineto): all-reduce of 2^20 bf16 over 8 GPUs, 50 µs.
  const std::string own =
      R"({"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_bf16_RING_LL", "pid": 0, "tid": 9, "ts": 0, "dur": 50, "args": {"Collective name": "allreduce", "In msg nelems": 1048576, "Out msg nelems": 1048576, "dtype": "BFloat16", "Group size": 8}})";
  RankProfile r = read(dir, own);
  ASSERT_EQ(r.work.samples.size(), 1u);
  EXPECT_EQ(r.work.samples[0].kind, KernelClass::kCollective);
  EXPECT_EQ(r.work.samples[0].name, "all_reduce");
  EXPECT_DOUBLE_EQ(r.work.samples[0].bytes, 2 * 1048576.0);
  EXPECT_EQ(r.work.samples[0].group_size, 8);
  EXPECT_EQ(r.work.samples[0].total_ns, 50'000);

  // Older traces: record_param_comms carries the sizes, its kernel the External id. An
  // all-gather's array is its output: 4 × 3000 floats.
  const std::string joined =
      cpu_op(
          "record_param_comms", "0", "5",
          R"("External id": 9, "Collective name": "_allgather_base", "In msg nelems": 3000, "Out msg nelems": 12000, "dtype": "Float", "Group size": 4)") +
      "," + gemm_kernel("10", "30", 9);
  r = read(dir, joined);
  ASSERT_EQ(r.work.samples.size(), 1u);
  EXPECT_EQ(r.work.samples[0].name, "all_gather");
  EXPECT_DOUBLE_EQ(r.work.samples[0].bytes, 48'000);
  EXPECT_EQ(r.work.samples[0].group_size, 4);
  EXPECT_EQ(r.work.samples[0].total_ns, 30'000);
}

TEST(ProfileWork, LaunchGapsAreThoseOfKernelsBackToBackOnAStream) {
  TempDir dir;
  // Stream 7: [0, 10), [11, 20), [22, 30), [100, 110): gaps 1, 2 and 70 µs (not queued). The
  // other stream's kernel overlaps, and gaps are per stream. Sorted gaps {1, 2} µs: the median
  // is the upper middle one.
  auto k = [](const std::string& ts, const std::string& dur, int stream) {
    return R"({"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": )" +
           std::to_string(stream) + R"(, "ts": )" + ts + R"(, "dur": )" + dur + "}";
  };
  const RankProfile r = read(dir, k("22", "8", 7) + "," + k("0", "10", 7) + "," + k("11", "9", 7) +
                                      "," + k("100", "10", 7) + "," + k("5", "20", 8));
  EXPECT_EQ(r.work.launch_gaps, 2);
  EXPECT_EQ(r.work.launch_gap_median_ns, 2000);
}

TEST(ProfileWork, MalformedOrHugeShapesLeaveTheOpWithoutWork) {
  TempDir dir;
  std::string many = "[1]";
  for (int i = 0; i < 80; ++i) many += ",[1]";  // 81 inputs: past the 64 the reader keeps
  const RankProfile r = read(
      dir,
      cpu_op("aten::mm", "0", "1", R"("Input Dims": [[2, "x"], [2, 2]])") + "," +
          cpu_op("aten::mm", "2", "1", R"("Input Dims": [[2, -3], [2, 2]])") + "," +
          cpu_op("aten::mm", "4", "1", R"("Input Dims": 7)") + "," +
          cpu_op("aten::mm", "6", "1", R"("Input Dims": [[[2, 2]], [2, 2]])") + "," +
          cpu_op("aten::mm", "8", "1", R"("Input Dims": [[2, 3], [4, 2]])") + "," +
          cpu_op("aten::mm", "10", "1", R"("Input Dims": [{"a": 1}, [2, 2]])") + "," +
          cpu_op("aten::add", "12", "1", R"("Input Dims": [)" + many + "]") + "," +
          cpu_op("aten::mm", "14", "1", R"("Input Dims": [[99999999999999999999, 2], [2, 2]])"));
  EXPECT_EQ(r.work.ops_with_dims, 8);
  EXPECT_TRUE(r.work.samples.empty());
  EXPECT_EQ(r.cpu_op_count, 8);  // still read as ops
}

TEST(ProfileWork, ExternalIdOfTheWrongTypeIsAnError) {
  TempDir dir;
  const std::string path = dir.write(
      "p.json", R"({"traceEvents": [)" +
                    cpu_op("aten::mm", "0", "1", R"("External id": "x", "Input Dims": [])") + "]}");
  StatusOr<RankProfile> r = read_profile(path, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("traceEvents[0].args.External id: expected an integer"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace cf
