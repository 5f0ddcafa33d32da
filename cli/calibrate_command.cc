// `chunkflow calibrate --backend cpu [--out FILE] [--model NAME ...]`: flags, a progress line
// and the printed summary around the calibration library (executor/calibrate/calibrate.h),
// which measures this machine into the table the calibrated cost model reads
// (`cost_model: {kind: calibrated, table: FILE}`). Not the measuring nor the table.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "executor/calibrate/calibrate.h"

namespace cf::cli {
namespace {

struct CalibrateOptions {
  CalibrationRequest request;
  std::string out = "calibration.json";
  bool quiet = false;
};

int run_calibrate(const CalibrateOptions& options) {
  const bool show = !options.quiet && ::isatty(STDERR_FILENO);
  CalibrationProgress progress;
  if (show) {
    progress = [](const std::string& what, int done, int total) {
      std::fprintf(stderr, "\r\033[K[%3d%%] %s", 100 * done / total, what.c_str());
    };
  }
  StatusOr<Calibration> calibration = calibrate(options.request, progress);
  if (show) std::fputs("\r\033[K", stderr);
  if (!calibration.ok()) return report(calibration.status());
  if (Status s = write_file_atomic(options.out, calibration_to_json(calibration->table)); !s.ok()) {
    return report(s);
  }
  if (options.quiet) return 0;
  const std::string text = calibration_summary(*calibration) +
                           fmt::format("\nmeasured in {:.1f} s; table written to {}\n",
                                       calibration->seconds, options.out);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace

void add_calibrate_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<CalibrateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Measure the executor's op costs on this machine into a calibration table");
  CalibrationRequest& request = options->request;
  cmd->add_option("-b,--backend", request.backend, "backend to measure")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("-o,--out", options->out, "calibration table to write (JSON)")
      ->capture_default_str();
  cmd->add_option("-m,--model", request.models,
                  "model(s) whose layer shapes are measured (names under models/ or paths)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", request.max_tokens, "largest chunk of the token grids")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", request.repetitions,
                  "timed runs per point (the fastest is kept)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("-w,--warmup", request.warmup, "untimed runs before them")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_option("--threads", request.threads,
                  "step slowdown measured for 1..N stage threads (pp·dp of a job), N at most "
                  "the usable cores; more threads are priced in proportion and flagged")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--quick", request.quick,
                "tiny grids and 3 repetitions (seconds; for tests, not for predictions)");
  cmd->add_flag("-q,--quiet", options->quiet, "no progress and no summary");
  cmd->callback([run, options] { *run = [options] { return run_calibrate(*options); }; });
}

}  // namespace cf::cli
