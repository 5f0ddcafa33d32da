// The MPI transport (mpi_transport.h).
#include "executor/mpi_transport.h"

#include <fmt/format.h>

#include <climits>
#include <exception>

#include "core/check.h"

namespace cf {
namespace {

void mpi_check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  CF_CHECK(false) << call << " failed: " << std::string(text, static_cast<size_t>(length));
}

int mpi_count(int64_t count) {
  CF_CHECK(count >= 0 && count <= INT_MAX) << count << " elements in one MPI message";
  return static_cast<int>(count);
}

// Element counts as the int counts MPI takes.
std::vector<int> mpi_counts(const std::vector<int64_t>& counts) {
  std::vector<int> out;
  for (const int64_t c : counts) out.push_back(mpi_count(c));
  return out;
}

}  // namespace

MpiTransport::MpiTransport(MPI_Comm world, int dp, int pp, int vpp, bool tied_embeddings, int cp,
                           double timeout_s)
    : world_(world), layout_{dp, cp, pp}, vpp_(vpp), timeout_s_(timeout_s) {
  int rank = 0, size = 0;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  CF_CHECK_EQ(size, layout_.size());
  dp_rank_ = layout_.dp_rank_of(rank);
  cp_rank_ = layout_.cp_rank_of(rank);
  stage_ = layout_.stage_of(rank);
  void* value = nullptr;
  int found = 0;
  MPI_Comm_get_attr(world, MPI_TAG_UB, &value, &found);
  if (found) tag_upper_bound_ = *static_cast<int*>(value);
  mpi_check(MPI_Comm_split(world, stage_, dp_rank_ * cp + cp_rank_, &dp_comm_),
            "MPI_Comm_split(dp·cp)");
  mpi_check(MPI_Comm_split(world, stage_ * dp + dp_rank_, cp_rank_, &cp_comm_),
            "MPI_Comm_split(cp)");
  const bool tied_member = tied_embeddings && pp > 1 && (stage_ == 0 || stage_ == pp - 1);
  mpi_check(MPI_Comm_split(world, tied_member ? dp_rank_ * cp + cp_rank_ : MPI_UNDEFINED, stage_,
                           &tied_comm_),
            "MPI_Comm_split(tied)");
}

MpiTransport::~MpiTransport() {
  // An exception on its way out (to the driver, which ends the job) waits for nothing.
  if (std::uncaught_exceptions() == 0) finish_step();
  if (dp_comm_ != MPI_COMM_NULL) MPI_Comm_free(&dp_comm_);
  if (cp_comm_ != MPI_COMM_NULL) MPI_Comm_free(&cp_comm_);
  if (tied_comm_ != MPI_COMM_NULL) MPI_Comm_free(&tied_comm_);
}

int MpiTransport::tag(const MessageKey& key) const {
  const int64_t tag =
      (static_cast<int64_t>(key.chunk) * vpp_ + key.model_chunk) * 2 + (key.gradient ? 1 : 0);
  CF_CHECK(tag <= tag_upper_bound_) << "chunk " << key.chunk << " needs MPI tag " << tag
                                    << " above MPI_TAG_UB = " << tag_upper_bound_;
  return static_cast<int>(tag);
}

void MpiTransport::send(int stage, const MessageKey& key, const float* data, int64_t count) {
  pending_data_.emplace_back(data, data + count);
  pending_.push_back(MPI_REQUEST_NULL);
  mpi_check(MPI_Isend(pending_data_.back().data(), mpi_count(count), MPI_FLOAT, world_rank(stage),
                      tag(key), world_, &pending_.back()),
            "MPI_Isend");
}

void MpiTransport::wait(MPI_Request* request, const std::string& what) const {
  wait_or_abort(request, MPI_STATUS_IGNORE, timeout_s_, [&] {
    return fmt::format("{} (stage {}, DP rank {}, CP rank {})", what, stage_, dp_rank_, cp_rank_);
  });
}

void MpiTransport::recv(int stage, const MessageKey& key, float* data, int64_t count) {
  MPI_Request request = MPI_REQUEST_NULL;
  const int from = world_rank(stage);
  mpi_check(MPI_Irecv(data, mpi_count(count), MPI_FLOAT, from, tag(key), world_, &request),
            "MPI_Irecv");
  MPI_Status status;
  wait_or_abort(&request, &status, timeout_s_, [&] {
    return fmt::format("the {} of chunk {} (model chunk {}) from rank {} (stage {}) to stage {}",
                       key.gradient ? "gradient" : "activation", key.chunk, key.model_chunk, from,
                       stage, stage_);
  });
  int received = 0;
  MPI_Get_count(&status, MPI_FLOAT, &received);
  CF_CHECK_EQ(received, count);
}

void MpiTransport::allreduce_dp(float* data, int64_t count) {
  MPI_Request request = MPI_REQUEST_NULL;
  mpi_check(
      MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_FLOAT, MPI_SUM, dp_comm_, &request),
      "MPI_Iallreduce(dp)");
  wait(&request, "the gradient sum over the dp·cp ranks of the stage");
}

void MpiTransport::allreduce_tied(float* data, int64_t count) {
  CF_CHECK(tied_comm_ != MPI_COMM_NULL) << "stage " << stage_ << " is not in the tied pair";
  MPI_Request request = MPI_REQUEST_NULL;
  mpi_check(MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_FLOAT, MPI_SUM, tied_comm_,
                           &request),
            "MPI_Iallreduce(tied)");
  wait(&request, "the tied-embedding gradient sum of the first and last stage");
}

void MpiTransport::allgather_cp(const float* data, float* out, const std::vector<int64_t>& counts) {
  CF_CHECK_EQ(static_cast<int>(counts.size()), layout_.cp);
  const std::vector<int> recv_counts = mpi_counts(counts);
  std::vector<int> displs(recv_counts.size(), 0);
  int64_t offset = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    displs[i] = mpi_count(offset);
    offset += counts[i];
  }
  MPI_Request request = MPI_REQUEST_NULL;
  mpi_check(MPI_Iallgatherv(data, recv_counts[static_cast<size_t>(cp_rank_)], MPI_FLOAT, out,
                            recv_counts.data(), displs.data(), MPI_FLOAT, cp_comm_, &request),
            "MPI_Iallgatherv(cp)");
  wait(&request, "the K/V all-gather over the cp ranks");
}

void MpiTransport::reduce_scatter_cp(const float* data, float* out,
                                     const std::vector<int64_t>& counts) {
  CF_CHECK_EQ(static_cast<int>(counts.size()), layout_.cp);
  const std::vector<int> recv_counts = mpi_counts(counts);
  MPI_Request request = MPI_REQUEST_NULL;
  mpi_check(
      MPI_Ireduce_scatter(data, out, recv_counts.data(), MPI_FLOAT, MPI_SUM, cp_comm_, &request),
      "MPI_Ireduce_scatter(cp)");
  wait(&request, "the dK/dV reduce-scatter over the cp ranks");
}

void MpiTransport::finish_step() {
  if (!pending_.empty()) {
    // A send completes when its receiver has taken it (large messages) or MPI has buffered it.
    wait_or_abort(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE,
                  timeout_s_, [&] {
                    return fmt::format(
                        "the other stages to receive the step's {} messages from "
                        "stage {} (DP rank {}, CP rank {})",
                        pending_.size(), stage_, dp_rank_, cp_rank_);
                  });
  }
  pending_.clear();
  pending_data_.clear();
}

}  // namespace cf
