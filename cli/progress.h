// The progress line of `chunkflow tune` and `chunkflow sweep` on stderr (the text is
// tuner/progress.h's): drawn only when stderr is a terminal and neither --quiet nor --json was
// given, redrawn at most every 0.1 s, and cleared before the report is printed.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "tuner/progress.h"
#include "tuner/search_space.h"
#include "tuner/tuner.h"

namespace cf::cli {

// Whether to show progress: stderr is a terminal, and neither --quiet nor --json.
bool show_progress(bool quiet, bool json);

class ProgressDisplay {
 public:
  // `what` names the search ("tune"); `objective` ranks the best so far. Disabled: draws nothing.
  ProgressDisplay(bool enabled, std::string what, Objective objective);
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;
  ~ProgressDisplay() { finish(); }

  // Installs the progress and feasible hooks on `options` (nothing when disabled). The display
  // must outlive every tune() call made with them.
  void attach(TuneOptions* options);
  // A sweep: point i (0-based) of n, described by `label`, starts; counts and best restart.
  void begin_point(int i, int n, const std::string& label);
  // Counts done of total, for work that is not a search (simulate's steps).
  void advance(int done, int total) {
    if (enabled_) on_progress(done, total);
  }
  // Clears the line (once something was drawn).
  void finish();

 private:
  void on_progress(int done, int total);
  void on_feasible(const Candidate& candidate, const SimMetrics& metrics);
  void draw(bool force);  // with mu_ held

  const bool enabled_;
  const std::string what_;
  const Objective objective_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::mutex mu_;
  SearchProgress progress_;
  double best_score_ = 0;
  bool have_best_ = false;
  int point_ = 0, points_ = 1;  // a sweep's current point and its count
  double last_draw_s_ = -1;
  bool drawn_ = false;
};

}  // namespace cf::cli
