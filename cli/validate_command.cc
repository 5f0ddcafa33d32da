// `chunkflow validate TABLE [--out DIR] [--runs N] [--json] [--require-targets]`: the
// validation matrix (executor/calibrate/validation.h) with a calibration table, and the
// tuner's pick for it (here, where the tuner is linked); prints the table and the verdict.
// A missed target is a result (exit 0) unless --require-targets (exit 1). Not the matrix.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "executor/calibrate/validation.h"
#include "tuner/search_space.h"
#include "tuner/tuner.h"

namespace cf::cli {
namespace {

struct ValidateOptions {
  std::string table;
  std::string out = "validation-out";
  int runs = 5;
  bool json = false;
  bool require_targets = false;
};

template <typename T>
std::string joined(const std::vector<T>& values) {
  return fmt::format("{}", fmt::join(values, ","));
}

// The tuner (exhaustive, the calibrated simulator) over the matrix's ChunkFlow axes for the
// job's dataset. Its baseline search is off: its layouts need recompute policies the CPU
// backend lacks (the baseline rows are validated like the others).
StatusOr<ValidationConfig> tuned_pick(const Job& job) {
  const ValidationAxes& axes = validation_axes();
  std::vector<int> pps;
  for (const auto& [pp, dp] : axes.layouts) pps.push_back(pp);
  SpaceFlags flags;
  flags.chunk_sizes = joined(axes.chunk_sizes);
  flags.k = joined(axes.ks);
  flags.tp = "1";
  flags.pp = joined(pps);
  flags.recompute = "none";
  flags.packer = "balanced";
  CF_ASSIGN_OR_RETURN(SearchSpace space, read_search_space(job, flags));
  TuneOptions options;
  options.exhaustive = true;
  options.baseline = false;
  options.threads = 1;
  CF_ASSIGN_OR_RETURN(TuneResult result, tune(job, space, options));
  if (result.best() == nullptr) return Status::Runtime(job.origin + ": the tuner found nothing");
  const Candidate& best = result.best()->candidate;
  ValidationConfig pick;
  pick.chunk_size = best.strategy.chunk_size;
  pick.k = best.strategy.k;
  pick.pp = best.layout.pp;
  pick.dp = best.layout.dp;
  return pick;
}

int run_validate(const ValidateOptions& options) {
  const bool show = ::isatty(STDERR_FILENO);
  ValidationRequest request;
  request.table = options.table;
  request.out_dir = options.out;
  request.runs = options.runs;
  request.tuner_pick = tuned_pick;
  if (show) {
    request.progress = [](const std::string& what) {
      std::fprintf(stderr, "\r\033[K%s", what.c_str());
    };
  }
  StatusOr<ValidationResult> result = run_validation(request);
  if (show) std::fputs("\r\033[K", stderr);
  if (!result.ok()) return report(result.status());
  const std::string text = options.json ? validation_json(*result) : validation_text(*result);
  std::fputs(text.c_str(), stdout);
  if (!result->targets_met() && options.require_targets) {
    return report(Status::Runtime("a prediction target was missed (--require-targets)"));
  }
  return 0;
}

}  // namespace

void add_validate_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<ValidateOptions>();
  CLI::App* cmd =
      app.add_subcommand("validate",
                         "Simulate, run and compare the validation matrix with a calibration table "
                         "(docs/VALIDATION.md)");
  cmd->add_option("table", options->table, "calibration table from `chunkflow calibrate`")
      ->required();
  cmd->add_option("-o,--out", options->out, "folder for each configuration's job and traces")
      ->capture_default_str();
  cmd->add_option("-r,--runs", options->runs,
                  "executor runs per configuration, round-robin (their mean step time)")
      ->check(CLI::Range(1, 99))
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "the table and verdict as JSON on stdout");
  cmd->add_flag("--require-targets", options->require_targets,
                "exit 1 when a prediction target is missed (default: a missed target is a "
                "result, exit 0)");
  cmd->callback([run, options] { *run = [options] { return run_validate(*options); }; });
}

}  // namespace cf::cli
