// The wire form of a tuned sweep point (sweep.h's SweepPoint), for gathering points tuned in
// other processes (`mpirun -np N chunkflow sweep`, sweep_mpi.h): CBOR holding every field,
// doubles bit for bit, so a point gathered prints exactly as the point tuned. Not a file
// format: both ends are the same build of chunkflow.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "tuner/sweep.h"

namespace cf {

// CHECKs that the metrics hold no critical path (the tuner never computes one).
std::vector<uint8_t> sweep_point_to_wire(const SweepPoint& point);
// One candidate's simulated metrics, the same way (for searches shared between processes,
// search.cc); the same CHECK.
nlohmann::json sim_metrics_to_wire(const SimMetrics& metrics);
// Throws nlohmann::json::exception on a malformed value.
SimMetrics sim_metrics_from_wire(const nlohmann::json& j);
// Runtime error when the bytes are not a point written by sweep_point_to_wire.
StatusOr<SweepPoint> sweep_point_from_wire(const std::vector<uint8_t>& bytes);

}  // namespace cf
