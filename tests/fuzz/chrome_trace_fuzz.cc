// Fuzz target: the Chrome-trace reader (traces/trace.h trace_from_chrome_json), what `chunkflow
// compare` reads. A trace read is written and read back to the same Trace (the writer's own
// checks included).
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_support.h"
#include "traces/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string origin = "fuzz.json";
  cf::StatusOr<cf::Trace> trace = cf::trace_from_chrome_json(cf::fuzz::as_text(data, size), origin);
  if (!trace.ok()) {
    cf::fuzz::expect_refusal(trace.status(), origin);
    return 0;
  }
  const std::string written = cf::trace_to_chrome_json(*trace);
  cf::StatusOr<cf::Trace> again = cf::trace_from_chrome_json(written, "written.json");
  CF_CHECK(again.ok()) << "a trace read is refused once written: " << again.status().message();
  CF_CHECK(*again == *trace) << "a trace read changed once written";
  return 0;
}
