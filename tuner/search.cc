// The search (search.h): candidates grouped in families (one layout and chunking), bounds per
// family, then waves of simulations with exact pruning.
#include "tuner/search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <tuple>
#include <utility>

#include "sim/cost_model.h"
#include "sim/memory_source.h"
#include "tuner/sweep_wire.h"

namespace cf {
// Named (not anonymous) so that CandidateSearch::Impl may derive from Search.
namespace search_detail {

// Families evaluated between two updates of the pruning threshold. A constant (not the thread
// count) so that which candidates are pruned never depends on the machine.
constexpr int kWave = 32;
// At most this many candidates in a wave (over its families' runs).
constexpr int kWaveCandidates = 32;

constexpr double kInf = std::numeric_limits<double>::infinity();

// One layout and one chunking: the candidates that differ only in K share their bounds.
struct Family {
  ParallelLayout layout;
  StrategyConfig strategy;  // k set per candidate
  const StepChunks* chunks = nullptr;
  std::vector<int> ks;
  std::vector<int> candidates;  // indices, parallel to ks
};

// How a candidate is evaluated: a screen (one DP rank per step: its memory, and its step time
// as a floor of the score), in full (with each step's one-rank look first, which can end it
// early), or in full without the one-rank look (for a candidate already screened).
enum class Look { kScreen, kFull, kFullOnly };

// What happened to one candidate.
struct Outcome {
  enum Kind { kPending, kFeasible, kInfeasible, kPrunedTime, kPrunedMemory } kind = kPending;
  SimMetrics metrics;
  std::string reason;        // infeasible: the category counted in infeasible_reasons
  std::string detail;        // infeasible: the numbers, for the closest miss
  int64_t excess_bytes = 0;  // over the budget (memory reasons only; 0 otherwise)
  double score_floor = 0;    // pruned by time or screened: a score it was proved to exceed
};

// The DP rank whose memory to judge first: the one holding the step's longest dependent group
// (its store and kept pieces dominate a stage's peak), or the most tokens when nothing splits.
int memory_screen_rank(const StepChunks& step_chunks, int step, int dp, double pair_weight) {
  const std::vector<Chunk>& chunks = step_chunks.steps[static_cast<size_t>(step)];
  const std::vector<int>& rank_of = step_chunks.dp_ranks(step, dp, pair_weight);
  std::vector<int64_t> tokens(static_cast<size_t>(dp), 0);
  int longest = 0, rank = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    tokens[static_cast<size_t>(rank_of[c])] += chunks[c].tokens;
    if (chunks[c].kind == ChunkKind::kDependent && chunks[c].group_size > longest) {
      longest = chunks[c].group_size;
      rank = rank_of[c];
    }
  }
  if (longest > 0) return rank;
  return static_cast<int>(std::max_element(tokens.begin(), tokens.end()) - tokens.begin());
}

class Search {
 public:
  Search(const Job& job, const SearchSpace& space, const std::vector<PlanInputs>& steps,
         const ThreadPool& pool, std::vector<SearchWorker>& workers, int64_t budget_bytes,
         const TuneOptions& options, std::atomic<int>* done, const int* total,
         std::mutex* progress_mu)
      : job_(job),
        space_(space),
        steps_(steps),
        pool_(pool),
        workers_(workers),
        budget_bytes_(budget_bytes),
        options_(options),
        done_(done),
        total_(total),
        progress_mu_(progress_mu) {}

  void add_family(Family family) {
    for (int c : family.candidates) {
      if (chunks_.size() <= static_cast<size_t>(c)) chunks_.resize(c + 1);
      if (family_of_.size() <= static_cast<size_t>(c)) family_of_.resize(c + 1);
      chunks_[c] = family.chunks;
      family_of_[c] = static_cast<int>(families_.size());
    }
    families_.push_back(std::move(family));
  }
  std::vector<Candidate>& candidates() { return candidates_; }

