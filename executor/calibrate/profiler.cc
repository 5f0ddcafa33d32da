// The calibration measurements (profiler.h). Every sample times the executor's own call the
// way stage.cc's op clock sees it: buffers the op allocates are inside the timed region,
// inputs prepared before it (as received messages are) outside. The fastest of the
// repetitions (profiler.h fastest()).
#include "executor/calibrate/profiler.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>

#include "core/check.h"
#include "executor/head.h"
#include "executor/layer.h"
#include "executor/params.h"
#include "executor/stage.h"
#include "kernels/cpu/kernels.h"
#include "sim/plan/plan_builder.h"

namespace cf {
namespace {

using Clock = std::chrono::steady_clock;

// The rounds of the in-situ stack runs and of the series measured in rounds (in_rounds).
constexpr int kRounds = 3;

// setup() untimed, then body() timed; warm-up runs are discarded.
template <typename Setup, typename Body>
Sample measure(double x, const ProfileOptions& o, Setup setup, Body body) {
  std::vector<double> wall, cpu;
  for (int i = 0; i < o.warmup + o.repetitions; ++i) {
    setup();
    const double c0 = thread_cpu_ns();
    const Clock::time_point w0 = Clock::now();
    body();
    const Clock::time_point w1 = Clock::now();
    const double c1 = thread_cpu_ns();
    if (i < o.warmup) continue;
    wall.push_back(std::chrono::duration<double, std::nano>(w1 - w0).count());
    cpu.push_back(c1 - c0);
  }
  return Sample{x, fastest(wall), fastest(cpu)};
}

void fill_random(float* data, int64_t n, std::mt19937_64& rng, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  for (int64_t i = 0; i < n; ++i) data[i] = u(rng);
}

// One standalone chunk of t tokens (a single segment): what a layer call reads.
ChunkInputs standalone_inputs(int64_t t, int64_t vocab, uint64_t seed) {
  Chunk chunk;
  chunk.kind = ChunkKind::kStandalone;
  chunk.segments = {Segment{0, 0, t}};
  chunk.tokens = t;
  return chunk_inputs(chunk, synthetic_tokens({t}, vocab, seed, 0));
}

// The tensors of one layer (the layer of a one-layer pipeline stage), its gradients, and the
// embedding, final norm and LM head, seeded.
struct ModelBench {
  ModelConfig model;
  LayerDims dims;
  HeadDims head_dims;
  ParamLayout layout;
  int64_t layer;
  MemoryTracker tracker;
  FloatBuffer weights, grads, embedding, dembedding, final_norm, dfinal_norm, head, dhead;

