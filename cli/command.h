// The `chunkflow` subcommands. Each command file registers one subcommand on the app and
// sets `*run` to the function main() calls after parsing; that function returns the exit
// code (0 success, 1 runtime failure, 2 bad input). Commands print; libraries never exit.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "core/status.h"
#include "sim/plan/job.h"

namespace cf::cli {

using RunFn = std::function<int()>;

void add_plan_command(CLI::App& app, RunFn* run);
void add_simulate_command(CLI::App& app, RunFn* run);
void add_compare_command(CLI::App& app, RunFn* run);
void add_tune_command(CLI::App& app, RunFn* run);
void add_sweep_command(CLI::App& app, RunFn* run);
void add_run_command(CLI::App& app, RunFn* run);
void add_calibrate_command(CLI::App& app, RunFn* run);
void add_validate_command(CLI::App& app, RunFn* run);
void add_profile_command(CLI::App& app, RunFn* run);

// Prints a failed status as "chunkflow: error: MESSAGE" on stderr and returns its exit code.
int report(const Status& status);

// Writes `text` to `path` atomically (temporary file in its directory, then rename): nothing
// half-written. Replaces only a regular file or creates a missing one; a symbolic link (never
// followed), a directory, device, pipe or socket is refused (InvalidInput, exit 2).
Status write_file_atomic(const std::string& path, const std::string& text);
// What write_file_atomic refuses, judged without writing.
Status check_output_path(const std::string& path);

// trace.json -> trace.job.yaml: where the resolved job is saved beside an output file.
std::string resolved_job_path(const std::string& output_path);
// Writes `text` to `output_path` and the job's resolved YAML beside it, both atomically.
Status write_with_resolved_job(const std::string& output_path, const std::string& text,
                               const Job& job);
// "\ntrace written to PATH (resolved job: PATH.job.yaml)\n" for text reports.
std::string written_note(const std::string& output_path);

}  // namespace cf::cli