  StatusOr<SearchResult> run(int top_n, int folded) {
    const int n = static_cast<int>(candidates_.size());
    outcomes_.assign(n, Outcome{});
    bounds_.assign(n, CandidateBounds{});
    // Bounds, one family per task.
    // With peers, this process bounds every size()-th family and all exchange them.
    pool_.parallel_for(static_cast<int>(families_.size()), [&](int f, int w) {
      if (f % processes() != process()) return;
      const Family& family = families_[f];
      Job job = job_with(workers_[w].job, family.layout, family.strategy);
      StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
      // Reported by the evaluation of the same candidates.
      if (!cost.ok() || !make_memory_source(job).ok()) return;
      std::vector<CandidateBounds> b =
          candidate_bounds(job, **cost, *family.chunks, family.ks, budget_bytes_);
      for (size_t i = 0; i < b.size(); ++i) bounds_[family.candidates[i]] = b[i];
    });
    CF_RETURN_IF_ERROR(share_bounds());
    std::vector<int> order;
    for (int i = 0; i < n; ++i) {
      const CandidateBounds& b = bounds_[i];
      if (!options_.exhaustive && b.memory_bytes > budget_bytes_) {
        Outcome& o = outcomes_[i];
        o.kind = Outcome::kPrunedMemory;
        o.excess_bytes = b.memory_bytes - budget_bytes_;
        const bool states_alone = b.model_state_bytes > budget_bytes_;
        o.reason = states_alone ? "model states alone exceed the memory budget"
                                : "model states + one chunk's activations exceed the memory budget";
        o.detail = fmt::format(
            "{}: stage {} needs at least {} (model states {} + the largest chunk's activations, "
            "K/V and working memory {}) > budget {}",
            label(candidates_[i]), b.memory_stage, format_bytes(b.memory_bytes),
            format_bytes(b.model_state_bytes), format_bytes(b.memory_bytes - b.model_state_bytes),
            format_bytes(budget_bytes_));
        settle();
      } else {
        order.push_back(i);
      }
    }
    // Pending candidates by (bound now, own bound, index), smallest first: among equal bounds —
    // a family's smaller K raised to one floor — the better own bound (the larger K) first.
    using Entry = std::tuple<double, double, int>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> pending;
    for (const int i : order) pending.push({bound_score(i), bound_score(i), i});
    std::vector<int> feasible;  // sorted by (score, index)
    // Waves in bound order. A wave takes the next candidates of up to kWave families, each
    // family's as one run that one worker evaluates in order: what a run finds prunes the
    // family's smaller K (dominated) without simulating them, in this wave and later ones.
    // A candidate is first screened on one rank per step (Look::kScreen), which proves a floor
    // of its score close to the score: it waits with that floor as its bound, as do the
    // family's smaller K (family_floor), and is evaluated in full when the floor comes up. So
    // full simulations go in nearly the order of their scores and the N-th best is soon
    // found.
    std::vector<int> run_of_family(families_.size(), -1);  // this wave's run, or −1
    looked_.assign(static_cast<size_t>(n), 0);
    for (;;) {
      const double threshold =
          static_cast<int>(feasible.size()) >= top_n ? score_of(feasible[top_n - 1]) : kInf;
      std::vector<std::vector<std::pair<double, int>>> runs;
      std::vector<Entry> later;  // families of a later wave
      int taken = 0;
      while (!pending.empty() && taken < kWaveCandidates) {
        const auto [bound, own, i] = pending.top();
        if (!options_.exhaustive && bound > threshold) break;  // and all others (sorted)
        pending.pop();
        if (outcomes_[static_cast<size_t>(i)].kind != Outcome::kPending) continue;
        const double floor = options_.exhaustive ? -kInf : family_floor(i);
        if (floor > bound) {  // raised by the family since it was queued
          pending.push({floor, own, i});
          continue;
        }
        int& run = run_of_family[static_cast<size_t>(family_of_[i])];
        if (run < 0) {
          if (static_cast<int>(runs.size()) == kWave) {
            later.push_back({bound, own, i});
            continue;
          }
          run = static_cast<int>(runs.size());
          runs.emplace_back();
        }
        runs[static_cast<size_t>(run)].push_back({bound, i});
        ++taken;
      }
      for (const Entry& e : later) pending.push(e);
      if (runs.empty()) break;  // every candidate left is bounded above the threshold
      std::vector<Status> errors(runs.size());
      std::vector<int> mine;  // the runs this process evaluates (with peers, every size()-th)
      for (int r = process(); r < static_cast<int>(runs.size()); r += processes()) {
        mine.push_back(r);
      }
      pool_.parallel_for(static_cast<int>(mine.size()), [&](int m, int w) {
        const int r = mine[static_cast<size_t>(m)];
        for (const auto& [bound, i] : runs[static_cast<size_t>(r)]) {
          Outcome& o = outcomes_[static_cast<size_t>(i)];
          if (!options_.exhaustive && dominated(i, threshold)) {
            o.kind = Outcome::kPrunedTime;
          } else if (!options_.exhaustive && !looked_[static_cast<size_t>(i)] &&
                     family_floor(i) > bound) {
            continue;  // a larger K screened in this run raised it: waits for its turn
          } else {
            errors[r] = evaluate(i, workers_[w], threshold, look_for(i));
            if (!errors[r].ok()) return;
            if (o.kind == Outcome::kPending) {  // screened: waits with its floor
              looked_[static_cast<size_t>(i)] = 1;
              continue;
            }
          }
          settle();
        }
      });
      CF_RETURN_IF_ERROR(share_outcomes(runs, &errors));
      for (size_t r = 0; r < runs.size(); ++r) {
        if (!errors[r].ok()) return errors[r];
        for (const auto& [bound, i] : runs[r]) {
          run_of_family[static_cast<size_t>(family_of_[i])] = -1;
          const Outcome& o = outcomes_[static_cast<size_t>(i)];
          if (o.kind == Outcome::kFeasible) feasible.push_back(i);
          if (o.kind == Outcome::kPending) {
            double key = std::max(bound, family_floor(i));
            if (looked_[static_cast<size_t>(i)]) key = std::max(key, o.score_floor);
            pending.push({key, bound_score(i), i});
          }
        }
      }
      std::stable_sort(feasible.begin(), feasible.end(), [&](int a, int b) {
        const double sa = score_of(a), sb = score_of(b);
        return sa != sb ? sa < sb : a < b;
      });
    }
    for (const int i : order) {
      if (outcomes_[i].kind != Outcome::kPending) continue;
      outcomes_[i].kind = Outcome::kPrunedTime;
      settle();
    }
    return summarise(feasible, folded);
  }

