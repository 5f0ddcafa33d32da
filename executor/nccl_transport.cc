// NCCL messages and collectives for a CUDA run under mpirun (nccl_transport.h).
#include "executor/nccl_transport.h"

#include <cuda_runtime.h>
#include <fmt/format.h>
#include <nccl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <numeric>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "core/check.h"
#include "executor/cuda_backend.h"
#include "executor/mpi_wait.h"
#include "kernels/cuda/cuda_check.h"

// Every NCCL call: on failure, the call, NCCL's error and where, then the job ends from this
// rank (abort_mpi_job prints "rank R: ").
#define NCCL_CHECK(call)                                                                         \
  do {                                                                                           \
    const ncclResult_t cf_nccl_result_ = (call);                                                 \
    if (cf_nccl_result_ != ncclSuccess) {                                                        \
      ::cf::abort_mpi_job(fmt::format("{}: {} ({}:{})", #call,                                   \
                                      ncclGetErrorString(cf_nccl_result_), __FILE__, __LINE__)); \
    }                                                                                            \
  } while (0)

namespace cf {
namespace {

// A message's header: its key, as floats (exact below 2^24; chunks are at most 2^20).
constexpr int64_t kHeader = 3;

std::array<float, kHeader> header_of(const MessageKey& key) {
  return {static_cast<float>(key.chunk), static_cast<float>(key.model_chunk),
          key.gradient ? 1.0f : 0.0f};
}

// One direction of one pipeline link: this rank sends on it or receives on it.
struct Link {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int peer = 0;  // the other end's rank in `comm`
};

class NcclTransport final : public Transport {
 public:
  NcclTransport(const RankLayout& layout, bool tied_embeddings, Stream* stream, double timeout_s)
      : layout_(layout), stream_(native_cuda_stream(stream)), timeout_s_(timeout_s) {
    CF_CHECK(stream_ != nullptr) << "the NCCL transport needs a stream of the CUDA backend";
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CF_CHECK_EQ(size, layout.size());
    stage_ = layout.stage_of(rank);
    dp_rank_ = layout.dp_rank_of(rank);
    cp_rank_ = layout.cp_rank_of(rank);
    const int pipeline = dp_rank_ * layout.cp + cp_rank_;  // this rank's (DP, CP) pipeline

    ncclUniqueId id;
    if (rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    NCCL_CHECK(ncclCommInitRank(&world_, size, id, rank));

    // The stage's dp·cp ranks; the tied pair; the CP ranks of this (DP rank, stage).
    dp_group_ = split(stage_, pipeline);
    const int pp = layout.pp;
    const bool tied = tied_embeddings && pp > 1;
    tied_ =
        split(tied && (stage_ == 0 || stage_ == pp - 1) ? pipeline : NCCL_SPLIT_NOCOLOR, stage_);
    cp_group_ = split(stage_ * layout.dp + dp_rank_, cp_rank_);
    // Directed links a → b with b = a ± 1 (mod pp): neighbours, and the last stage's wrap to
    // the first that interleaving uses. Every rank takes part in every split, in this order.
    // Activations and gradients take separate links: on one kind's link the plan's messages
    // arrive in the order they are sent (tests/executor/transport_test.cc, NcclLinkOrder),
    // while the two kinds interleave differently at the two ends under interleaving.
    std::set<std::pair<int, int>> made;
    for (int a = 0; a < pp && pp > 1; ++a) {
      for (int b : {(a + 1) % pp, (a + pp - 1) % pp}) {
        if (!made.insert({a, b}).second) continue;  // pp = 2: a + 1 and a − 1 are one stage
        for (bool gradient : {false, true}) {
          const bool member = stage_ == a || stage_ == b;
          ncclComm_t comm = split(member ? pipeline : NCCL_SPLIT_NOCOLOR, stage_ == a ? 0 : 1);
          if (!member) continue;
          Link link;
          link.comm = comm;
          link.peer = stage_ == a ? 1 : 0;
          CUDA_CHECK(cudaStreamCreateWithFlags(&link.stream, cudaStreamNonBlocking));
          (stage_ == a ? out_ : in_)[{stage_ == a ? b : a, gradient}] = link;
        }
      }
    }
  }

  ~NcclTransport() override {
    for (auto* links : {&out_, &in_}) {
      for (auto& [to, link] : *links) {
        cudaStreamSynchronize(link.stream);
        ncclCommDestroy(link.comm);
        cudaStreamDestroy(link.stream);
      }
    }
    for (ncclComm_t c : {dp_group_, tied_, cp_group_, world_}) {
      if (c != nullptr) ncclCommDestroy(c);
    }
  }

  void send(int stage, const MessageKey& key, const float* data, int64_t count) override {
    Link& link = link_to(out_, {stage, key.gradient}, "to");
    // A copy of the message with its key: the caller frees `data` in its stream's order once
    // this returns, while the link's stream sends later.
    float* message = nullptr;
    const size_t bytes = size_t(count + kHeader) * sizeof(float);
    CUDA_CHECK(cudaMallocAsync(&message, bytes, stream_));
    CUDA_CHECK(cudaMemcpyAsync(message, data, size_t(count) * sizeof(float),
                               cudaMemcpyDeviceToDevice, stream_));
    const std::array<float, kHeader> header = header_of(key);
    CUDA_CHECK(cudaMemcpyAsync(message + count, header.data(), sizeof(header),
                               cudaMemcpyHostToDevice, stream_));  // pageable: staged at once
    after(stream_, link.stream);
    NCCL_CHECK(
        ncclSend(message, size_t(count + kHeader), ncclFloat, link.peer, link.comm, link.stream));
    CUDA_CHECK(cudaFreeAsync(message, link.stream));  // once sent
  }

  void recv(int stage, const MessageKey& key, float* data, int64_t count) override {
    Link& link = link_to(in_, {stage, key.gradient}, "from");
    float* message = nullptr;
    CUDA_CHECK(cudaMallocAsync(&message, size_t(count + kHeader) * sizeof(float), link.stream));
    NCCL_CHECK(
        ncclRecv(message, size_t(count + kHeader), ncclFloat, link.peer, link.comm, link.stream));
    wait(link.stream, link.comm, [&] {
      return fmt::format("the {} of chunk {} (model chunk {}) from stage {} to stage {}",
                         key.gradient ? "gradient" : "activation", key.chunk, key.model_chunk,
                         stage, stage_);
    });
    std::array<float, kHeader> header{};
    CUDA_CHECK(cudaMemcpy(header.data(), message + count, sizeof(header), cudaMemcpyDeviceToHost));
    if (header != header_of(key)) {
      abort_mpi_job(fmt::format(
          "stage {} expected the {} of chunk {} (model chunk {}) from stage {} and received "
          "chunk {} (model chunk {}, {}): messages on a link must be received in the order they "
          "are sent",
          stage_, key.gradient ? "gradient" : "activation", key.chunk, key.model_chunk, stage,
          header[0], header[1], header[2] != 0 ? "gradient" : "activation"));
    }
    CUDA_CHECK(cudaMemcpyAsync(data, message, size_t(count) * sizeof(float),
                               cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaFreeAsync(message, stream_));
  }

  void allreduce_dp(float* data, int64_t count) override {
    NCCL_CHECK(ncclAllReduce(data, data, size_t(count), ncclFloat, ncclSum, dp_group_, stream_));
    wait(stream_, dp_group_,
         [&] { return fmt::format("the gradient sum of stage {} over its dp·cp ranks", stage_); });
  }

  void allreduce_tied(float* data, int64_t count) override {
    CF_CHECK(tied_ != nullptr) << "stage " << stage_ << " is not in the tied-embedding pair";
    NCCL_CHECK(ncclAllReduce(data, data, size_t(count), ncclFloat, ncclSum, tied_, stream_));
    wait(stream_, tied_, [] { return std::string("the tied-embedding gradient sum"); });
  }

  // Parts padded to the largest: ncclAllGather takes equal parts.
  void allgather_cp(const float* data, float* out, const std::vector<int64_t>& counts) override {
    const int64_t part = *std::max_element(counts.begin(), counts.end());
    const int cp = static_cast<int>(counts.size());
    float* padded = nullptr;
    float* gathered = nullptr;
    CUDA_CHECK(cudaMallocAsync(&padded, size_t(std::max<int64_t>(part, 1)) * 4, stream_));
    CUDA_CHECK(cudaMallocAsync(&gathered, size_t(std::max<int64_t>(part * cp, 1)) * 4, stream_));
    CUDA_CHECK(cudaMemcpyAsync(padded, data, size_t(counts[size_t(cp_rank_)]) * 4,
                               cudaMemcpyDeviceToDevice, stream_));
    NCCL_CHECK(ncclAllGather(padded, gathered, size_t(part), ncclFloat, cp_group_, stream_));
    int64_t offset = 0;
    for (int i = 0; i < cp; ++i) {
      CUDA_CHECK(cudaMemcpyAsync(out + offset, gathered + int64_t(i) * part,
                                 size_t(counts[size_t(i)]) * 4, cudaMemcpyDeviceToDevice, stream_));
      offset += counts[size_t(i)];
    }
    CUDA_CHECK(cudaFreeAsync(padded, stream_));
    CUDA_CHECK(cudaFreeAsync(gathered, stream_));
    wait(stream_, cp_group_, [&] { return fmt::format("the CP all-gather of stage {}", stage_); });
  }

  void reduce_scatter_cp(const float* data, float* out,
                         const std::vector<int64_t>& counts) override {
    const int64_t part = *std::max_element(counts.begin(), counts.end());
    const int cp = static_cast<int>(counts.size());
    float* padded = nullptr;
    float* mine = nullptr;
    CUDA_CHECK(cudaMallocAsync(&padded, size_t(std::max<int64_t>(part * cp, 1)) * 4, stream_));
    CUDA_CHECK(cudaMallocAsync(&mine, size_t(std::max<int64_t>(part, 1)) * 4, stream_));
    CUDA_CHECK(cudaMemsetAsync(padded, 0, size_t(part * cp) * 4, stream_));
    int64_t offset = 0;
    for (int i = 0; i < cp; ++i) {
      CUDA_CHECK(cudaMemcpyAsync(padded + int64_t(i) * part, data + offset,
                                 size_t(counts[size_t(i)]) * 4, cudaMemcpyDeviceToDevice, stream_));
      offset += counts[size_t(i)];
    }
    NCCL_CHECK(
        ncclReduceScatter(padded, mine, size_t(part), ncclFloat, ncclSum, cp_group_, stream_));
    CUDA_CHECK(cudaMemcpyAsync(out, mine, size_t(counts[size_t(cp_rank_)]) * 4,
                               cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaFreeAsync(padded, stream_));
    CUDA_CHECK(cudaFreeAsync(mine, stream_));
    wait(stream_, cp_group_,
         [&] { return fmt::format("the CP reduce-scatter of stage {}", stage_); });
  }

  // Every send of the step has reached its receiver.
  void finish_step() override {
    for (auto& [to, link] : out_) {
      wait(link.stream, link.comm, [&, stage = to.first] {
        return fmt::format("stage {} to receive this step's messages from stage {}", stage, stage_);
      });
    }
  }

 private:
  // A communicator of the ranks that give the same color (ordered by key); none for
  // NCCL_SPLIT_NOCOLOR. Collective over every rank.
  ncclComm_t split(int color, int key) {
    ncclComm_t comm = nullptr;
    NCCL_CHECK(ncclCommSplit(world_, color, key, &comm, nullptr));
    return comm;
  }

  Link& link_to(std::map<std::pair<int, bool>, Link>& links, std::pair<int, bool> to,
                const char* direction) {
    auto it = links.find(to);
    CF_CHECK(it != links.end()) << "stage " << stage_ << " has no link " << direction << " stage "
                                << to.first << " (links join stages a and a ± 1 mod pp)";
    return it->second;
  }

  // `later` runs what is enqueued on it next only after what `earlier` has so far.
  static void after(cudaStream_t earlier, cudaStream_t later) {
    cudaEvent_t event = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(event, earlier));
    CUDA_CHECK(cudaStreamWaitEvent(later, event, 0));
    CUDA_CHECK(cudaEventDestroy(event));  // released once it has completed
  }

  // Waits for `stream`, polling against the deadline and `comm`'s asynchronous errors.
  template <typename What>
  void wait(cudaStream_t stream, ncclComm_t comm, const What& what) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t status = cudaStreamQuery(stream);
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady) CUDA_CHECK(status);
      ncclResult_t async = ncclSuccess;
      NCCL_CHECK(ncclCommGetAsyncError(comm, &async));
      if (async != ncclSuccess && async != ncclInProgress) {
        abort_mpi_job(
            fmt::format("NCCL error while waiting for {}: {}", what(), ncclGetErrorString(async)));
      }
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (timeout_s_ > 0 && waited > timeout_s_) {
        ncclCommAbort(comm);
        abort_mpi_job(fmt::format(
            "waited {:.0f} s for {} (run --mpi-timeout); a peer is stuck or gone", waited, what()));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  RankLayout layout_;
  cudaStream_t stream_;
  double timeout_s_;
  int stage_ = 0, dp_rank_ = 0, cp_rank_ = 0;
  ncclComm_t world_ = nullptr, dp_group_ = nullptr, tied_ = nullptr, cp_group_ = nullptr;
  std::map<std::pair<int, bool>, Link> out_, in_;  // by (the other end's stage, gradient)
};

}  // namespace

std::unique_ptr<Transport> make_nccl_transport(const RankLayout& layout, bool tied_embeddings,
                                               Stream* stream, double timeout_s) {
  return std::make_unique<NcclTransport>(layout, tied_embeddings, stream, timeout_s);
}

}  // namespace cf
