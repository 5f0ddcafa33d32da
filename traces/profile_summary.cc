// From the kept events of one profile to its RankProfile (profile_events.h): device time by
// class, busy time per step as the measure of a union of intervals (the devices', and the main
// CPU thread's), time by class per step, CPU self time by a stack walk per thread, the largest
// kernels and ops. All times are integer ns; sums saturate at
// 2^62 ns (146 years), which only a hostile file reaches.
#include <algorithm>
#include <limits>
#include <numeric>

#include "traces/profile_events.h"

namespace cf {
namespace {

constexpr int64_t kSumCap = int64_t{1} << 62;
constexpr std::size_t kTopCount = 10;
// Per-step busy time per device and per stream is reported while steps × (devices + streams)
// stays within this many entries (a real profile: tens of steps, a few streams); past it each
// step keeps its total alone, so the report's size stays bounded.
constexpr int64_t kMaxStepDetail = int64_t{1} << 18;

void add_capped(int64_t* sum, int64_t value) { *sum = std::min(kSumCap, *sum + value); }

// The measure of a union of intervals before each of a sorted list of query times,
// B(t) = |union ∩ (-inf, t)|, computed in one pass over the intervals in order of start for
// several groups at once (all devices, each device, each stream). Memory: one int64 per group
// and query, none per interval; busy time in a step [s, e) is then B(e) - B(s).
class UnionSweep {
 public:
  UnionSweep(std::vector<int64_t> queries, std::size_t groups)
      : queries_(std::move(queries)), groups_(groups), measure_(groups * queries_.size()) {}

  // The next interval of `group`, in nondecreasing order of start within the group.
  void add(std::size_t group, int64_t start, int64_t end) {
    Group& g = groups_[group];
    if (g.open && start <= g.end) {
      g.end = std::max(g.end, end);
      return;
    }
    answer(group, start);  // the queries up to this start see the spans before it
    if (g.open) g.closed += g.end - g.start;
    g.start = start;
    g.end = end;
    g.open = true;
  }
  void finish() {
    for (std::size_t group = 0; group < groups_.size(); ++group) {
      answer(group, std::numeric_limits<int64_t>::max());
    }
  }
  // |union of `group` ∩ [start, end)|, both times among the queries.
  int64_t within(std::size_t group, int64_t start, int64_t end) const {
    return at(group, end) - at(group, start);
  }

 private:
  struct Group {
    int64_t closed = 0;  // the measure of the spans before the open one
    int64_t start = 0, end = 0;
    bool open = false;
    std::size_t next_query = 0;
  };
  void answer(std::size_t group, int64_t limit) {
    Group& g = groups_[group];
    for (; g.next_query < queries_.size() && queries_[g.next_query] <= limit; ++g.next_query) {
      const int64_t t = queries_[g.next_query];
      measure_[group * queries_.size() + g.next_query] =
          g.closed + (g.open ? std::clamp<int64_t>(t - g.start, 0, g.end - g.start) : 0);
    }
  }
  int64_t at(std::size_t group, int64_t t) const {
    const auto it = std::lower_bound(queries_.begin(), queries_.end(), t);
    return measure_[group * queries_.size() + static_cast<std::size_t>(it - queries_.begin())];
  }
  std::vector<int64_t> queries_;
  std::vector<Group> groups_;
  std::vector<int64_t> measure_;
};

// Indices of the (at most kTopCount) largest totals, ties by name.
std::vector<ProfileNameTotal> top_names(const std::vector<ProfileName>& names,
                                        const std::vector<int64_t>& totals,
                                        const std::vector<int64_t>& counts,
                                        std::optional<DeviceActivity> only) {
  std::vector<int32_t> order;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (counts[i] > 0 && (!only || names[i].activity == *only)) {
      order.push_back(static_cast<int32_t>(i));
    }
  }
  const std::size_t n = std::min(kTopCount, order.size());
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int32_t a, int32_t b) {
    if (totals[a] != totals[b]) return totals[a] > totals[b];
    return names[a].text < names[b].text;
  });
  std::vector<ProfileNameTotal> out;
  for (std::size_t k = 0; k < n; ++k) {
    const int32_t i = order[k];
    out.push_back({names[i].text, names[i].classification.kind, totals[i], counts[i]});
  }
  return out;
}

