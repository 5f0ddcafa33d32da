// The op level of a prediction against profiles (compare_profile.h): the chunkflow marks of
// one step of one rank per (dp_rank, stage) become a measured Trace, which compare_traces
// joins to the prediction on OpKey as it joins an executor's trace.
#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "traces/compare_profile.h"

namespace cf {
namespace {

// A mark with the times compared and the CPU-side start that places it in a step.
struct TimedMark {
  MarkOp op;
  int64_t start_ns = 0, end_ns = 0;
  int64_t cpu_start_ns = 0;
};

TimedMark timed(const ProfileMark& times, const ProfileMark& placed) {
  return {placed.op, times.start_ns, times.end_ns, placed.start_ns};
}

// The marks of one rank with the times to compare: the device copies (gpu_user_annotation)
// when each CPU mark has one — paired by name and order of start — else the CPU ranges.
std::vector<TimedMark> timed_marks(const ProfiledRank& r, std::string* source) {
  const ProfileMarks& m = r.marks;
  std::vector<TimedMark> out;
  if (m.cpu.empty()) {  // device copies alone: they place themselves
    *source = "gpu_user_annotation";
    for (const ProfileMark& d : m.device) out.push_back(timed(d, d));
    return out;
  }
  if (!m.device.empty()) {
    std::map<std::string, std::vector<const ProfileMark*>> device_by_name;
    std::map<std::string, std::size_t> cpu_count;
    for (const ProfileMark& d : m.device) device_by_name[mark_name(d.op)].push_back(&d);
    for (const ProfileMark& c : m.cpu) ++cpu_count[mark_name(c.op)];
    bool paired = device_by_name.size() == cpu_count.size();
    for (const auto& [name, count] : cpu_count) {
      auto it = device_by_name.find(name);
      paired = paired && it != device_by_name.end() && it->second.size() == count;
    }
    if (paired) {
      *source = "gpu_user_annotation";
      std::map<std::string, std::size_t> next;
      for (const ProfileMark& c : m.cpu) {
        const std::string name = mark_name(c.op);
        out.push_back(timed(*device_by_name[name][next[name]++], c));
      }
      return out;
    }
  }
  *source = r.profile.format == ProfileFormat::kLegacyList ? "legacy list events"
            : m.device.empty()                             ? "user_annotation"
                               : "user_annotation (the gpu_user_annotation copies do not pair "
                                 "with them)";
  for (const ProfileMark& c : m.cpu) out.push_back(timed(c, c));
  return out;
}

// The marks of the step compared: the last step holding as many marks as the most-marked one
// (the last complete step; earlier ones may be warm-up), each mark in the ProfilerStep its CPU
// range starts in. Without steps, or with no mark inside one, every mark.
std::vector<TimedMark> step_marks(const RankProfile& p, std::vector<TimedMark> marks,
                                  std::string* step_name) {
  std::vector<int> step_of(marks.size(), -1);
  std::vector<int> count(p.steps.size(), 0);
  for (std::size_t i = 0; i < marks.size(); ++i) {
    // The last step to start at or before the mark (steps come by start), if it holds it.
    const int64_t t = marks[i].cpu_start_ns;
    const auto after =
        std::upper_bound(p.steps.begin(), p.steps.end(), t,
                         [](int64_t v, const ProfileStep& s) { return v < s.start_ns; });
    if (after == p.steps.begin() || t >= (after - 1)->start_ns + (after - 1)->duration_ns) continue;
    step_of[i] = static_cast<int>(after - 1 - p.steps.begin());
    ++count[static_cast<std::size_t>(step_of[i])];
  }
  const int most = count.empty() ? 0 : *std::max_element(count.begin(), count.end());
  if (most == 0) {
    *step_name = p.steps.empty() ? "(whole profile)" : "(outside the ProfilerStep ranges)";
    return marks;
  }
  int chosen = 0;
  for (std::size_t s = 0; s < count.size(); ++s) {
    if (count[s] == most) chosen = static_cast<int>(s);
  }
  *step_name = p.steps[static_cast<std::size_t>(chosen)].name;
  std::vector<TimedMark> out;
  for (std::size_t i = 0; i < marks.size(); ++i) {
    if (step_of[i] == chosen) out.push_back(marks[i]);
  }
  return out;
}

TraceOp mark_op(const TimedMark& m, const RankPlace& place) {
  TraceOp op;
  op.dp_rank = place.dp_rank;
  op.stage = place.stage;
  op.kind = m.op.kind;
  op.pass = m.op.pass;
  op.chunk = m.op.chunk;
  op.model_chunk = m.op.model_chunk;
  op.start_ns = m.start_ns;
  op.end_ns = m.end_ns;
  return op;
}

// Send and recv marks name no pass: the k-th marked send (recv) of a chunk on a stage, by
// start, takes the pass of the k-th predicted one (a chunk's activation goes forward before
// its gradient comes back).
void infer_message_passes(const Trace& predicted, Trace* measured) {
  using Key = std::tuple<int, int, OpKind, int, int>;  // dp_rank, stage, kind, chunk, model_chunk
  auto key_of = [](const TraceOp& op) {
    return Key{op.dp_rank, op.stage, op.kind, op.chunk, op.model_chunk};
  };
  auto by_start = [](const TraceOp* a, const TraceOp* b) {
    return std::tie(a->start_ns, a->end_ns) < std::tie(b->start_ns, b->end_ns);
  };
  std::map<Key, std::vector<const TraceOp*>> predicted_by_key;
  std::map<Key, std::vector<TraceOp*>> measured_by_key;
  for (const TraceOp& op : predicted.ops) {
    if (op.kind == OpKind::kSend || op.kind == OpKind::kRecv) {
      predicted_by_key[key_of(op)].push_back(&op);
    }
  }
  for (TraceOp& op : measured->ops) {
    if (op.kind == OpKind::kSend || op.kind == OpKind::kRecv) {
      measured_by_key[key_of(op)].push_back(&op);
    }
  }
  for (auto& [key, ops] : measured_by_key) {
    auto it = predicted_by_key.find(key);
    if (it == predicted_by_key.end()) continue;
    std::vector<const TraceOp*>& planned = it->second;
    std::stable_sort(planned.begin(), planned.end(), by_start);
    std::stable_sort(ops.begin(), ops.end(), by_start);
    for (std::size_t k = 0; k < ops.size() && k < planned.size(); ++k) {
      ops[k]->pass = planned[k]->pass;
    }
  }
}

}  // namespace

StatusOr<MarkedOpsComparison> compare_marked_ops(const Trace& predicted,
                                                 const std::vector<ProfiledRank>& ranks,
                                                 const ProfileLayout& layout) {
  MarkedOpsComparison out;
  for (const ProfiledRank& r : ranks) {
    for (const auto& [name, count] : r.marks.unknown) out.unknown[name] += count;
  }
  // One rank per (dp_rank, stage): the lowest with marks (ranks come sorted).
  std::set<std::pair<int, int>> shown;
  std::set<OpKind> marked_kinds;
  out.measured.source = "measured";
  for (const ProfiledRank& r : ranks) {
    if (r.marks.cpu.empty() && r.marks.device.empty()) continue;
    const RankPlace place = place_of_rank(layout, r.profile.rank);
    if (!shown.insert({place.dp_rank, place.stage}).second) {
      out.ranks_not_compared.push_back(r.profile.rank);
      continue;
    }
    MarkedRank row;
    row.rank = r.profile.rank;
    row.place = place;
    const std::vector<TimedMark> marks =
        step_marks(r.profile, timed_marks(r, &row.time_source), &row.step);
    row.marks = static_cast<int>(marks.size());
    for (const TimedMark& m : marks) {
      out.measured.ops.push_back(mark_op(m, place));
      marked_kinds.insert(m.op.kind);
    }
    out.ranks.push_back(row);
  }
  if (out.ranks.empty()) {
    out.reason =
        "no chunkflow marks in the profiles: the training script marks no op "
        "(docs/PROFILES.md, \"Marks\")";
    return out;
  }
  // The prediction's part the marks can answer: their stages, their kinds.
  std::set<OpKind> unmarked;
  out.predicted.source = predicted.source;
  out.predicted.metrics = predicted.metrics;
  for (const TraceOp& op : predicted.ops) {
    if (!shown.contains({op.dp_rank, op.stage})) continue;
    if (marked_kinds.contains(op.kind)) {
      out.predicted.ops.push_back(op);
    } else {
      unmarked.insert(op.kind);
    }
  }
  for (OpKind kind : unmarked) out.not_marked.push_back(op_kind_name(kind));
  infer_message_passes(out.predicted, &out.measured);
  StatusOr<CompareReport> report = compare_traces(out.predicted, out.measured);
  if (!report.ok()) {
    return Status::InvalidInput(fmt::format(
        "the profiles' chunkflow marks against the prediction: {}", report.status().message()));
  }
  out.report = std::move(*report);
  out.available = true;
  return out;
}

}  // namespace cf