 private:
  int process() const { return options_.peers ? options_.peers->rank() : 0; }
  int processes() const { return options_.peers ? options_.peers->size() : 1; }

  // With peers: each process's entries for items p, p + size, p + 2·size, ... of `count` (its
  // share, as make(item) writes them) reach every process, which takes each other process's
  // with take(item, entry). Throws nlohmann::json::exception on a malformed entry.
  template <typename Make, typename Take>
  void exchange(size_t count, const Make& make, const Take& take) {
    const size_t me = static_cast<size_t>(process()), step = static_cast<size_t>(processes());
    nlohmann::json mine = nlohmann::json::array();
    for (size_t item = me; item < count; item += step) mine.push_back(make(item));
    const std::vector<std::vector<uint8_t>> all =
        options_.peers->all_gather(nlohmann::json::to_cbor(mine));
    for (size_t p = 0; p < step; ++p) {
      if (p == me) continue;
      size_t item = p;
      for (const nlohmann::json& entry : nlohmann::json::from_cbor(all[p])) {
        CF_CHECK_LT(item, count);
        take(item, entry);
        item += step;
      }
    }
  }

  // With peers: every process's bounds of the families it took, into bounds_ everywhere.
  Status share_bounds() {
    if (processes() == 1) return Status::Ok();
    try {
      exchange(
          families_.size(),
          [&](size_t f) {
            nlohmann::json family = nlohmann::json::array();
            for (const int i : families_[f].candidates) {
              const CandidateBounds& b = bounds_[static_cast<size_t>(i)];
              family.push_back({b.step_time_s, b.step_s, b.tokens_per_s, b.memory_bytes,
                                b.memory_stage, b.model_state_bytes, b.slower_with_smaller_k});
            }
            return family;
          },
          [&](size_t f, const nlohmann::json& family) {
            const std::vector<int>& members = families_[f].candidates;
            CF_CHECK_EQ(family.size(), members.size());
            for (size_t k = 0; k < members.size(); ++k) {
              const nlohmann::json& j = family[k];
              CandidateBounds& b = bounds_[static_cast<size_t>(members[k])];
              b.step_time_s = j.at(0).get<double>();
              b.step_s = j.at(1).get<std::vector<double>>();
              b.tokens_per_s = j.at(2).get<double>();
              b.memory_bytes = j.at(3).get<int64_t>();
              b.memory_stage = j.at(4).get<int>();
              b.model_state_bytes = j.at(5).get<int64_t>();
              b.slower_with_smaller_k = j.at(6).get<bool>();
            }
          });
    } catch (const nlohmann::json::exception& e) {
      return Status::Runtime(std::string("a peer's search bounds do not read: ") + e.what());
    }
    return Status::Ok();
  }

