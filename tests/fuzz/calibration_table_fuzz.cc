// Fuzz target: calibration tables (sim/calibration_table.h calibration_from_json). A table read
// is written and read back to the same JSON, and every curve is looked up at its own grid
// points and beyond, as the calibrated cost model prices ops.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "sim/calibration_table.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

void check_curve(const cf::Curve& curve) {
  for (double x : curve.x) {
    const cf::Lookup at = cf::interpolate(curve, x);
    CF_CHECK(std::isfinite(at.ns) && at.ns > 0) << "at x = " << x << ": " << at.ns;
  }
  if (!curve.x.empty()) {
    (void)cf::interpolate(curve, curve.x.back() * 2);
    (void)cf::interpolate(curve, curve.x.front() / 2);
  }
}

void check_grid(const cf::AttentionGrid& grid) {
  for (double q : grid.q_tokens) {
    for (double p : grid.kv_prefix) {
      const cf::Lookup at = cf::interpolate(grid, q, p);
      CF_CHECK(std::isfinite(at.ns) && at.ns > 0) << "at (" << q << ", " << p << "): " << at.ns;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string origin = "fuzz.json";
  cf::StatusOr<cf::CalibrationTable> table =
      cf::calibration_from_json(cf::fuzz::as_text(data, size), origin);
  if (!table.ok()) {
    cf::fuzz::expect_refusal(table.status(), origin);
    return 0;
  }
  const std::string written = cf::calibration_to_json(*table);
  cf::StatusOr<cf::CalibrationTable> again = cf::calibration_from_json(written, "written.json");
  CF_CHECK(again.ok()) << "a table read is refused once written: " << again.status().message();
  CF_CHECK(cf::calibration_to_json(*again) == written);
  for (const cf::Curve* curve : {&table->send, &table->p2p, &table->allreduce, &table->optimizer}) {
    check_curve(*curve);
  }
  for (const cf::ModelCalibration& model : table->models) {
    for (const cf::Curve* curve :
         {&model.layer_forward, &model.layer_backward, &model.embedding_forward,
          &model.embedding_backward, &model.head_forward, &model.head_backward}) {
      check_curve(*curve);
    }
    for (const cf::GemmCurves& gemm : model.gemm) {
      check_curve(gemm.forward);
      check_curve(gemm.backward);
    }
    for (const cf::NamedCurve& named : model.elementwise) check_curve(named.curve);
    check_grid(model.attention_forward);
    check_grid(model.attention_backward);
  }
  return 0;
}
