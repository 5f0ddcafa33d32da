// `chunkflow compare PRED.json PROFILE...` end to end: `chunkflow simulate --trace` predicts a
// small pipeline, the test writes one PyTorch profile per rank from that prediction (every op
// marked and run 5/4 as long, a GEMM kernel under each compute op), and compare must place the
// ranks, match every marked op and report the errors as text, JSON and HTML; bad profiles and
// mixed inputs end in exit 2.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/subprocess.h"
#include "traces/trace.h"

namespace cf {
namespace {

using test::CommandResult;
using test::run_chunkflow;
using test::TempDir;

// tiny (4 layers) on 2 stages, one DP rank.
constexpr const char* kJob = R"(model: tiny
cluster: {gpu: h100-sxm-80g, gpus: 2, gpus_per_node: 8}
dataset: {lengths: [300, 200, 100, 90, 60, 40], max_length: 512}
training: {steps: 1}
parallel: {tp: 1, pp: 2, dp: 1, recompute: none, schedule: 1f1b}
strategy: {kind: chunkflow, chunk_size: 256, k: 1, packer: balanced}
)";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// µs with three decimals: exact ns.
std::string us(int64_t ns) { return fmt::format("{}.{:03}", ns / 1000, ns % 1000); }

std::string mark_of(const TraceOp& op) {
  std::string name = "chunkflow:";
  name += op.kind == OpKind::kCompute ? pass_name(op.pass) : op_kind_name(op.kind);
  if (op.chunk >= 0) name += fmt::format(":chunk={}", op.chunk);
  if (op.model_chunk != 0) name += fmt::format(":mc={}", op.model_chunk);
  return name;
}

// The profile of `stage` (rank = stage here): one ProfilerStep over the whole prediction ×5/4
// plus 10 µs, each of the stage's ops marked at 5/4 of its predicted times, a GEMM kernel under
// each compute op.
std::string profile_of(const Trace& predicted, int stage, int64_t* step_ns) {
  int64_t last = 0;
  for (const TraceOp& op : predicted.ops) last = std::max(last, op.end_ns);
  *step_ns = last * 5 / 4 + 10'000;
  std::vector<std::string> events = {fmt::format(
      R"({{"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#7", "pid": 1, "tid": 1, )"
      R"("ts": 0.000, "dur": {}}})",
      us(*step_ns))};
  for (const TraceOp& op : predicted.ops) {
    if (op.stage != stage) continue;
    const int64_t start = op.start_ns * 5 / 4 + 1000, end = op.end_ns * 5 / 4 + 1000;
    events.push_back(fmt::format(
        R"({{"ph": "X", "cat": "user_annotation", "name": "{}", "pid": 1, "tid": 1, "ts": {}, )"
        R"("dur": {}}})",
        mark_of(op), us(start), us(end - start)));
    if (op.kind == OpKind::kCompute) {
      events.push_back(fmt::format(
          R"({{"ph": "X", "cat": "kernel", "name": "ampere_sgemm_128x64_tn", "pid": 0, )"
          R"("tid": 7, "ts": {}, "dur": {}, "args": {{"device": 0, "stream": 7}}}})",
          us(start), us(end - start)));
    }
  }
  std::string out = fmt::format(
      "{{\"distributedInfo\": {{\"rank\": {}, \"world_size\": 2}}, \"traceEvents\": [\n", stage);
  for (std::size_t i = 0; i < events.size(); ++i) out += (i ? ",\n" : "") + events[i];
  return out + "\n]}\n";
}

class CompareProfileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string job = dir_.write("job.yaml", kJob);
    predicted_path_ = dir_.path() + "/pred.json";
    const CommandResult sim = run_chunkflow({"simulate", job, "--trace", predicted_path_});
    ASSERT_EQ(sim.exit_code, 0) << sim.err;
    StatusOr<Trace> predicted = trace_from_chrome_json(slurp(predicted_path_), predicted_path_);
    ASSERT_TRUE(predicted.ok()) << predicted.status().message();
    predicted_ = *predicted;
    for (int stage = 0; stage < 2; ++stage) {
      profiles_.push_back(
          dir_.write(fmt::format("rank{}.json", stage), profile_of(predicted_, stage, &step_ns_)));
    }
  }
  TempDir dir_;
  std::string predicted_path_;
  Trace predicted_;
  std::vector<std::string> profiles_;
  int64_t step_ns_ = 0;
};