  ModelBench(const ModelConfig& m, uint64_t seed)
      : model(m),
        dims(layer_dims(m)),
        head_dims{m.hidden, m.vocab, static_cast<float>(m.rms_norm_eps)},
        layout(m, LayerSplit{static_cast<int>(m.layers), 1, m.layers}, m.layers >= 3 ? 1 : 0),
        layer(m.layers >= 3 ? 1 : 0) {
    std::mt19937_64 rng(seed);
    auto make = [&](FloatBuffer& b, int64_t n, MemoryCategory c, float scale) {
      b = FloatBuffer(&tracker, c, n);
      if (scale > 0) fill_random(b.data(), n, rng, scale);
    };
    make(weights, layout.total(), MemoryCategory::kWeights, 0.05f);
    make(grads, layout.total(), MemoryCategory::kGradients, 0);
    for (const ParamTensor& p : layout.tensors()) {
      if (p.is_norm) std::fill(weights.data() + p.offset, weights.data() + p.offset + p.size, 1.0f);
    }
    make(embedding, m.vocab * m.hidden, MemoryCategory::kWeights, 0.05f);
    make(dembedding, m.vocab * m.hidden, MemoryCategory::kGradients, 0);
    make(final_norm, m.hidden, MemoryCategory::kWeights, 0);
    std::fill(final_norm.data(), final_norm.data() + m.hidden, 1.0f);
    make(dfinal_norm, m.hidden, MemoryCategory::kGradients, 0);
    make(head, m.vocab * m.hidden, MemoryCategory::kWeights, 0.05f);
    make(dhead, m.vocab * m.hidden, MemoryCategory::kGradients, 0);
  }
  LayerTensors w() { return layer_tensors(weights.data(), layout, layer); }
  LayerTensors g() { return layer_tensors(grads.data(), layout, layer); }
  LayerCall call(const ChunkInputs& in) { return LayerCall{&dims, &in, nullptr, layer, &tracker}; }
  FloatBuffer random(int64_t n, MemoryCategory c, uint64_t seed) {
    FloatBuffer b(&tracker, c, n);
    std::mt19937_64 rng(seed);
    fill_random(b.data(), n, rng, 1.0f);
    return b;
  }
};

}  // namespace

// The executor's own ops on one stage (profiler.h).
double executor_op_times(const ModelConfig& model, int64_t t, int count, uint64_t seed,
                         std::vector<double>* forward, std::vector<double>* backward) {
  PlanInputs inputs;
  inputs.sequence_lengths.assign(static_cast<size_t>(count + 1), t);
  inputs.strategy.kind = StrategyKind::kBaseline;
  inputs.strategy.micro_batching = MicroBatching::kPerSequence;
  inputs.layers = model.layers;
  inputs.max_length = t;
  StatusOr<Plan> plan = build_plan(inputs);
  CF_CHECK(plan.ok()) << plan.status().message();
  StageWorker worker(model, LayerSplit{1, 1, model.layers}, 0, 0);
  worker.params().initialise(seed, 0.02f);
  const TokenBatch batch = synthetic_tokens(inputs.sequence_lengths, model.vocab, seed, 0);
  const double c0 = thread_cpu_ns();
  const StepClock::time_point w0 = StepClock::now();
  worker.run_step(*plan, batch, nullptr, w0, /*record=*/true);
  const double cpu_share = (thread_cpu_ns() - c0) /
                           std::chrono::duration<double, std::nano>(StepClock::now() - w0).count();
  for (const TraceOp& op : worker.trace_ops()) {
    if (op.kind != OpKind::kCompute || op.chunk == 0) continue;  // chunk 0 warms up
    (op.pass == Pass::kBackward ? backward : forward)
        ->push_back(static_cast<double>(op.duration_ns()));
  }
  return std::min(cpu_share, 1.0);
}

double median(std::vector<double> v) {
  CF_CHECK(!v.empty());
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double mean(const std::vector<double>& v) {
  CF_CHECK(!v.empty());
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double fastest(const std::vector<double>& v) {
  CF_CHECK(!v.empty());
  return *std::min_element(v.begin(), v.end());
}

double speed_probe_ns(int64_t tokens, uint64_t seed) {
  static const ModelConfig tiny = [] {
    StatusOr<ModelConfig> m = load_model("tiny");
    CF_CHECK(m.ok()) << m.status().message();
    return *m;
  }();
  std::vector<double> forward, backward;
  executor_op_times(tiny, tokens, 2, seed, &forward, &backward);
  double ns = 0;
  for (double v : forward) ns += v;
  for (double v : backward) ns += v;
  return ns;
}

StatusOr<ProbedRun> run_with_speed_probe(const Job& job, const ExecutorOptions& options,
                                         double reference_ns, int64_t probe_tokens) {
  CF_CHECK_GT(reference_ns, 0);
  std::vector<double> probes{speed_probe_ns(probe_tokens, options.seed)};
  ProbedRun out;
  CF_ASSIGN_OR_RETURN(out.report, run_in_process(job, options, [&](const StepReport&, int64_t) {
                        probes.push_back(speed_probe_ns(probe_tokens, options.seed));
                      }));
  out.load = mean(probes) / reference_ns;
  return out;
}

namespace {

// Visits points 0..n−1 in kRounds rounds, each round in its own seeded shuffled order, with a
// speed probe before the first visit of a round and every `stride` visits after; returns the
// last probe's index. A slow or fast phase of the machine (tens of seconds on a shared one)
// then lands on different points in different rounds instead of bending one part of a curve,
// and the probes see the same mix.
int visit_in_rounds(size_t n, uint64_t seed, size_t stride, const std::function<int()>& probe,
                    const std::function<void(size_t point, int round)>& visit) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(seed);
  int last_probe = -1;
  for (int round = 0; round < kRounds; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t v = 0; v < n; ++v) {
      if (v % stride == 0) last_probe = probe();
      visit(order[v], round);
    }
  }
  return last_probe;
}

// The executor's F and B ops over the token grid: executor_op_times for every t, in rounds
// (visit_in_rounds, a probe before each run). Keeps the whole op (embedding, every layer,
// head) per t; profile_cpu derives one layer from it once every sample is at the reference
// speed (ModelProfile::stack_forward).
void in_situ_stack(const ModelBench& b, const ProfileOptions& o, const std::function<int()>& probe,
                   int first_probe, ModelProfile* p) {
  const size_t n = o.tokens.size();
  const int per_round = std::max(2, (o.repetitions + kRounds - 1) / kRounds);
  std::vector<std::vector<double>> forward(n), backward(n);
  std::vector<double> cpu_share(n, 0);
  const int last_probe = visit_in_rounds(n, o.seed, 1, probe, [&](size_t i, int round) {
    cpu_share[i] += executor_op_times(b.model, o.tokens[i], per_round, o.seed + round, &forward[i],
                                      &backward[i]) /
                    kRounds;
  });
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(o.tokens[i]);
    const double f = fastest(forward[i]), g = fastest(backward[i]);
    p->stack_forward.push_back(Sample{t, f, f * cpu_share[i], {first_probe, last_probe}});
    p->stack_backward.push_back(Sample{t, g, g * cpu_share[i], {first_probe, last_probe}});
  }
}

Sample head_sample(ModelBench& b, int64_t t, bool backward, const ProfileOptions& o) {
  const ChunkInputs in = standalone_inputs(t, b.model.vocab, o.seed);
  const int64_t th = t * b.model.hidden;
  FloatBuffer x = b.random(th, MemoryCategory::kActivations, o.seed + 3);
  FloatBuffer dx(&b.tracker, MemoryCategory::kTransient, th);
  HeadActs acts;
  auto forward = [&] {
    head_forward(&acts, b.final_norm.data(), b.head.data(), in, b.head_dims, 1.0f / t,
                 MemoryCategory::kActivations, /*want_grad=*/true, &b.tracker);
  };
  auto fresh = [&] {
    acts = HeadActs{};
    acts.x = FloatBuffer(&b.tracker, MemoryCategory::kActivations, th);
    std::copy(x.data(), x.data() + th, acts.x.data());
  };
  if (!backward) return measure(static_cast<double>(t), o, fresh, forward);
  return measure(
      static_cast<double>(t), o, [&] { fresh(), forward(); },
      [&] {
        head_backward(dx.data(), b.dfinal_norm.data(), b.dhead.data(), acts, b.final_norm.data(),
                      b.head.data(), b.head_dims, t, &b.tracker);
        acts = HeadActs{};
      });
}

Sample embedding_sample(ModelBench& b, int64_t t, bool backward, const ProfileOptions& o) {
  const ChunkInputs in = standalone_inputs(t, b.model.vocab, o.seed);
  FloatBuffer buf = b.random(t * b.model.hidden, MemoryCategory::kActivations, o.seed + 4);
  return measure(
      static_cast<double>(t), o, [] {},
      [&] {
        if (backward) {
          embed_backward(b.dembedding.data(), buf.data(), in, b.head_dims);
        } else {
          embed_forward(buf.data(), b.embedding.data(), in, b.head_dims);
        }
      });
}

// The attention kernel alone over one segment of q queries after p prefix keys.
Sample attention_sample(ModelBench& b, int64_t q, int64_t p, bool backward,
                        const ProfileOptions& o) {
  const LayerDims& d = b.dims;
  const int64_t kv_rows = p + q;
  FloatBuffer qb = b.random(q * d.q_width(), MemoryCategory::kTransient, o.seed + 5);
  FloatBuffer kb = b.random(kv_rows * d.kv_width(), MemoryCategory::kTransient, o.seed + 6);
  FloatBuffer vb = b.random(kv_rows * d.kv_width(), MemoryCategory::kTransient, o.seed + 7);
  FloatBuffer out(&b.tracker, MemoryCategory::kTransient, q * d.q_width());
  FloatBuffer lse(&b.tracker, MemoryCategory::kTransient, q * d.heads);
  const AttentionSegment seg{0, q, 0, kv_rows};
  const AttentionShape shape{q, kv_rows, d.heads, d.kv_heads, d.head_dim};
  auto forward = [&] {
    cpu::attention_forward(out.data(), lse.data(), qb.data(), kb.data(), vb.data(), &seg, 1, shape);
  };
  if (!backward)
    return measure(
        static_cast<double>(q), o, [] {}, forward);
  forward();
  FloatBuffer dout = b.random(q * d.q_width(), MemoryCategory::kTransient, o.seed + 8);
  FloatBuffer dq(&b.tracker, MemoryCategory::kTransient, q * d.q_width());
  FloatBuffer dk(&b.tracker, MemoryCategory::kTransient, kv_rows * d.kv_width());
  FloatBuffer dv(&b.tracker, MemoryCategory::kTransient, kv_rows * d.kv_width());
  return measure(
      static_cast<double>(q), o, [] {},
      [&] {
        cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), qb.data(), kb.data(),
                                vb.data(), out.data(), lse.data(), &seg, 1, shape);
      });
}

