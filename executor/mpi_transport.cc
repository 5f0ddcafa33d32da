// The MPI transport (mpi_transport.h).
#include "executor/mpi_transport.h"

#include <climits>

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

}  // namespace

MpiTransport::MpiTransport(MPI_Comm world, int dp, int pp, int vpp, bool tied_embeddings)
    : world_(world), pp_(pp), vpp_(vpp) {
  int rank = 0, size = 0;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  CF_CHECK_EQ(size, dp * pp);
  dp_rank_ = rank / pp;
  stage_ = rank % pp;
  void* value = nullptr;
  int found = 0;
  MPI_Comm_get_attr(world, MPI_TAG_UB, &value, &found);
  if (found) tag_upper_bound_ = *static_cast<int*>(value);
  mpi_check(MPI_Comm_split(world, stage_, dp_rank_, &dp_comm_), "MPI_Comm_split(dp)");
  const bool tied_member = tied_embeddings && pp > 1 && (stage_ == 0 || stage_ == pp - 1);
  mpi_check(MPI_Comm_split(world, tied_member ? dp_rank_ : MPI_UNDEFINED, stage_, &tied_comm_),
            "MPI_Comm_split(tied)");
}

MpiTransport::~MpiTransport() {
  finish_step();
  if (dp_comm_ != MPI_COMM_NULL) MPI_Comm_free(&dp_comm_);
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

void MpiTransport::recv(int stage, const MessageKey& key, float* data, int64_t count) {
  MPI_Status status;
  mpi_check(
      MPI_Recv(data, mpi_count(count), MPI_FLOAT, world_rank(stage), tag(key), world_, &status),
      "MPI_Recv");
  int received = 0;
  MPI_Get_count(&status, MPI_FLOAT, &received);
  CF_CHECK_EQ(received, count);
}

void MpiTransport::allreduce_dp(float* data, int64_t count) {
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_FLOAT, MPI_SUM, dp_comm_),
            "MPI_Allreduce(dp)");
}

void MpiTransport::allreduce_tied(float* data, int64_t count) {
  CF_CHECK(tied_comm_ != MPI_COMM_NULL) << "stage " << stage_ << " is not in the tied pair";
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(count), MPI_FLOAT, MPI_SUM, tied_comm_),
            "MPI_Allreduce(tied)");
}

void MpiTransport::finish_step() {
  if (!pending_.empty()) {
    mpi_check(MPI_Waitall(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE),
              "MPI_Waitall");
  }
  pending_.clear();
  pending_data_.clear();
}

}  // namespace cf
