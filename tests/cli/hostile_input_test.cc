// Hostile input, end to end: each class of input that once crashed, aborted, exhausted memory or
// hung `chunkflow` now ends in exit 0 or 2 with a message, run as a user would meet it: under a
// 4 GB address-space limit and a 20 s wall-clock limit (prlimit and timeout from util-linux and
// coreutils), so that a regression shows as a signal or a kill, not as a slow machine.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::CommandResult;
using test::TempDir;

struct Case {
  std::string name;
  std::vector<std::string> args;             // "@/NAME": the temp dir's file NAME
  std::map<std::string, std::string> files;  // written to the temp dir first
  int exit_code;                             // 0 or 2
  std::vector<std::string> expected;         // substrings of stderr (exit 2) or stdout
  int seconds = 20;                          // the wall-clock limit
};

void expect_case(const Case& c) {
  SCOPED_TRACE(c.name);
  TempDir dir;
  // "@/" in arguments and file texts stands for the temp dir.
  auto resolve = [&](std::string text) {
    for (size_t at; (at = text.find("@/")) != std::string::npos;) text.replace(at, 1, dir.path());
    return text;
  };
  for (const auto& [name, text] : c.files) dir.write(name, resolve(text));
  std::vector<std::string> args;
  for (const std::string& a : c.args) args.push_back(resolve(a));
  const CommandResult r = test::run_chunkflow_limited(args, c.seconds);
  EXPECT_EQ(r.exit_code, c.exit_code) << "stderr:\n" << r.err.substr(0, 2000);
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("CHECK"), std::string::npos) << r.err;
  const std::string& text = c.exit_code == 0 ? r.out : r.err;
  for (const std::string& e : c.expected) {
    EXPECT_NE(text.find(e), std::string::npos) << "missing \"" << e << "\" in:\n" << text;
  }
  if (c.exit_code == 2) {  // exactly one error line, no output half written
    EXPECT_TRUE(r.out.empty()) << r.out.substr(0, 500);
    EXPECT_EQ(r.err.rfind("chunkflow: error: ", 0), 0u) << r.err;
  }
}

// A job on the h100 preset with the given pieces (flow style, one line each).
std::string flow_job(const std::string& model, const std::string& cluster,
                     const std::string& dataset, const std::string& parallel,
                     const std::string& strategy, const std::string& training = "{steps: 1}") {
  return "model: " + model + "\ncluster: " + cluster + "\ndataset: " + dataset +
         "\ntraining: " + training + "\nparallel: " + parallel + "\nstrategy: " + strategy + "\n";
}

const std::string kCluster4 = "{gpu: h100-sxm-80g, gpus: 4, gpus_per_node: 8}";
const std::string kPp4 = "{tp: 1, pp: 4, dp: 1}";
const std::string kTinyYaml =
    "name: m\narchitecture: qwen2\nhidden: 64\nffn_hidden: 160\nlayers: 4\nheads: 4\n"
    "kv_heads: 2\nhead_dim: 16\nvocab: 256\nqkv_bias: true\ntied_embeddings: false\n"
    "rope_theta: 10000.0\nrms_norm_eps: 1.0e-6\nmax_position: 4096\n";

std::string model_with(const std::string& key, const std::string& value) {
  std::string text = kTinyYaml;
  const size_t at = text.find("\n" + key + ": ") + 1;
  const size_t end = text.find('\n', at);
  return text.replace(at, end - at, key + ": " + value);
}