void summarize_device(const ProfileEvents& events, RankProfile* r) {
  const std::vector<ProfileName>& names = events.device_names.names();
  std::vector<int64_t> totals(names.size(), 0), counts(names.size(), 0);
  for (const ProfileInterval& a : events.device) {
    const int64_t ns = a.end_ns - a.start_ns;
    add_capped(&totals[a.name], ns);
    ++counts[a.name];
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    const ProfileName& name = names[i];
    add_capped(&r->device_by_class_ns[static_cast<int>(name.classification.kind)], totals[i]);
    if (name.classification.kind == KernelClass::kCollective) {
      add_capped(&r->collective_ns[static_cast<int>(name.classification.collective)], totals[i]);
    }
    switch (name.activity) {
      case DeviceActivity::kKernel:
        add_capped(&r->kernel_ns, totals[i]);
        r->kernel_count += counts[i];
        break;
      case DeviceActivity::kMemcpy:
        add_capped(&r->memcpy_ns, totals[i]);
        r->memcpy_count += counts[i];
        break;
      case DeviceActivity::kMemset:
        add_capped(&r->memset_ns, totals[i]);
        r->memset_count += counts[i];
        break;
    }
  }
  r->top_kernels = top_names(names, totals, counts, DeviceActivity::kKernel);
}

// Busy time per step: all devices together, and per device and per (device, stream). Sorts
// the kept device intervals by start, in place.
// Every step's start and end, sorted and distinct: where the busy sweeps are read.
std::vector<int64_t> step_boundaries(const std::vector<ProfileStep>& steps) {
  std::vector<int64_t> queries;
  for (const ProfileStep& step : steps) {
    queries.push_back(step.start_ns);
    queries.push_back(step.start_ns + step.duration_ns);
  }
  std::sort(queries.begin(), queries.end());
  queries.erase(std::unique(queries.begin(), queries.end()), queries.end());
  return queries;
}

void summarize_steps(ProfileEvents* events, RankProfile* r) {
  std::vector<ProfileInterval>& device = events->device;
  std::sort(device.begin(), device.end(), [](const ProfileInterval& a, const ProfileInterval& b) {
    return a.start_ns < b.start_ns;
  });
  std::vector<int64_t> queries = step_boundaries(r->steps);

  // Groups: 0 all devices, then each device (by id), then each (device, stream) pair.
  const std::vector<std::pair<int64_t, int64_t>>& tracks = events->device_tracks;
  std::map<int64_t, std::size_t> device_group;
  for (const auto& [dev, stream] : tracks) device_group.emplace(dev, 0);
  const bool detail = static_cast<int64_t>(r->steps.size()) *
                          static_cast<int64_t>(tracks.size() + device_group.size()) <=
                      kMaxStepDetail;
  r->step_detail_omitted = !detail;
  std::size_t groups = 1;
  if (detail) {
    for (auto& [dev, group] : device_group) group = groups++;
    groups += tracks.size();
  }
  const std::size_t first_track = 1 + device_group.size();
  UnionSweep sweep(std::move(queries), groups);
  int64_t open_start = 0, open_end = std::numeric_limits<int64_t>::min();  // the whole profile's
  for (const ProfileInterval& a : device) {
    if (a.start_ns > open_end) {
      if (open_end > open_start) add_capped(&r->gpu_busy_ns, open_end - open_start);
      open_start = a.start_ns;
    }
    open_end = std::max(open_end, a.end_ns);
    sweep.add(0, a.start_ns, a.end_ns);
    if (!detail) continue;
    sweep.add(device_group[tracks[a.track].first], a.start_ns, a.end_ns);
    sweep.add(first_track + static_cast<std::size_t>(a.track), a.start_ns, a.end_ns);
  }
  if (open_end > open_start) add_capped(&r->gpu_busy_ns, open_end - open_start);
  sweep.finish();

  std::vector<std::size_t> track_order(tracks.size());  // streams listed by (device, stream)
  std::iota(track_order.begin(), track_order.end(), 0);
  std::sort(track_order.begin(), track_order.end(),
            [&](std::size_t a, std::size_t b) { return tracks[a] < tracks[b]; });
  for (ProfileStep& step : r->steps) {
    const int64_t start = step.start_ns, end = step.start_ns + step.duration_ns;
    step.gpu_busy_ns = sweep.within(0, start, end);
    if (!detail) continue;
    for (const auto& [dev, group] : device_group) {
      step.devices.push_back({dev, -1, sweep.within(group, start, end)});
    }
    for (std::size_t t : track_order) {
      step.streams.push_back(
          {tracks[t].first, tracks[t].second, sweep.within(first_track + t, start, end)});
    }
  }
}

bool is_mark(const ProfileName& name) { return name.text.starts_with(kMarkPrefix); }