Sample gemm_sample(ModelBench& b, const GemmProfile& shape, bool bias, int64_t t, bool backward,
                   const ProfileOptions& o) {
  const int64_t in_f = shape.in_features, out_f = shape.out_features;
  FloatBuffer x = b.random(t * in_f, MemoryCategory::kTransient, o.seed + 9);
  FloatBuffer w = b.random(out_f * in_f, MemoryCategory::kTransient, o.seed + 10);
  FloatBuffer bv = b.random(out_f, MemoryCategory::kTransient, o.seed + 11);
  FloatBuffer y = b.random(t * out_f, MemoryCategory::kTransient, o.seed + 12);
  FloatBuffer dx(&b.tracker, MemoryCategory::kTransient, t * in_f);
  FloatBuffer dw(&b.tracker, MemoryCategory::kTransient, out_f * in_f);
  FloatBuffer db(&b.tracker, MemoryCategory::kTransient, out_f);
  return measure(
      static_cast<double>(t), o, [] {},
      [&] {
        if (backward) {
          cpu::linear_backward(dx.data(), dw.data(), bias ? db.data() : nullptr, y.data(), x.data(),
                               w.data(), t, in_f, out_f);
        } else {
          cpu::linear_forward(y.data(), x.data(), w.data(), bias ? bv.data() : nullptr, t, in_f,
                              out_f);
        }
      });
}

