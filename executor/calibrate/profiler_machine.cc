// The machine-wide calibration measurements (profiler.h): the in-process transport (a send's
// copy, one-way delivery to a waiting stage, the DP sum), the optimizer step, how much k busy
// threads slow each other, and the machine's description and thread clock. Then profile_cpu,
// which runs all.
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <fstream>
#include <thread>

#include "core/check.h"
#include "executor/calibrate/profiler.h"
#include "executor/inproc_transport.h"
#include "executor/memory.h"
#include "kernels/cpu/adamw.h"

namespace cf {
namespace {

using Clock = std::chrono::steady_clock;

double ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

int runs(const ProfileOptions& o) { return o.warmup + o.repetitions; }

// InProcessTransport::send from stage 0 to stage 1 (the copy into the mailbox); the message
// is received, untimed, before the next one.
Sample send_sample(int64_t bytes, const ProfileOptions& o) {
  const int64_t n = bytes / 4;
  InProcessFabric fabric(1, 2);
  InProcessTransport from(&fabric, 0, 0), to(&fabric, 0, 1);
  std::vector<float> data(static_cast<size_t>(n), 1.0f), got(static_cast<size_t>(n));
  std::vector<double> wall, cpu;
  for (int i = 0; i < runs(o); ++i) {
    const MessageKey key{i, 0, false};
    const double c0 = thread_cpu_ns();
    const Clock::time_point w0 = Clock::now();
    from.send(1, key, data.data(), n);
    const Clock::time_point w1 = Clock::now();
    const double c1 = thread_cpu_ns();
    to.recv(0, key, got.data(), n);
    if (i < o.warmup) continue;
    wall.push_back(ns_between(w0, w1));
    cpu.push_back(c1 - c0);
  }
  return Sample{static_cast<double>(bytes), fastest(wall), fastest(cpu)};
}

// One-way delivery: from the end of a send on one thread to the return of the recv another
// thread was already blocked in (its wake-up and the copy out of the mailbox).
Sample p2p_sample(int64_t bytes, const ProfileOptions& o) {
  const int64_t n = bytes / 4;
  InProcessFabric fabric(1, 2);
  InProcessTransport from(&fabric, 0, 0), to(&fabric, 0, 1);
  const int total = runs(o);
  std::vector<Clock::time_point> sent(static_cast<size_t>(total)), got(static_cast<size_t>(total));
  std::atomic<int> waiting{-1};
  std::thread receiver([&] {
    std::vector<float> buf(static_cast<size_t>(n));
    for (int i = 0; i < total; ++i) {
      waiting.store(i);
      to.recv(0, MessageKey{i, 0, false}, buf.data(), n);
      got[static_cast<size_t>(i)] = Clock::now();
    }
  });
  std::vector<float> data(static_cast<size_t>(n), 1.0f);
  for (int i = 0; i < total; ++i) {
    while (waiting.load() < i) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // the receiver is blocked
    from.send(1, MessageKey{i, 0, false}, data.data(), n);
    sent[static_cast<size_t>(i)] = Clock::now();
  }
  receiver.join();
  std::vector<double> wall;
  for (int i = o.warmup; i < total; ++i) {
    wall.push_back(
        std::max(0.0, ns_between(sent[static_cast<size_t>(i)], got[static_cast<size_t>(i)])));
  }
  // The receiver can return before the sender reads its clock after the send: a delivery
  // faster than the clock can tell reads 1 ns.
  return Sample{static_cast<double>(bytes), std::max(fastest(wall), 1.0), 0};
}

// InProcessTransport::allreduce_dp over 2 DP ranks, both arriving together (a barrier first),
// timed on rank 0.
Sample allreduce_sample(int64_t bytes, const ProfileOptions& o) {
  const int64_t n = bytes / 4;
  InProcessFabric fabric(2, 1);
  InProcessTransport r0(&fabric, 0, 0), r1(&fabric, 1, 0);
  const int total = runs(o);
  std::barrier sync(2);
  std::thread other([&] {
    std::vector<float> buf(static_cast<size_t>(n), 1.0f);
    for (int i = 0; i < total; ++i) {
      sync.arrive_and_wait();
      r1.allreduce_dp(buf.data(), n);
    }
  });
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);
  std::vector<double> wall, cpu;
  for (int i = 0; i < total; ++i) {
    sync.arrive_and_wait();
    const double c0 = thread_cpu_ns();
    const Clock::time_point w0 = Clock::now();
    r0.allreduce_dp(buf.data(), n);
    const Clock::time_point w1 = Clock::now();
    const double c1 = thread_cpu_ns();
    if (i < o.warmup) continue;
    wall.push_back(ns_between(w0, w1));
    cpu.push_back(c1 - c0);
  }
  other.join();
  return Sample{static_cast<double>(bytes), fastest(wall), fastest(cpu)};
}

// StageWorker::optimizer_step: AdamW over the stage's flat buffers, then zeroed gradients.
Sample optimizer_sample(int64_t params, const ProfileOptions& o) {
  MemoryTracker tracker;
  FloatBuffer w(&tracker, MemoryCategory::kWeights, params);
  FloatBuffer g(&tracker, MemoryCategory::kGradients, params);
  FloatBuffer m(&tracker, MemoryCategory::kOptimizer, params);
  FloatBuffer v(&tracker, MemoryCategory::kOptimizer, params);
  std::fill(g.data(), g.data() + params, 1e-3f);
  const AdamWHyper hyper{1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f};
  std::vector<double> wall, cpu;
  for (int i = 0; i < runs(o); ++i) {
    const double c0 = thread_cpu_ns();
    const Clock::time_point w0 = Clock::now();
    cpu::adamw_step(w.data(), m.data(), v.data(), g.data(), params, hyper, i + 1);
    std::fill(g.data(), g.data() + params, 0.0f);
    const Clock::time_point w1 = Clock::now();
    const double c1 = thread_cpu_ns();
    std::fill(g.data(), g.data() + params, 1e-3f);
    if (i < o.warmup) continue;
    wall.push_back(ns_between(w0, w1));
    cpu.push_back(c1 - c0);
  }
  return Sample{static_cast<double>(params), fastest(wall), fastest(cpu)};
}

}  // namespace

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(" \t"));
        return name;
      }
    }
  }
  return "unknown";
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

