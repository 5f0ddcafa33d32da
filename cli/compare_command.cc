// `chunkflow compare PREDICTED.json MEASURED.json [--json] [--html FILE]`: the error report
// of a predicted trace (simulate) against a measured one (run) of the same plan.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "core/limits.h"
#include "core/resources.h"
#include "traces/compare.h"
#include "traces/html_report.h"
#include "traces/trace.h"

namespace cf::cli {
namespace {

struct CompareOptions {
  std::string predicted_path;
  std::string measured_path;
  bool json = false;
  std::string html_path;
};

// A regular file of at most limits::kMaxTraceFileBytes (read_text_file refuses a directory,
// a device or a pipe before reading), parsed with the JSON depth bound.
StatusOr<Trace> read_trace(const std::string& path) {
  CF_ASSIGN_OR_RETURN(const std::string text, read_text_file(path, limits::kMaxTraceFileBytes,
                                                             limits::kMaxTraceFileBytesWhy));
  return trace_from_chrome_json(text, path);
}

int run_compare(const CompareOptions& options) {
  StatusOr<Trace> predicted = read_trace(options.predicted_path);
  if (!predicted.ok()) return report(predicted.status());
  StatusOr<Trace> measured = read_trace(options.measured_path);
  if (!measured.ok()) return report(measured.status());
  StatusOr<CompareReport> comparison = compare_traces(*predicted, *measured);
  if (!comparison.ok()) {
    return report(
        Status::InvalidInput(fmt::format("{} vs {}: {}", options.predicted_path,
                                         options.measured_path, comparison.status().message())));
  }
  if (!options.html_path.empty()) {
    const Status written = write_file_atomic(
        options.html_path, compare_report_html(*comparison, *predicted, *measured));
    if (!written.ok()) return report(written);
  }
  const std::string out =
      options.json ? compare_report_json(*comparison) : compare_report_text(*comparison);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace

void add_compare_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<CompareOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Compare a predicted trace with a measured one of the same plan");
  cmd->add_option("predicted", options->predicted_path, "predicted trace (Chrome trace JSON)")
      ->required();
  cmd->add_option("measured", options->measured_path, "measured trace (Chrome trace JSON)")
      ->required();
  cmd->add_flag("-j,--json", options->json, "print the report as JSON");
  cmd->add_option("--html", options->html_path,
                  "also write a self-contained HTML report (timelines and tables) to FILE");
  cmd->callback([run, options] { *run = [options] { return run_compare(*options); }; });
}

}  // namespace cf::cli
