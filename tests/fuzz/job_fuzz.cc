// Fuzz target: the job reader (sim/plan/job.h), YAML text → resolved Job. A job read back from
// its resolved YAML is read again, and its first global batch is drawn, as `chunkflow plan`
// and `simulate` do; names of models and datasets resolve as on the command line (embedded
// names, or files relative to the working directory).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/plan/job.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string origin = "fuzz.yaml";
  cf::StatusOr<cf::Job> job = cf::parse_job(cf::fuzz::as_text(data, size), origin);
  if (!job.ok()) {
    cf::fuzz::expect_refusal(job.status(), origin);
    return 0;
  }
  (void)cf::resolved_table(*job);
  const std::string resolved = cf::resolved_yaml(*job);
  cf::StatusOr<cf::Job> again = cf::parse_job(resolved, "resolved.yaml");
  CF_CHECK(again.ok()) << "the resolved YAML of a valid job is refused: "
                       << again.status().message() << "\n"
                       << resolved;
  CF_CHECK_EQ(cf::resolved_yaml(*again), resolved);
  const std::vector<int64_t> batch = cf::job_global_batch(*job, 0);
  CF_CHECK_EQ(static_cast<int64_t>(batch.size()), job->training.global_batch);
  for (int64_t length : batch) {
    CF_CHECK(length >= 1 && length <= job->dataset.max_length) << length;
  }
  CF_CHECK(cf::longest_sequence(*job) <= job->dataset.max_length);
  return 0;
}
