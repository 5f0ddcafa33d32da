// `chunkflow profile FILE... [--json]`: what PyTorch profiler traces say, one file per rank —
// step times, GPU busy and idle time per step and stream, device time by kernel class, the
// largest kernels, the collectives' sizes (traces/profile.h, docs/PROFILES.md).
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "traces/profile.h"

namespace cf::cli {
namespace {

struct ProfileOptions {
  std::vector<std::string> paths;
  bool json = false;
  bool quiet = false;
};

// "profile rank0.json.gz: 41% of 512.0 MB" on stderr while a file is read: drawn only when
// stderr is a terminal and neither --quiet nor --json was given, at most every 0.1 s, after
// the first second, and cleared before the report is printed.
class ReadProgress {
 public:
  explicit ReadProgress(bool enabled) : enabled_(enabled) {}
  ~ReadProgress() { finish(); }

  ProfileProgress callback(const std::string& path) {
    if (!enabled_) return nullptr;
    return
        [this, name = std::filesystem::path(path).filename().string()](int64_t read, int64_t size) {
          const double now_s = std::chrono::duration<double>(Clock::now() - start_).count();
          if (now_s < 1.0 || now_s - last_draw_s_ < 0.1) return;
          last_draw_s_ = now_s;
          const double mb = static_cast<double>(size) / 1e6;
          std::fprintf(
              stderr, "\r\033[Kprofile %s: %.0f%% of %.1f MB", name.c_str(),
              size > 0 ? 100.0 * static_cast<double>(read) / static_cast<double>(size) : 0.0, mb);
          std::fflush(stderr);
          drawn_ = true;
        };
  }

  void finish() {
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  const bool enabled_;
  const Clock::time_point start_ = Clock::now();
  double last_draw_s_ = -1;
  bool drawn_ = false;
};

int run_profile(const ProfileOptions& options) {
  ReadProgress progress(!options.quiet && !options.json && ::isatty(STDERR_FILENO));
  std::vector<RankProfile> ranks;
  // Files are read one at a time (each keeps only its summary), so that the progress line can
  // name the file.
  for (std::size_t i = 0; i < options.paths.size(); ++i) {
    StatusOr<RankProfile> rank =
        read_profile(options.paths[i], static_cast<int>(i), progress.callback(options.paths[i]));
    if (!rank.ok()) {
      progress.finish();
      return report(rank.status());
    }
    ranks.push_back(std::move(*rank));
  }
  progress.finish();
  StatusOr<std::vector<RankProfile>> checked = check_profile_ranks(std::move(ranks));
  if (!checked.ok()) return report(checked.status());
  const std::string out =
      options.json ? profile_report_json(*checked) : profile_report_text(*checked);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace

void add_profile_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<ProfileOptions>();
  CLI::App* cmd = app.add_subcommand(
      "profile",
      "Summarise PyTorch profiler traces (Kineto .json/.json.gz, or torch 1.x event lists), one "
      "file per rank: steps, GPU busy/idle, kernel time by class, collectives");
  cmd->add_option("files", options->paths, "profile files, one per rank")->required();
  cmd->add_flag("-j,--json", options->json, "print the report as JSON");
  cmd->add_flag("-q,--quiet", options->quiet, "no progress line while reading");
  cmd->callback([run, options] { *run = [options] { return run_profile(*options); }; });
}

}  // namespace cf::cli