  // With peers: the outcomes of every process's runs of this wave (and their errors), into
  // outcomes_, looked_ and *errors everywhere; candidates settled elsewhere count here too.
  Status share_outcomes(const std::vector<std::vector<std::pair<double, int>>>& runs,
                        std::vector<Status>* errors) {
    if (processes() == 1) return Status::Ok();
    try {
      exchange(
          runs.size(),
          [&](size_t r) {
            const Status& error = (*errors)[r];
            nlohmann::json run = {static_cast<int>(error.code()), error.message(),
                                  nlohmann::json::array()};
            for (const auto& [bound, i] : runs[r]) {
              const Outcome& o = outcomes_[static_cast<size_t>(i)];
              run[2].push_back({static_cast<int>(o.kind), o.reason, o.detail, o.excess_bytes,
                                o.score_floor, looked_[static_cast<size_t>(i)] != 0,
                                o.kind == Outcome::kFeasible ? sim_metrics_to_wire(o.metrics)
                                                             : nlohmann::json()});
            }
            return run;
          },
          [&](size_t r, const nlohmann::json& run) {
            const int code = run.at(0).get<int>();
            if (code != 0) {
              const std::string message = run.at(1).get<std::string>();
              (*errors)[r] = code == static_cast<int>(StatusCode::kInvalidInput)
                                 ? Status::InvalidInput(message)
                                 : Status::Runtime(message);
            }
            const nlohmann::json& outcomes = run.at(2);
            CF_CHECK_LE(outcomes.size(), runs[r].size());
            for (size_t k = 0; k < outcomes.size(); ++k) {
              const nlohmann::json& j = outcomes[k];
              const int i = runs[r][k].second;
              Outcome& o = outcomes_[static_cast<size_t>(i)];
              o.kind = static_cast<Outcome::Kind>(j.at(0).get<int>());
              o.reason = j.at(1).get<std::string>();
              o.detail = j.at(2).get<std::string>();
              o.excess_bytes = j.at(3).get<int64_t>();
              o.score_floor = j.at(4).get<double>();
              looked_[static_cast<size_t>(i)] = j.at(5).get<bool>() ? 1 : 0;
              if (o.kind == Outcome::kFeasible) o.metrics = sim_metrics_from_wire(j.at(6));
              if (o.kind != Outcome::kPending) settle();
            }
          });
    } catch (const nlohmann::json::exception& e) {
      return Status::Runtime(std::string("a peer's search outcomes do not read: ") + e.what());
    }
    return Status::Ok();
  }

  double bound_score(int i) const {
    return space_.objective == Objective::kStepTime ? bounds_[i].step_time_s
                                                    : -bounds_[i].tokens_per_s;
  }
  double score_of(int i) const { return objective_score(space_.objective, outcomes_[i].metrics); }
  // The score of `timed` sampled steps taking `total_s` together and carrying `tokens`
  // (average_steps: the mean step time; tokens/s = Σ tokens / Σ seconds, negated).
  double score_of_steps(double total_s, int timed, double tokens) const {
    if (space_.objective == Objective::kStepTime) return total_s / timed;
    return -(total_s > 0 ? tokens / total_s : std::numeric_limits<double>::infinity());
  }

  // How candidate i is evaluated: screened first where a screen is cheaper than the whole
  // step (DP ranks to leave out) and neither it nor a larger K of its family has been
  // looked at; in full without the one-rank look once it was screened itself.
  Look look_for(int i) const {
    if (options_.exhaustive || candidates_[static_cast<size_t>(i)].layout.dp == 1) {
      return Look::kFull;
    }
    if (looked_[static_cast<size_t>(i)]) return Look::kFullOnly;
    return family_floor(i) > -kInf ? Look::kFull : Look::kScreen;
  }