// The step whose range [start, start + duration] holds `t` (the last to start at or before it,
// steps sorted by start); nullptr when none does. `closed`: the range includes its end.
ProfileStep* step_at(std::vector<ProfileStep>& steps, int64_t t, bool closed) {
  auto it = std::upper_bound(steps.begin(), steps.end(), t,
                             [](int64_t v, const ProfileStep& s) { return v < s.start_ns; });
  if (it == steps.begin()) return nullptr;
  ProfileStep& step = *(it - 1);
  const int64_t end = step.start_ns + step.duration_ns;
  return t < end || (closed && t == end) ? &step : nullptr;
}

// Device time by class per step, each activity in the step it starts in.
void summarize_device_classes(const ProfileEvents& events, RankProfile* r) {
  const std::vector<ProfileName>& names = events.device_names.names();
  for (const ProfileInterval& a : events.device) {
    if (ProfileStep* step = step_at(r->steps, a.start_ns, false)) {
      add_capped(&step->by_class_ns[static_cast<int>(names[a.name].classification.kind)],
                 a.end_ns - a.start_ns);
    }
  }
}

// The main CPU thread (the one whose ops, marks aside, cover the most time) and its busy time
// in each step: the measure of the union of its op intervals there. Sorts the kept CPU ops by
// thread, start, and longest first, as summarize_cpu wants them.
void summarize_cpu_busy(ProfileEvents* events, RankProfile* r) {
  std::vector<ProfileInterval>& ops = events->cpu;
  std::sort(ops.begin(), ops.end(), [](const ProfileInterval& a, const ProfileInterval& b) {
    if (a.track != b.track) return a.track < b.track;
    if (a.start_ns != b.start_ns) return a.start_ns < b.start_ns;
    return a.end_ns > b.end_ns;
  });
  const std::vector<ProfileName>& names = events->cpu_names.names();
  int32_t main_track = -1;
  int64_t main_ns = -1;
  for (std::size_t i = 0; i < ops.size();) {  // one thread at a time
    const int32_t track = ops[i].track;
    int64_t covered = 0, open_start = 0, open_end = std::numeric_limits<int64_t>::min();
    for (; i < ops.size() && ops[i].track == track; ++i) {
      if (is_mark(names[ops[i].name])) continue;
      if (ops[i].start_ns > open_end) {
        if (open_end > open_start) add_capped(&covered, open_end - open_start);
        open_start = ops[i].start_ns;
      }
      open_end = std::max(open_end, ops[i].end_ns);
    }
    if (open_end > open_start) add_capped(&covered, open_end - open_start);
    if (covered > main_ns) main_track = track, main_ns = covered;
  }
  if (main_track < 0) return;
  r->cpu_busy_ns = main_ns;
  if (r->steps.empty()) return;
  std::vector<int64_t> queries = step_boundaries(r->steps);
  UnionSweep sweep(std::move(queries), 1);
  for (const ProfileInterval& op : ops) {
    if (op.track == main_track && !is_mark(names[op.name])) sweep.add(0, op.start_ns, op.end_ns);
  }
  sweep.finish();
  for (ProfileStep& step : r->steps) {
    step.cpu_busy_ns = sweep.within(0, step.start_ns, step.start_ns + step.duration_ns);
  }
}

// CPU self time by class per step (profiles without device work), each op in the step it
// ends in. After summarize_cpu: an op's start_ns holds its self time.
void summarize_cpu_classes(const ProfileEvents& events, RankProfile* r) {
  const std::vector<ProfileName>& names = events.cpu_names.names();
  for (const ProfileInterval& op : events.cpu) {
    if (is_mark(names[op.name])) continue;
    if (ProfileStep* step = step_at(r->steps, op.end_ns, true)) {
      add_capped(&step->by_class_ns[static_cast<int>(names[op.name].classification.kind)],
                 std::max<int64_t>(0, op.start_ns));
    }
  }
}

// The first start and the last end of every kept event.
void summarize_span(const ProfileEvents& events, RankProfile* r) {
  bool any = false;
  for (const std::vector<ProfileInterval>* list : {&events.device, &events.cpu}) {
    for (const ProfileInterval& a : *list) {
      r->activity_start_ns = any ? std::min(r->activity_start_ns, a.start_ns) : a.start_ns;
      r->activity_end_ns = any ? std::max(r->activity_end_ns, a.end_ns) : a.end_ns;
      any = true;
    }
  }
}

