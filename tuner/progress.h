// One line of a search's progress for `chunkflow tune` and `chunkflow sweep` (docs/TUNING.md,
// "Progress"): what is searched, candidates settled of the total, the best so far, the time
// elapsed and an estimate of the time left. Pure formatting: the commands decide whether and
// when to draw it (stderr, a terminal, not --quiet or --json); the tuner never prints.
#pragma once

#include <optional>
#include <string>

namespace cf {

struct SearchProgress {
  std::string what;  // "tune", "sweep 3/8 qwen2.5-7b, lmsys-chat-1m, 32 × h100-sxm-80g, ..."
  int done = 0;      // candidates settled (simulated or pruned) of this search
  int total = 0;     // its candidates, ChunkFlow and baseline together
  std::string best;  // the best feasible candidate so far ("" while none fits)
  double elapsed_s = 0;
  // Share of the whole command done, in [0, 1]: done / total for tune; for a sweep, the points
  // finished plus this point's done / total, over the points.
  double fraction = 0;
};

// Time left if every candidate still open settles at the rate so far: elapsed · (1 − fraction)
// / fraction; nullopt before 1% is done (too little to go on). It is shown as "at most": the
// candidates that the time bound prunes settle together, at once, at the end of a search, so
// the real time left is usually shorter (much shorter when most candidates are pruned).
std::optional<double> remaining_estimate_s(double elapsed_s, double fraction);

// "0.4 s", "12 s", "3 min 05 s", "1 h 02 min".
std::string format_duration(double seconds);

// The line, at most `columns` characters wide (the best-so-far text is cut with "…" to fit):
// "tune [####................]  410/1666  24%  3.1 s, at most ~9.8 s left  best 1.8549 s/step
// ChunkSize 8192 K 4 tp4 pp4 dp2 sp selective 1f1b". No carriage return or escape sequence: the
// caller draws it.
std::string progress_line(const SearchProgress& progress, int columns = 120);

}  // namespace cf
