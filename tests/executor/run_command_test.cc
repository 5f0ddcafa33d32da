// `chunkflow run` end to end (in-process transport): the JSON the issue asks for, the text
// report with the resolved job, the measured trace with the plan's op ids (readable by the
// trace reader, so `chunkflow compare` can join it) and the resolved job saved beside it, and
// exit 2 with a message naming the input for bad jobs, flags and token files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "sim/plan/plan_builder.h"
#include "tests/support/executor_fixture.h"
#include "tests/support/subprocess.h"
#include "traces/trace.h"

namespace cf {
namespace {

using test::run_chunkflow;
using test::TempDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

test::TinyJob pipelined_job() {
  test::TinyJob spec;
  spec.lengths = {130, 17, 44, 3, 61, 9};
  spec.pp = 2;
  spec.strategy = "{kind: chunkflow, chunk_size: 40, k: 1}";
  return spec;
}

// pipelined_job with `kv_offload: PLACEMENT` ("all", "auto", "all, kv_offload_min_tokens: N")
// in its strategy, written to `dir` as NAME.yaml, and `run --backend cpu` of it as text; the
// job's path in `path`.
test::CommandResult run_offloaded(const TempDir& dir, const std::string& name,
                                  const std::string& placement, std::string* path) {
  test::TinyJob spec = pipelined_job();
  spec.strategy = "{kind: chunkflow, chunk_size: 40, k: 1, kv_offload: " + placement + "}";
  *path = dir.write(name + ".yaml", test::tiny_job_yaml(spec));
  return run_chunkflow({"run", *path, "--backend", "cpu"});
}

TEST(RunCommand, JsonCarriesStepTimeThroughputLossMemoryAndGradientError) {
  TempDir dir;
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(pipelined_job()));
  const test::CommandResult r =
      run_chunkflow({"run", job, "--backend", "cpu", "--json", "--check-reference"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_GT(out.at("step_time_s").get<double>(), 0);
  EXPECT_GT(out.at("tokens_per_s").get<double>(), 0);
  EXPECT_NEAR(out.at("tokens_per_s").get<double>() * out.at("step_time_s").get<double>(), 264,
              1e-6);  // Σ lengths, one step
  EXPECT_NEAR(out.at("loss").get<double>(), std::log(256.0), 0.05);
  EXPECT_LE(out.at("grad_rel_error").get<double>(), 1e-5);
  EXPECT_EQ(out.at("transport"), "inproc");
  ASSERT_EQ(out.at("stages").size(), 2u);
  for (const nlohmann::json& stage : out.at("stages")) {
    const int64_t peak = stage.at("peak_memory_bytes").get<int64_t>();
    int64_t sum = 0;
    for (const auto& [category, bytes] : stage.at("peak_memory_breakdown").items()) {
      sum += bytes.get<int64_t>();
    }
    EXPECT_EQ(sum, peak);  // the breakdown is of the peak itself
    EXPECT_GT(stage.at("peak_memory_breakdown").at("activations").get<int64_t>(), 0);
    // fp32 weights, gradients and AdamW m, v: 4 B each per parameter held by the stage.
    EXPECT_EQ(stage.at("peak_memory_breakdown").at("optimizer").get<int64_t>(),
              2 * stage.at("peak_memory_breakdown").at("weights").get<int64_t>());
  }
}

// K/V offload in the report: the host pool's peak and copies (text and JSON) when pieces were
// offloaded; with a line above every sequence of the run, the text says nothing was, and why.
TEST(RunCommand, OffloadSaysWhatWentToTheHostPool) {
  TempDir dir;
  std::string all;
  const test::CommandResult text = run_offloaded(dir, "all", "all", &all);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("K/V offload       host pool peak "), std::string::npos) << text.out;
  const test::CommandResult json = run_chunkflow({"run", all, "--backend", "cpu", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  int64_t host = 0;
  const nlohmann::json out = nlohmann::json::parse(json.out);
  for (const nlohmann::json& stage : out.at("stages")) {
    EXPECT_EQ(stage.at("peak_memory_breakdown").at("state_store").get<int64_t>(), 0);
    EXPECT_GE(stage.at("host_copy_bytes").get<int64_t>(),
              2 * stage.at("host_peak_bytes").get<int64_t>());
    host += stage.at("host_peak_bytes").get<int64_t>();
  }
  EXPECT_GT(host, 0);
  std::string above_job;  // the longest sequence has 130 tokens
  const test::CommandResult above =
      run_offloaded(dir, "above", "all, kv_offload_min_tokens: 131", &above_job);
  ASSERT_EQ(above.exit_code, 0) << above.err;
  EXPECT_NE(above.out.find("nothing offloaded: no split sequence of the run has 131 tokens or "
                           "more (kv_offload_min_tokens)"),
            std::string::npos)
      << above.out;
}

// kv_offload: auto on the CPU backend: the host pool is the same RAM, so the K/V stays with
// the stages, and the report says so (text and JSON).
TEST(RunCommand, AutoOffloadOnTheCpuKeepsTheStateWithTheStages) {
  TempDir dir;
  std::string job;
  const test::CommandResult text = run_offloaded(dir, "auto", "auto", &job);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("K/V offload       auto: none (a host backend"), std::string::npos)
      << text.out;
  EXPECT_EQ(text.out.find("host pool peak"), std::string::npos) << text.out;
  const test::CommandResult json = run_chunkflow({"run", job, "--backend", "cpu", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json out = nlohmann::json::parse(json.out);
  EXPECT_EQ(out.at("kv_offload"), "auto: none");
  for (const nlohmann::json& stage : out.at("stages")) {
    EXPECT_FALSE(stage.contains("host_peak_bytes"));
  }
}

TEST(RunCommand, TraceHasEveryPlanOpAndTheResolvedJobBesideIt) {
  TempDir dir;
  const test::TinyJob spec = pipelined_job();
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(spec));
  const std::string trace_path = dir.path() + "/measured.json";
  const test::CommandResult r = run_chunkflow({"run", job, "--trace", trace_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("peak mem"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tiny"), std::string::npos) << "the resolved job is printed";

  StatusOr<Trace> trace = trace_from_chrome_json(read_file(trace_path), trace_path);
  ASSERT_TRUE(trace.ok()) << trace.status().message();
  EXPECT_EQ(trace->source, "measured");
  StatusOr<Plan> plan = build_plan(test::tiny_job(spec), 0);
  ASSERT_TRUE(plan.ok());
  std::set<int> plan_ids, trace_ids;
  for (const RankPlan& rank : plan->ranks) {
    for (const StagePlan& stage : rank.stages) {
      for (const Op& op : stage.ops) plan_ids.insert(op.id);
    }
  }
  int compute = 0;
  for (const TraceOp& op : trace->ops) {
    if (op.kind != OpKind::kCompute) continue;
    ++compute;
    trace_ids.insert(op.op_id);
    EXPECT_LE(op.start_ns, op.end_ns);
  }
  EXPECT_EQ(compute, plan->op_count());
  EXPECT_EQ(trace_ids, plan_ids);
  EXPECT_FALSE(trace->memory.empty());
  EXPECT_EQ(trace->peak_memory.size(), 2u);
  EXPECT_GT(trace->metrics.at("step_time_s"), 0);

  StatusOr<Job> resolved = load_job(dir.path() + "/measured.job.yaml");
  ASSERT_TRUE(resolved.ok()) << resolved.status().message();
  EXPECT_EQ(resolved_yaml(*resolved), resolved_yaml(test::tiny_job(spec)));
}

// Context parallelism (all-gather): two CP ranks per stage, four workers; the measured trace is
// CP rank 0's, so every plan op appears once.
TEST(RunCommand, ContextParallelRunGivesWholeSequenceGradientsAndEveryOpOnce) {
  TempDir dir;
  test::TinyJob spec = pipelined_job();
  spec.cp = 2;
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(spec));
  const std::string trace_path = dir.path() + "/measured.json";
  const test::CommandResult r =
      run_chunkflow({"run", job, "--json", "--check-reference", "--trace", trace_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_LE(out.at("grad_rel_error").get<double>(), 1e-5);
  EXPECT_NEAR(out.at("loss").get<double>(), std::log(256.0), 0.05);
  ASSERT_EQ(out.at("stages").size(), 2u);
  StatusOr<Trace> trace = trace_from_chrome_json(read_file(trace_path), trace_path);
  ASSERT_TRUE(trace.ok()) << trace.status().message();
  StatusOr<Plan> plan = build_plan(test::tiny_job(spec), 0);
  ASSERT_TRUE(plan.ok());
  std::set<int> trace_ids;
  int compute = 0;
  for (const TraceOp& op : trace->ops) {
    if (op.kind != OpKind::kCompute) continue;
    ++compute;
    trace_ids.insert(op.op_id);
  }
  EXPECT_EQ(compute, plan->op_count());
  EXPECT_EQ(static_cast<int>(trace_ids.size()), plan->op_count());
}

// The executor runs all-gather CP only: the ring (p2p) and Ulysses (a2a) are bad input naming
// the key, the variant it runs and the one asked for.
TEST(RunCommand, ContextParallelWithoutAllGatherExitsTwoNamingTheKey) {
  TempDir dir;
  for (const std::string comm : {"p2p", "a2a"}) {
    test::TinyJob spec = pipelined_job();
    spec.cp = 2;
    spec.cp_comm = comm;
    const std::string job = dir.write(comm + ".yaml", test::tiny_job_yaml(spec));
    const test::CommandResult r = run_chunkflow({"run", job});
    EXPECT_EQ(r.exit_code, 2) << comm << "\n" << r.err;
    EXPECT_NE(r.err.find("parallel.cp_comm: the executor runs cp > 1 with all_gather only (got " +
                         comm + ")"),
              std::string::npos)
        << r.err;
  }
}

// GPT models are the simulator's: `run` refuses one with exit 2, naming the model and why.
TEST(RunCommand, GptModelExitsTwoNamingTheModel) {
  TempDir dir;
  const std::string model = dir.write("g.yaml",
                                      "name: small-gpt\narchitecture: gpt\nhidden: 64\n"
                                      "ffn_hidden: 256\nlayers: 2\nheads: 4\nkv_heads: 4\n"
                                      "vocab: 256\nmax_position: 128\n");
  std::string yaml = test::tiny_job_yaml(pipelined_job());
  const size_t at = yaml.find("model:");
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, yaml.find('\n', at) - at, "model: " + model);
  const test::CommandResult r = run_chunkflow({"run", dir.write("job.yaml", yaml)});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("model: the executor runs Llama / Qwen2 layers"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("small-gpt is a gpt model"), std::string::npos) << r.err;
}

TEST(RunCommand, TokenFileGivesTheBatch) {
  TempDir dir;
  test::TinyJob spec = pipelined_job();
  spec.lengths = {1, 1};  // global_batch 2: the file's first two sequences
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(spec));
  const std::string tokens =
      dir.write("tokens.jsonl", "[1, 2, 3, 4, 5]\n{\"input_ids\": [7, 7, 7]}\n");
  const test::CommandResult r = run_chunkflow({"run", job, "--json", "--tokens", tokens});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("steps").at(0).at("tokens"), 8);
}

TEST(RunCommand, BadInputExitsTwoNamingWhatIsWrong) {
  TempDir dir;
  test::TinyJob spec = pipelined_job();
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(spec));
  std::string tp2 = test::tiny_job_yaml(spec);
  tp2.replace(tp2.find("tp: 1"), 5, "tp: 2");
  tp2.replace(tp2.find("gpus: 2, gpus_per_node: 2"), 25, "gpus: 4, gpus_per_node: 4");
  const std::string tp_job = dir.write("tp2.yaml", tp2);
  const std::string bad_tokens = dir.write("bad.jsonl", "[1, 2]\n[3, 999]\n");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"run", dir.path() + "/missing.yaml"}, "missing.yaml"},
      {{"run", tp_job}, "parallel.tp"},
      {{"run", job, "--tokens", bad_tokens}, "bad.jsonl:2: token id 999"},
      {{"run", job, "--backend", "rocm"}, "--backend"},
      {{"run", job, "--backend", "cuda", "--math", "fp16"}, "--math"},
  };
  for (const Case& c : cases) {
    const test::CommandResult r = run_chunkflow(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args.back() << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
}

// `run --backend cuda` runs on a GPU where there is one; without one (or in a build without
// CUDA) it is a runtime condition, exit 1 with the reason, not a usage error, and prints nothing.
TEST(RunCommand, CudaBackendRunsOnADeviceOrSaysWhyNot) {
  test::TempDir dir;
  test::TinyJob spec;
  spec.lengths = {37, 5};
  const std::string job = dir.write("job.yaml", test::tiny_job_yaml(spec));
  const test::CommandResult r = run_chunkflow({"run", job, "--backend", "cuda", "--json"});
  if (r.exit_code == 0) {
    const nlohmann::json out = nlohmann::json::parse(r.out);
    EXPECT_EQ(out["backend"], "cuda");
    EXPECT_EQ(out["device"].get<std::string>().rfind("cuda (", 0), 0u) << out["device"];
    EXPECT_TRUE(out.contains("device_memory"));
    return;
  }
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
#if CF_TEST_CUDA_BUILT
  // The sanitizer phase runs another chunkflow (CHUNKFLOW_TEST_PROGRAM), built without CUDA.
  if (test::test_program_replaced() &&
      r.err.find("built without the CUDA backend") != std::string::npos) {
    return;
  }
  EXPECT_NE(r.err.find("no CUDA device"), std::string::npos) << r.err;
#else
  EXPECT_NE(r.err.find("built without the CUDA backend"), std::string::npos) << r.err;
#endif
}

}  // namespace
}  // namespace cf