double load_average_1min() {
  std::ifstream in("/proc/loadavg");
  double load = 0;
  in >> load;
  return load;
}

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

namespace {

// One layer of a model: (stack − embedding − head) / layers, at least 1 ns, the stack's CPU
// share kept (profiler.h ModelProfile::layer_forward).
void derive_layers(ModelProfile& m) {
  const double layers = static_cast<double>(m.model.layers);
  auto per_layer = [&](const Series& stack, const Series& embedding, const Series& head,
                       Series* out) {
    CF_CHECK(stack.size() == embedding.size() && stack.size() == head.size());
    out->clear();
    for (size_t i = 0; i < stack.size(); ++i) {
      const double share = stack[i].cpu_ns / stack[i].wall_ns;
      const double ns =
          std::max((stack[i].wall_ns - embedding[i].wall_ns - head[i].wall_ns) / layers, 1.0);
      out->push_back(Sample{stack[i].x, ns, ns * share, stack[i].probes});
    }
  };
  per_layer(m.stack_forward, m.embedding_forward, m.head_forward, &m.layer_forward);
  per_layer(m.stack_backward, m.embedding_backward, m.head_backward, &m.layer_backward);
}

// Every sample of `p` at one speed, the fastest probe's (profiler.h MachineProfile::
// speed_probe): each rescaled from the fastest probe from two before its first to two after its
// last. Then one layer of each model from its stack, every term at the reference speed.
void rescale_to_reference(MachineProfile& p) {
  p.speed_reference_ns = fastest(p.speed_probe);
  const auto [lo, hi] = std::minmax_element(p.speed_probe.begin(), p.speed_probe.end());
  p.speed_probe_min_ns = *lo;
  p.speed_probe_max_ns = *hi;
  p.speed_probe_median_ns = median(p.speed_probe);
  // A sum's rounding must not step outside [min, max].
  p.speed_probe_mean_ns = std::clamp(mean(p.speed_probe), *lo, *hi);
  const int probes = static_cast<int>(p.speed_probe.size());
  auto rescale = [&](Series& series) {
    for (Sample& s : series) {
      CF_CHECK(s.probes.first >= 0 && s.probes.first <= s.probes.second && s.probes.second < probes)
          << "a sample without its speed probes";
      const int from = std::max(0, s.probes.first - 2), to = std::min(probes, s.probes.second + 3);
      const double then =
          fastest(std::vector<double>(p.speed_probe.begin() + from, p.speed_probe.begin() + to));
      s.wall_ns *= p.speed_reference_ns / then;
      s.cpu_ns *= p.speed_reference_ns / then;
    }
  };
  for (Series* s : {&p.send, &p.p2p, &p.allreduce, &p.optimizer}) rescale(*s);
  for (ModelProfile& m : p.models) {
    for (Series* s : {&m.stack_forward, &m.stack_backward, &m.embedding_forward,
                      &m.embedding_backward, &m.head_forward, &m.head_backward}) {
      rescale(*s);
    }
    derive_layers(m);
    for (auto& row : m.attention_forward) rescale(row);
    for (auto& row : m.attention_backward) rescale(row);
    for (GemmProfile& g : m.gemm) {
      rescale(g.forward);
      rescale(g.backward);
    }
    for (NamedSeries& e : m.elementwise) rescale(e.series);
  }
}

}  // namespace

MachineProfile profile_cpu(const std::vector<std::pair<std::string, ModelConfig>>& models,
                           const ProfileOptions& o) {
  CF_CHECK(!models.empty());
  CF_CHECK(!o.attention_prefix.empty() && o.attention_prefix.front() == 0)
      << "the attention prefix grid starts at 0";
  retain_freed_memory();  // as the executor runs
  MachineProfile p;
  p.speed_probe_tokens = o.probe_tokens;
  p.cpu_model = cpu_model_name();
  p.cores = usable_cores();
  p.load_average = load_average_1min();
  const int total = 4 + static_cast<int>(models.size()) * profile_model_steps();
  int done = 0;
  auto probe = [&] {
    p.speed_probe.push_back(speed_probe_ns(o.probe_tokens, o.seed));
    return static_cast<int>(p.speed_probe.size()) - 1;
  };
  auto step = [&](const std::string& what) {
    if (o.progress) o.progress(what, done, total);
    ++done;
    return probe();
  };
  auto measure = [&](const std::string& what, const std::vector<int64_t>& grid, Series* out,
                     auto sample) {
    const int at = step(what);
    for (int64_t x : grid) {
      out->push_back(sample(x, o));
      out->back().probes = {at, at};
    }
  };
  measure("transport send", o.message_bytes, &p.send, send_sample);
  measure("transport one-way delivery", o.message_bytes, &p.p2p, p2p_sample);
  measure("transport DP sum", o.message_bytes, &p.allreduce, allreduce_sample);
  measure("optimizer step", o.optimizer_params, &p.optimizer, optimizer_sample);
  for (const auto& [name, model] : models) {
    p.models.push_back(profile_model(name, model, o, step, probe));
  }
  if (o.progress) o.progress("done", total, total);
  probe();  // and once after the last series
  rescale_to_reference(p);
  return p;
}

}  // namespace cf