// The points of one series the cost model reads, in rounds (visit_in_rounds, about six probes
// a round), each visit with a share of the repetitions after its warm-up. A point's figure is
// the fastest of its rounds'; its probes, the series'.
std::vector<Sample> in_rounds(size_t points, const ProfileOptions& o,
                              const std::function<int()>& probe, int first_probe,
                              const std::function<Sample(size_t, const ProfileOptions&)>& sample) {
  ProfileOptions round = o;
  round.repetitions = std::max(2, (o.repetitions + kRounds - 1) / kRounds);
  std::vector<std::vector<Sample>> got(points);
  const int last_probe =
      visit_in_rounds(points, o.seed + 17, std::max<size_t>(1, points / 6), probe,
                      [&](size_t i, int) { got[i].push_back(sample(i, round)); });
  std::vector<Sample> out;
  for (const std::vector<Sample>& g : got) {
    std::vector<double> wall, cpu;
    for (const Sample& s : g) wall.push_back(s.wall_ns), cpu.push_back(s.cpu_ns);
    out.push_back(Sample{g.front().x, fastest(wall), fastest(cpu), {first_probe, last_probe}});
  }
  return out;
}

// The elementwise kernels of a layer and the executor's zero-filled buffer allocation.
std::vector<NamedSeries> elementwise_profile(ModelBench& b, const ProfileOptions& o) {
  const LayerDims& d = b.dims;
  const char* names[] = {"rmsnorm_forward", "rmsnorm_backward", "rope_forward", "rope_backward",
                         "swiglu_forward",  "swiglu_backward",  "residual_add", "buffer_alloc"};
  std::vector<NamedSeries> out;
  for (const char* name : names) out.push_back(NamedSeries{name, {}});
  for (int64_t t : o.tokens) {
    const ChunkInputs in = standalone_inputs(t, b.model.vocab, o.seed);
    const int64_t th = t * d.hidden, tq = t * d.q_width(), tf = t * d.ffn;
    FloatBuffer x = b.random(std::max({th, tq, tf}), MemoryCategory::kTransient, o.seed + 13);
    FloatBuffer y = b.random(std::max({th, tq, tf}), MemoryCategory::kTransient, o.seed + 14);
    FloatBuffer z = b.random(std::max({th, tq, tf}), MemoryCategory::kTransient, o.seed + 15);
    FloatBuffer r = b.random(t, MemoryCategory::kTransient, o.seed + 16);
    FloatBuffer wn = b.random(d.hidden, MemoryCategory::kTransient, o.seed + 17);
    const double td = static_cast<double>(t);
    const int32_t* pos = in.positions.data();
    auto add = [&](int i, auto body) {
      out[i].series.push_back(measure(
          td, o, [] {}, body));
    };
    add(0,
        [&] { cpu::rmsnorm_forward(y.data(), r.data(), x.data(), wn.data(), t, d.hidden, d.eps); });
    add(1, [&] {
      cpu::rmsnorm_backward(z.data(), y.data(), x.data(), x.data(), wn.data(), r.data(), t,
                            d.hidden);
    });
    add(2,
        [&] { cpu::rope_forward(y.data(), x.data(), pos, t, d.heads, d.head_dim, d.rope_theta); });
    add(3,
        [&] { cpu::rope_backward(y.data(), x.data(), pos, t, d.heads, d.head_dim, d.rope_theta); });
    add(4, [&] { cpu::swiglu_forward(z.data(), x.data(), y.data(), tf); });
    add(5, [&] { cpu::swiglu_backward(z.data(), y.data(), x.data(), x.data(), y.data(), tf); });
    add(6, [&] {
      for (int64_t i = 0; i < th; ++i) y[i] += x[i];
    });
    add(7, [&] { FloatBuffer buf(&b.tracker, MemoryCategory::kTransient, th); });
  }
  return out;
}

}  // namespace

