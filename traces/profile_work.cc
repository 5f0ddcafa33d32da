// The work of a profile's CPU ops with input shapes, timed (profile.h ProfileWork): what
// `calibrate --from-profile` fits the cost model's curves to.
#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "traces/profile_events.h"

namespace cf {

namespace {

// Gaps under 20 µs between kernels back to back on one stream (of the first 2^21 kernels).
void launch_gaps(const ProfileEvents& events, ProfileWork* w) {
  constexpr int64_t kQueued = 20'000;
  std::vector<const ProfileInterval*> kernels;
  for (const ProfileInterval& d : events.device) {
    if (kernels.size() >= static_cast<size_t>(kMaxProfileWorkOps)) break;
    if (events.device_names.names()[static_cast<size_t>(d.name)].activity ==
        DeviceActivity::kKernel) {
      kernels.push_back(&d);
    }
  }
  std::sort(kernels.begin(), kernels.end(), [](const ProfileInterval* a, const ProfileInterval* b) {
    return std::tie(a->track, a->start_ns) < std::tie(b->track, b->start_ns);
  });
  std::vector<int64_t> gaps;
  for (size_t i = 1; i < kernels.size(); ++i) {
    if (kernels[i]->track != kernels[i - 1]->track) continue;
    const int64_t gap = kernels[i]->start_ns - kernels[i - 1]->end_ns;
    if (gap >= 0 && gap < kQueued) gaps.push_back(gap);
  }
  w->launch_gaps = static_cast<int64_t>(gaps.size());
  if (gaps.empty()) return;
  auto middle = gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2);
  std::nth_element(gaps.begin(), middle, gaps.end());
  w->launch_gap_median_ns = *middle;
}

}  // namespace

void summarize_work(const ProfileEvents& events, RankProfile* r) {
  ProfileWork& w = r->work;
  w.ops_with_dims = events.cpu_ops_with_dims;
  w.samples_dropped = events.work_ops_dropped;
  w.device_times = !events.device.empty();
  // Device time per External id: the kernels an op launched.
  std::unordered_map<int64_t, int64_t> kernel_ns;
  for (const auto& [id, index] : events.kernel_external) {
    const ProfileInterval& k = events.device[static_cast<size_t>(index)];
    kernel_ns[id] += k.end_ns - k.start_ns;
  }
  // kind, name, backward, flops, bytes, group size
  using Key = std::tuple<int, std::string, bool, double, double, int64_t>;
  std::map<Key, size_t> index;
  auto add = [&](KernelClass kind, const std::string& name, bool backward, double flops,
                 double bytes, int64_t group, int64_t ns) {
    const Key key{static_cast<int>(kind), name, backward, flops, bytes, group};
    auto found = index.find(key);
    if (found == index.end()) {
      if (w.samples.size() >= static_cast<size_t>(kMaxProfileWorkSamples)) {
        ++w.samples_dropped;
        return;
      }
      found = index.emplace(key, w.samples.size()).first;
      w.samples.push_back({name, kind, backward, flops, bytes, group, 0, 0});
    }
    ProfileWorkSample& s = w.samples[found->second];
    ++s.count;
    s.total_ns += ns;
  };
  // Collective kernels with their own sizes are timed as they are; record_param_comms ops
  // then add nothing (they would count the same calls again).
  for (const ProfileCollectiveCall& c : events.kernel_collective_calls) {
    add(KernelClass::kCollective, collective_kind_name(c.kind), false, 0, c.bytes, c.group_size,
        c.duration_ns);
  }
  for (const ProfileOpWork& op : events.cpu_work) {
    const bool collective = op.kind == KernelClass::kCollective;
    if (collective && !events.kernel_collective_calls.empty()) continue;
    const ProfileInterval& cpu = events.cpu[static_cast<size_t>(op.interval)];
    int64_t ns = cpu.end_ns - cpu.start_ns;
    if (w.device_times) {
      const auto it = op.external_id >= 0 ? kernel_ns.find(op.external_id) : kernel_ns.end();
      if (it == kernel_ns.end()) {
        ++w.ops_without_kernels;
        continue;
      }
      ns = it->second;
    }
    const std::string& name = collective
                                  ? std::string(collective_kind_name(op.collective))
                                  : events.cpu_names.names()[static_cast<size_t>(cpu.name)].text;
    add(op.kind, name, op.backward, op.flops, op.bytes, op.group_size, ns);
  }
  std::sort(w.samples.begin(), w.samples.end(),
            [](const ProfileWorkSample& a, const ProfileWorkSample& b) {
              return std::tie(a.kind, a.name, a.backward, a.flops, a.bytes, a.group_size) <
                     std::tie(b.kind, b.name, b.backward, b.flops, b.bytes, b.group_size);
            });
  launch_gaps(events, &w);
}

}  // namespace cf
