// Test jobs for the executor (executor_fixture.h).
#include "tests/support/executor_fixture.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "traces/distribution.h"

namespace cf::test {

std::string tiny_job_yaml(const TinyJob& spec) {
  // cp = 1 and the even split leave their keys out: the jobs of the tests that predate them.
  std::string cp_keys =
      spec.cp == 1 ? "" : fmt::format("cp: {}, cp_comm: {}, ", spec.cp, spec.cp_comm);
  if (!spec.layers_per_stage.empty()) {
    cp_keys += fmt::format("layers_per_stage: [{}], ", fmt::join(spec.layers_per_stage, ", "));
  }
  return fmt::format(
      "model: {}\n"
      "cluster: {{gpu: h100-sxm-80g, gpus: {}, gpus_per_node: {}}}\n"
      "dataset: {{lengths: [{}], max_length: {}}}\n"
      "training: {{steps: {}}}\n"
      "parallel: {{tp: 1, pp: {}, dp: {}, {}vpp: {}, schedule: {}}}\n"
      "strategy: {}\n",
      spec.model, spec.pp * spec.dp * spec.cp, spec.pp * spec.dp * spec.cp,
      fmt::join(spec.lengths, ", "), spec.max_length, spec.steps, spec.pp, spec.dp, cp_keys,
      spec.vpp, spec.schedule, spec.strategy);
}

Job tiny_job(const TinyJob& spec) {
  const std::string text = tiny_job_yaml(spec);
  StatusOr<Job> job = parse_job(text, "<test job>");
  CF_CHECK(job.ok()) << job.status().message() << "\n" << text;
  return *std::move(job);
}

std::vector<int64_t> scaled_batch(const std::string& dataset, int count, int64_t longest,
                                  uint64_t seed) {
  StatusOr<LengthDistribution> dist = load_distribution(dataset);
  CF_CHECK(dist.ok()) << dist.status().message();
  LengthSampler sampler(*dist, dist->max_length, seed);
  const std::vector<int64_t> raw = sampler.draw_batch(count);
  const double top = static_cast<double>(*std::max_element(raw.begin(), raw.end()));
  std::vector<int64_t> out;
  for (int64_t length : raw) {
    out.push_back(std::max<int64_t>(1, std::llround(static_cast<double>(length) * longest / top)));
  }
  return out;
}

std::vector<int64_t> odd_lengths(std::vector<int64_t> lengths) {
  for (int64_t& length : lengths) length |= 1;
  return lengths;
}

OffloadPair offload_pair() {
  OffloadPair pair;
  pair.spec.lengths = odd_lengths(scaled_batch("chatqa2-long-sft", 7, 190, 11));
  pair.spec.pp = 2;
  pair.spec.strategy = "{kind: chunkflow, chunk_size: 41, k: 2}";
  pair.kept = tiny_job(pair.spec);
  TinyJob offloaded = pair.spec;
  offloaded.strategy = "{kind: chunkflow, chunk_size: 41, k: 2, kv_offload: all}";
  pair.offloaded = tiny_job(offloaded);
  return pair;
}

}  // namespace cf::test