// Sizes whose products once overflowed int64 (a SIGSEGV in chunk packing, an op duration
// that went negative) are refused where read, with the key and the bound.
TEST(HostileInput, OverflowingSizesAreRefused) {
  const std::string small = "{lengths: [16, 8], max_length: 32}";
  for (const Case& c : std::vector<Case>{
           {"chunk_size_int64_max",
            {"simulate", "@/j.yaml"},
            {{"j.yaml", flow_job("tiny", kCluster4, small, kPp4,
                                 "{kind: chunkflow, chunk_size: 9223372036854775807, k: 1}")}},
            2,
            {"strategy.chunk_size: must be at most 16777216"}},
           {"hidden_1e9",
            {"simulate", "@/j.yaml"},
            {{"j.yaml", flow_job("@/m.yaml", kCluster4, small, kPp4,
                                 "{kind: chunkflow, chunk_size: 8, k: 1}")},
             {"m.yaml", model_with("hidden", "1000000000")}},
            2,
            {"m.yaml:3:9: hidden: must be at most 131072"}},
           {"layers_2_31",
            {"plan", "@/j.yaml"},
            {{"j.yaml", flow_job("@/m.yaml", kCluster4, small, kPp4,
                                 "{kind: chunkflow, chunk_size: 8, k: 1}")},
             {"m.yaml", model_with("layers", "2147483648")}},
            2,
            {"layers: must be at most 4096"}},
           {"vocab_1e12",
            {"simulate", "@/j.yaml"},
            {{"j.yaml", flow_job("@/m.yaml", kCluster4, small, kPp4,
                                 "{kind: chunkflow, chunk_size: 8, k: 1}")},
             {"m.yaml", model_with("vocab", "1000000000000")}},
            2,
            {"vocab: must be at most 4194304"}},
           {"parameters_past_4T",
            {"simulate", "@/j.yaml"},
            {{"j.yaml", flow_job("@/m.yaml", kCluster4, small, kPp4,
                                 "{kind: chunkflow, chunk_size: 8, k: 1}")},
             {"m.yaml",
              "name: m\narchitecture: llama\nhidden: 131072\nffn_hidden: 524288\n"
              "layers: 16\nheads: 1024\nkv_heads: 8\nhead_dim: 128\nvocab: 4194304\n"
              "qkv_bias: false\ntied_embeddings: false\nrope_theta: 1.0e4\n"
              "rms_norm_eps: 1.0e-6\nmax_position: 4096\n"}},
            2,
            {"parameters, more than 4398046511104"}},
           {"unfused_scores_past_2_62_bytes",
            {"simulate", "@/j.yaml"},
            {{"j.yaml",
              flow_job("@/m.yaml", kCluster4, "{lengths: [16777216], max_length: 16777216}", kPp4,
                       "{kind: chunkflow, chunk_size: 16777216, k: 1}")},
             {"m.yaml",
              "name: wide\narchitecture: llama\nhidden: 8192\nffn_hidden: 8192\n"
              "layers: 4096\nheads: 4096\nkv_heads: 4096\nhead_dim: 2\nvocab: 1024\n"
              "qkv_bias: false\ntied_embeddings: false\nrope_theta: 1.0e4\n"
              "rms_norm_eps: 1.0e-6\nmax_position: 16777216\nattention: unfused\n"}},
            2,
            {"j.yaml: stage 0 of DP rank 0 would hold more than 2^62 bytes"}},
       }) {
    expect_case(c);
  }
}

// Readers that once overflowed the stack, threw uncaught or read forever.
TEST(HostileInput, ParsersCannotBeDrivenToCrash) {
  const std::string nested(200000, '[');
  const std::string data = "{distribution: @/d.jsonl, max_length: 64}";
  const std::string strategy = "{kind: chunkflow, chunk_size: 64, k: 1}";
  const std::string lmsys = "{distribution: lmsys-chat-1m, max_length: 64}";
  for (const Case& c : std::vector<Case>{
           {"jsonl_nested_200k",
            {"plan", "@/j.yaml"},
            {{"j.yaml", flow_job("tiny", kCluster4, data, kPp4, strategy)}, {"d.jsonl", nested}},
            2,
            {"d.jsonl:1: JSON nested deeper than 64 at byte 65"}},
           {"config_json_nested_200k",
            {"plan", "@/j.yaml"},
            {{"j.yaml", flow_job("@/config.json", kCluster4, lmsys, kPp4, strategy)},
             {"config.json", nested}},
            2,
            {"config.json: JSON nested deeper than 64 at byte 65"}},
           {"jsonl_length_1e999",
            {"plan", "@/j.yaml"},
            {{"j.yaml", flow_job("tiny", kCluster4, data, kPp4, strategy)},
             {"d.jsonl", "{\"length\": 1e999}\n"}},
            2,
            {"d.jsonl:1: length: number out of range: 1e999"}},
           {"plan_dev_zero",
            {"plan", "/dev/zero"},
            {},
            2,
            {"/dev/zero: not a regular file (a character device)"}},
           {"plan_directory", {"plan", "@/"}, {}, 2, {"not a regular file (a directory)"}},
           {"plan_empty_file", {"plan", "@/j.yaml"}, {{"j.yaml", ""}}, 2, {"j.yaml: empty file"}},
       }) {
    expect_case(c);
  }
}