TEST_F(CompareProfileCli, JsonReport) {
  // The prediction records its layout and the analytical model's class split.
  EXPECT_EQ(predicted_.metrics.at("layout_pp"), 2);
  EXPECT_EQ(predicted_.metrics.at("layout_tp"), 1);
  const CommandResult r =
      run_chunkflow({"compare", predicted_path_, profiles_[0], profiles_[1], "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["measured"], "pytorch_profiles");
  const double predicted_s = predicted_.metrics.at("step_time_s");
  const double measured_s = static_cast<double>(step_ns_) / 1e9;
  EXPECT_DOUBLE_EQ(j["step_time"]["measured_s"].get<double>(), measured_s);
  EXPECT_DOUBLE_EQ(j["step_time_rel_error"].get<double>(), (predicted_s - measured_s) / measured_s);
  EXPECT_EQ(j["layout"]["from"]["pp"], "trace");
  ASSERT_EQ(j["rank_table"].size(), 2u);
  EXPECT_EQ(j["rank_table"][1]["stage"], 1);
  EXPECT_EQ(j["class_table"]["predicted_breakdown"], true);
  EXPECT_GT(j["class_table"]["totals"][0]["measured_s"].get<double>(), 0);  // gemm
  // Every op of the prediction is marked, and every mark found its op.
  const nlohmann::json& ops = j["ops"];
  ASSERT_EQ(ops["available"], true) << ops["reason"];
  EXPECT_EQ(ops["matched_ops"].get<std::size_t>(), predicted_.ops.size());
  EXPECT_EQ(ops["unmatched"]["only_predicted"]["total"], 0);
  EXPECT_EQ(ops["unmatched"]["only_measured"]["total"], 0);
  EXPECT_TRUE(ops["not_marked"].empty());
  for (const nlohmann::json& pass : ops["pass_table"]) {
    EXPECT_NEAR(pass["median_rel_error"].get<double>(), -0.2, 1e-3) << pass["label"];
  }
  // Deterministic.
  EXPECT_EQ(run_chunkflow({"compare", predicted_path_, profiles_[0], profiles_[1], "--json"}).out,
            r.out);
}

TEST_F(CompareProfileCli, TextHtmlAndGzip) {
  const std::string html_path = dir_.path() + "/report.html";
  // The second rank gzip-compressed: told apart by its bytes, read the same.
  const std::string gz_path = dir_.path() + "/rank1.json.gz";
  const std::string text = slurp(profiles_[1]);
  gzFile gz = gzopen(gz_path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  const CommandResult r =
      run_chunkflow({"compare", predicted_path_, gz_path, profiles_[0], "--html", html_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* expected :
       {"layout: tp 1 (trace) × cp 1 (trace) × dp 1 (trace) × pp 2 (trace) = 2 GPUs",
        "ProfilerStep#7", "rank 1 (dp 0, stage 1): ProfilerStep#7", "only in predicted: 0"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.out;
  }
  const std::string html = slurp(html_path);
  EXPECT_NE(html.find("Predicted step vs PyTorch profiles"), std::string::npos);
  EXPECT_NE(html.find("<figure class=\"tl\" id=\"measured\""), std::string::npos);
}

TEST_F(CompareProfileCli, BadInputIsExit2) {
  const std::string full = slurp(profiles_[0]);
  // Cut after an event, as a profiler killed while writing leaves it.
  const std::string truncated =
      dir_.write("truncated.json", full.substr(0, full.find(",\n", full.size() / 2) + 2));
  CommandResult r = run_chunkflow({"compare", predicted_path_, truncated});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(truncated + ": truncated: the JSON ends early"), std::string::npos) << r.err;

  std::string bad = full;
  bad.replace(bad.find("chunkflow:"), 10, "chunkflow:Q:chunk=x:");
  const std::string malformed = dir_.write("malformed.json", bad);
  r = run_chunkflow({"compare", predicted_path_, malformed});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(malformed + ": traceEvents[1]: malformed chunkflow mark"), std::string::npos)
      << r.err;

  r = run_chunkflow({"compare", predicted_path_, predicted_path_, profiles_[0]});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not a PyTorch profile"), std::string::npos) << r.err;
  r = run_chunkflow({"compare", predicted_path_, predicted_path_, "--tp", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--tp and --cp place the ranks of PyTorch profiles"), std::string::npos);
  r = run_chunkflow({"compare", predicted_path_, profiles_[0], profiles_[1], "--tp", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--tp 2: the predicted trace records tp = 1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cf
