// The kernel and CPU-op classes of traces/profile_classes.h on a table of real-looking names:
// one or more per rule of docs/PROFILES.md, and the names where two rules meet (a CUTLASS-based
// attention kernel, a log-softmax, NCCL's reduce-scatter against a reduction kernel).
#include "traces/profile_classes.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cf {
namespace {

struct KernelCase {
  std::string name;
  KernelClass kind;
  CollectiveKind collective = CollectiveKind::kOther;
};

TEST(ProfileClasses, KernelNames) {
  const std::vector<KernelCase> cases = {
      // collective: NCCL, split by the collective it runs
      {"ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
       KernelClass::kCollective, CollectiveKind::kAllReduce},
      {"ncclKernel_AllGather_RING_LL_Sum_int8_t(ncclWorkElem)", KernelClass::kCollective,
       CollectiveKind::kAllGather},
      {"ncclDevKernel_ReduceScatter_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
       KernelClass::kCollective, CollectiveKind::kReduceScatter},
      {"ncclDevKernel_SendRecv(ncclDevComm*, unsigned long, ncclWork*)", KernelClass::kCollective,
       CollectiveKind::kSendRecv},
      {"ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclWorkElem)", KernelClass::kCollective,
       CollectiveKind::kSendRecv},
      {"ncclDevKernel_Broadcast_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
       KernelClass::kCollective, CollectiveKind::kBroadcast},
      {"ncclDevKernel_Reduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
       KernelClass::kCollective, CollectiveKind::kReduce},
      {"ncclDevKernel_Generic_4(ncclDevComm*, unsigned long, ncclWork*)", KernelClass::kCollective,
       CollectiveKind::kOther},
      {"void c10d::one_shot_all_reduce_kernel<c10::BFloat16, 8>(...)", KernelClass::kCollective,
       CollectiveKind::kAllReduce},
      // attention, checked before gemm: fmha kernels are CUTLASS-based
      {"void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
       "cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, false, "
       "true, false, false, true, true, false, false>(Flash_fwd_params)",
       KernelClass::kAttention},
      {"void flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<...>>(...)",
       KernelClass::kAttention},
      {"fmha_cutlassF_bf16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<...>)",
       KernelClass::kAttention},
      {"cudnn_generated_fort_native_sdpa_sm90_knob_7_64x128x128_4x1x1_kernel0_0",
       KernelClass::kAttention},
      {"void (anonymous namespace)::softmax_warp_forward<c10::BFloat16, c10::BFloat16, float, 10, "
       "false, false>(...)",
       KernelClass::kAttention},
      // gemm
      {"sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_"
       "segment_k_off_kernel__5x_cublas",
       KernelClass::kGemm},
      {"ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_64x3_nn", KernelClass::kGemm},
      {"void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_16x16_128x2_tn_"
       "align8>(Params)",
       KernelClass::kGemm},
      {"nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTT", KernelClass::kGemm},
      {"void gemv2T_kernel_val<int, int, float, float, float, float, 128, 16, 4, 4, false, false>"
       "(...)",
       KernelClass::kGemm},
      {"magma_sgemmEx_kernel", KernelClass::kGemm},
      {"triton_tem_fused_mm_0", KernelClass::kGemm},
      {"void splitKreduce_kernel<32, 16, int, float, __nv_bfloat16, float, __nv_bfloat16, true, "
       "false, false>(cublasSplitKParams<float>, ...)",
       KernelClass::kGemm},
      // elementwise: pointwise, reductions, norms, copies, the loss, the optimizer
      {"void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, "
       "at::detail::Array<char*, 1> >(int, at::native::FillFunctor<float>, "
       "at::detail::Array<char*, 1>)",
       KernelClass::kElementwise},
      {"void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(...)>",
       KernelClass::kElementwise},
      {"void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, "
       "at::native::MeanOps<float, float, float, float>, unsigned int, float, 4> >(...)",
       KernelClass::kElementwise},
      {"void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16, "
       "float>(...)",
       KernelClass::kElementwise},
      {"void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, "
       "at::native::(anonymous namespace)::LogSoftMaxForwardEpilogue>(...)",
       KernelClass::kElementwise},
      {"void at::native::(anonymous namespace)::CatArrayBatchedCopy<...>(...)",
       KernelClass::kElementwise},
      {"void at::native::(anonymous namespace)::multi_tensor_apply_kernel<...>(...)",
       KernelClass::kElementwise},
      {"void at::native::index_elementwise_kernel<128, 4, ...>(long, ...)",
       KernelClass::kElementwise},
      {"triton_poi_fused_add_mul_0", KernelClass::kElementwise},
      {"triton_red_fused__to_copy_mean_pow_1", KernelClass::kElementwise},
      {"triton_per_fused_native_layer_norm_2", KernelClass::kElementwise},
      // other
      {"void at_cuda_detail::cub::DeviceRadixSortOnesweepKernel(int*, int*)", KernelClass::kOther},
      {"Kernel", KernelClass::kOther},
  };
  for (const KernelCase& c : cases) {
    SCOPED_TRACE(c.name);
    const KernelClassification got = classify_kernel(c.name);
    EXPECT_EQ(kernel_class_name(got.kind), std::string(kernel_class_name(c.kind)));
    if (c.kind == KernelClass::kCollective) {
      EXPECT_EQ(collective_kind_name(got.collective),
                std::string(collective_kind_name(c.collective)));
    }
    EXPECT_NE(got.kind, KernelClass::kMemcpy);  // memcpy is a category, never a name
  }
}

TEST(ProfileClasses, CpuOpNames) {
  const std::vector<std::pair<std::string, KernelClass>> cases = {
      {"aten::mm", KernelClass::kGemm},
      {"aten::addmm", KernelClass::kGemm},
      {"aten::bmm", KernelClass::kGemm},
      {"aten::baddbmm", KernelClass::kGemm},
      {"aten::matmul", KernelClass::kGemm},
      {"aten::linear", KernelClass::kGemm},
      {"aten::_scaled_dot_product_flash_attention", KernelClass::kAttention},
      {"aten::scaled_dot_product_attention", KernelClass::kAttention},
      {"aten::_efficient_attention_backward", KernelClass::kAttention},
      {"aten::softmax", KernelClass::kAttention},
      {"aten::_softmax_backward_data", KernelClass::kAttention},
      {"aten::log_softmax", KernelClass::kElementwise},
      {"aten::_log_softmax", KernelClass::kElementwise},
      {"aten::nll_loss_forward", KernelClass::kElementwise},
      {"aten::add_", KernelClass::kElementwise},
      {"aten::mul", KernelClass::kElementwise},
      {"aten::silu", KernelClass::kElementwise},
      {"aten::native_layer_norm", KernelClass::kElementwise},
      {"aten::_foreach_add_", KernelClass::kElementwise},
      {"aten::copy_", KernelClass::kMemcpy},
      {"aten::_to_copy", KernelClass::kMemcpy},
      {"aten::to", KernelClass::kMemcpy},
      {"record_param_comms", KernelClass::kCollective},
      {"c10d::allreduce_", KernelClass::kCollective},
      {"nccl:all_reduce", KernelClass::kCollective},
      {"gloo:all_gather", KernelClass::kCollective},
      {"aten::t", KernelClass::kOther},
      {"aten::view", KernelClass::kOther},
      {"aten::empty", KernelClass::kOther},
      {"autograd::engine::evaluate_function: AddmmBackward0", KernelClass::kOther},
      {"Optimizer.step#SGD.step", KernelClass::kOther},
  };
  for (const auto& [name, kind] : cases) {
    SCOPED_TRACE(name);
    EXPECT_EQ(kernel_class_name(classify_cpu_op(name)), std::string(kernel_class_name(kind)));
  }
}

TEST(ProfileClasses, CollectiveNamesOfRecordParamComms) {
  EXPECT_EQ(collective_kind_of("allreduce"), CollectiveKind::kAllReduce);
  EXPECT_EQ(collective_kind_of("_allgather_base"), CollectiveKind::kAllGather);
  EXPECT_EQ(collective_kind_of("allgather_into_tensor_coalesced"), CollectiveKind::kAllGather);
  EXPECT_EQ(collective_kind_of("reduce_scatter_tensor"), CollectiveKind::kReduceScatter);
  EXPECT_EQ(collective_kind_of("_reduce_scatter_base"), CollectiveKind::kReduceScatter);
  EXPECT_EQ(collective_kind_of("all_to_all"), CollectiveKind::kAllToAll);
  EXPECT_EQ(collective_kind_of("send"), CollectiveKind::kSendRecv);
  EXPECT_EQ(collective_kind_of("recv"), CollectiveKind::kSendRecv);
  EXPECT_EQ(collective_kind_of("broadcast"), CollectiveKind::kBroadcast);
  EXPECT_EQ(collective_kind_of("reduce"), CollectiveKind::kReduce);
  EXPECT_EQ(collective_kind_of("barrier"), CollectiveKind::kOther);
}

}  // namespace
}  // namespace cf
