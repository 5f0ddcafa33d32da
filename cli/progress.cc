// The progress display of tune and sweep (progress.h).
#include "cli/progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

#include "tuner/report.h"

namespace cf::cli {
namespace {

constexpr double kRedrawS = 0.1;

// The terminal's width, less one column so that the line never wraps.
int stderr_columns() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 20) return size.ws_col - 1;
  return 99;
}

}  // namespace

bool show_progress(bool quiet, bool json) { return !quiet && !json && ::isatty(STDERR_FILENO); }

ProgressDisplay::ProgressDisplay(bool enabled, std::string what, Objective objective)
    : enabled_(enabled), what_(std::move(what)), objective_(objective) {
  progress_.what = what_;
}

void ProgressDisplay::attach(TuneOptions* options) {
  if (!enabled_) return;
  options->progress = [this](int done, int total) { on_progress(done, total); };
  options->feasible = [this](const Candidate& c, const SimMetrics& m) { on_feasible(c, m); };
}

void ProgressDisplay::begin_point(int i, int n, const std::string& label) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  point_ = i;
  points_ = n;
  progress_.what = fmt::format("{} {}/{} {}", what_, i + 1, n, label);
  progress_.done = progress_.total = 0;
  progress_.best.clear();
  have_best_ = false;
  draw(true);
}

void ProgressDisplay::on_progress(int done, int total) {
  std::lock_guard<std::mutex> lock(mu_);
  progress_.done = done;
  progress_.total = total;
  draw(done == total);
}

void ProgressDisplay::on_feasible(const Candidate& c, const SimMetrics& m) {
  if (c.strategy.kind != StrategyKind::kChunkFlow) return;  // the baseline is not the answer
  std::lock_guard<std::mutex> lock(mu_);
  const double score = objective_score(objective_, m);
  if (have_best_ && score >= best_score_) return;
  have_best_ = true;
  best_score_ = score;
  const std::string value = objective_ == Objective::kStepTime
                                ? fmt::format("{:.4f} s/step", m.step_time_s)
                                : format_rate(m.tokens_per_s) + " tokens/s";
  progress_.best = fmt::format("{} ChunkSize {} K {} {}", value, c.strategy.chunk_size,
                               c.strategy.k, describe(c.layout));
}

void ProgressDisplay::draw(bool force) {
  const double now_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (!force && drawn_ && now_s - last_draw_s_ < kRedrawS) return;
  last_draw_s_ = now_s;
  progress_.elapsed_s = now_s;
  const double within = progress_.total > 0 ? double(progress_.done) / progress_.total : 0.0;
  progress_.fraction = (point_ + within) / points_;
  std::fprintf(stderr, "\r%s\033[K", progress_line(progress_, stderr_columns()).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressDisplay::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace cf::cli
