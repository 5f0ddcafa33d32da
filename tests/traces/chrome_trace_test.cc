// The Chrome trace format: a random trace survives write -> read exactly, writing is
// byte-deterministic, the layout is what Perfetto reads, and malformed files name the event.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "traces/trace.h"

namespace cf {
namespace {

using nlohmann::json;

// A trace with every field exercised: odd sizes, ns values that are not multiples of 1000,
// times up to 10^13 ns for ops and 2^49 ns for memory samples, several DP ranks and stages.
Trace random_trace(uint64_t seed, int ops, int samples) {
  std::mt19937_64 gen(seed);  // the standard fixes mt19937_64's sequence
  auto pick = [&gen](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(gen() % static_cast<uint64_t>(hi - lo + 1));
  };
  const std::vector<OpKind> kinds = {OpKind::kCompute, OpKind::kSend, OpKind::kRecv,
                                     OpKind::kDpReduce, OpKind::kOptimizer};
  const std::vector<Pass> passes = {Pass::kForward, Pass::kForwardKeepKV, Pass::kRecompute,
                                    Pass::kBackward};
  // The six categories and the total (empty).
  std::vector<std::optional<MemoryCategory>> categories(kAllMemoryCategories.begin(),
                                                        kAllMemoryCategories.end());
  categories.push_back(std::nullopt);
  Trace trace;
  trace.source = seed % 2 ? "predicted" : "measured";
  for (int i = 0; i < ops; ++i) {
    TraceOp op;
    op.dp_rank = static_cast<int>(pick(0, 2));
    op.stage = static_cast<int>(pick(0, 4));
    op.kind = kinds[pick(0, 4)];
    // Compute ops and messages carry a pass; messages their bytes and peer stage.
    if (op.kind == OpKind::kCompute || op.kind == OpKind::kSend || op.kind == OpKind::kRecv) {
      op.pass = passes[pick(0, 3)];
    }
    if (op.kind == OpKind::kSend || op.kind == OpKind::kRecv) {
      op.peer_stage = static_cast<int>(pick(0, 4));
      op.bytes = pick(1, int64_t{1} << 40);
    }
    op.chunk = static_cast<int>(pick(-1, 80));
    op.model_chunk = static_cast<int>(pick(0, 1));
    op.op_id = static_cast<int>(pick(-1, 100000));
    op.start_ns = pick(0, 10'000'000'000'000);
    op.end_ns = op.start_ns + pick(0, 987'654'321);
    op.tokens = pick(0, 1 << 20);
    op.group = static_cast<int>(pick(-1, 17));
    op.index = static_cast<int>(pick(0, 16));
    if (op.kind == OpKind::kCompute && pick(0, 1) == 1) {  // a cost model's class split
      ClassNs split{};
      int64_t left = op.duration_ns();
      for (int c = 0; c + 1 < kKernelClassCount; ++c) left -= split[c] = pick(0, left);
      split[kKernelClassCount - 1] = left;
      op.class_ns = split;
    }
    trace.ops.push_back(op);
  }
  for (int i = 0; i < samples; ++i) {
    trace.memory.push_back(MemorySample{static_cast<int>(pick(0, 2)), static_cast<int>(pick(0, 4)),
                                        pick(0, int64_t{1} << 49), categories[pick(0, 6)],
                                        pick(0, int64_t{1} << 40)});
  }
  for (int dp = 0; dp < 3; ++dp) {
    for (int stage = 0; stage < 5; stage += 2) {
      for (MemoryCategory category : kAllMemoryCategories) {
        trace.peak_memory[{dp, stage}][category] = pick(0, int64_t{1} << 42);
      }
    }
  }
  trace.metrics["step_time_s"] = static_cast<double>(pick(1, 1 << 30)) / 3.0e7;
  trace.metrics["bubble_ratio"] = 3.0 / 7.0;
  trace.metrics["mfu"] = 1e-300;
  trace.metrics["tokens_per_s"] = 1.2345678901234567e12;
  return trace;
}

TEST(ChromeTrace, RandomTraceRoundTripsExactly) {
  for (uint64_t seed : {1u, 2u, 81u, 987u}) {
    SCOPED_TRACE(seed);
    const Trace trace = random_trace(seed, 1 + static_cast<int>(seed % 97) * 3, 17);
    const std::string text = trace_to_chrome_json(trace);
    StatusOr<Trace> back = trace_from_chrome_json(text, "t.json");
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->ops, trace.ops);
    EXPECT_EQ(back->memory, trace.memory);
    EXPECT_EQ(back->peak_memory, trace.peak_memory);
    EXPECT_EQ(back->metrics, trace.metrics);
    EXPECT_TRUE(*back == trace);
    EXPECT_EQ(trace_to_chrome_json(*back), text);  // re-serialisation is byte-identical
  }
}

TEST(ChromeTrace, EqualTracesGiveIdenticalBytes) {
  Trace a = random_trace(5, 31, 9);
  Trace b;  // the same content, maps filled in another order
  b.source = a.source;
  b.ops = a.ops;
  b.memory = a.memory;
  for (auto it = a.metrics.rbegin(); it != a.metrics.rend(); ++it)
    b.metrics[it->first] = it->second;
  for (auto it = a.peak_memory.rbegin(); it != a.peak_memory.rend(); ++it) {
    b.peak_memory[it->first] = it->second;
  }
  EXPECT_EQ(trace_to_chrome_json(a), trace_to_chrome_json(b));
  b.ops[3].end_ns += 1;
  EXPECT_NE(trace_to_chrome_json(a), trace_to_chrome_json(b));
}

TEST(ChromeTrace, LayoutIsChromeTraceEventFormat) {
  Trace trace;
  trace.source = "predicted";
  trace.ops.push_back(TraceOp{1, 2, OpKind::kCompute, Pass::kForwardKeepKV, 3, 0, 41, 1234567,
                              1234568, 4096, 0, 1});
  trace.ops.push_back(TraceOp{1, 2, OpKind::kSend, Pass::kForwardKeepKV, 3, 0, 41, 2000000, 2500000,
                              4096, 0, 1, 3, 8192});
  trace.memory.push_back(MemorySample{1, 2, 1500001, MemoryCategory::kActivations, 987});
  trace.metrics["bubble_ratio"] = 0.25;
  const std::string text = trace_to_chrome_json(trace);
  const json root = json::parse(text);
  ASSERT_EQ(root["traceEvents"].size(), 6u);  // 3 metadata, 2 ops, 1 counter
  EXPECT_EQ(root["displayTimeUnit"], "ns");
  EXPECT_EQ(
      root["traceEvents"][0],
      json::parse(R"({"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"dp 1"}})"));
  EXPECT_EQ(root["traceEvents"][1]["args"]["name"], "stage 2");
  // ts/dur in µs with the ns digits, exact ns in args.
  EXPECT_NE(text.find(R"("dur":0.001,"name":"F*3","ph":"X","pid":1,"tid":2,"ts":1234.567})"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"("start_ns":1234567)"), std::string::npos);
  // A send goes on its stage's send track, with its bytes and the receiving stage.
  EXPECT_NE(text.find(R"("name":"send 3","ph":"X","pid":1,"tid":1002)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("bytes":8192)"), std::string::npos);
  EXPECT_NE(text.find(R"("peer":3)"), std::string::npos);
  EXPECT_EQ(root["traceEvents"][2]["args"]["name"], "stage 2 sends");
  const std::string counter =
      R"({"args":{"bytes":987},"cat":"memory","name":"stage 2 memory activations",)"
      R"("ph":"C","pid":1,"tid":2,"ts":1500.001})";
  EXPECT_NE(text.find(counter), std::string::npos) << text;
  EXPECT_EQ(root["chunkflow"]["metrics"]["bubble_ratio"], 0.25);
  EXPECT_EQ(text.back(), '\n');
}

