// Bad input, end to end: each malformed job file makes `chunkflow plan` exit with code 2 and a
// message naming the file, line:column, key path and the specific problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::run_chunkflow;
using test::TempDir;

struct BadJob {
  std::string name;
  std::string yaml;
  std::vector<std::string> expected;  // substrings of stderr; "@" stands for the job path
  std::vector<std::pair<std::string, std::string>> extra_files = {};
};

// A valid job; each case edits one line. Line numbers below refer to this layout.
std::string job(const std::string& model = "tiny",
                const std::string& cluster = "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
                const std::string& dataset = "lengths: [4, 2, 1, 1]\n  max_length: 8",
                const std::string& parallel = "tp: 1\n  pp: 2\n  dp: 2",
                const std::string& strategy = "kind: chunkflow\n  chunk_size: 2\n  k: 2",
                const std::string& tail = "") {
  return "model: " + model + "\ncluster:\n  " + cluster + "\ndataset:\n  " + dataset +
         "\nparallel:\n  " + parallel + "\nstrategy:\n  " + strategy + "\n" + tail;
}

const std::string kQwenCluster7 = "gpu: h100-sxm-80g\n  gpus: 7\n  gpus_per_node: 8";
const std::string kTinyCluster4 = "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8";
const std::string kTinyLengths = "lengths: [4, 2, 1, 1]\n  max_length: 8";