// A GPU a trillion times slower than real makes every op last millennia: the engine's int64
// nanoseconds would overflow, so the step is refused instead of simulated with wrapped times.
TEST(HostileInput, AbsurdlySlowHardwareIsRefusedNotWrapped) {
  std::ifstream in("models/hardware/h100-sxm-80g.yaml");  // tests run in the source tree
  std::stringstream preset;
  preset << in.rdbuf();
  std::string gpu = preset.str();
  const size_t at = gpu.find("peak_bf16_tflops: ");
  ASSERT_NE(at, std::string::npos);
  gpu.replace(at, gpu.find('\n', at) - at, "peak_bf16_tflops: 1.0e-12");
  const std::string data = "{lengths: [16777216], max_length: 16777216}";
  const std::string strategy = "{kind: chunkflow, chunk_size: 16777216, k: 1}";
  expect_case({"slow_gpu",
               {"simulate", "@/j.yaml"},
               {{"j.yaml", flow_job("qwen2.5-7b", "{gpu: @/slow.yaml, gpus: 4, gpus_per_node: 8}",
                                    data, kPp4, strategy)},
                {"slow.yaml", gpu}},
               2,
               {"j.yaml: the step's op times add up to more than 4611686018427387904 ns"}});
  // A tiny job on a GPU of 10 FLOP/s: simulated (centuries per step), but its trace, whose
  // times are doubles of microseconds, would lose them: --trace is refused, not aborted.
  std::string slower = gpu;
  slower.replace(slower.find("1.0e-12"), 7, "1.0e-11");
  const std::string tiny_job =
      flow_job("tiny", "{gpu: @/slow.yaml, gpus: 4, gpus_per_node: 8}",
               "{lengths: [64], max_length: 64}", kPp4, "{kind: chunkflow, chunk_size: 64, k: 1}");
  expect_case({"slow_gpu_simulated",
               {"simulate", "@/j.yaml"},
               {{"j.yaml", tiny_job}, {"slow.yaml", slower}},
               0,
               {"step time         2.5"}});
  expect_case({"slow_gpu_trace",
               {"simulate", "@/j.yaml", "--trace", "@/t.json"},
               {{"j.yaml", tiny_job}, {"slow.yaml", slower}},
               2,
               {"--trace: the predicted step lasts", "longer than a trace holds"}});
  // The same job on the real GPU: a plain answer.
  expect_case({"real_gpu",
               {"simulate", "@/j.yaml"},
               {{"j.yaml", flow_job("qwen2.5-7b", kCluster4, data, kPp4, strategy)}},
               0,
               {"step time"}});
}

// Sizes that once grew memory until std::bad_alloc aborted are bounded before the work.
TEST(HostileInput, SizesAreBoundedBeforeMemoryGrows) {
  const std::string lmsys = "{distribution: lmsys-chat-1m, max_length: 4096}";
  for (const Case& c : std::vector<Case>{
           {"global_batch_1e8",
            {"simulate", "@/j.yaml"},
            {{"j.yaml",
              flow_job("tiny", kCluster4, lmsys, kPp4, "{kind: chunkflow, chunk_size: 64, k: 2}",
                       "{global_batch: 100000000}")}},
            2,
            {"training.global_batch: must be at most 65536"}},
           {"global_batch_2_31",
            {"tune", "@/j.yaml"},
            {{"j.yaml",
              flow_job("tiny", kCluster4, lmsys, kPp4, "{kind: chunkflow, chunk_size: 64, k: 2}",
                       "{global_batch: 2147483648}")}},
            2,
            {"training.global_batch: must be at most 65536"}},
           {"length_1e12",
            {"plan", "@/j.yaml"},
            {{"j.yaml", flow_job("tiny", kCluster4, "{lengths: [1000000000000], max_length: 8}",
                                 kPp4, "{kind: chunkflow, chunk_size: 8, k: 1}")}},
            2,
            {"dataset.lengths: lengths[0] must be at most 16777216"}},
           {"one_token_chunks_of_16M",
            {"plan", "@/j.yaml"},
            {{"j.yaml", flow_job("tiny", kCluster4, "{lengths: [16777216], max_length: 16777216}",
                                 kPp4, "{kind: chunkflow, chunk_size: 1, k: 1}")}},
            2,
            {"j.yaml: strategy.chunk_size: ChunkSize 1 cuts a step of 16777216 tokens into at "
             "least 16777216 chunks, more than the 1048576"}},
           {"k_1e6_with_500k_chunks",
            {"simulate", "@/j.yaml"},
            {{"j.yaml", flow_job("tiny", kCluster4, "{lengths: [8000000], max_length: 8000000}",
                                 kPp4, "{kind: chunkflow, chunk_size: 16, k: 1000000}")}},
            2,
            {"500000 chunks on pp·vpp = 4 stages make up to 6000000 ops a step, more than the "
             "4194304"}},
           {"trace_of_4M_ops",
            {"simulate", "@/j.yaml", "--trace", "@/t.json"},
            {{"j.yaml", flow_job("tiny", kCluster4, "{lengths: [16777216], max_length: 16777216}",
                                 kPp4, "{kind: chunkflow, chunk_size: 49, k: 1}")}},
            2,
            {"--trace: step 0 has 4108712 ops, more than the 131072 a trace may hold"}},
       }) {
    expect_case(c);
  }
}

