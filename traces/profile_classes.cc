// Kernel and CPU-op classes by name (profile_classes.h). The rules are substring tests on the
// lower-cased name, tried in a fixed order so that a name meeting two rules has one class;
// docs/PROFILES.md gives the reasons for each pattern. A name is classified once, when first
// met (traces/profile_reader.cc interns names), so none of this is on the per-event path.
#include "traces/profile_classes.h"

#include <algorithm>
#include <iterator>
#include <string>

namespace cf {
namespace {

std::string lower(std::string_view name) {
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

template <std::size_t N>
bool contains_any(const std::string& text, const std::string_view (&patterns)[N]) {
  return std::any_of(std::begin(patterns), std::end(patterns),
                     [&](std::string_view p) { return text.find(p) != std::string::npos; });
}

// Names that only communication kernels and ops carry. "broadcast", "send" and "reduce" alone
// are not here: GEMM epilogues broadcast, reduction kernels reduce.
constexpr std::string_view kCollectiveTokens[] = {"allreduce",  "all_reduce",    "allgather",
                                                  "all_gather", "reducescatter", "reduce_scatter",
                                                  "alltoall",   "all_to_all"};

// Fused attention (FlashAttention 2/3, xFormers and PyTorch's memory-efficient fmha,
// cuDNN's SDPA, FlashInfer) and the softmax of unfused attention. A log-softmax is the loss's.
constexpr std::string_view kAttentionTokens[] = {"flash", "fmha", "attention", "attn", "sdpa"};

// Matrix products: cuBLAS (sm90_xmma_gemm_*, ampere_*gemm*, nvjet_* on CUDA 12.x), CUTLASS,
// MAGMA, Triton's matmul templates (triton_tem_*), GEMV.
constexpr std::string_view kGemmTokens[] = {"gemm",  "gemv",  "cutlass", "cublas",     "xmma",
                                            "magma", "nvjet", "matmul",  "triton_tem_"};

// Memory-bound pointwise and reduction kernels: PyTorch's elementwise and reduce templates,
// Inductor's pointwise / reduction / persistent-reduction kernels, norms, copies and fills,
// indexing, the loss, fused optimizers (multi_tensor_apply).
constexpr std::string_view kElementwiseTokens[] = {
    "elementwise", "reduce",      "triton_poi",    "triton_red", "triton_per",         "norm",
    "logsoftmax",  "log_softmax", "cross_entropy", "nll_loss",   "multi_tensor_apply", "copy",
    "fill",        "index",       "gather",        "scatter",    "embedding",          "dropout",
    "rotary",      "adam"};

bool is_attention_name(const std::string& name) {
  if (contains_any(name, kAttentionTokens)) return true;
  return name.find("softmax") != std::string::npos &&
         name.find("logsoftmax") == std::string::npos &&
         name.find("log_softmax") == std::string::npos;
}

// The op's own name: "aten::addmm" -> "addmm" (a name without "::" is kept whole).
std::string_view op_token(std::string_view lowered) {
  const std::size_t colons = lowered.rfind("::");
  return colons == std::string_view::npos ? lowered : lowered.substr(colons + 2);
}

template <std::size_t N>
bool is_one_of(std::string_view token, const std::string_view (&names)[N]) {
  return std::find(std::begin(names), std::end(names), token) != std::end(names);
}

constexpr std::string_view kGemmOps[] = {"mm",
                                         "addmm",
                                         "bmm",
                                         "baddbmm",
                                         "addbmm",
                                         "matmul",
                                         "linear",
                                         "mv",
                                         "addmv",
                                         "dot",
                                         "vdot",
                                         "einsum",
                                         "_addmm_activation",
                                         "_scaled_mm",
                                         "mkldnn_linear"};

constexpr std::string_view kCopyOps[] = {
    "copy_", "_to_copy", "to", "clone", "contiguous", "_copy_from", "_copy_from_and_resize"};

constexpr std::string_view kElementwiseOps[] = {"add",
                                                "add_",
                                                "sub",
                                                "sub_",
                                                "rsub",
                                                "mul",
                                                "mul_",
                                                "div",
                                                "div_",
                                                "neg",
                                                "exp",
                                                "log",
                                                "pow",
                                                "sqrt",
                                                "rsqrt",
                                                "tanh",
                                                "sigmoid",
                                                "relu",
                                                "relu_",
                                                "gelu",
                                                "silu",
                                                "silu_",
                                                "clamp_min",
                                                "clamp_min_",
                                                "threshold_backward",
                                                "gelu_backward",
                                                "silu_backward",
                                                "sigmoid_backward",
                                                "tanh_backward",
                                                "mean",
                                                "sum",
                                                "norm",
                                                "linalg_vector_norm",
                                                "layer_norm",
                                                "native_layer_norm",
                                                "native_layer_norm_backward",
                                                "rms_norm",
                                                "_fused_rms_norm",
                                                "dropout",
                                                "native_dropout",
                                                "native_dropout_backward",
                                                "log_softmax",
                                                "_log_softmax",
                                                "_log_softmax_backward_data",
                                                "nll_loss",
                                                "nll_loss_forward",
                                                "nll_loss_backward",
                                                "nll_loss_nd",
                                                "cross_entropy_loss",
                                                "mse_loss",
                                                "mse_loss_backward",
                                                "fill_",
                                                "zero_",
                                                "zeros",
                                                "zeros_like",
                                                "ones",
                                                "ones_like",
                                                "where",
                                                "masked_fill",
                                                "masked_fill_",
                                                "clamp",
                                                "clamp_",
                                                "embedding",
                                                "embedding_backward",
                                                "embedding_dense_backward",
                                                "index_select",
                                                "cat",
                                                "stack",
                                                "addcmul_",
                                                "addcdiv_",
                                                "lerp_",
                                                "normal_",
                                                "uniform_",
                                                "randn"};

}  // namespace

const char* kernel_class_name(KernelClass kind) {
  switch (kind) {
    case KernelClass::kGemm:
      return "gemm";
    case KernelClass::kAttention:
      return "attention";
    case KernelClass::kCollective:
      return "collective";
    case KernelClass::kMemcpy:
      return "memcpy";
    case KernelClass::kElementwise:
      return "elementwise";
    case KernelClass::kOther:
      return "other";
  }
  return "other";
}

const char* collective_kind_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return "all_reduce";
    case CollectiveKind::kAllGather:
      return "all_gather";
    case CollectiveKind::kReduceScatter:
      return "reduce_scatter";
    case CollectiveKind::kAllToAll:
      return "all_to_all";
    case CollectiveKind::kSendRecv:
      return "send_recv";
    case CollectiveKind::kBroadcast:
      return "broadcast";
    case CollectiveKind::kReduce:
      return "reduce";
    case CollectiveKind::kOther:
      return "other";
  }
  return "other";
}