std::vector<BadJob> bad_jobs() {
  return {
      {"unknown_top_level_key", job() + "trainig:\n  steps: 2\n", {"@:17:1: trainig: unknown key"}},
      {"unknown_nested_key",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpu_per_node: 8"),
       {"@:5:3: cluster.gpu_per_node: unknown key"}},
      {"wrong_type",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: four\n  gpus_per_node: 8"),
       {"@:4:9: cluster.gpus: expected an integer, got \"four\""}},
      {"negative_size",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: -4\n  gpus_per_node: 8"),
       {"@:4:9: cluster.gpus: must be positive, got -4"}},
      // Sizes past core/limits.h: refused where read, with the bound (no crash, no hang).
      {"huge_chunk_size",
       job("tiny", kTinyCluster4, kTinyLengths, "tp: 1\n  pp: 2\n  dp: 2",
           "kind: chunkflow\n  chunk_size: 9223372036854775807\n  k: 2"),
       {"@:15:15: strategy.chunk_size: must be at most 16777216 (16M tokens, core/limits.h), "
        "got 9223372036854775807"}},
      {"huge_k",
       job("tiny", kTinyCluster4, kTinyLengths, "tp: 1\n  pp: 2\n  dp: 2",
           "kind: chunkflow\n  chunk_size: 2\n  k: 1000000000"),
       {"strategy.k: must be at most 16777216 (core/limits.h), got 1000000000"}},
      {"huge_length",
       job("tiny", kTinyCluster4, "lengths: [4, 1000000000000, 1, 1]\n  max_length: 8"),
       {"dataset.lengths: lengths[1] must be at most 16777216 (16M tokens, core/limits.h), got "
        "1000000000000"}},
      {"huge_max_length",
       job("tiny", kTinyCluster4, "lengths: [4, 2, 1, 1]\n  max_length: 1e12"),
       {"dataset.max_length"}},
      {"huge_global_batch",
       "model: tiny\ncluster: {gpu: h100-sxm-80g, gpus: 4}\n"
       "dataset: {distribution: lmsys-chat-1m, max_length: 64}\n"
       "training: {global_batch: 100000000}\n"
       "parallel: {tp: 1, pp: 2, dp: 2}\nstrategy: {kind: chunkflow, chunk_size: 64, k: 2}\n",
       {"training.global_batch: must be at most 65536 (sequences per step, core/limits.h), got "
        "100000000"}},
      {"huge_steps",
       job() + "training:\n  steps: 2147483647\n",
       {"@:18:10: training.steps: must be at most 1000 (sampled steps simulated, core/limits.h), "
        "got 2147483647"}},
      {"zero_chunk_size",
       job("tiny", kQwenCluster7.substr(0, 0) + "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 2\n  dp: 2",
           "kind: chunkflow\n  chunk_size: 0\n  k: 2"),
       {"@:15:15: strategy.chunk_size: must be positive, got 0"}},
      {"zero_global_batch",
       job() + "training:\n  global_batch: 0\n",
       {"@:18:17: training.global_batch: must be positive, got 0"}},
      {"pp_not_dividing_layers",
       job("qwen2.5-7b", "gpu: h100-sxm-80g\n  gpus: 3\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 3\n  dp: 1"),
       {"@:11:7: parallel.pp: pp·vpp = 3·1 does not divide the 28 layers"}},
      {"tp_not_dividing_heads",
       job("qwen2.5-7b", "gpu: h100-sxm-80g\n  gpus: 8\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 8\n  pp: 1\n  dp: 1"),
       {"@:10:7: parallel.tp: tp = 8 does not divide the 28 attention heads"}},
      {"tp_not_dividing_kv_heads",
       job("qwen2.5-7b", kQwenCluster7, "lengths: [4, 2, 1, 1]\n  max_length: 8",
           "tp: 7\n  pp: 1\n  dp: 1"),
       {"@:10:7: parallel.tp: tp = 7 does not divide the 4 key/value heads"}},
      {"gpu_count_mismatch",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 8\n  gpus_per_node: 8"),
       {"@:10:3: parallel: tp·cp·pp·dp = 1·1·2·2 = 4 but cluster.gpus = 8"}},
      {"unknown_model", job("qwen9-1t"), {"@:1:8: model: unknown model \"qwen9-1t\""}},
      {"unknown_gpu",
       job("tiny", "gpu: tpu-v9\n  gpus: 4\n  gpus_per_node: 8"),
       {"@:3:8: cluster.gpu: unknown GPU \"tpu-v9\""}},
      {"unknown_distribution",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "distribution: no-such-data\n  max_length: 8"),
       {"@:7:17: dataset.distribution: unknown dataset distribution \"no-such-data\""}},
      {"empty_lengths",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: []\n  max_length: 8"),
       {"@:7:12: dataset.lengths: must not be empty"}},
      {"length_over_max",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 20, 1, 1]\n  max_length: 8"),
       {"@:7:16: dataset.lengths[1]: length 20 exceeds dataset.max_length = 8"}},
      {"distribution_and_lengths",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4]\n  distribution: longbench"),
       {"dataset.lengths: give exactly one of `distribution` and `lengths`"}},
      {"decreasing_cdf",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "distribution: DIR/dec.yaml\n  max_length: 8"),
       {"dataset.distribution:", "dec.yaml:", "cdf"},
       {{"dec.yaml", "name: dec\ncdf:\n  - [10, 0.5]\n  - [20, 0.4]\n  - [30, 1.0]\n"}}},
      {"negative_histogram",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "distribution: DIR/neg.yaml\n  max_length: 8"),
       {"dataset.distribution:", "neg.yaml:", "histogram"},
       {{"neg.yaml", "name: neg\nhistogram:\n  - [10, 5]\n  - [20, -1]\n"}}},
      {"bad_choice",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8",
           "tp: 1\n  pp: 2\n  dp: 2\n  recompute: partial"),
       {"@:13:14: parallel.recompute: must be one of none | selective | full, got \"partial\""}},
      {"missing_model",
       job().substr(job().find('\n') + 1),
       {"@:1:1: model: required key is missing"}},
      {"vpp_without_interleaved",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 2\n  dp: 2\n  vpp: 2"),
       {"@:13:8: parallel.vpp: vpp = 2 needs schedule: interleaved"}},
      {"sp_without_tp",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 2\n  dp: 2\n  sp: true"),
       {"@:13:7: parallel.sp: sequence parallelism needs tp > 1"}},
      {"calibrated_without_table",
       job() + "cost_model:\n  kind: calibrated\n",
       {"cost_model.table: required key is missing"}},
      {"bad_memory_model",
       job() + "memory_model: hbm\n",
       {"memory_model: must be one of megatron | executor, got \"hbm\""}},
      {"cp_not_dividing_chunk",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 8\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 2\n  dp: 2\n  cp: 2",
           "kind: chunkflow\n  chunk_size: 6\n  k: 1"),
       {"strategy.chunk_size: chunk_size = 6 does not split into the 4 pieces of cp = 2 with "
        "cp_comm: p2p"}},
      {"a2a_heads",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 24\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8",
           "tp: 1\n  pp: 2\n  dp: 4\n  cp: 3\n  cp_comm: a2a",
           "kind: baseline\n  micro_batching: pack"),
       {"parallel.cp: cp = 3 does not divide the 4 attention heads", "cp_comm: a2a scatters"}},
      {"bad_cp_comm",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 2\n  dp: 2\n  cp_comm: ring"),
       {"parallel.cp_comm: must be one of p2p | all_gather | a2a, got \"ring\""}},
      {"bad_grad_dtype",
       job() + "training:\n  grad_accumulation_dtype: fp16\n",
       {"training.grad_accumulation_dtype: must be one of fp32 | bf16"}},
      {"bad_overlap_key", job() + "overlap:\n  dp_comm: true\n", {"overlap.dp_comm", "unknown"}},
      {"baseline_with_chunk_size",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 2\n  dp: 2",
           "kind: baseline\n  chunk_size: 2"),
       {"@:15:15: strategy.chunk_size: applies to kind: chunkflow only"}},
      {"baseline_with_split",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 2\n  dp: 2",
           "kind: baseline\n  split: cost"),
       {"@:15:10: strategy.split: applies to kind: chunkflow only"}},
      {"bad_split",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8",
           "lengths: [4, 2, 1, 1]\n  max_length: 8", "tp: 1\n  pp: 2\n  dp: 2",
           "kind: chunkflow\n  chunk_size: 2\n  split: time"),
       {"strategy.split: must be one of tokens | cost, got \"time\""}},
      // Uneven pipeline splits (parallel.layers_per_stage; Megatron's first/last stage layers).
      {"layers_per_stage_length",
       job("tiny", kTinyCluster4, kTinyLengths,
           "tp: 1\n  pp: 2\n  dp: 2\n  layers_per_stage: [1, 2, 1]"),
       {"@:13:21: parallel.layers_per_stage: 3 entries for pp = 2"}},
      {"layers_per_stage_zero",
       job("tiny", kTinyCluster4, kTinyLengths,
           "tp: 1\n  pp: 2\n  dp: 2\n  layers_per_stage: [4, 0]"),
       {"@:13:25: parallel.layers_per_stage[1]: stage 1 must hold at least 1 layer, got 0"}},
      {"layers_per_stage_sum",
       job("tiny", kTinyCluster4, kTinyLengths,
           "tp: 1\n  pp: 2\n  dp: 2\n  layers_per_stage: [1, 2]"),
       {"@:13:21: parallel.layers_per_stage: the stages hold 3 layers in all, but tiny has 4"}},
      {"layers_per_stage_empty",
       job("tiny", kTinyCluster4, kTinyLengths, "tp: 1\n  pp: 2\n  dp: 2\n  layers_per_stage: []"),
       {"@:13:21: parallel.layers_per_stage: must not be empty"}},
      {"layers_per_stage_not_integers",
       job("tiny", kTinyCluster4, kTinyLengths,
           "tp: 1\n  pp: 2\n  dp: 2\n  layers_per_stage: [1, x]"),
       {"@:13:25: parallel.layers_per_stage[1]:"}},
      {"layers_per_stage_interleaved",
       job("tiny", kTinyCluster4, kTinyLengths,
           "tp: 1\n  pp: 2\n  dp: 2\n  schedule: interleaved\n  vpp: 2\n  layers_per_stage: [1, "
           "3]"),
       {"@:15:21: parallel.layers_per_stage: a per-stage split needs vpp = 1"}},
      {"first_stage_layers_not_dividing",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 3\n  gpus_per_node: 8", kTinyLengths,
           "tp: 1\n  pp: 3\n  dp: 1\n  first_stage_layers: 1"),
       {"@:13:23: parallel.first_stage_layers: the other 2 stages cannot split the remaining 3 of "
        "the model's 4 layers evenly"}},
      {"first_and_last_stage_layers_sum",
       job("tiny", kTinyCluster4, kTinyLengths,
           "tp: 1\n  pp: 2\n  dp: 2\n  first_stage_layers: 1\n  last_stage_layers: 2"),
       {"@:14:22: parallel.last_stage_layers: first_stage_layers + last_stage_layers = 1 + 2, but "
        "the model has 4 layers"}},
      {"last_stage_layers_leaves_nothing",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 3\n  gpus_per_node: 8", kTinyLengths,
           "tp: 1\n  pp: 3\n  dp: 1\n  last_stage_layers: 3"),
       {"@:13:22: parallel.last_stage_layers: leaves 1 of the model's 4 layers to the other 2 "
        "stages, which need at least 1 each"}},
      {"last_stage_layers_zero",
       job("tiny", kTinyCluster4, kTinyLengths, "tp: 1\n  pp: 2\n  dp: 2\n  last_stage_layers: 0"),
       {"@:13:22: parallel.last_stage_layers: must be positive, got 0"}},
      {"both_split_forms",
       job("tiny", kTinyCluster4, kTinyLengths,
           "tp: 1\n  pp: 2\n  dp: 2\n  layers_per_stage: [1, 3]\n  first_stage_layers: 1"),
       {"@:14:23: parallel.first_stage_layers: give either layers_per_stage or first_stage_layers "
        "/ "
        "last_stage_layers, not both"}},
      {"first_stage_layers_one_stage",
       job("tiny", "gpu: h100-sxm-80g\n  gpus: 4\n  gpus_per_node: 8", kTinyLengths,
           "tp: 1\n  pp: 1\n  dp: 4\n  first_stage_layers: 2"),
       {"@:13:23: parallel.first_stage_layers: needs pp >= 2, got pp = 1"}},
      {"not_yaml", "model: tiny\ncluster: [gpu: x\n", {"@:", "not valid YAML"}},
      // Hostile files behind a job's names (the issue's fuzzing campaign): each was a crash.
      {"config_json_nested_200000_deep",
       job("DIR/deep.json"),
       {"@:1:8: model: ", "deep.json: JSON nested deeper than 64 at byte 65"},
       {{"deep.json", std::string(200000, '[') + std::string(200000, ']')}}},
      {"jsonl_nested_200000_deep",
       job("tiny", kTinyCluster4, "distribution: DIR/deep.jsonl\n  max_length: 8"),
       {"@:7:17: dataset.distribution: ", "deep.jsonl:1: JSON nested deeper than 64 at byte 75"},
       {{"deep.jsonl",
         "{\"length\": " + std::string(200000, '[') + std::string(200000, ']') + "}\n"}}},
      {"jsonl_length_1e999",
       job("tiny", kTinyCluster4, "distribution: DIR/big.jsonl\n  max_length: 8"),
       {"@:7:17: dataset.distribution: ", "big.jsonl:2: length: number out of range: 1e999"},
       {{"big.jsonl", "{\"length\": 3}\n{\"length\": 1e999}\n"}}},
      {"jsonl_length_over_bound",
       job("tiny", kTinyCluster4, "distribution: DIR/huge.jsonl\n  max_length: 8"),
       {"huge.jsonl:1: length: must be at most 16777216 (16M tokens, core/limits.h), got "
        "1000000000000"},
       {{"huge.jsonl", "{\"length\": 1000000000000}\n"}}},
      {"text_length_over_bound",
       job("tiny", kTinyCluster4, "distribution: DIR/huge.txt\n  max_length: 8"),
       {"huge.txt:2:1: a length must be at most 16777216 (16M tokens, core/limits.h), got "
        "1000000000000"},
       {{"huge.txt", "5\n1000000000000\n"}}},
      {"cdf_length_over_bound",
       job("tiny", kTinyCluster4, "distribution: DIR/huge.yaml\n  max_length: 8"),
       {"huge.yaml:1:8: cdf[0]: length must be at most 16777216 (16M tokens, core/limits.h), got "
        "1e12"},
       {{"huge.yaml", "cdf: [[1e12, 1.0]]\n"}}},
      {"distribution_is_a_device",
       job("tiny", kTinyCluster4, "distribution: /dev/zero\n  max_length: 8"),
       {"@:7:17: dataset.distribution: /dev/zero: not a regular file (a character device)"}},
      {"global_batch_mismatch",
       job() + "training:\n  global_batch: 3\n",
       {"@:18:17: training.global_batch: global_batch = 3 but dataset.lengths has 4 sequences"}},
  };
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

