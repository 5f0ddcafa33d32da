// The work of a profile's CPU ops with input shapes, timed (profile.h ProfileWork): what
// `calibrate --from-profile` fits the cost model's curves to.
#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "traces/profile_events.h"

namespace cf {

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
  using Key = std::tuple<int, int32_t, bool, double, double>;  // kind, name, backward, work
  std::map<Key, size_t> index;
  for (const ProfileOpWork& op : events.cpu_work) {
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
    const Key key{static_cast<int>(op.kind), cpu.name, op.backward, op.flops, op.bytes};
    auto found = index.find(key);
    if (found == index.end()) {
      if (w.samples.size() >= static_cast<size_t>(kMaxProfileWorkSamples)) {
        ++w.samples_dropped;
        continue;
      }
      ProfileWorkSample s;
      s.name = events.cpu_names.names()[static_cast<size_t>(cpu.name)].text;
      s.kind = op.kind;
      s.backward = op.backward;
      s.flops = op.flops;
      s.bytes = op.bytes;
      found = index.emplace(key, w.samples.size()).first;
      w.samples.push_back(std::move(s));
    }
    ProfileWorkSample& s = w.samples[found->second];
    ++s.count;
    s.total_ns += ns;
  }
  std::sort(w.samples.begin(), w.samples.end(),
            [](const ProfileWorkSample& a, const ProfileWorkSample& b) {
              return std::tie(a.kind, a.name, a.backward, a.flops, a.bytes) <
                     std::tie(b.kind, b.name, b.backward, b.flops, b.bytes);
            });
}

}  // namespace cf
