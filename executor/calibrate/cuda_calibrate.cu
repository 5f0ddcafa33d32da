// The GPU calibration's measuring (cuda_calibrate.h): bf16 cuBLAS GEMMs, the executor's
// attention and elementwise kernels, kernel launches and NCCL collectives, each the fastest of
// its repetitions in GPU time (CUDA events). Built only with the CUDA backend. Not the fits nor
// the file (cuda_calibrate.cc).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nccl.h>
#ifdef CHUNKFLOW_HAVE_MPI
#include <mpi.h>
#endif

#include <algorithm>
#include <chrono>
#include <climits>
#include <functional>
#include <limits>
#include <string>
#include <vector>

// nvcc's front end reports core/status.h's `status_ = Status::Runtime(…)` as a discarded
// [[nodiscard]] value (diagnostic 2810; the value discarded is the Status& that operator=
// returns, which the host compilers do not flag). Silenced for the project's headers only.
#pragma nv_diag_suppress 2810
#include "executor/calibrate/cuda_calibrate.h"
#pragma nv_diag_default 2810
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernels.h"

#define CALIBRATE_NCCL_CHECK(call)                               \
  do {                                                           \
    const ncclResult_t cf_nccl_result_ = (call);                 \
    CF_CHECK(cf_nccl_result_ == ncclSuccess)                     \
        << #call << ": " << ncclGetErrorString(cf_nccl_result_); \
  } while (0)

namespace cf {
namespace {

constexpr int kThreads = 256;

// ---- Device helpers -------------------------------------------------------------------------

// Values in [-1, 1) from the element index and a seed (a 32-bit integer hash): inputs that
// are not all zero, so the arithmetic units switch as in training.
__device__ inline float hashed_value(int64_t i, uint32_t seed) {
  uint32_t x = static_cast<uint32_t>(i) ^ (static_cast<uint32_t>(i >> 32) * 0x9E3779B9u) ^ seed;
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return static_cast<float>(x) * (2.0f / 4294967296.0f) - 1.0f;
}

__global__ void fill_f32_kernel(float* out, int64_t n, uint32_t seed) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = hashed_value(i, seed);
}

__global__ void fill_bf16_kernel(__nv_bfloat16* out, int64_t n, uint32_t seed) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16(hashed_value(i, seed));
}

// Holds the stream for `ns` nanoseconds of the GPU's global timer, so that the launches queued
// behind it run back to back from the queue, not as fast as the host issues them.
__global__ void spin_kernel(int64_t ns) {
  uint64_t start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < static_cast<uint64_t>(ns));
}

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(int64_t n) : n_(n) {
    CUDA_CHECK(cudaMalloc(&data_, sizeof(T) * static_cast<size_t>(std::max<int64_t>(n, 1))));
  }
  ~DeviceArray() { cudaFree(data_); }  // at scope exit; an error then is moot
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return data_; }
  int64_t size() const { return n_; }

 private:
  T* data_ = nullptr;
  int64_t n_ = 0;
};

void fill(const DeviceArray<float>& a, uint32_t seed) {
  fill_f32_kernel<<<cuda::blocks_for(a.size(), kThreads), kThreads, 0, cuda::current_stream()>>>(
      a.get(), a.size(), seed);
  CUDA_CHECK_LAUNCH();
}

void fill(const DeviceArray<__nv_bfloat16>& a, uint32_t seed) {
  fill_bf16_kernel<<<cuda::blocks_for(a.size(), kThreads), kThreads, 0, cuda::current_stream()>>>(
      a.get(), a.size(), seed);
  CUDA_CHECK_LAUNCH();
}

