// How one pipeline stage of one (DP rank, CP rank) talks to the others: point-to-point
// activations and gradients between virtual stages (plan_index.h's cross-stage rule) to the same
// CP rank of the other stage, the context-parallel K/V all-gather and dK/dV reduce-scatter over
// the CP ranks of this stage (context_parallel.h), the gradient sum over the dp·cp ranks of this
// stage, and the tied-embedding gradient sum between the first and last stage. Implemented
// in-process (threads, inproc_transport.h), over MPI (mpi_transport.h), and as NullTransport
// (counting_backend.h). Data pointers are storage of the stage's backend, handed over after
// the stage's stream is synchronized: the in-process and MPI transports read and write it as
// host memory, so they serve the CPU backend; a device backend brings a device-aware one.
#pragma once

#include <cstdint>
#include <vector>

namespace cf {

// How long a transport between processes (MPI) waits for a peer before it ends the job
// (mpi_wait.h): generous, since a peer may be running a whole stage's ops — or, on rank 0, the
// reference check — while others wait on it. `chunkflow run --mpi-timeout SECONDS` sets it.
inline constexpr double kDefaultPeerTimeoutS = 600;

// Identifies one message of a step between two stages of one DP rank: the activation of
// (chunk, model chunk) going forward, or its gradient going backward.
struct MessageKey {
  int chunk = 0;
  int model_chunk = 0;
  bool gradient = false;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends `count` floats to `stage` of this (DP rank, CP rank). Returns at once (the data is
  // copied or held until finish_step), so a stage never blocks on a send.
  virtual void send(int stage, const MessageKey& key, const float* data, int64_t count) = 0;
  // Receives the message `key` from `stage` of this (DP rank, CP rank), waiting until it arrives.
  virtual void recv(int stage, const MessageKey& key, float* data, int64_t count) = 0;
  // In-place sum over the dp·cp ranks of this stage (Megatron-Core's data-parallel group with
  // context parallelism: every CP rank holds gradients of its own tokens); every rank gets the
  // same result.
  virtual void allreduce_dp(float* data, int64_t count) = 0;
  // In-place sum between stage 0 and stage pp−1 of this (DP rank, CP rank) (tied embeddings,
  // pp > 1).
  virtual void allreduce_tied(float* data, int64_t count) = 0;
  // All-gather over the cp ranks of this (DP rank, stage): CP rank i contributes counts[i]
  // floats (this rank's `data` holds counts[cp_rank]); `out` (Σ counts) receives them
  // concatenated in CP-rank order, on every rank. `out` does not overlap `data`.
  virtual void allgather_cp(const float* data, float* out, const std::vector<int64_t>& counts) = 0;
  // Reduce-scatter over the cp ranks of this (DP rank, stage): `data` (Σ counts) is summed
  // element-wise over the CP ranks and CP rank i receives part i (counts[i] floats, at offset
  // Σ_{j<i} counts[j]) in `out`. `out` does not overlap `data`.
  virtual void reduce_scatter_cp(const float* data, float* out,
                                 const std::vector<int64_t>& counts) = 0;
  // Completes this stage's outstanding sends; called at the end of a step.
  virtual void finish_step() = 0;
};

}  // namespace cf
