// `chunkflow plan`: the JSON carries the documented keys, the op streams are those of the
// paper's example, and the same job and seed give byte-identical output.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "tests/support/subprocess.h"

namespace cf {
namespace {

using test::run_chunkflow;
using test::TempDir;

const char* kPaperJob = R"(model: tiny
cluster: {gpu: h100-sxm-80g, gpus: 4, gpus_per_node: 8}
dataset: {lengths: [4, 2, 1, 1], max_length: 8}
parallel: {tp: 1, pp: 4, dp: 1}
strategy: {kind: chunkflow, chunk_size: 2, k: 2}
cost_model: {kind: unit}
)";

TEST(PlanCommand, JsonOfThePaperExample) {
  TempDir dir;
  test::CommandResult result = run_chunkflow({"plan", dir.write("job.yaml", kPaperJob), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  nlohmann::json plan = nlohmann::json::parse(result.out);
  // Chunks: the 2-token sequence, the two 1-token sequences packed, the 4-token sequence split.
  ASSERT_EQ(plan["chunks"].size(), 4u);
  int standalone = 0, dependent = 0;
  for (const auto& chunk : plan["chunks"]) {
    ASSERT_TRUE(chunk.contains("id") && chunk.contains("tokens") && chunk.contains("segments"));
    EXPECT_EQ(chunk["tokens"], 2);
    if (chunk["kind"] == "standalone") ++standalone;
    if (chunk["kind"] == "dependent") {
      ++dependent;
      EXPECT_EQ(chunk["segments"].size(), 1u);
      EXPECT_EQ(chunk["segments"][0][0], 0);  // sequence 0 is the 4-token one
      EXPECT_EQ(chunk["segments"][0][1], 2 * int(chunk["index"]));
    }
  }
  EXPECT_EQ(standalone, 2);
  EXPECT_EQ(dependent, 2);
  ASSERT_EQ(plan["ranks"].size(), 1u);
  const auto& stages = plan["ranks"][0]["stages"];
  ASSERT_EQ(stages.size(), 4u);
  // Last stage: F0 B0 F1 B1, then both halves forward before the group's backwards (B3 B2).
  std::string last;
  for (const auto& op : stages[3]["ops"])
    last += std::string(op["op"]) + std::to_string(int(op["chunk"])) + " ";
  EXPECT_EQ(last, "F0 B0 F1 B1 F2 F3 B3 B2 ");
  std::set<int> ids;
  for (const auto& stage : stages)
    for (const auto& op : stage["ops"]) ids.insert(int(op["id"]));
  EXPECT_EQ(ids.size(), 4u * 8u) << "op ids must be unique";
}

TEST(PlanCommand, ByteIdenticalForSameJobAndSeed) {
  TempDir dir;
  const std::string job = dir.write("job.yaml", R"(model: qwen2.5-7b
cluster: {gpu: h100-sxm-80g, gpus: 32, gpus_per_node: 8}
dataset: {distribution: lmsys-chat-1m, max_length: 262144, seed: 11}
training: {global_batch: 256}
parallel: {tp: 4, pp: 4, dp: 2, sp: true}
strategy: {kind: chunkflow, chunk_size: 8192, k: 2}
)");
  test::CommandResult first = run_chunkflow({"plan", job, "--json"});
  test::CommandResult second = run_chunkflow({"plan", job, "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, second.out);
  EXPECT_GT(first.out.size(), 1000u);
  const std::string other = dir.write("other.yaml", R"(model: qwen2.5-7b
cluster: {gpu: h100-sxm-80g, gpus: 32, gpus_per_node: 8}
dataset: {distribution: lmsys-chat-1m, max_length: 262144, seed: 12}
training: {global_batch: 256}
parallel: {tp: 4, pp: 4, dp: 2, sp: true}
strategy: {kind: chunkflow, chunk_size: 8192, k: 2}
)");
  test::CommandResult third = run_chunkflow({"plan", other, "--json"});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_NE(first.out, third.out) << "a different seed must draw a different batch";
}

TEST(PlanCommand, TextOutputShowsResolvedJobAndStreams) {
  TempDir dir;
  test::CommandResult result = run_chunkflow({"plan", dir.write("job.yaml", kPaperJob)});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("resolved job"), std::string::npos);
  EXPECT_NE(result.out.find("strategy.chunk_size"), std::string::npos);
  EXPECT_NE(result.out.find("stage 3: F0 B0 F1 B1 F2 F3 B3 B2"), std::string::npos) << result.out;
}

}  // namespace
}  // namespace cf
