// Sweeps over MPI ranks (sweep_mpi.h): static round-robin of the points over groups of ranks
// that share each point's search, each group's results as one CBOR message (sweep_wire.h),
// MPI_Gatherv to rank 0, the exit status broadcast.
#include "tuner/sweep_mpi.h"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "tuner/sweep_wire.h"
#include "tuner/thread_pool.h"

namespace cf {
namespace {

using nlohmann::json;

// What one rank sends rank 0: its tuned points by index, and its first failure.
std::vector<uint8_t> rank_message(const std::vector<std::pair<int, SweepPoint>>& tuned,
                                  int failed_point, const Status& failure) {
  json points = json::array();
  for (const auto& [index, point] : tuned) {
    points.push_back({index, json::binary(sweep_point_to_wire(point))});
  }
  json error = nullptr;
  if (!failure.ok()) {
    error = {failed_point, static_cast<int>(failure.code()), failure.message()};
  }
  return json::to_cbor(json{{"points", points}, {"error", error}});
}

// Every rank's message on rank 0 (empty elsewhere).
std::vector<std::vector<uint8_t>> gather_on_root(const std::vector<uint8_t>& mine, int rank,
                                                 int ranks) {
  const int size = static_cast<int>(mine.size());
  std::vector<int> sizes(static_cast<size_t>(ranks), 0), displs(static_cast<size_t>(ranks), 0);
  MPI_Gather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  int total = 0;
  for (int r = 0; r < ranks; ++r) {
    displs[static_cast<size_t>(r)] = total;
    total += sizes[static_cast<size_t>(r)];
  }
  std::vector<uint8_t> all(static_cast<size_t>(rank == 0 ? total : 0));
  MPI_Gatherv(mine.data(), size, MPI_BYTE, all.data(), sizes.data(), displs.data(), MPI_BYTE, 0,
              MPI_COMM_WORLD);
  std::vector<std::vector<uint8_t>> out;
  if (rank != 0) return out;
  for (int r = 0; r < ranks; ++r) {
    const auto first = all.begin() + displs[static_cast<size_t>(r)];
    out.emplace_back(first, first + sizes[static_cast<size_t>(r)]);
  }
  return out;
}

// Rank 0: the gathered points into `result`; the failure of the lowest point index, if any.
Status collect(const std::vector<std::vector<uint8_t>>& messages, SweepResult* result) {
  int failed_point = -1;
  Status failure = Status::Ok();
  try {
    for (const std::vector<uint8_t>& bytes : messages) {
      const json message = json::from_cbor(bytes);
      for (const json& entry : message.at("points")) {
        const size_t index = entry.at(0).get<size_t>();
        CF_ASSIGN_OR_RETURN(SweepPoint point, sweep_point_from_wire(entry.at(1).get_binary()));
        CF_CHECK_LT(index, result->points.size());
        result->points[index] = std::move(point);
      }
      const json& error = message.at("error");
      if (!error.is_null() && (failed_point < 0 || error.at(0).get<int>() < failed_point)) {
        failed_point = error.at(0).get<int>();
        const std::string text = error.at(2).get<std::string>();
        failure = error.at(1).get<int>() == static_cast<int>(StatusCode::kInvalidInput)
                      ? Status::InvalidInput(text)
                      : Status::Runtime(text);
      }
    }
  } catch (const json::exception& e) {
    return Status::Runtime(std::string("a rank's sweep points do not read: ") + e.what());
  }
  return failure;
}

// A search shared by the ranks of one communicator (search_peers.h).
class MpiPeers final : public SearchPeers {
 public:
  explicit MpiPeers(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::vector<std::vector<uint8_t>> all_gather(const std::vector<uint8_t>& mine) override {
    const int bytes = static_cast<int>(mine.size());
    std::vector<int> sizes(static_cast<size_t>(size_), 0), displs(static_cast<size_t>(size_), 0);
    MPI_Allgather(&bytes, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm_);
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      displs[static_cast<size_t>(r)] = total;
      total += sizes[static_cast<size_t>(r)];
    }
    std::vector<uint8_t> all(static_cast<size_t>(total));
    MPI_Allgatherv(mine.data(), bytes, MPI_BYTE, all.data(), sizes.data(), displs.data(), MPI_BYTE,
                   comm_);
    std::vector<std::vector<uint8_t>> out;
    for (int r = 0; r < size_; ++r) {
      const auto first = all.begin() + displs[static_cast<size_t>(r)];
      out.emplace_back(first, first + sizes[static_cast<size_t>(r)]);
    }
    return out;
  }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

int mpi_threads_per_rank() {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int ranks_here = 1;
  MPI_Comm_size(node, &ranks_here);
  MPI_Comm_free(&node);
  return std::max(1, ThreadPool::hardware_threads() / std::max(1, ranks_here));
}

StatusOr<MpiSweep> run_sweep_mpi(const SweepSpec& spec, const TuneOptions& options,
                                 const SweepPointCallback& on_point) {
  MpiSweep out;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &out.ranks);
  out.root = rank == 0;
  SweepResult outline = sweep_outline(spec);  // every rank: the same points, same order
  const int n = static_cast<int>(outline.points.size());
  // min(points, ranks) groups of ranks, group g = the ranks ≡ g mod groups; group g tunes
  // points g, g + groups, ..., its ranks sharing each point's candidates (search_peers.h);
  // the group's first rank reports them.
  const int groups = std::max(1, std::min(n, out.ranks));
  const int group = rank % groups;
  MPI_Comm comm;
  MPI_Comm_split(MPI_COMM_WORLD, group, rank, &comm);
  MpiPeers peers(comm);
  TuneOptions shared = options;
  if (peers.size() > 1) shared.peers = &peers;
  const int mine = n / groups + (group < n % groups ? 1 : 0);
  std::vector<std::pair<int, SweepPoint>> tuned;
  int failed_point = -1;
  Status failure = Status::Ok();
  for (int i = group, k = 0; i < n; i += groups, ++k) {
    SweepPoint point = outline.points[static_cast<size_t>(i)];
    if (out.root && on_point) on_point(k, mine, sweep_point_label(point));
    failure = tune_sweep_point(spec, shared, &point);
    if (!failure.ok()) {
      failed_point = i;
      break;
    }
    if (peers.rank() == 0) tuned.emplace_back(i, std::move(point));
  }
  MPI_Comm_free(&comm);
  if (peers.rank() != 0) {  // the group's first rank reports its points and its failure
    failed_point = -1;
    failure = Status::Ok();
  }
  const std::vector<std::vector<uint8_t>> messages =
      gather_on_root(rank_message(tuned, failed_point, failure), rank, out.ranks);
  Status status = out.root ? collect(messages, &outline) : Status::Ok();
  int code = static_cast<int>(status.code());
  MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!out.root && code != 0) {
    // Rank 0 reports it; here only the exit code matters.
    return code == static_cast<int>(StatusCode::kInvalidInput)
               ? Status::InvalidInput("failed on another rank")
               : Status::Runtime("failed on another rank");
  }
  CF_RETURN_IF_ERROR(status);
  if (out.root) {
    answer_target(spec, &outline);
    out.result = std::move(outline);
  }
  return out;
}

std::unique_ptr<SearchPeers> world_search_peers() {
  return std::make_unique<MpiPeers>(MPI_COMM_WORLD);
}

}  // namespace cf