TEST(ChromeTrace, NonFiniteMetricIsWrittenAsNull) {
  Trace trace;
  trace.source = "measured";
  trace.metrics["mfu"] = std::numeric_limits<double>::quiet_NaN();
  const std::string text = trace_to_chrome_json(trace);
  EXPECT_NE(text.find(R"("mfu":null)"), std::string::npos);
  StatusOr<Trace> back = trace_from_chrome_json(text, "t.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(std::isnan(back->metrics.at("mfu")));
}

// Malformed files: the message names the origin, the event index and the key.
// A compute op's class split travels as six args, all or none; they must sum to the op's
// duration. A trace written before the split existed (none of them) still reads.
TEST(ChromeTrace, ClassSplitIsOptionalAndChecked) {
  Trace trace;
  trace.source = "predicted";
  TraceOp op;
  op.pass = Pass::kBackward;
  op.chunk = 3;
  op.start_ns = 1001;
  op.end_ns = 1001 + 987;
  op.class_ns = ClassNs{500, 300, 17, 0, 81, 89};  // gemm, attention, collective, memcpy, ...
  trace.ops.push_back(op);
  const json good = json::parse(trace_to_chrome_json(trace));
  const json& args = good["traceEvents"][2]["args"];  // after the process and thread names
  EXPECT_EQ(args["gemm_ns"], 500);
  EXPECT_EQ(args["elementwise_ns"], 81);
  EXPECT_EQ(args["other_ns"], 89);
  StatusOr<Trace> back = trace_from_chrome_json(good.dump(), "t.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, trace);

  json old = good;
  for (const char* key :
       {"gemm_ns", "attention_ns", "collective_ns", "memcpy_ns", "elementwise_ns", "other_ns"}) {
    old["traceEvents"][2]["args"].erase(key);
  }
  back = trace_from_chrome_json(old.dump(), "t.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_FALSE(back->ops[0].class_ns.has_value());

  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& j) { j["traceEvents"][2]["args"]["gemm_ns"] = 501; },
       "traceEvents[2].args.gemm_ns: the class times sum to 988 ns, not to the op's 987 ns"},
      {[](json& j) { j["traceEvents"][2]["args"].erase("memcpy_ns"); },
       "traceEvents[2].args.memcpy_ns: required key is missing"},
      {[](json& j) { j["traceEvents"][2]["args"]["other_ns"] = -1; },
       "traceEvents[2].args.other_ns: -1 is not a time"},
      {[](json& j) { j["traceEvents"][2]["args"].erase("gemm_ns"); },
       "traceEvents[2].args.attention_ns: unknown key"},
  };
  for (const auto& [edit, fragment] : cases) {
    json bad = good;
    edit(bad);
    back = trace_from_chrome_json(bad.dump(), "t.json");
    ASSERT_FALSE(back.ok()) << fragment;
    EXPECT_NE(back.status().message().find(fragment), std::string::npos) << back.status().message();
  }
}