  // The largest score floor a larger K of candidate i's family proves for it (a smaller K
  // never scores better, bounds.h slower_with_smaller_k): a screened one's floor or a
  // simulated one's score; −∞ when none.
  double family_floor(int i) const {
    if (!bounds_[static_cast<size_t>(i)].slower_with_smaller_k) return -kInf;
    const Family& family = families_[static_cast<size_t>(family_of_[static_cast<size_t>(i)])];
    const int k = candidates_[static_cast<size_t>(i)].strategy.k;
    double floor = -kInf;
    for (const int j : family.candidates) {
      if (candidates_[static_cast<size_t>(j)].strategy.k <= k) continue;
      const Outcome& o = outcomes_[static_cast<size_t>(j)];
      if (o.kind == Outcome::kPending && looked_[static_cast<size_t>(j)]) {
        floor = std::max(floor, o.score_floor);
      } else if (o.kind == Outcome::kFeasible) {
        floor = std::max(floor, score_of(j));
      }
    }
    return floor;
  }

  // Whether candidate i provably scores above `threshold` because a candidate of its family
  // with a larger K does (bounds.h slower_with_smaller_k: a smaller K never simulates
  // faster, so it never scores better): that one was pruned by time (its score was proved
  // above an earlier threshold, and thresholds only fall) or simulated above the threshold.
  bool dominated(int i, double threshold) const {
    if (!bounds_[static_cast<size_t>(i)].slower_with_smaller_k) return false;
    const Family& family = families_[static_cast<size_t>(family_of_[static_cast<size_t>(i)])];
    const int k = candidates_[static_cast<size_t>(i)].strategy.k;
    for (const int j : family.candidates) {
      if (candidates_[static_cast<size_t>(j)].strategy.k <= k) continue;
      const Outcome& o = outcomes_[static_cast<size_t>(j)];
      if (o.kind == Outcome::kPrunedTime) return true;
      if (o.kind == Outcome::kFeasible && score_of(j) > threshold) return true;
    }
    return false;
  }

  static std::string label(const Candidate& c) {
    if (c.strategy.kind == StrategyKind::kBaseline) return "baseline " + describe(c.layout);
    return fmt::format("ChunkSize {} K {} {} {}", c.strategy.chunk_size, c.strategy.k,
                       to_string(c.strategy.packer), describe(c.layout));
  }

  void settle() {
    const int now = done_->fetch_add(1) + 1;
    if (options_.progress) {
      std::lock_guard<std::mutex> lock(*progress_mu_);
      options_.progress(now, *total_);
    }
  }

