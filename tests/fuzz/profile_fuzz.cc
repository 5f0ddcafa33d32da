// Fuzz target: the PyTorch-profile reader (traces/profile.h read_profile), what `chunkflow
// profile`, `compare` and `calibrate --from-profile` read: Kineto JSON, torch 1.x event lists,
// gzip. The input goes through a file (the reader opens paths); a profile read must report as
// text and as JSON that parses, with every step's busy time inside the step and every work
// sample counted and finite.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/fuzz/fuzz_support.h"
#include "traces/profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/chunkflow-profile-fuzz-" + std::to_string(::getpid());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  cf::StatusOr<cf::RankProfile> profile = cf::read_profile(path, 0);
  if (!profile.ok()) {
    cf::fuzz::expect_refusal(profile.status(), path);
    return 0;
  }
  for (const cf::ProfileStep& step : profile->steps) {
    CF_CHECK(step.gpu_busy_ns >= 0) << "negative busy time in " << step.name;
    CF_CHECK(step.duration_ns < 0 || step.gpu_busy_ns <= step.duration_ns)
        << "busy time past the step " << step.name;
  }
  for (const cf::ProfileWorkSample& s : profile->work.samples) {
    CF_CHECK(s.count > 0) << "an empty work sample " << s.name;
    CF_CHECK(std::isfinite(s.flops) && s.flops >= 0 && std::isfinite(s.bytes) && s.bytes >= 0)
        << "work out of range in " << s.name;
  }
  const std::vector<cf::RankProfile> ranks{*profile};
  const std::string json = cf::profile_report_json(ranks);
  CF_CHECK(nlohmann::json::accept(json)) << "profile --json wrote invalid JSON";
  (void)cf::profile_report_text(ranks);
  return 0;
}