class Event {
 public:
  Event() { CUDA_CHECK(cudaEventCreate(&event_)); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(cudaStream_t stream) { CUDA_CHECK(cudaEventRecord(event_, stream)); }
  // Seconds from `start` to this event, both complete.
  double seconds_since(const Event& start) const {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
    return ms * 1e-3;
  }

 private:
  cudaEvent_t event_ = nullptr;
};

// The fastest of `repetitions` runs of `work` on `stream` after `warmup` untimed ones, seconds
// of GPU time between two events; `before` runs ahead of each, outside the timed span. The
// runs are queued back to back and synchronised once.
double fastest_gpu_seconds(cudaStream_t stream, int warmup, int repetitions,
                           const std::function<void()>& work,
                           const std::function<void()>& before = {}) {
  CF_CHECK_GT(repetitions, 0);
  for (int i = 0; i < warmup; ++i) {
    if (before) before();
    work();
  }
  std::vector<Event> start(repetitions), stop(repetitions);
  for (int i = 0; i < repetitions; ++i) {
    if (before) before();
    start[i].record(stream);
    work();
    stop[i].record(stream);
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repetitions; ++i) best = std::min(best, stop[i].seconds_since(start[i]));
  return best;
}

int64_t free_device_bytes() {
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return static_cast<int64_t>(free);
}

std::string version_text(int code, int major_div, int minor_div, int minor_mod) {
  return std::to_string(code / major_div) + "." + std::to_string(code / minor_div % minor_mod);
}

// ---- The measurements -----------------------------------------------------------------------

// y (tokens, out) = x (tokens, in) · Wᵀ in bf16 with fp32 accumulation, laid out as
// cf::cuda::linear_forward (column-major: yᵀ (out, tokens) = W (out, in) · xᵀ (in, tokens)).
double time_gemm(cublasHandle_t handle, const GemmShape& g, int warmup, int repetitions) {
  for (const int64_t dim : {g.tokens, g.in_features, g.out_features}) {
    CF_CHECK_LE(dim, int64_t(INT_MAX));
  }
  DeviceArray<__nv_bfloat16> x(g.tokens * g.in_features);        // (tokens, in)
  DeviceArray<__nv_bfloat16> w(g.out_features * g.in_features);  // (out, in)
  DeviceArray<__nv_bfloat16> y(g.tokens * g.out_features);       // (tokens, out)
  fill(x, 1);
  fill(w, 2);
  const float alpha = 1.0f, beta = 0.0f;
  const int m = int(g.out_features), n = int(g.tokens), k = int(g.in_features);
  return fastest_gpu_seconds(cuda::current_stream(), warmup, repetitions, [&] {
    CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, w.get(),
                              CUDA_R_16BF, k, x.get(), CUDA_R_16BF, k, &beta, y.get(), CUDA_R_16BF,
                              m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  });
}

// One segment of q queries after `prefix` keys (keys q + prefix), the executor's attention in
// bf16 tensor-core mode. The backward's dQ, dK, dV are zeroed before each run, untimed.
AttentionSample time_attention(const GpuMeasurePlan& plan, const AttentionPoint& point) {
  const AttentionShape shape{point.q, point.q + point.prefix, plan.heads, plan.kv_heads,
                             plan.head_dim};
  const int64_t q_width = plan.heads * plan.head_dim, kv_width = plan.kv_heads * plan.head_dim;
  DeviceArray<float> q(shape.q_tokens * q_width), k(shape.kv_tokens * kv_width),
      v(shape.kv_tokens * kv_width);  // (tq, a·d), (tk, g·d)
  DeviceArray<float> out(shape.q_tokens * q_width), dout(shape.q_tokens * q_width);
  DeviceArray<float> lse(shape.q_tokens * plan.heads);  // (tq, a)
  DeviceArray<float> dq(shape.q_tokens * q_width), dk(shape.kv_tokens * kv_width),
      dv(shape.kv_tokens * kv_width);
  fill(q, 11);
  fill(k, 12);
  fill(v, 13);
  fill(dout, 14);
  const AttentionSegment segment{0, point.q, 0, point.q + point.prefix};
  const cuda::Math math = cuda::current_math();
  cuda::set_math(cuda::Math::kBf16);
  const cudaStream_t stream = cuda::current_stream();
  AttentionSample s;
  s.point = point;
  s.forward_s = fastest_gpu_seconds(stream, plan.warmup, plan.repetitions, [&] {
    cuda::attention_forward(out.get(), lse.get(), q.get(), k.get(), v.get(), &segment, 1, shape);
  });
  auto zero_gradients = [&] {
    CUDA_CHECK(cudaMemsetAsync(dq.get(), 0, sizeof(float) * dq.size(), stream));
    CUDA_CHECK(cudaMemsetAsync(dk.get(), 0, sizeof(float) * dk.size(), stream));
    CUDA_CHECK(cudaMemsetAsync(dv.get(), 0, sizeof(float) * dv.size(), stream));
  };
  s.backward_s = fastest_gpu_seconds(
      stream, plan.warmup, plan.repetitions,
      [&] {
        cuda::attention_backward(dq.get(), dk.get(), dv.get(), dout.get(), q.get(), k.get(),
                                 v.get(), out.get(), lse.get(), &segment, 1, shape);
      },
      zero_gradients);
  cuda::set_math(math);
  return s;
}

// The executor's elementwise kernels over n floats: residual_add reads y and x and writes y,
// swiglu_forward reads gate and up and writes out: 12 bytes per element each.
std::vector<BandwidthSample> time_memory(const GpuMeasurePlan& plan, int64_t n) {
  DeviceArray<float> a(n), b(n), c(n);
  fill(a, 21);
  fill(b, 22);
  fill(c, 23);
  const cudaStream_t stream = cuda::current_stream();
  const int64_t bytes = 12 * n;
  std::vector<BandwidthSample> out;
  out.push_back({"residual_add", n, bytes,
                 fastest_gpu_seconds(stream, plan.warmup, plan.repetitions,
                                     [&] { cuda::residual_add(a.get(), b.get(), n); })});
  out.push_back({"swiglu_forward", n, bytes,
                 fastest_gpu_seconds(stream, plan.warmup, plan.repetitions,
                                     [&] { cuda::swiglu_forward(c.get(), a.get(), b.get(), n); })});
  return out;
}

// `launches` one-element residual_adds queued behind a spinning kernel: the events around them
// give the GPU time per kernel fed from a full queue, the host clock around the loop the time to
// issue one. The spin must outlast the issuing (else the GPU waited on the host): it doubles
// until it does, up to a second, and then the launches halve.
LaunchSample time_launches(const GpuMeasurePlan& plan) {
  DeviceArray<float> y(1), x(1);
  const cudaStream_t stream = cuda::current_stream();
  CUDA_CHECK(cudaMemsetAsync(y.get(), 0, sizeof(float), stream));
  CUDA_CHECK(cudaMemsetAsync(x.get(), 0, sizeof(float), stream));
  LaunchSample best;
  best.launches = plan.launches;
  best.gpu_s_per_kernel = best.host_s_per_launch = std::numeric_limits<double>::infinity();
  int64_t spin_ns = 20'000'000;
  for (int run = 0, retries = 0; run < plan.warmup + plan.repetitions;) {
    Event start, stop;
    spin_kernel<<<1, 1, 0, stream>>>(spin_ns);
    CUDA_CHECK_LAUNCH();
    start.record(stream);
    const auto host_start = std::chrono::steady_clock::now();
    for (int i = 0; i < best.launches; ++i) cuda::residual_add(y.get(), x.get(), 1);
    const double host_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - host_start).count();
    stop.record(stream);
    CUDA_CHECK(cudaStreamSynchronize(stream));
    if (host_s > 0.8 * spin_ns * 1e-9 && retries++ < 32) {
      if (spin_ns < 1'000'000'000) {
        spin_ns *= 2;
      } else {
        best.launches = std::max(16, best.launches / 2);
      }
      continue;
    }
    if (run++ < plan.warmup) continue;
    best.gpu_s_per_kernel =
        std::min(best.gpu_s_per_kernel, stop.seconds_since(start) / best.launches);
    best.host_s_per_launch = std::min(best.host_s_per_launch, host_s / best.launches);
  }
  return best;
}