  // Simulates a candidate step by step: the worst-case batch first (memory only: when it
  // does not fit, nothing else needs simulating), then the sampled steps, each checked for
  // memory; after each sampled step the score can be bounded by the steps simulated so far
  // plus the bounds of the rest (bounds.h), and a candidate whose bound is above `threshold`
  // (the current N-th best score) cannot reach the top N and is pruned there.
  Status evaluate(int index, SearchWorker& worker, double threshold, Look look = Look::kFull) {
    const Candidate& c = candidates_[index];
    Outcome& o = outcomes_[index];
    Job& job = worker.job;
    apply_layout(c.layout, c.strategy, &job);
    StatusOr<std::unique_ptr<CostModel>> cost = make_cost_model(job);
    if (!cost.ok()) {
      // A cost model that cannot price this layout (the calibrated model measures the
      // executor, which runs no recompute policy) rules the candidate out, not the search.
      o.kind = Outcome::kInfeasible;
      o.reason = "no cost model: " + cost.status().message();
      o.detail = label(c) + ": " + o.reason;
      return Status::Ok();
    }
    if (Status memory = make_memory_source(job).status(); !memory.ok()) {
      // The executor's memory accounting covers what the executor runs (no context
      // parallelism with the ring, for one): the layout is out, not the search.
      o.kind = Outcome::kInfeasible;
      o.reason = "no memory model: " + memory.message();
      o.detail = label(c) + ": " + o.reason;
      return Status::Ok();
    }
    std::vector<SimMetrics> steps;
    const StepChunks& chunks = *chunks_[index];
    std::optional<SimMetrics> worst_case;
    const int timed = chunks.timed_steps();
    std::vector<size_t> order;
    if (timed < static_cast<int>(steps_.size())) order.push_back(steps_.size() - 1);
    for (int step = 0; step < timed; ++step) order.push_back(static_cast<size_t>(step));
    double simulated_s = 0, tokens = 0;
    for (int step = 0; step < timed; ++step) {
      for (const Chunk& chunk : chunks.steps[static_cast<size_t>(step)]) {
        tokens += static_cast<double>(chunk.tokens);
      }
    }
    // Pruned by time once step `steps.size()` takes at least step_s: the score it then exceeds
    // with the later steps at their bounds.
    auto pruned = [&](double step_s) {
      double total_s = simulated_s + step_s;
      for (size_t later = steps.size() + 1; later < bounds_[index].step_s.size(); ++later) {
        total_s += bounds_[index].step_s[later];
      }
      o.kind = Outcome::kPrunedTime;
      o.score_floor = score_of_steps(total_s, timed, tokens);
      return Status::Ok();
    };
    for (const size_t step : order) {
      PlanInputs in = steps_[step];
      in.strategy = c.strategy;
      in.schedule = c.layout.schedule;
      in.pp = c.layout.pp;
      in.vpp = c.layout.vpp;
      in.dp = c.layout.dp;
      in.layers_per_stage = c.layout.layers_per_stage;
      const bool memory_only = static_cast<int>(step) >= timed;
      const int64_t limit_ns =
          memory_only ? 0 : give_up_ns(index, steps.size(), simulated_s, tokens, threshold);
      if (!options_.exhaustive && in.dp > 1 && look != Look::kFullOnly) {
        // One rank first: the rank of the step's longest group, scheduled alone, has the same
        // streams, memory and pipeline as in the whole plan, so over the budget there is over
        // it here, and its step (its own ends, reductions and optimizer) is at most the whole
        // step's: past the limit there is past it here. A screen stops there, with the one
        // rank's steps as the score's floor.
        PlanInputs one = in;
        one.only_rank = memory_screen_rank(chunks, static_cast<int>(step), in.dp, in.pair_weight);
        StatusOr<Plan> screen = build_plan_with_chunks(one, chunks.steps[step]);
        if (screen.ok()) {
          SimOptions first;
          first.memory_only = memory_only;
          first.memory_budget_bytes = budget_bytes_;
          first.give_up_above_ns = limit_ns;
          CF_ASSIGN_OR_RETURN(const SimResult alone, simulate(worker, *screen, **cost, first, c));
          if (!fits_budget(alone.metrics)) return infeasible(c, o, alone.metrics);
          if (!memory_only && limit_ns > 0 &&
              (!alone.metrics.timed || std::llround(alone.metrics.step_time_s * 1e9) > limit_ns)) {
            return pruned(alone.metrics.step_time_s);
          }
          if (look == Look::kScreen) {
            if (memory_only) continue;
            // The rank's step stands for the whole step (a lower bound) in what follows.
            simulated_s += alone.metrics.step_time_s;
            steps.emplace_back();
            continue;
          }
        }
      }
      StatusOr<Plan> plan = build_plan_with_chunks(in, chunks.steps[step]);
      if (!plan.ok()) {
        o.kind = Outcome::kInfeasible;
        o.reason = "no valid plan: " + plan.status().message();
        o.detail = label(c) + ": " + o.reason;
        return Status::Ok();
      }
      // Memory first (simulator.h): the worst-case batch is judged for memory only, and a step
      // over the budget stops before its times are computed.
      SimOptions sim;
      sim.memory_only = memory_only;
      sim.memory_budget_bytes = budget_bytes_;
      sim.give_up_above_ns = limit_ns;
      StatusOr<SimResult> result = simulate(worker, *plan, **cost, sim, c);
      if (!result.ok()) return result.status();
      const bool fits = fits_budget(result->metrics);
      if (fits && !sim.memory_only && !result->metrics.timed) {
        // The step alone took the candidate past the N-th best (give_up_ns).
        return pruned(result->metrics.step_time_s);
      }
      if (static_cast<int>(step) < timed) {
        simulated_s += result->metrics.step_time_s;
        steps.push_back(std::move(result->metrics));
      } else {
        worst_case = std::move(result->metrics);
      }
      if (!fits) {
        // Over the budget in one step is infeasible whatever the others do.
        return infeasible(c, o, steps.empty() ? *worst_case : steps.back());
      }
      if (!options_.exhaustive && static_cast<int>(steps.size()) < timed &&
          static_cast<int>(bounds_[index].step_s.size()) == timed) {
        double bound_s = simulated_s;
        for (int later = static_cast<int>(steps.size()); later < timed; ++later) {
          bound_s += bounds_[index].step_s[static_cast<size_t>(later)];
        }
        const double score = score_of_steps(bound_s, timed, tokens);
        if (score > threshold) {
          o.kind = Outcome::kPrunedTime;
          o.score_floor = score;
          return Status::Ok();
        }
      }
    }
    if (look == Look::kScreen) {
      // Screened on one rank per step: waits with the score those steps prove it exceeds.
      o.kind = Outcome::kPending;
      o.score_floor = score_of_steps(simulated_s, timed, tokens);
      return Status::Ok();
    }
    o.metrics = average_steps(steps);
    if (worst_case) {
      apply_worst_case(*worst_case,
                       steps_.back().sequence_lengths.empty()
                           ? 0
                           : *std::max_element(steps_.back().sequence_lengths.begin(),
                                               steps_.back().sequence_lengths.end()),
                       &o.metrics);
      // The worst case's peak counts against the budget like the sampled steps' peaks.
      for (const StageMetrics& st : worst_case->stages) {
        StageMetrics& mine = o.metrics.stages[static_cast<size_t>(st.stage)];
        if (st.peak_memory_bytes > mine.peak_memory_bytes) {
          mine.peak_memory_bytes = st.peak_memory_bytes;
          mine.peak_breakdown = st.peak_breakdown;
        }
      }
    }
    if (fits_budget(o.metrics)) {
      o.kind = Outcome::kFeasible;
      if (options_.feasible) options_.feasible(c, o.metrics);
      return Status::Ok();
    }
    return infeasible(c, o, o.metrics);
  }