CollectiveKind collective_kind_of(std::string_view name) {
  const std::string n = lower(name);
  auto has = [&](std::string_view p) { return n.find(p) != std::string::npos; };
  // reduce_scatter before reduce, all_reduce before reduce, sendrecv before send.
  if (has("allreduce") || has("all_reduce")) return CollectiveKind::kAllReduce;
  if (has("reducescatter") || has("reduce_scatter")) return CollectiveKind::kReduceScatter;
  if (has("allgather") || has("all_gather")) return CollectiveKind::kAllGather;
  if (has("alltoall") || has("all_to_all")) return CollectiveKind::kAllToAll;
  if (has("sendrecv") || has("send") || has("recv")) return CollectiveKind::kSendRecv;
  if (has("broadcast")) return CollectiveKind::kBroadcast;
  if (has("reduce")) return CollectiveKind::kReduce;
  return CollectiveKind::kOther;
}

KernelClassification classify_kernel(std::string_view name) {
  const std::string n = lower(name);
  if (n.find("nccl") != std::string::npos || contains_any(n, kCollectiveTokens)) {
    return {KernelClass::kCollective, collective_kind_of(n)};
  }
  if (is_attention_name(n)) return {KernelClass::kAttention};
  if (contains_any(n, kGemmTokens)) return {KernelClass::kGemm};
  if (contains_any(n, kElementwiseTokens)) return {KernelClass::kElementwise};
  return {KernelClass::kOther};
}

KernelClass classify_cpu_op(std::string_view name) {
  const std::string n = lower(name);
  if (n.find("nccl") != std::string::npos || n.find("gloo") != std::string::npos ||
      n.find("c10d::") != std::string::npos || n.find("record_param_comms") != std::string::npos ||
      contains_any(n, kCollectiveTokens)) {
    return KernelClass::kCollective;
  }
  if (n.find("scaled_dot_product") != std::string::npos || is_attention_name(n)) {
    return KernelClass::kAttention;
  }
  const std::string_view token = op_token(n);
  if (is_one_of(token, kGemmOps) || token.find("gemm") != std::string_view::npos) {
    return KernelClass::kGemm;
  }
  if (is_one_of(token, kCopyOps)) return KernelClass::kMemcpy;
  if (is_one_of(token, kElementwiseOps) || token.rfind("_foreach_", 0) == 0) {
    return KernelClass::kElementwise;
  }
  return KernelClass::kOther;
}

}  // namespace cf