// The largest step the bounds admit (4.1M ops) is simulated within the 4 GB (2.5 GB peak;
// 8-11 s on the 2-core VM, docs/LIMITS.md: the time limit here is generous, since a loaded CI
// machine is slower and the property is that memory holds, not a speed).
TEST(HostileInput, TheLargestAdmittedStepIsSimulated) {
  if (test::kSanitizedBuild || test::chunkflow_program() != CHUNKFLOW_BIN) {
    GTEST_SKIP() << "a sanitized build has no address-space limit to hold, and this step's "
                    "4.1M ops take minutes under it; the Release suite runs this test";
  }
  expect_case(
      {"ops_at_the_bound",
       {"simulate", "@/j.yaml", "--json"},
       {{"j.yaml", flow_job("tiny", kCluster4, "{lengths: [16777216], max_length: 16777216}", kPp4,
                            "{kind: chunkflow, chunk_size: 49, k: 1}")}},
       0,
       {"\"step_time_s\""},
       120});
}

// Work that once ran past any patience is refused by a bound or finishes.
TEST(HostileInput, NoHangs) {
  std::string sweep = "job: default\nvary:\n  gpus: [";
  for (int i = 1; i <= 2000; ++i) sweep += (i > 1 ? ", " : "") + std::to_string(8 * i);
  sweep += "]\n";
  const std::string lmsys = "{distribution: lmsys-chat-1m, max_length: 4096}";
  for (const Case& c : std::vector<Case>{
           {"steps_2_31",
            {"simulate", "@/j.yaml"},
            {{"j.yaml",
              flow_job("tiny", kCluster4, lmsys, kPp4, "{kind: chunkflow, chunk_size: 64, k: 2}",
                       "{global_batch: 8, steps: 2147483647}")}},
            2,
            {"training.steps: must be at most 1000"}},
           {"global_batch_1e7",
            {"simulate", "@/j.yaml"},
            {{"j.yaml",
              flow_job("tiny", kCluster4, lmsys, kPp4, "{kind: chunkflow, chunk_size: 64, k: 2}",
                       "{global_batch: 10000000}")}},
            2,
            {"must be at most 65536"}},
           {"gpus_2_20",
            {"tune", "@/j.yaml"},
            {{"j.yaml",
              flow_job("qwen2.5-7b", "{gpu: h100-sxm-80g, gpus: 1048576}", lmsys,
                       "{tp: 1, pp: 1, dp: 1048576}", "{kind: chunkflow, chunk_size: 4096, k: 1}",
                       "{global_batch: 1024}")}},
            2,
            {"j.yaml:2:36: cluster.gpus: must be at most 131072"}},
           {"sweep_of_2000_points",
            {"sweep", "@/s.yaml"},
            {{"s.yaml", sweep}},
            2,
            {"s.yaml:3:3: vary: 2000 points", "more than the 1024 a sweep may hold"}},
           {"sweep_gpus_past_the_bound",
            {"sweep", "@/s.yaml"},
            {{"s.yaml", "job: default\nvary:\n  gpus: [8, 9223372036854775807]\n"}},
            2,
            {"vary.gpus: must be at most 131072"}},
           {"tune_on_100000_gpus",
            {"tune", "@/j.yaml", "--quiet", "--top", "1"},
            {{"j.yaml",
              flow_job("qwen2.5-7b", "{gpu: h100-sxm-80g, gpus: 100000}", lmsys,
                       "{tp: 1, pp: 1, dp: 100000}", "{kind: chunkflow, chunk_size: 4096, k: 1}",
                       "{global_batch: 1024}")}},
            0,
            {"best job"}},
       }) {
    expect_case(c);
  }
}