  // The step time (ns) above which sampled step number `done` (steps before it simulated,
  // `simulated_s` in all) cannot leave the candidate in the top N, given the bounds of the
  // steps after it and the N-th best score `threshold`; 0 (no limit) in an exhaustive search,
  // before N candidates are known, or without per-step bounds. One nanosecond of slack keeps
  // the comparison on the safe side of rounding.
  int64_t give_up_ns(int index, size_t done, double simulated_s, double tokens,
                     double threshold) const {
    const std::vector<double>& bound_s = bounds_[index].step_s;
    const size_t timed = bound_s.size();
    if (options_.exhaustive || !std::isfinite(threshold) || done >= timed ||
        static_cast<size_t>(chunks_[index]->timed_steps()) != timed) {
      return 0;
    }
    double later_s = 0;
    for (size_t j = done + 1; j < timed; ++j) later_s += bound_s[j];
    double total_s = 0;  // the most the steps may take together
    if (space_.objective == Objective::kStepTime) {
      total_s = threshold * static_cast<double>(timed);
    } else {
      if (threshold >= 0) return 0;
      total_s = tokens / -threshold;
    }
    const double allowed_s = total_s - simulated_s - later_s;
    if (!(allowed_s > 0)) return 1;
    if (allowed_s > 9e9) return 0;  // beyond any step (and int64 ns)
    return static_cast<int64_t>(std::ceil(allowed_s * 1e9)) + 1;
  }

  // A simulation that fails is a broken plan (a bug), named with the candidate.
  static StatusOr<SimResult> simulate(SearchWorker& worker, const Plan& plan, const CostModel& cost,
                                      const SimOptions& options, const Candidate& c) {
    StatusOr<SimResult> result = worker.simulator.run(worker.job, plan, cost, options);
    if (!result.ok()) {
      return Status::Runtime(fmt::format("simulating {}: {}", label(c), result.status().message()));
    }
    return result;
  }

  bool fits_budget(const SimMetrics& m) const {
    if (!m.feasible) return false;
    for (const StageMetrics& st : m.stages) {
      if (st.peak_memory_bytes > budget_bytes_) return false;
    }
    return true;
  }

  // The outcome of a candidate whose simulated step `m` does not fit: its worst stage.
  Status infeasible(const Candidate& c, Outcome& o, const SimMetrics& m) const {
    o.metrics = m;
    const StageMetrics* worst = &o.metrics.stages.front();
    for (const StageMetrics& st : o.metrics.stages) {
      if (st.peak_memory_bytes > worst->peak_memory_bytes) worst = &st;
    }
    const MemoryBreakdown& b = worst->peak_breakdown;
    o.kind = Outcome::kInfeasible;
    o.reason = "simulated peak memory exceeds the memory budget";
    o.excess_bytes = worst->peak_memory_bytes - budget_bytes_;
    o.detail = fmt::format(
        "{}: stage {} peaks at {} (model states {}, activations {}, state store {}, working "
        "memory {}) > budget {}",
        label(c), worst->stage, format_bytes(worst->peak_memory_bytes),
        format_bytes(b.weights + b.gradients + b.optimizer), format_bytes(b.activations),
        format_bytes(b.state_store), format_bytes(b.transient), format_bytes(budget_bytes_));
    return Status::Ok();
  }