class BadInputTest : public ::testing::TestWithParam<BadJob> {};

TEST_P(BadInputTest, ExitsTwoWithSpecificMessage) {
  const BadJob& bad = GetParam();
  TempDir dir;
  for (const auto& [name, text] : bad.extra_files) dir.write(name, text);
  const std::string path = dir.write("job.yaml", replace_all(bad.yaml, "DIR", dir.path()));
  test::CommandResult result = run_chunkflow({"plan", path});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_TRUE(result.out.empty()) << "nothing may be printed on stdout: " << result.out;
  for (const std::string& expected : bad.expected) {
    EXPECT_NE(result.err.find(replace_all(expected, "@", path)), std::string::npos)
        << "expected \"" << replace_all(expected, "@", path) << "\" in:\n"
        << result.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Jobs, BadInputTest, ::testing::ValuesIn(bad_jobs()),
                         [](const auto& info) { return info.param.name; });

TEST(BadInput, TheBaseJobIsValid) {
  TempDir dir;
  test::CommandResult result = run_chunkflow({"plan", dir.write("job.yaml", job())});
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST(BadInput, MissingJobFile) {
  test::CommandResult result = run_chunkflow({"plan", "/nonexistent/job.yaml"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("/nonexistent/job.yaml: cannot open file"), std::string::npos)
      << result.err;
}

// A job path that is no regular file, or an empty file, has its own message (it was "a job
// file must be a YAML map"); /dev/zero is refused before reading, not read forever.
TEST(BadInput, JobPathThatIsNoJob) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir.write("empty.yaml", ""), ": empty file"},
      {"/dev/null", ": not a regular file (a character device)"},
      {"/dev/zero", ": not a regular file (a character device)"},
      {dir.path(), ": not a regular file (a directory)"}};
  for (const auto& [path, message] : cases) {
    test::CommandResult result = run_chunkflow({"plan", path});
    EXPECT_EQ(result.exit_code, 2) << path << ": " << result.err;
    EXPECT_NE(result.err.find(path + message), std::string::npos) << result.err;
  }
}