// ---- Ranks (mpirun, one per GPU) ------------------------------------------------------------

struct Ranks {
  int rank = 0, size = 1;
  int local_rank = 0, local_size = 1;
  int nodes = 1;
};

Ranks mpi_ranks() {
  Ranks r;
#ifdef CHUNKFLOW_HAVE_MPI
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (!initialised || finalised) return r;
  MPI_Comm_rank(MPI_COMM_WORLD, &r.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &r.size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, r.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &r.local_rank);
  MPI_Comm_size(node, &r.local_size);
  MPI_Comm_free(&node);
  int leader = r.local_rank == 0 ? 1 : 0;
  MPI_Allreduce(&leader, &r.nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
#endif
  return r;
}

#ifdef CHUNKFLOW_HAVE_MPI
// Every collective of the plan's sizes over all ranks, bf16. A size is rounded up to whole
// elements per rank; small ones run in batches (up to 20 back to back between the events,
// 64 MiB a batch at most) so that the ranks' start skew is spread over the batch; a barrier
// before each timed batch. A sample is the slowest rank's fastest batch, per operation.
std::vector<CollectiveSample> time_collectives(const GpuMeasurePlan& plan, const Ranks& ranks,
                                               const std::function<void(int)>& step) {
  ncclUniqueId id;
  if (ranks.rank == 0) CALIBRATE_NCCL_CHECK(ncclGetUniqueId(&id));
  MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
  ncclComm_t comm;
  CALIBRATE_NCCL_CHECK(ncclCommInitRank(&comm, ranks.size, id, ranks.rank));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const int64_t unit = 2 * int64_t(ranks.size);  // bf16 elements, whole per rank
  std::vector<int64_t> sizes;
  for (const int64_t s : plan.collective_bytes) sizes.push_back((s + unit - 1) / unit * unit);
  const int64_t largest = *std::max_element(sizes.begin(), sizes.end());
  DeviceArray<__nv_bfloat16> send(largest / 2), recv(largest / 2);
  fill(send, 31);
  CUDA_CHECK(cudaDeviceSynchronize());
  const int next = (ranks.rank + 1) % ranks.size;
  const int previous = (ranks.rank + ranks.size - 1) % ranks.size;
  std::vector<CollectiveSample> out;
  int done = 0;
  for (const char* op : {"all_reduce", "all_gather", "reduce_scatter", "send_recv"}) {
    const std::string name = op;
    for (const int64_t bytes : sizes) {
      step(done++);
      const size_t count = size_t(bytes / 2), per_rank = count / size_t(ranks.size);
      auto run = [&] {
        if (name == "all_reduce") {
          CALIBRATE_NCCL_CHECK(
              ncclAllReduce(send.get(), recv.get(), count, ncclBfloat16, ncclSum, comm, stream));
        } else if (name == "all_gather") {
          CALIBRATE_NCCL_CHECK(
              ncclAllGather(send.get(), recv.get(), per_rank, ncclBfloat16, comm, stream));
        } else if (name == "reduce_scatter") {
          CALIBRATE_NCCL_CHECK(ncclReduceScatter(send.get(), recv.get(), per_rank, ncclBfloat16,
                                                 ncclSum, comm, stream));
        } else {
          CALIBRATE_NCCL_CHECK(ncclGroupStart());
          CALIBRATE_NCCL_CHECK(ncclSend(send.get(), count, ncclBfloat16, next, comm, stream));
          CALIBRATE_NCCL_CHECK(ncclRecv(recv.get(), count, ncclBfloat16, previous, comm, stream));
          CALIBRATE_NCCL_CHECK(ncclGroupEnd());
        }
      };
      const int batch = int(std::clamp<int64_t>((int64_t{64} << 20) / bytes, 1, 20));
      for (int i = 0; i < plan.warmup; ++i) run();
      CUDA_CHECK(cudaStreamSynchronize(stream));
      double best = std::numeric_limits<double>::infinity();
      for (int r = 0; r < plan.repetitions; ++r) {
        MPI_Barrier(MPI_COMM_WORLD);
        Event start, stop;
        start.record(stream);
        for (int i = 0; i < batch; ++i) run();
        stop.record(stream);
        CUDA_CHECK(cudaStreamSynchronize(stream));
        best = std::min(best, stop.seconds_since(start) / batch);
      }
      MPI_Allreduce(MPI_IN_PLACE, &best, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      out.push_back({name, bytes, best});
    }
  }
  CALIBRATE_NCCL_CHECK(ncclCommDestroy(comm));
  CUDA_CHECK(cudaStreamDestroy(stream));
  return out;
}
#endif

}  // namespace

StatusOr<GpuDevice> open_gpu() {
  const std::string reason = cuda::no_device_reason();
  if (!reason.empty()) return Status::Runtime(reason);
  const Ranks ranks = mpi_ranks();
  GpuDevice d;
  CUDA_CHECK(cudaGetDeviceCount(&d.visible));
  if (d.visible > 1 && ranks.local_size > d.visible) {
    return Status::Runtime(std::to_string(ranks.local_size) + " ranks on this node but " +
                           std::to_string(d.visible) + " GPUs: start one rank per GPU");
  }
  // One visible device: a launcher that sets CUDA_VISIBLE_DEVICES per rank has picked it.
  d.index = d.visible == 1 ? 0 : ranks.local_rank;
  CUDA_CHECK(cudaSetDevice(d.index));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, d.index));
  d.name = prop.name;
  d.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  d.multiprocessors = prop.multiProcessorCount;
  int driver = 0, runtime = 0, nccl = 0;
  CUDA_CHECK(cudaDriverGetVersion(&driver));
  CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  d.driver_version = version_text(driver, 1000, 10, 100);  // 13000 -> "13.0"
  d.runtime_version = version_text(runtime, 1000, 10, 100);
  int cublas[3] = {0, 0, 0};
  CUBLAS_CHECK(cublasGetProperty(MAJOR_VERSION, &cublas[0]));
  CUBLAS_CHECK(cublasGetProperty(MINOR_VERSION, &cublas[1]));
  CUBLAS_CHECK(cublasGetProperty(PATCH_LEVEL, &cublas[2]));
  d.cublas_version =
      std::to_string(cublas[0]) + "." + std::to_string(cublas[1]) + "." + std::to_string(cublas[2]);
  CALIBRATE_NCCL_CHECK(ncclGetVersion(&nccl));  // major·10000 + minor·100 + patch
  d.nccl_version = version_text(nccl, 10000, 100, 100) + "." + std::to_string(nccl % 100);
  cuda::cublas_handle();  // the context and a cuBLAS handle, then what they hold
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  d.hbm_total_bytes = static_cast<int64_t>(total);
  d.context_bytes = static_cast<int64_t>(total - free);
  return d;
}