  SearchResult summarise(const std::vector<int>& feasible, int folded) const {
    SearchResult r;
    r.candidates = static_cast<int>(candidates_.size());
    r.folded = folded;
    int closest = -1;
    for (int i = 0; i < r.candidates; ++i) {
      const Outcome& o = outcomes_[i];
      if (o.kind == Outcome::kFeasible || o.kind == Outcome::kInfeasible) ++r.evaluated;
      if (o.kind == Outcome::kPrunedTime) ++r.pruned_time;
      if (o.kind == Outcome::kPrunedMemory) ++r.pruned_memory;
      if (o.kind == Outcome::kInfeasible || o.kind == Outcome::kPrunedMemory) {
        ++r.infeasible;
        ++r.infeasible_reasons[o.reason];
        const bool memory = o.excess_bytes > 0;
        if (closest < 0 || (memory && (outcomes_[closest].excess_bytes <= 0 ||
                                       o.excess_bytes < outcomes_[closest].excess_bytes))) {
          closest = i;
        }
      }
    }
    if (closest >= 0) r.closest_miss = outcomes_[closest].detail;
    for (int i : feasible) r.ranked.push_back({candidates_[i], outcomes_[i].metrics});
    return r;
  }

  const Job& job_;
  const SearchSpace& space_;
  const std::vector<PlanInputs>& steps_;
  const ThreadPool& pool_;
  std::vector<SearchWorker>& workers_;
  int64_t budget_bytes_;
  const TuneOptions& options_;
  std::atomic<int>* done_;
  const int* total_;
  std::mutex* progress_mu_;
  std::vector<Family> families_;
  std::vector<const StepChunks*> chunks_;  // per candidate: its chunking, built once
  std::vector<int> family_of_;             // per candidate: its family
  std::vector<char> looked_;               // per candidate: screened (Look::kScreen)
  std::vector<Candidate> candidates_;
  std::vector<Outcome> outcomes_;
  std::vector<CandidateBounds> bounds_;
};

// Candidates of one layout and chunking, with K values at or above the longest group folded
// into the first of them. Returns the number folded.
int add_candidates(Search& search, const ParallelLayout& layout, const StrategyConfig& strategy,
                   const StepChunks& chunks, const std::vector<int>& ks) {
  Family family{layout, strategy, &chunks, {}, {}};
  int folded = 0;
  for (size_t i = 0; i < ks.size(); ++i) {
    const bool covers = ks[i] >= chunks.max_group_size;
    Candidate c;
    c.index = static_cast<int>(search.candidates().size());
    c.layout = layout;
    c.strategy = strategy;
    c.strategy.k = ks[i];
    c.k_covers = covers ? ks.back() : ks[i];
    c.max_group_size = chunks.max_group_size;
    family.ks.push_back(ks[i]);
    family.candidates.push_back(c.index);
    search.candidates().push_back(c);
    if (covers) {
      folded = static_cast<int>(ks.size() - i - 1);
      break;
    }
  }
  search.add_family(std::move(family));
  return folded;
}

}  // namespace search_detail

class CandidateSearch::Impl : public search_detail::Search {
 public:
  using Search::Search;
};

CandidateSearch::CandidateSearch(const Job& job, const SearchSpace& space,
                                 const std::vector<PlanInputs>& steps, const ThreadPool& pool,
                                 std::vector<SearchWorker>& workers, int64_t budget_bytes,
                                 const TuneOptions& options, std::atomic<int>* done,
                                 const int* total, std::mutex* progress_mu)
    : impl_(std::make_unique<Impl>(job, space, steps, pool, workers, budget_bytes, options, done,
                                   total, progress_mu)) {}

CandidateSearch::~CandidateSearch() = default;

int CandidateSearch::add_candidates(const ParallelLayout& layout, const StrategyConfig& strategy,
                                    const StepChunks& chunks, const std::vector<int>& ks) {
  return search_detail::add_candidates(*impl_, layout, strategy, chunks, ks);
}

int CandidateSearch::size() const { return static_cast<int>(impl_->candidates().size()); }

StatusOr<SearchResult> CandidateSearch::run(int top_n, int folded) {
  return impl_->run(top_n, folded);
}

}  // namespace cf
