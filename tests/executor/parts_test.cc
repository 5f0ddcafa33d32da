// The executor's parts on their own: the chunk state store's gather/accumulate/release with
// exact small-integer values, chunk inputs (labels across pieces, positions, segment tables),
// the token file reader's errors, the parameter layout over stages, and the in-process
// rendezvous sum.
#include <gtest/gtest.h>

#include <numeric>
#include <thread>
#include <vector>

#include "executor/inproc_transport.h"
#include "executor/params.h"
#include "executor/state_store.h"
#include "executor/tokens.h"
#include "models/model.h"

namespace cf {
namespace {

TEST(StateStore, GathersPrefixAccumulatesGradientsAndFreesPieceByPiece) {
  MemoryTracker tracker;
  StateStore store(&tracker, /*kv_width=*/3);
  // Pieces of 2, 5 and 1 tokens on layer 7 of group 4; values are (piece+1)·100 + element.
  const int64_t tokens[] = {2, 5, 1};
  for (int p = 0; p < 3; ++p) {
    std::vector<float> k(static_cast<size_t>(tokens[p] * 3)), v(k.size());
    for (size_t e = 0; e < k.size(); ++e) {
      k[e] = static_cast<float>((p + 1) * 100 + static_cast<int>(e));
      v[e] = -k[e];
    }
    store.put(4, 7, p, k.data(), v.data(), tokens[p]);
  }
  EXPECT_EQ(tracker.live(MemoryCategory::kStateStore), (2 + 5 + 1) * 3 * 4 * 2);
  EXPECT_EQ(store.prefix_tokens(4, 7, 2), 7);
  std::vector<float> k_all(8 * 3, 0.0f), v_all(8 * 3, 0.0f);
  store.gather_prefix(4, 7, 2, k_all.data(), v_all.data());
  EXPECT_EQ(k_all[0], 100.0f);
  EXPECT_EQ(k_all[5], 105.0f);
  EXPECT_EQ(k_all[6], 200.0f);   // piece 1 starts at row 2
  EXPECT_EQ(k_all[20], 214.0f);  // its last element
  EXPECT_EQ(v_all[20], -214.0f);
  EXPECT_EQ(k_all[21], 0.0f);  // piece 2's own rows are not part of its prefix

  // Piece 2's backward sends gradients to pieces 0 and 1; piece 1's adds to piece 0 again.
  EXPECT_EQ(store.dk(4, 7, 0), nullptr);
  std::vector<float> dk(7 * 3), dv(7 * 3);
  std::iota(dk.begin(), dk.end(), 1.0f);
  std::iota(dv.begin(), dv.end(), 100.0f);
  store.accumulate_prefix(4, 7, 2, dk.data(), dv.data());
  store.release(4, 2, 0, 8);
  store.accumulate_prefix(4, 7, 1, dk.data(), dv.data());
  EXPECT_EQ(store.dk(4, 7, 1)[0], 7.0f);    // row 2 of the first contribution
  EXPECT_EQ(store.dk(4, 7, 0)[5], 12.0f);   // 6 + 6
  EXPECT_EQ(store.dv(4, 7, 0)[0], 200.0f);  // 100 + 100
  store.release(4, 1, 0, 8);
  EXPECT_FALSE(store.has(4, 7, 1));
  EXPECT_TRUE(store.has(4, 7, 0));
  store.release(4, 0, 0, 7);  // layer 7 is outside [0, 7): kept
  EXPECT_TRUE(store.has(4, 7, 0));
  store.release(4, 0, 7, 8);
  EXPECT_TRUE(store.empty());
  EXPECT_EQ(tracker.live_total(), 0);
}

TEST(ChunkInputs, DependentPieceContinuesPositionsAndLabelsAcrossTheSplit) {
  TokenBatch batch;
  batch.sequences = {{5, 6, 7}, {10, 11, 12, 13, 14, 15, 16}};
  Chunk piece;
  piece.kind = ChunkKind::kDependent;
  piece.segments = {Segment{1, 3, 3}};
  piece.tokens = 3;
  piece.group = 0;
  piece.index = 1;
  const ChunkInputs in = chunk_inputs(piece, batch);
  EXPECT_EQ(in.ids, (std::vector<int32_t>{13, 14, 15}));
  EXPECT_EQ(in.targets, (std::vector<int32_t>{14, 15, 16}));  // the last predicts the next piece
  EXPECT_EQ(in.positions, (std::vector<int32_t>{3, 4, 5}));
  EXPECT_EQ(in.prefix_tokens, 3);
  ASSERT_EQ(in.segments.size(), 1u);
  EXPECT_EQ(in.segments[0].kv_len, 6);
  EXPECT_EQ(batch.loss_tokens(), 2 + 6);
}

TEST(ChunkInputs, StandaloneSegmentsRestartPositionsAndEndWithoutTarget) {
  TokenBatch batch;
  batch.sequences = {{5, 6, 7}, {9}, {1, 2}};
  Chunk packed;
  packed.segments = {Segment{0, 0, 3}, Segment{1, 0, 1}, Segment{2, 0, 2}};
  packed.tokens = 6;
  const ChunkInputs in = chunk_inputs(packed, batch);
  EXPECT_EQ(in.positions, (std::vector<int32_t>{0, 1, 2, 0, 0, 1}));
  EXPECT_EQ(in.targets, (std::vector<int32_t>{6, 7, -1, -1, 2, -1}));
  ASSERT_EQ(in.segments.size(), 3u);
  EXPECT_EQ(in.segments[2].q_begin, 4);
  EXPECT_EQ(in.segments[2].kv_begin, 4);
  EXPECT_EQ(in.segments[2].kv_len, 2);
}

TEST(TokenFile, ReadsArraysAndObjectsAndNamesTheBadLine) {
  StatusOr<std::vector<std::vector<int32_t>>> ok =
      parse_token_jsonl("[1, 2, 3]\n\n{\"input_ids\": [4]}\n{\"tokens\": [5, 6]}\n", "t.jsonl", 8);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->size(), 3u);
  EXPECT_EQ((*ok)[2], (std::vector<int32_t>{5, 6}));
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"[1, 2]\n[1, 9]\n", "t.jsonl:2: token id 9 outside the model's vocabulary [0, 8)"},
           {"[1, 2\n", "t.jsonl:1: not valid JSON"},
           {"{\"ids\": [1]}\n", "t.jsonl:1: an object needs"},
           {"[]\n", "t.jsonl:1: expected a non-empty array"},
           {"[1.5]\n", "t.jsonl:1: token ids must be integers"},
           // Hostile lines: a number no double holds, and nesting past 64 levels.
           {"[1, 1e999]\n", "t.jsonl:1: [1]: number out of range: 1e999"},
           {std::string(100000, '[') + std::string(100000, ']') + "\n",
            "t.jsonl:1: JSON nested deeper than 64 at byte 65"}}) {
    StatusOr<std::vector<std::vector<int32_t>>> bad = parse_token_jsonl(text, "t.jsonl", 8);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.status().exit_code(), 2);
    EXPECT_EQ(bad.status().message().rfind(message, 0), 0u) << bad.status().message();
  }
  // A token file is a regular file within limits::kMaxDatasetFileBytes, refused before reading.
  StatusOr<std::vector<std::vector<int32_t>>> device = read_token_file("/dev/zero", 8);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().message(), "/dev/zero: not a regular file (a character device)");
  TokenBatch cyclic = token_file_batch(*ok, 2, 1);  // sequences 2 and 0
  EXPECT_EQ(cyclic.sequences[0], (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(cyclic.sequences[1], (std::vector<int32_t>{1, 2, 3}));
}

TEST(ParamLayout, StagesPartitionTheModelAndInitialiseIdentically) {
  StatusOr<ModelConfig> model = load_model("tiny");
  ASSERT_TRUE(model.ok());
  MemoryTracker tracker;
  StageParams whole(*model, LayerSplit{1, 1, model->layers}, 0, &tracker);
  whole.initialise(9, 0.02f);
  EXPECT_EQ(whole.count(), model->params_total());
  int64_t split_total = 0;
  for (int stage = 0; stage < 2; ++stage) {  // pp 2 × vpp 2: stage 0 holds layers 0 and 2
    StageParams part(*model, LayerSplit{2, 2, model->layers}, stage, &tracker);
    part.initialise(9, 0.02f);
    split_total += part.count();
    for (const ParamTensor& t : part.layout().tensors()) {
      const ParamTensor* w = whole.layout().find(t.name);
      ASSERT_NE(w, nullptr) << t.name;
      for (int64_t i = 0; i < t.size; ++i) {
        ASSERT_EQ(part.weights()[t.offset + i], whole.weights()[w->offset + i]) << t.name;
      }
    }
    EXPECT_EQ(part.layout().find("layers.2.wq") != nullptr, stage == 0);
  }
  EXPECT_EQ(split_total, model->params_total());
}

// An uneven split [2, 1, 3] of the 6-layer tiny: each stage holds exactly its own layers (and
// the embedding on stage 0, the final norm and LM head on stage 2), initialised as the whole
// model is, and together the stages hold the model once.
TEST(ParamLayout, UnevenStagesHoldTheirOwnLayers) {
  StatusOr<ModelConfig> model = load_model("tests/executor/data/tiny-6.yaml");
  ASSERT_TRUE(model.ok()) << model.status().message();
  MemoryTracker tracker;
  StageParams whole(*model, LayerSplit{1, 1, 6}, 0, &tracker);
  whole.initialise(4, 0.02f);
  const LayerSplit split{3, 1, 6, {2, 1, 3}};
  const std::vector<std::vector<int64_t>> layers = {{0, 1}, {2}, {3, 4, 5}};
  int64_t split_total = 0;
  for (int stage = 0; stage < 3; ++stage) {
    StageParams part(*model, split, stage, &tracker);
    part.initialise(4, 0.02f);
    split_total += part.count();
    std::vector<int64_t> held;
    for (const ParamTensor& t : part.layout().tensors()) {
      if (t.kind == ParamKind::kLayer && t.slot == kWq) held.push_back(t.layer);
      const ParamTensor* w = whole.layout().find(t.name);
      ASSERT_NE(w, nullptr) << t.name;
      ASSERT_EQ(part.weights()[t.offset + t.size - 1], whole.weights()[w->offset + t.size - 1])
          << t.name;
    }
    EXPECT_EQ(held, layers[static_cast<size_t>(stage)]) << "stage " << stage;
    EXPECT_EQ(part.layout().find("embedding") != nullptr, stage == 0);
    EXPECT_EQ(part.layout().find("lm_head") != nullptr, stage == 2);
  }
  EXPECT_EQ(split_total, model->params_total());
}

TEST(Rendezvous, EveryParticipantGetsTheSameSumInRankOrder) {
  for (int participants : {1, 2, 3}) {
    Rendezvous rendezvous(participants);
    std::vector<std::vector<float>> data(static_cast<size_t>(participants));
    for (int p = 0; p < participants; ++p) data[static_cast<size_t>(p)] = {1.0f + p, 1e8f, -1e8f};
    std::vector<std::thread> threads;
    for (int round = 0; round < 2; ++round) {
      for (int p = 0; p < participants; ++p) {
        threads.emplace_back(
            [&, p] { rendezvous.allreduce_sum(p, data[static_cast<size_t>(p)].data(), 3); });
      }
      for (std::thread& t : threads) t.join();
      threads.clear();
    }
    // Two rounds: Σ(1 + p) · participants^(round − 1) … exact for these small integers.
    const float first = static_cast<float>(participants * (participants + 1) / 2);
    for (const auto& d : data) {
      EXPECT_EQ(d[0], first * static_cast<float>(participants));
      EXPECT_EQ(d, data[0]);
    }
  }
}

}  // namespace
}  // namespace cf