GpuMeasurements measure_gpu(const GpuDevice& device, const GpuMeasurePlan& plan,
                            const GpuProgress& progress) {
  GpuMeasurements m;
  m.device = device;
  m.plan = plan;
  const Ranks ranks = mpi_ranks();
  m.rank = ranks.rank;
  m.ranks = ranks.size;
  m.nodes = ranks.nodes;
  const bool links = ranks.size > 1 && ranks.nodes == 1;
  const int collectives = links ? 4 * int(plan.collective_bytes.size()) : 0;
  const int total =
      collectives + int(plan.gemm.size() + plan.attention.size() + plan.memory_elements.size()) + 1;
  auto step = [&](const std::string& what, int done) {
    if (progress && m.rank == 0) progress(what, done, total);
  };
#ifdef CHUNKFLOW_HAVE_MPI
  if (links) {
    m.collectives =
        time_collectives(plan, ranks, [&](int done) { step("NCCL collectives", done); });
  }
#endif
  if (m.rank != 0) return m;

  int done = collectives;
  cublasHandle_t handle;  // cuBLAS's default math, as a training framework runs bf16 GEMMs
  CUBLAS_CHECK(cublasCreate(&handle));
  CUBLAS_CHECK(cublasSetStream(handle, cuda::current_stream()));
  for (const GemmShape& g : plan.gemm) {
    step("GEMM " + g.model + " " + g.name + " " + std::to_string(g.tokens) + " tokens", done++);
    const double bytes = 2.0 * double(g.tokens * g.in_features + g.out_features * g.in_features +
                                      g.tokens * g.out_features);
    if (bytes > 0.9 * double(free_device_bytes())) {
      m.skipped.push_back("GEMM " + g.model + " " + g.name + " at " + std::to_string(g.tokens) +
                          " tokens: " + std::to_string(int64_t(bytes) >> 20) +
                          " MiB of operands, more than the memory free");
      continue;
    }
    m.gemm.push_back({g, time_gemm(handle, g, plan.warmup, plan.repetitions)});
  }
  CUBLAS_CHECK(cublasDestroy(handle));
  for (const AttentionPoint& a : plan.attention) {
    step("attention q " + std::to_string(a.q) + " prefix " + std::to_string(a.prefix), done++);
    m.attention.push_back(time_attention(plan, a));
  }
  for (const int64_t n : plan.memory_elements) {
    step("elementwise over " + std::to_string(n) + " floats", done++);
    for (const BandwidthSample& s : time_memory(plan, n)) m.memory.push_back(s);
  }
  step("kernel launches", done++);
  m.launch = time_launches(plan);
  return m;
}

}  // namespace cf