ProfileOptions ProfileOptions::defaults(int64_t max_tokens) {
  ProfileOptions o;
  std::vector<int64_t> grid;
  for (int64_t v = 1; v <= max_tokens; v *= 2) {
    grid.push_back(v);
    if (v >= 2 && v + v / 2 <= max_tokens) grid.push_back(v + v / 2);
  }
  std::sort(grid.begin(), grid.end());
  o.tokens = grid;
  o.attention_q = grid;
  o.attention_prefix = {0, max_tokens / 4, max_tokens};
  for (int64_t bytes = 256; bytes <= (int64_t{16} << 20); bytes *= 4)
    o.message_bytes.push_back(bytes);
  for (int64_t n = 1024; n <= (int64_t{16} << 20); n *= 4) o.optimizer_params.push_back(n);
  return o;
}

ModelProfile profile_model(const std::string& name, const ModelConfig& model,
                           const ProfileOptions& o,
                           const std::function<int(const std::string&)>& step,
                           const std::function<int()>& probe) {
  ModelBench b(model, o.seed);
  ModelProfile p;
  p.name = name;
  p.model = model;
  auto series = [&](const std::string& what, Series* out, auto sample) {
    const int at = step(name + " " + what);
    for (int64_t t : o.tokens) {
      out->push_back(sample(t));
      out->back().probes = {at, at};
    }
  };
  // What the cost model reads, in shuffled rounds (in_rounds); the kernels only printed beside
  // them (GEMMs, elementwise) in one pass each.
  auto rounds = [&](const std::string& what, Series* out, auto sample) {
    const int at = step(name + " " + what);
    *out = in_rounds(o.tokens.size(), o, probe, at,
                     [&](size_t i, const ProfileOptions& ro) { return sample(o.tokens[i], ro); });
  };
  for (const bool backward : {false, true}) {
    rounds(
        backward ? "embedding backward" : "embedding forward",
        backward ? &p.embedding_backward : &p.embedding_forward,
        [&](int64_t t, const ProfileOptions& ro) { return embedding_sample(b, t, backward, ro); });
  }
  for (const bool backward : {false, true}) {
    rounds(backward ? "head backward" : "head forward",
           backward ? &p.head_backward : &p.head_forward,
           [&](int64_t t, const ProfileOptions& ro) { return head_sample(b, t, backward, ro); });
  }
  in_situ_stack(b, o, probe, step(name + " layers (executor ops)"), &p);
  for (int64_t q : o.attention_q) p.attention_q.push_back(static_cast<double>(q));
  for (int64_t pre : o.attention_prefix) p.attention_prefix.push_back(static_cast<double>(pre));
  const size_t nq = o.attention_q.size(), np = o.attention_prefix.size();
  for (const bool backward : {false, true}) {
    const int at = step(name + (backward ? " attention backward" : " attention forward"));
    const std::vector<Sample> flat =
        in_rounds(nq * np, o, probe, at, [&](size_t i, const ProfileOptions& ro) {
          return attention_sample(b, o.attention_q[i / np], o.attention_prefix[i % np], backward,
                                  ro);
        });
    auto& grid = backward ? p.attention_backward : p.attention_forward;
    for (size_t qi = 0; qi < nq; ++qi) {
      grid.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(qi * np),
                        flat.begin() + static_cast<std::ptrdiff_t>((qi + 1) * np));
    }
  }
  const int64_t h = model.hidden, qw = model.heads * model.head_dim;
  const int64_t kv = model.kv_heads * model.head_dim, f = model.ffn_hidden;
  p.gemm = {{"wq", h, qw, {}, {}},    {"wk", h, kv, {}, {}},
            {"wv", h, kv, {}, {}},    {"wo", qw, h, {}, {}},
            {"w_gate", h, f, {}, {}}, {"w_up", h, f, {}, {}},
            {"w_down", f, h, {}, {}}, {"lm_head", h, model.vocab, {}, {}}};
  for (GemmProfile& g : p.gemm) {
    const bool bias = model.qkv_bias && (g.name == "wq" || g.name == "wk" || g.name == "wv");
    series("gemm " + g.name + " forward", &g.forward,
           [&](int64_t t) { return gemm_sample(b, g, bias, t, false, o); });
    series("gemm " + g.name + " backward", &g.backward,
           [&](int64_t t) { return gemm_sample(b, g, bias, t, true, o); });
  }
  const int at = step(name + " elementwise");
  p.elementwise = elementwise_profile(b, o);
  for (NamedSeries& e : p.elementwise) {
    for (Sample& sample : e.series) sample.probes = {at, at};
  }
  return p;
}

int profile_model_steps() { return 5 + 2 + 2 * 8 + 1; }

}  // namespace cf
