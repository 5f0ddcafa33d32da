// `chunkflow calibrate [--backend cpu|cuda] [--out FILE] [--model NAME ...]` and
// `chunkflow calibrate --from-profile PROFILE... --gpu BASE --out FILE`: flags, a progress
// line and the printed summary around the calibration library (executor/calibrate/calibrate.h).
// --backend cpu measures this machine into the table the calibrated cost model reads
// (`cost_model: {kind: calibrated, table: FILE}`); --backend cuda measures the GPU into a
// hardware file of the analytical cost model (`cluster.gpu: FILE`); --from-profile fits that
// file to PyTorch profiler traces instead of measuring. Not the measuring nor the files'
// contents.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "core/limits.h"
#include "executor/calibrate/calibrate.h"
#include "executor/calibrate/profile_calibrate.h"
#include "models/hardware.h"
#include "traces/profile.h"
#ifdef CHUNKFLOW_HAVE_MPI
#include "executor/mpi_run.h"
#endif

namespace cf::cli {
namespace {

constexpr const char* kCpuOut = "calibration.json";
constexpr const char* kGpuOut = "gpu-calibrated.yaml";

struct CalibrateOptions {
  CalibrationRequest request;
  GpuCalibrationRequest gpu_request;
  std::string out;  // empty: kCpuOut or kGpuOut by backend
  bool quiet = false;
  std::vector<std::string> profiles;  // --from-profile
  // Given on the command line (the backends take different flags and defaults).
  CLI::Option* model = nullptr;
  CLI::Option* gpu = nullptr;
  CLI::Option* max_tokens = nullptr;
  CLI::Option* threads = nullptr;
  CLI::Option* backend = nullptr;
  CLI::Option* quick = nullptr;
};

CalibrationProgress progress_line(bool show) {
  if (!show) return {};
  return [](const std::string& what, int done, int total) {
    std::fprintf(stderr, "\r\033[K[%3d%%] %s", 100 * done / total, what.c_str());
  };
}

int run_calibrate_cpu(const CalibrateOptions& options) {
  if (options.gpu->count() > 0) {
    return report(Status::InvalidInput("--gpu: a base hardware file is for --backend cuda"));
  }
  const std::string out = options.out.empty() ? kCpuOut : options.out;
  const bool show = !options.quiet && ::isatty(STDERR_FILENO);
  StatusOr<Calibration> calibration = calibrate(options.request, progress_line(show));
  if (show) std::fputs("\r\033[K", stderr);
  if (!calibration.ok()) return report(calibration.status());
  if (Status s = write_file_atomic(out, calibration_to_json(calibration->table)); !s.ok()) {
    return report(s);
  }
  if (options.quiet) return 0;
  const std::string text =
      calibration_summary(*calibration) +
      fmt::format("\nmeasured in {:.1f} s; table written to {}\n", calibration->seconds, out);
  std::fputs(text.c_str(), stdout);
  return 0;
}

// Flags and the output path are judged before any device is touched; under mpirun (one rank per
// GPU) every rank measures the collectives and rank 0 the rest, prints and writes.
int run_calibrate_gpu(const CalibrateOptions& options) {
  for (const CLI::Option* cpu_only : {options.max_tokens, options.threads}) {
    if (cpu_only->count() > 0) {
      return report(Status::InvalidInput(
          fmt::format("{}: only for --backend cpu (the GPU's grids are fixed; --quick makes "
                      "them small)",
                      cpu_only->get_name())));
    }
  }
  const std::string out = options.out.empty() ? kGpuOut : options.out;
  if (out.size() >= 5 && out.compare(out.size() - 5, 5, ".json") == 0) {
    return report(Status::InvalidInput(fmt::format(
        "--out {}: --backend cuda writes a hardware file (YAML, as models/hardware/*.yaml, for "
        "`cluster.gpu: FILE`), not a JSON table; name it .yaml (default {})",
        out, kGpuOut)));
  }
  if (Status s = check_output_path(out); !s.ok()) return report(s);
  GpuCalibrationRequest request = options.gpu_request;
  if (options.model->count() > 0) request.models = options.request.models;
  request.repetitions = options.request.repetitions;
  request.warmup = options.request.warmup;
  request.quick = options.request.quick;
  int rank = 0;
#ifdef CHUNKFLOW_HAVE_MPI
  std::unique_ptr<MpiSession> session;  // finalised after the file is written
  if (launched_by_mpirun()) {
    session = std::make_unique<MpiSession>();
    rank = session->rank();
  }
#endif
  const bool show = rank == 0 && !options.quiet && ::isatty(STDERR_FILENO);
  StatusOr<GpuCalibration> calibration = calibrate_gpu(request, progress_line(show));
  if (show) std::fputs("\r\033[K", stderr);
  if (!calibration.ok()) {
    return rank == 0 ? report(calibration.status()) : calibration.status().exit_code();
  }
  if (!calibration->root) return 0;
  if (Status s = write_file_atomic(out, gpu_calibration_yaml(*calibration)); !s.ok()) {
    return report(s);
  }
  if (options.quiet) return 0;
  const std::string text =
      gpu_calibration_summary(*calibration) +
      fmt::format(
          "\nmeasured in {:.1f} s; hardware file written to {} (a job reads it as "
          "`cluster.gpu: {}`)\n",
          calibration->seconds, out, out);
  std::fputs(text.c_str(), stdout);
  return 0;
}

// --from-profile: every flag checked and the profiles read before the file is written.
int run_calibrate_profile(const CalibrateOptions& options) {
  for (const CLI::Option* measuring :
       {options.backend, options.model, options.max_tokens, options.threads, options.quick}) {
    if (measuring->count() > 0) {
      return report(Status::InvalidInput(fmt::format(
          "{}: --from-profile fits the profiles, it measures nothing", measuring->get_name())));
    }
  }
  if (options.gpu->count() == 0) {
    return report(Status::InvalidInput(
        "--from-profile needs --gpu BASE: the hardware file (a name under models/hardware/ or a "
        "path) whose peak FLOP/s and bandwidths the profiled device has"));
  }
  if (options.out.empty()) {
    return report(
        Status::InvalidInput("--from-profile needs --out FILE.yaml: the hardware file "
                             "to write"));
  }
  if (Status s = check_output_path(options.out); !s.ok()) return report(s);
  StatusOr<GpuSpec> base = load_gpu(options.gpu_request.gpu);
  if (!base.ok()) return report(base.status());
  const bool show = !options.quiet && ::isatty(STDERR_FILENO);
  StatusOr<std::vector<RankProfile>> profiles =
      read_profiles(options.profiles, show ? ProfileProgress([](int64_t done, int64_t total) {
                      std::fprintf(stderr, "\r\033[K[%3d%%] reading the profiles",
                                   total > 0 ? static_cast<int>(100 * done / total) : 0);
                    })
                                           : ProfileProgress());
  if (show) std::fputs("\r\033[K", stderr);
  if (!profiles.ok()) return report(profiles.status());
  StatusOr<ProfileCalibration> calibration =
      calibrate_from_profiles(*profiles, *base, options.gpu_request.gpu);
  if (!calibration.ok()) return report(calibration.status());
  if (Status s = write_file_atomic(options.out, profile_calibration_yaml(*calibration)); !s.ok()) {
    return report(s);
  }
  if (options.quiet) return 0;
  const std::string text = profile_calibration_summary(*calibration) +
                           fmt::format(
                               "\nhardware file written to {} (a job reads it as "
                               "`cluster.gpu: {}`)\n",
                               options.out, options.out);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace

void add_calibrate_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<CalibrateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "Measure this machine: the executor's op costs into a calibration table (cpu), or the "
      "GPU into a hardware file for the analytical cost model (cuda)");
  CalibrationRequest& request = options->request;
  options->backend = cmd->add_option("-b,--backend", request.backend, "backend to measure")
                         ->check(CLI::IsMember({"cpu", "cuda"}))
                         ->capture_default_str();
  cmd->add_option("-o,--out", options->out,
                  fmt::format("file to write: the calibration table (cpu, JSON; default {}) or "
                              "the hardware file (cuda, YAML; default {})",
                              kCpuOut, kGpuOut));
  options->model =
      cmd->add_option("-m,--model", request.models,
                      "model(s) whose layer shapes are measured (names under models/ or paths); "
                      "default tiny (cpu), qwen2.5-0.5b (cuda)");
  options->gpu = cmd->add_option(
      "--gpu", options->gpu_request.gpu,
      "cuda and --from-profile: the base hardware file whose datasheet values are kept (a name "
      "under models/hardware/ or a path); cuda's default from the device's name (H100, H200, "
      "A100, H800 SXM)");
  options->max_tokens =
      cmd->add_option("--max-tokens", request.max_tokens, "cpu: largest chunk of the token grids")
          ->check(CLI::Range(int64_t{4}, int64_t{1} << 20))
          ->capture_default_str();
  cmd->add_option("-r,--repetitions", request.repetitions,
                  "timed runs per point (the fastest is kept)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("-w,--warmup", request.warmup, "untimed runs before them")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  options->threads =
      cmd->add_option("--threads", request.threads,
                      "cpu: step slowdown measured for 1..N stage threads (pp·dp of a job), N at "
                      "most the usable cores; more threads are priced in proportion and flagged")
          ->check(CLI::Range(1, 256))
          ->capture_default_str();
  options->quick =
      cmd->add_flag("--quick", request.quick,
                    "tiny grids and 3 repetitions (seconds; for tests, not for predictions)");
  cmd->add_flag("-q,--quiet", options->quiet, "no progress and no summary");
  cmd->add_option("--from-profile", options->profiles,
                  "fit the hardware file to PyTorch profiler traces (one per rank, .json or "
                  ".json.gz, recorded with record_shapes=True) instead of measuring; needs --gpu "
                  "and --out")
      ->expected(1, static_cast<int>(limits::kMaxGpus));
  cmd->callback([run, options] {
    *run = [options] {
      if (!options->profiles.empty()) return run_calibrate_profile(*options);
      return options->request.backend == "cuda" ? run_calibrate_gpu(*options)
                                                : run_calibrate_cpu(*options);
    };
  });
}

}  // namespace cf::cli