TEST(ChromeTrace, MalformedEventsNameTheirIndex) {
  const Trace trace = random_trace(3, 10, 4);
  const json good = json::parse(trace_to_chrome_json(trace));
  std::size_t first_op = 0, first_counter = 0;
  for (std::size_t i = 0; i < good["traceEvents"].size(); ++i) {
    if (good["traceEvents"][i]["ph"] == "X" && first_op == 0) first_op = i;
    if (good["traceEvents"][i]["ph"] == "C" && first_counter == 0) first_counter = i;
  }
  ASSERT_GT(first_op, 0u);
  ASSERT_GT(first_counter, first_op);
  const std::size_t op = first_op + 3;
  const std::string at_op = "traceEvents[" + std::to_string(op) + "]";
  const std::string at_counter = "traceEvents[" + std::to_string(first_counter) + "]";
  struct Case {
    const char* label;
    std::function<void(json&)> edit;
    std::vector<std::string> fragments;
  };
  const std::vector<Case> cases = {
      {"start_ns not an integer",
       [&](json& j) { j["traceEvents"][op]["args"]["start_ns"] = "x"; },
       {at_op + ".args.start_ns:", "expected an integer"}},
      {"missing tokens",
       [&](json& j) { j["traceEvents"][op]["args"].erase("tokens"); },
       {at_op + ".args.tokens:", "missing"}},
      {"unknown arg",
       [&](json& j) { j["traceEvents"][op]["args"]["colour"] = 1; },
       {at_op + ".args.colour:", "unknown key"}},
      {"ts disagrees with start_ns",
       [&](json& j) { j["traceEvents"][op]["ts"] = j["traceEvents"][op]["ts"].get<double>() + 1; },
       {at_op + ".ts:", "disagrees"}},
      {"unsupported phase",
       [&](json& j) { j["traceEvents"][op]["ph"] = "B"; },
       {at_op + ".ph:", "unsupported phase"}},
      {"end before start",
       [&](json& j) {
         j["traceEvents"][op]["args"]["end_ns"] =
             j["traceEvents"][op]["args"]["start_ns"].get<int64_t>() - 1;
       },
       {at_op + ".args.end_ns:", "before it starts"}},
      {"counter name",
       [&](json& j) { j["traceEvents"][first_counter]["name"] = "memory"; },
       {at_counter + ".name:", "memory counter"}},
      {"unknown op kind",
       [&](json& j) {
         j["traceEvents"][op]["args"]["kind"] = "tp_comm";
         j["traceEvents"][op]["cat"] = "tp_comm";
       },
       {at_op + ".args.kind:", "unknown op kind \"tp_comm\""}},
      {"unknown pass",
       [&](json& j) { j["traceEvents"][op]["args"]["pass"] = "G"; },
       {at_op + ".args.pass:", "unknown pass \"G\""}},
      {"unknown memory category",
       [&](json& j) {
         const int stage = j["traceEvents"][first_counter]["tid"];
         j["traceEvents"][first_counter]["name"] =
             "stage " + std::to_string(stage) + " memory heap";
       },
       {at_counter + ".name:", "unknown memory category \"heap\""}},
      {"peak total not the sum",
       [&](json& j) { j["chunkflow"]["peak_memory"][0]["bytes"]["total"] = -1; },
       {"chunkflow.peak_memory[0].bytes.total:", "not the sum"}},
      {"peak category missing",
       [&](json& j) { j["chunkflow"]["peak_memory"][0]["bytes"].erase("weights"); },
       {"chunkflow.peak_memory[0].bytes.weights:", "missing"}},
      {"event not an object", [&](json& j) { j["traceEvents"][op] = 5; }, {at_op + ":", "object"}},
      {"missing header", [&](json& j) { j.erase("chunkflow"); }, {"t.json: chunkflow:", "missing"}},
      {"wrong version",
       [&](json& j) { j["chunkflow"]["format_version"] = 2; },
       {"chunkflow.format_version:", "unsupported"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    json bad = good;
    c.edit(bad);
    StatusOr<Trace> back = trace_from_chrome_json(bad.dump(), "t.json");
    ASSERT_FALSE(back.ok());
    EXPECT_EQ(back.status().code(), StatusCode::kInvalidInput);
    for (const std::string& fragment : c.fragments) {
      EXPECT_NE(back.status().message().find(fragment), std::string::npos)
          << "missing \"" << fragment << "\" in: " << back.status().message();
    }
  }
  StatusOr<Trace> not_json = trace_from_chrome_json("{\"traceEvents\": [", "t.json");
  ASSERT_FALSE(not_json.ok());
  EXPECT_NE(not_json.status().message().find("t.json: not valid JSON"), std::string::npos);
  // A header nested 200,000 deep overflowed the stack in the message that printed it.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  StatusOr<Trace> nested =
      trace_from_chrome_json("{\"chunkflow\": " + deep + ", \"traceEvents\": []}", "t.json");
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.status().message(), "t.json: JSON nested deeper than 64 at byte 78");
}

}  // namespace
}  // namespace cf
