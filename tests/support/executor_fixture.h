// Jobs for the executor's tests: the tiny model (models/tiny.yaml) with explicit lengths and a
// chosen parallel layout and strategy, and long-tailed batches drawn from the shipped dataset
// distributions, scaled to a few hundred tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/plan/job.h"

namespace cf::test {

struct TinyJob {
  std::vector<int64_t> lengths;
  int pp = 1;
  int dp = 1;
  int cp = 1;                          // written to the YAML when not 1
  std::string cp_comm = "all_gather";  // the variant the executor runs with cp > 1
  int vpp = 1;
  std::string schedule = "1f1b";
  // "{kind: chunkflow, chunk_size: 48, k: 1, packer: balanced}" or a baseline strategy.
  std::string strategy = "{kind: chunkflow, chunk_size: 48, k: 1}";
  std::string model = "tiny";
  int steps = 1;
  int64_t max_length = 4096;
  std::vector<int64_t> layers_per_stage = {};  // written to the YAML when set (uneven split)
};

// The job's YAML text (parse_job reads it).
std::string tiny_job_yaml(const TinyJob& spec);
Job tiny_job(const TinyJob& spec);  // CHECKs that it parses

// `count` lengths from the shipped distribution `dataset` (seeded), scaled so that the longest
// is `longest` tokens: round(ℓ · longest / max ℓ), at least 1. Keeps the long tail's shape.
std::vector<int64_t> scaled_batch(const std::string& dataset, int count, int64_t longest,
                                  uint64_t seed);

// Each length made odd (ℓ | 1), so chunks and their CP shards come in odd and uneven sizes.
std::vector<int64_t> odd_lengths(std::vector<int64_t> lengths);

// The job the K/V offload tests compare on every backend — a long-tailed batch of odd lengths
// on pp 2, ChunkSize 41, K 2 — with its state store kept on the stage and offloaded
// (strategy.kv_offload: all); `spec` is the kept one's.
struct OffloadPair {
  TinyJob spec;
  Job kept, offloaded;
};
OffloadPair offload_pair();

}  // namespace cf::test
