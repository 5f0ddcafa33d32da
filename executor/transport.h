// How one pipeline stage of one DP rank talks to the others: point-to-point activations and
// gradients between virtual stages (plan_index.h's cross-stage rule), the data-parallel gradient
// sum, and the tied-embedding gradient sum between the first and last stage. Implemented
// in-process (threads, inproc_transport.h), over MPI (mpi_transport.h), and as NullTransport
// (counting_backend.h). Data pointers are storage of the stage's backend, handed over after
// the stage's stream is synchronized: the in-process and MPI transports read and write it as
// host memory, so they serve the CPU backend; a device backend brings a device-aware one.
#pragma once

#include <cstdint>

namespace cf {

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
  // Sends `count` floats to `stage` of this DP rank. Returns at once (the data is copied or
  // held until finish_step), so a stage never blocks on a send.
  virtual void send(int stage, const MessageKey& key, const float* data, int64_t count) = 0;
  // Receives the message `key` from `stage` of this DP rank, waiting until it arrives.
  virtual void recv(int stage, const MessageKey& key, float* data, int64_t count) = 0;
  // In-place sum over the DP ranks of this stage; every rank gets the same result.
  virtual void allreduce_dp(float* data, int64_t count) = 0;
  // In-place sum between stage 0 and stage pp−1 of this DP rank (tied embeddings, pp > 1).
  virtual void allreduce_tied(float* data, int64_t count) = 0;
  // Completes this stage's outstanding sends; called at the end of a step.
  virtual void finish_step() = 0;
};

}  // namespace cf