TEST(BadInput, BadFlags) {
  TempDir dir;
  const std::string path = dir.write("job.yaml", job());
  EXPECT_EQ(run_chunkflow({"plan", path, "--step", "-1"}).exit_code, 2);
  EXPECT_EQ(run_chunkflow({"plan", path, "--no-such-flag"}).exit_code, 2);
  EXPECT_EQ(run_chunkflow({"plan"}).exit_code, 2);
  EXPECT_EQ(run_chunkflow({"frobnicate"}).exit_code, 2);
  test::CommandResult step = run_chunkflow({"plan", path, "--step", "5"});
  EXPECT_EQ(step.exit_code, 2);
  EXPECT_NE(step.err.find("--step 5 is outside training.steps = 1"), std::string::npos) << step.err;
}

// Output paths: a symbolic link is refused and left as it was (never replaced, never
// followed), as are a directory and a device; nothing is written beside them either (the
// trace's resolved job), and a missing directory is exit 2 with the system's reason.
TEST(BadInput, OutputsReplaceOnlyRegularFiles) {
  namespace fs = std::filesystem;
  TempDir dir;
  const std::string path = dir.write("job.yaml", job());
  const std::string real = dir.write("real.json", "keep me");
  const std::string link = dir.path() + "/link.json";
  fs::create_symlink(real, link);
  test::CommandResult linked = run_chunkflow({"simulate", path, "--trace", link});
  EXPECT_EQ(linked.exit_code, 2) << linked.err;
  EXPECT_NE(linked.err.find(link + ": is a symbolic link"), std::string::npos) << linked.err;
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(link)));
  std::ifstream in(real);
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, "keep me");
  EXPECT_FALSE(fs::exists(dir.path() + "/link.job.yaml"));

  test::CommandResult directory = run_chunkflow({"simulate", path, "--trace", dir.path()});
  EXPECT_EQ(directory.exit_code, 2) << directory.err;
  EXPECT_NE(directory.err.find(": is a directory, not a regular file"), std::string::npos)
      << directory.err;

  // The embedded default job: refused before its search.
  test::CommandResult device = run_chunkflow({"tune", "--quiet", "-o", "/dev/null"});
  EXPECT_EQ(device.exit_code, 2) << device.err;
  EXPECT_NE(device.err.find("/dev/null: is a device, pipe or socket, not a regular file"),
            std::string::npos)
      << device.err;
  EXPECT_TRUE(fs::is_character_file("/dev/null"));

  test::CommandResult missing =
      run_chunkflow({"simulate", path, "--trace", dir.path() + "/no/such/dir/t.json"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("cannot write file: No such file or directory"), std::string::npos)
      << missing.err;

  // A regular file is replaced, with the resolved job beside it.
  const std::string trace = dir.write("trace.json", "old");
  test::CommandResult ok = run_chunkflow({"simulate", path, "--trace", trace});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_GT(fs::file_size(trace), 3u);
  EXPECT_TRUE(fs::exists(dir.path() + "/trace.job.yaml"));
}

}  // namespace
}  // namespace cf
