// `chunkflow compare PREDICTED.json MEASURED... [--json] [--html FILE] [--tp N] [--cp N]`: the
// error report of a predicted trace (simulate) against a measured one (run) of the same plan,
// or against PyTorch profiles of it, one file per rank (docs/PROFILES.md).
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "core/limits.h"
#include "core/resources.h"
#include "traces/compare.h"
#include "traces/compare_profile.h"
#include "traces/html_report.h"
#include "traces/trace.h"

namespace cf::cli {
namespace {

struct CompareOptions {
  std::string predicted_path;
  std::vector<std::string> measured_paths;
  bool json = false;
  std::string html_path;
  int tp = 0, cp = 0;  // 0: not given
};

// A regular file of at most limits::kMaxTraceFileBytes (read_text_file refuses a directory,
// a device or a pipe before reading), parsed with the JSON depth bound.
StatusOr<Trace> read_trace(const std::string& path) {
  CF_ASSIGN_OR_RETURN(const std::string text, read_text_file(path, limits::kMaxTraceFileBytes,
                                                             limits::kMaxTraceFileBytesWhy));
  return trace_from_chrome_json(text, path);
}

int write_and_print(const CompareOptions& options, const std::string& html,
                    const std::string& out) {
  if (!options.html_path.empty()) {
    const Status written = write_file_atomic(options.html_path, html);
    if (!written.ok()) return report(written);
  }
  std::fputs(out.c_str(), stdout);
  return 0;
}

int compare_with_trace(const CompareOptions& options, const Trace& predicted) {
  const std::string& measured_path = options.measured_paths.front();
  StatusOr<Trace> measured = read_trace(measured_path);
  if (!measured.ok()) return report(measured.status());
  StatusOr<CompareReport> comparison = compare_traces(predicted, *measured);
  if (!comparison.ok()) {
    return report(Status::InvalidInput(fmt::format("{} vs {}: {}", options.predicted_path,
                                                   measured_path, comparison.status().message())));
  }
  return write_and_print(
      options,
      options.html_path.empty() ? "" : compare_report_html(*comparison, predicted, *measured),
      options.json ? compare_report_json(*comparison) : compare_report_text(*comparison));
}

int compare_with_profiles(const CompareOptions& options, const Trace& predicted) {
  StatusOr<std::vector<ProfiledRank>> ranks = read_profiled_ranks(options.measured_paths);
  if (!ranks.ok()) return report(ranks.status());
  LayoutFlags flags;
  if (options.tp > 0) flags.tp = options.tp;
  if (options.cp > 0) flags.cp = options.cp;
  StatusOr<ProfileCompareReport> comparison = compare_with_profiles(predicted, *ranks, flags);
  if (!comparison.ok()) {
    return report(
        Status::InvalidInput(fmt::format("{} vs {} profile(s): {}", options.predicted_path,
                                         ranks->size(), comparison.status().message())));
  }
  return write_and_print(
      options, options.html_path.empty() ? "" : profile_compare_html(*comparison),
      options.json ? profile_compare_json(*comparison) : profile_compare_text(*comparison));
}

int run_compare(const CompareOptions& options) {
  StatusOr<Trace> predicted = read_trace(options.predicted_path);
  if (!predicted.ok()) return report(predicted.status());
  // A PyTorch profile (gzip, a list, or traceEvents without chunkflow's header) or several,
  // else chunkflow's own measured trace, read as it always was.
  std::vector<std::string> profiles, traces;
  for (const std::string& path : options.measured_paths) {
    (is_profile_file(path) ? profiles : traces).push_back(path);
  }
  if (!profiles.empty() && !traces.empty()) {
    return report(Status::InvalidInput(fmt::format(
        "{}: not a PyTorch profile, while {} is: give one chunkflow trace, or one profile per "
        "rank",
        traces.front(), profiles.front())));
  }
  if (profiles.empty()) {
    if (traces.size() > 1) {
      return report(Status::InvalidInput(fmt::format(
          "{} measured chunkflow traces: compare takes one (several files are PyTorch profiles, "
          "one per rank)",
          traces.size())));
    }
    if (options.tp > 0 || options.cp > 0) {
      return report(Status::InvalidInput(
          "--tp and --cp place the ranks of PyTorch profiles; a chunkflow trace names its own"));
    }
    return compare_with_trace(options, *predicted);
  }
  return compare_with_profiles(options, *predicted);
}

}  // namespace

void add_compare_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<CompareOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Compare a predicted trace with a measured one of the same plan, or with PyTorch profiles");
  cmd->add_option("predicted", options->predicted_path, "predicted trace (Chrome trace JSON)")
      ->required();
  cmd->add_option("measured", options->measured_paths,
                  "measured trace (chunkflow run's Chrome trace JSON), or PyTorch profiler "
                  "traces, one per rank (.json or .json.gz)")
      ->required();
  cmd->add_flag("-j,--json", options->json, "print the report as JSON");
  cmd->add_option("--html", options->html_path,
                  "also write a self-contained HTML report (timelines and tables) to FILE");
  cmd->add_option("--tp", options->tp,
                  "profiles: tensor-parallel size, for a predicted trace that does not record it")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--cp", options->cp,
                  "profiles: context-parallel size, for a predicted trace that does not record it")
      ->check(CLI::Range(1, 1 << 20));
  cmd->callback([run, options] { *run = [options] { return run_compare(*options); }; });
}

}  // namespace cf::cli