// Long work shows where it is: simulate draws its steps on a terminal (and clears the line),
// and prints nothing of the kind when stderr is not one.
TEST(HostileInput, SimulateShowsItsStepsOnATerminal) {
  TempDir dir;
  const std::string path = dir.write(
      "j.yaml",
      flow_job("tiny", kCluster4, "{distribution: lmsys-chat-1m, max_length: 512}", kPp4,
               "{kind: chunkflow, chunk_size: 128, k: 2}", "{global_batch: 64, steps: 20}"));
  const CommandResult shown = test::run_chunkflow_on_terminal({"simulate", path});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.err.find("simulate: steps ["), std::string::npos) << shown.err;
  EXPECT_NE(shown.err.find("20/20 100%"), std::string::npos) << shown.err;
  EXPECT_NE(shown.err.rfind("\r\033[K"), std::string::npos) << shown.err;  // cleared
  const CommandResult plain = test::run_chunkflow({"simulate", path});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_TRUE(plain.err.empty()) << plain.err;
  EXPECT_EQ(plain.out, shown.out);
}

// `run` works out the memory it needs before allocating any of it.
TEST(HostileInput, RunRefusesBeforeAllocating) {
  expect_case({"qwen_7b_on_the_cpu",
               {"run", "@/j.yaml"},
               {{"j.yaml", flow_job("qwen2.5-7b", "{gpu: h100-sxm-80g, gpus: 2, gpus_per_node: 8}",
                                    "{lengths: [64, 32], max_length: 64}", "{tp: 1, pp: 2, dp: 1}",
                                    "{kind: chunkflow, chunk_size: 32, k: 1}")}},
               2,
               {"j.yaml: run: needs 113.78 GiB on the CPU backend", "this machine has",
                "nothing was allocated"}});
}

// Messages that once named neither the key nor the flag.
TEST(HostileInput, MessagesNameTheKeyOrFlag) {
  const std::string short_data = "{lengths: [16, 8], max_length: 32}";
  const std::string base =
      flow_job("tiny", kCluster4, short_data, kPp4, "{kind: chunkflow, chunk_size: 8, k: 1}");
  for (const Case& c : std::vector<Case>{
           {"tune_below_1024",
            {"tune", "@/j.yaml"},
            {{"j.yaml", base}},
            2,
            {"no ChunkSize to try in [1024, 32] (tune.chunk_size_min = 1024 by default, "
             "dataset.max_length = 32)",
             "--chunk-sizes"}},
           {"null_key",
            {"plan", "@/j.yaml"},
            {{"j.yaml", base + "~: 3\n"}},
            2,
            {"j.yaml:7:1: a null key"}},
           {"list_key",
            {"plan", "@/j.yaml"},
            {{"j.yaml", base + "[a, b]: 3\n"}},
            2,
            {"j.yaml:7:1: a list as a key"}},
           {"nested_null_key",
            {"plan", "@/j.yaml"},
            {{"j.yaml", flow_job("tiny", "{gpu: h100-sxm-80g, gpus: 4, ~: 1}", short_data, kPp4,
                                 "{kind: chunkflow, chunk_size: 8, k: 1}")}},
            2,
            {"cluster: a null key"}},
           {"duplicate_key",
            {"plan", "@/j.yaml"},
            {{"j.yaml", base + "model: tiny\n"}},
            2,
            {"j.yaml:7:1: model: duplicate key"}},
           {"margin_nan",
            {"tune", "@/j.yaml", "--margin", "nan"},
            {{"j.yaml", base}},
            2,
            {"--margin: must be in [0, 0.9], got nan"}},
           {"k_max_0",
            {"tune", "@/j.yaml", "--k-max", "0"},
            {{"j.yaml", base}},
            2,
            {"--k-max: must be in [1, 4096], got 0"}},
           {"top_0",
            {"tune", "@/j.yaml", "--top", "0"},
            {{"j.yaml", base}},
            2,
            {"--top: must be in [1, 1000], got 0"}},
           {"tune_margin_nan_in_yaml",
            {"tune", "@/j.yaml"},
            {{"j.yaml", base + "tune:\n  memory_margin: .nan\n"}},
            2,
            {"tune.memory_margin"}},
           {"sweep_target_nan",
            {"sweep", "@/s.yaml", "--target", "nan"},
            {{"s.yaml", "job: default\nvary:\n  gpus: [8]\n"}},
            2,
            {"--target: must be a positive number of tokens/s, got nan"}},
           {"calibration_table_broken",
            {"simulate", "@/j.yaml"},
            {{"j.yaml", base + "cost_model: {kind: calibrated, table: @/t.json}\n"},
             {"t.json", "{\"models\": 3}"}},
            2,
            {"j.yaml: cost_model.table: "}},
       }) {
    expect_case(c);
  }
}

}  // namespace
}  // namespace cf
