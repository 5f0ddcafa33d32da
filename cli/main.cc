// chunkflow: the command-line entry point. Parses flags (CLI11) and dispatches to the
// subcommand that was named; exit code 2 for bad flags, as for bad input files.
#include <cstdio>

#include "cli/command.h"
#include "executor/calibrate/executor_memory.h"

int main(int argc, char** argv) {
  cf::install_executor_memory();  // memory_model: executor (sim/memory_source.h)
  CLI::App app{"chunkflow: plan, simulate, tune and run ChunkFlow long-context training"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "chunkflow " CHUNKFLOW_VERSION);
  cf::cli::RunFn run;
  cf::cli::add_plan_command(app, &run);
  cf::cli::add_simulate_command(app, &run);
  cf::cli::add_compare_command(app, &run);
  cf::cli::add_tune_command(app, &run);
  cf::cli::add_sweep_command(app, &run);
  cf::cli::add_run_command(app, &run);
  cf::cli::add_calibrate_command(app, &run);
  cf::cli::add_validate_command(app, &run);
  cf::cli::add_profile_command(app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return run ? run() : 2;
}