// Self time of every CPU op: its duration less the parts of its direct children on the same
// thread (ops sorted by thread, start, and longest first, so a parent comes before the ops it
// encloses; a child running past its parent's end is clipped to it). Sorts the kept CPU ops in
// place and, once an op is on the stack, keeps its self time in its start_ns (its start is
// not needed again), so the only memory added is the stack of open ops.
void summarize_cpu(ProfileEvents* events, RankProfile* r) {
  std::vector<ProfileInterval>& ops = events->cpu;
  std::sort(ops.begin(), ops.end(), [](const ProfileInterval& a, const ProfileInterval& b) {
    if (a.track != b.track) return a.track < b.track;
    if (a.start_ns != b.start_ns) return a.start_ns < b.start_ns;
    return a.end_ns > b.end_ns;
  });
  std::vector<uint32_t> stack;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    ProfileInterval& op = ops[i];
    while (!stack.empty() &&
           (ops[stack.back()].track != op.track || ops[stack.back()].end_ns <= op.start_ns)) {
      stack.pop_back();
    }
    if (!stack.empty()) {
      ProfileInterval& parent = ops[stack.back()];
      parent.start_ns -= std::min(op.end_ns, parent.end_ns) - op.start_ns;  // its self time
    }
    op.start_ns = op.end_ns - op.start_ns;  // from here on: self time
    stack.push_back(static_cast<uint32_t>(i));
  }
  const std::vector<ProfileName>& names = events->cpu_names.names();
  std::vector<int64_t> totals(names.size(), 0), counts(names.size(), 0);
  for (const ProfileInterval& op : ops) {
    add_capped(&totals[op.name], std::max<int64_t>(0, op.start_ns));  // siblings may overlap
    ++counts[op.name];
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    add_capped(&r->cpu_by_class_ns[static_cast<int>(names[i].classification.kind)], totals[i]);
    add_capped(&r->cpu_op_ns, totals[i]);
  }
  r->cpu_op_count = static_cast<int64_t>(ops.size());
  r->top_cpu_ops = top_names(names, totals, counts, std::nullopt);
}

}  // namespace

int64_t torch_dtype_bytes(const std::string& dtype) {
  // torch's ScalarType names as c10 prints them (record_param_comms' "dtype").
  static const std::map<std::string, int64_t> kBytes = {{"Bool", 1},
                                                        {"Byte", 1},
                                                        {"Char", 1},
                                                        {"Short", 2},
                                                        {"Int", 4},
                                                        {"Long", 8},
                                                        {"Half", 2},
                                                        {"BFloat16", 2},
                                                        {"Float", 4},
                                                        {"Double", 8},
                                                        {"ComplexHalf", 4},
                                                        {"ComplexFloat", 8},
                                                        {"ComplexDouble", 16},
                                                        {"Float8_e4m3fn", 1},
                                                        {"Float8_e5m2", 1},
                                                        {"Float8_e4m3fnuz", 1},
                                                        {"Float8_e5m2fnuz", 1},
                                                        {"UInt16", 2},
                                                        {"UInt32", 4},
                                                        {"UInt64", 8}};
  const auto it = kBytes.find(dtype);
  return it == kBytes.end() ? 0 : it->second;
}

RankProfile summarize_profile(ProfileEvents events, int file_index) {
  RankProfile r;
  r.path = events.path;
  r.format = events.format;
  r.rank_from_trace = events.rank.has_value();
  r.rank = static_cast<int>(events.rank.value_or(file_index));
  r.world_size = static_cast<int>(events.world_size.value_or(0));
  r.backend = events.backend;
  summarize_work(events, &r);  // before the intervals are sorted
  r.marks = std::move(events.marks);
  for (std::vector<ProfileMark>* list : {&r.marks.cpu, &r.marks.device}) {
    std::sort(list->begin(), list->end(), [](const ProfileMark& a, const ProfileMark& b) {
      return std::tie(a.start_ns, a.event_index) < std::tie(b.start_ns, b.event_index);
    });
  }
  r.steps = std::move(events.steps);
  std::sort(r.steps.begin(), r.steps.end(), [](const ProfileStep& a, const ProfileStep& b) {
    if (a.start_ns != b.start_ns) return a.start_ns < b.start_ns;
    return a.name < b.name;
  });
  summarize_span(events, &r);
  summarize_device(events, &r);
  summarize_steps(&events, &r);
  summarize_cpu_busy(&events, &r);
  summarize_cpu(&events, &r);
  if (r.has_device_activity()) {
    summarize_device_classes(events, &r);
  } else {
    summarize_cpu_classes(events, &r);
  }

  const auto& collectives =
      events.op_collectives.empty() ? events.kernel_collectives : events.op_collectives;
  for (const auto& [key, c] : collectives) r.collectives.push_back(c);

  // Devices: those the trace describes or measured memory on, and those that ran work.
  for (const auto& [device, stream] : events.device_tracks) {
    if (!events.devices.count(device)) events.devices[device].id = device;
  }
  for (const auto& [id, d] : events.devices) r.devices.push_back(d);

  r.events = events.events;
  r.flows = events.flows;
  r.skipped = std::move(events.skipped);
  return r;
}

}  // namespace cf
