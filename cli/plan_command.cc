// `chunkflow plan JOB.yaml [--json] [--step N]`: the chunks of one global batch and each
// pipeline stage's op stream, as the simulator and executor will run them.
#include <fmt/format.h>

#include <cstdio>

#include "cli/command.h"
#include "sim/plan/plan_builder.h"
#include "sim/plan/plan_checker.h"

namespace cf::cli {
namespace {

struct PlanOptions {
  std::string job_path;
  bool json = false;
  int64_t step = 0;
};

std::string segments_text(const Chunk& chunk) {
  std::string out;
  for (const Segment& s : chunk.segments) {
    out +=
        fmt::format("{}[seq {} @{} +{}]", out.empty() ? "" : " ", s.sequence, s.offset, s.length);
  }
  return out;
}

std::string plan_text(const Plan& plan) {
  std::string out = fmt::format(
      "plan: {} · schedule {} · pp={} vpp={} dp={} · {} sequences, {} tokens · {} chunks, {} "
      "groups\n\n",
      to_string(plan.strategy), to_string(plan.schedule), plan.pp, plan.vpp, plan.dp,
      plan.sequence_lengths.size(), plan.total_tokens(), plan.chunks.size(), plan.groups());
  out += fmt::format("{:>5}  {:<10}  {:>8}  {:>5}  {:>5}  {:>4}  segments\n", "chunk", "kind",
                     "tokens", "group", "index", "rank");
  for (const Chunk& c : plan.chunks) {
    const bool dep = c.kind == ChunkKind::kDependent;
    out += fmt::format(
        "{:>5}  {:<10}  {:>8}  {:>5}  {:>5}  {:>4}  {}\n", c.id, dep ? "dependent" : "standalone",
        c.tokens, dep ? fmt::format("{}", c.group) : "-",
        dep ? fmt::format("{}/{}", c.index + 1, c.group_size) : "-", c.dp_rank, segments_text(c));
  }
  for (const RankPlan& rank : plan.ranks) {
    out += fmt::format("\nDP rank {} ({} chunks)\n", rank.dp_rank, rank.chunks.size());
    for (std::size_t s = 0; s < rank.stages.size(); ++s) {
      out += fmt::format("  stage {}:", s);
      for (const Op& op : rank.stages[s].ops) {
        out += plan.vpp > 1 ? fmt::format(" {}{}.{}", pass_name(op.pass), op.chunk, op.model_chunk)
                            : fmt::format(" {}{}", pass_name(op.pass), op.chunk);
      }
      out += "\n";
    }
  }
  return out;
}

int run_plan(const PlanOptions& options) {
  StatusOr<Job> job = load_job(options.job_path);
  if (!job.ok()) return report(job.status());
  if (options.step >= job->training.steps) {
    return report(Status::InvalidInput(fmt::format("--step {} is outside training.steps = {}",
                                                   options.step, job->training.steps)));
  }
  StatusOr<Plan> plan = build_plan(*job, options.step);
  if (!plan.ok()) return report(plan.status());
  if (Status valid = require_valid_plan(*plan, options.step); !valid.ok()) return report(valid);
  if (options.json) {
    std::fputs(plan_to_json(*plan).c_str(), stdout);
    std::fputs("\n", stdout);
  } else {
    std::fputs(resolved_table(*job).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fputs(plan_text(*plan).c_str(), stdout);
  }
  return 0;
}

}  // namespace

void add_plan_command(CLI::App& app, RunFn* run) {
  auto options = std::make_shared<PlanOptions>();
  CLI::App* cmd =
      app.add_subcommand("plan", "Print the chunks and each stage's op stream of one step");
  cmd->add_option("job", options->job_path, "job YAML file")->required();
  cmd->add_flag("-j,--json", options->json, "print the plan as JSON");
  cmd->add_option("-s,--step", options->step, "which global batch (0-based, < training.steps)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([run, options] { *run = [options] { return run_plan(*options); }; });
}

}  // namespace cf::cli
