// The tuner's lower bounds. Why each is safe is written beside it; the simulator's own rules
// (sim/simulator.cc, sim/memory_timeline.cc) are what they bound.
#include "tuner/bounds.h"

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "sim/memory_model.h"
#include "sim/memory_source.h"
#include "sim/plan/chunk_schedule.h"
#include "sim/plan/plan_index.h"

namespace cf {
namespace {

// Op times (ns) of one chunk's passes over one model chunk on one stage.
struct PassTimes {
  int64_t forward = 0;        // F
  int64_t forward_kv = 0;     // F* (dependent chunks only)
  int64_t recompute = 0;      // R (dependent chunks only)
  int64_t backward = 0;       // B
  int64_t kept_bytes = 0;     // memory the chunk adds at the start of its F
  int64_t dropped_bytes = 0;  // memory it adds by the start of its R when it ran F* instead
};

// F, not F*, for the chunk (group_forward_pass: the plan's rule).
bool keeps_activations(const Chunk& chunk, int k) {
  return chunk.kind == ChunkKind::kStandalone ||
         group_forward_pass(chunk.index, chunk.group_size, k) == Pass::kForward;
}

}  // namespace

std::vector<CandidateBounds> candidate_bounds(const Job& job, const CostModel& cost,
                                              const StepChunks& chunks,
                                              const std::vector<int>& ks) {
  const ParallelConfig& p = job.parallel;
  const int pp = p.pp, vpp = p.vpp, dp = p.dp;
  const int64_t layers_per_op = job.model.layers / (static_cast<int64_t>(pp) * vpp);
  CF_CHECK(!chunks.steps.empty()) << "no sampled steps";
  // The memory the simulator replays (simulator.cc): the job's source. Megatron-LM's is
  // priced chunk by chunk below; the executor's counts each op of a plan, so there the bound
  // keeps the model states alone, which every replay starts from.
  StatusOr<std::unique_ptr<OpMemorySource>> source = make_memory_source(job);
  CF_CHECK(source.ok()) << source.status().message();
  const bool executor_accounting = job.memory_model == MemoryModelKind::kExecutor;
  const MemoryModel memory(job.model, p, layers_per_op);

  // After a stage's last op: its DP reduction and optimizer step (simulator.cc: step time is
  // at least stage_end[s] + dp_reduce(s) + optimizer(s)).
  std::vector<int64_t> fixed_ns(pp), states(pp);
  for (int s = 0; s < pp; ++s) {
    fixed_ns[s] = cost.dp_reduce_time_ns(s) + cost.optimizer_time_ns(s);
    states[s] = (*source)->model_states(s).total();
  }

  const size_t nk = ks.size();
  std::vector<CandidateBounds> out(nk);
  std::vector<double> lb_sum_s(nk, 0.0);
  double tokens_sum = 0;
  std::vector<AttentionSpan> spans;
  std::vector<PassTimes> times;
  std::vector<int64_t> busy(pp), head(pp), tail(pp), mem(pp);
  for (const std::vector<Chunk>& step : chunks.steps) {
    CF_CHECK(!step.empty()) << "a step without chunks";
    const size_t n = step.size();
    // times[(c·vpp + v)·pp + s]
    times.assign(n * vpp * pp, PassTimes{});
    int64_t step_tokens = 0;
    for (size_t c = 0; c < n; ++c) {
      const Chunk& chunk = step[c];
      const bool dependent = chunk.kind == ChunkKind::kDependent;
      step_tokens += chunk.tokens;
      spans.clear();
      attention_spans(chunk, &spans);
      for (int v = 0; v < vpp; ++v) {
        for (int s = 0; s < pp; ++s) {
          // Where the simulator prices the chunk's ops: the plan's rules (plan_index.h).
          const StagePlace place = stage_place(pp, vpp, job.model.layers, s, v);
          OpQuery q = op_query(Pass::kForward, 0, s, v, place, chunk.tokens, spans);
          PassTimes& t = times[(c * vpp + v) * pp + s];
          q.pass = Pass::kForward;
          t.forward = cost.op_time(q).total_ns;
          q.pass = Pass::kBackward;
          t.backward = cost.op_time(q).total_ns;
          if (dependent) {
            q.pass = Pass::kForwardKeepKV;
            t.forward_kv = cost.op_time(q).total_ns;
            q.pass = Pass::kRecompute;
            t.recompute = cost.op_time(q).total_ns;
          }
          if (executor_accounting) continue;
          // What the replay holds at the start of F (its activations, K/V and transient), and
          // at the start of R after an F* (F*'s stage input and K/V, R's activations and
          // transient): the simulator's own op memory (memory_timeline.h; F, F* and R do not
          // depend on K). Everything else held then is >= 0, so these are lower bounds.
          auto at_start = [](const OpMemory& m) {
            return m.activations_at_start + m.store_at_start + m.transient;
          };
          t.kept_bytes = at_start(megatron_op_memory(memory, Pass::kForward, chunk, 1, place));
          if (dependent) {
            const OpMemory f_star =
                megatron_op_memory(memory, Pass::kForwardKeepKV, chunk, 1, place);
            t.dropped_bytes = f_star.activations_at_start + f_star.store_at_start +
                              at_start(megatron_op_memory(memory, Pass::kRecompute, chunk, 1, place));
          }
        }
      }
    }
    tokens_sum += static_cast<double>(step_tokens);
    auto at = [&](size_t c, int v, int s) -> const PassTimes& {
      return times[(c * vpp + v) * pp + s];
    };
    // Drain: the last op of stage s on a rank is some chunk's backward; that backward then
    // runs on stages s-1..0 (input_of, plan_index.h), so stage 0 ends at least Σ_{s'<s} B
    // later.
    for (int s = 0; s < pp; ++s) {
      int64_t best = std::numeric_limits<int64_t>::max();
      for (size_t c = 0; c < n; ++c) {
        for (int v = 0; v < vpp; ++v) {
          int64_t sum = 0;
          for (int s2 = 0; s2 < s; ++s2) sum += at(c, v, s2).backward;
          best = std::min(best, sum);
        }
      }
      tail[s] = best;
    }
    for (size_t ki = 0; ki < nk; ++ki) {
      const int k = ks[ki];
      std::fill(busy.begin(), busy.end(), 0);
      std::fill(head.begin(), head.end(), std::numeric_limits<int64_t>::max());
      std::fill(mem.begin(), mem.end(), 0);
      for (size_t c = 0; c < n; ++c) {
        const bool kept = keeps_activations(step[c], k);
        int64_t fill = 0;  // Σ_{s'<s} forward of model chunk 0
        for (int s = 0; s < pp; ++s) {
          head[s] = std::min(head[s], fill);
          fill += kept ? at(c, 0, s).forward : at(c, 0, s).forward_kv;
          for (int v = 0; v < vpp; ++v) {
            const PassTimes& t = at(c, v, s);
            busy[s] += (kept ? t.forward : t.forward_kv + t.recompute) + t.backward;
            mem[s] = std::max(mem[s], kept ? t.kept_bytes : t.dropped_bytes);
          }
        }
      }
      // Fill: the first op of stage s is a forward whose input passed stages 0..s-1 first.
      // A stage's ops run one at a time, so the busiest rank ends at least head + busy
      // (busiest ≥ mean = busy / dp), then adds its own DP reduction and optimizer, or stage
      // 0's after the drain above.
      int64_t lb_ns = 0;
      for (int s = 0; s < pp; ++s) {
        const int64_t end = head[s] + busy[s] / dp;
        lb_ns = std::max(lb_ns, end + std::max(fixed_ns[s], tail[s] + fixed_ns[0]));
      }
      lb_sum_s[ki] += static_cast<double>(lb_ns) * 1e-9;
      CandidateBounds& b = out[ki];
      for (int s = 0; s < pp; ++s) {
        const int64_t bytes = states[s] + mem[s];
        if (bytes > b.memory_bytes) {
          b.memory_bytes = bytes;
          b.memory_stage = s;
          b.model_state_bytes = states[s];
        }
      }
    }
  }
  const double steps = static_cast<double>(chunks.steps.size());
  for (size_t ki = 0; ki < nk; ++ki) {
    // average_steps: mean of per-step seconds; tokens/s = Σ tokens / Σ seconds.
    out[ki].step_time_s = chunks.steps.size() == 1 ? lb_sum_s[ki] : lb_sum_s[ki] / steps;
    out[ki].tokens_per_s =
        lb_sum_s[ki] > 0 ? tokens_sum / lb_sum_s[ki] : std::numeric_limits<double>::infinity();
  }
  return out;
}

}  // namespace cf
