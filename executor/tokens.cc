// Token batches and per-chunk model inputs (tokens.h).
#include "executor/tokens.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/check.h"
#include "core/json_reader.h"
#include "core/limits.h"
#include "core/resources.h"
#include "kernels/cpu/cross_entropy.h"
#include "traces/random.h"

namespace cf {

std::vector<int64_t> TokenBatch::lengths() const {
  std::vector<int64_t> out;
  out.reserve(sequences.size());
  for (const auto& s : sequences) out.push_back(static_cast<int64_t>(s.size()));
  return out;
}

int64_t TokenBatch::loss_tokens() const {
  int64_t n = 0;
  for (const auto& s : sequences) n += static_cast<int64_t>(s.size()) - 1;
  return n;
}

TokenBatch synthetic_tokens(const std::vector<int64_t>& lengths, int64_t vocab, uint64_t seed,
                            int64_t step) {
  CF_CHECK_GT(vocab, 0);
  TokenBatch batch;
  batch.sequences.resize(lengths.size());
  const uint64_t step_key = rng::mix64(rng::mix64(seed) ^ static_cast<uint64_t>(step));
  for (size_t i = 0; i < lengths.size(); ++i) {
    const uint64_t key = rng::mix64(step_key + i);
    auto& seq = batch.sequences[i];
    seq.resize(static_cast<size_t>(lengths[i]));
    for (int64_t t = 0; t < lengths[i]; ++t) {
      seq[static_cast<size_t>(t)] =
          static_cast<int32_t>(rng::mix64(key ^ static_cast<uint64_t>(t) * 0x9e3779b97f4a7c15ULL) %
                               static_cast<uint64_t>(vocab));
    }
  }
  return batch;
}

StatusOr<std::vector<std::vector<int32_t>>> parse_token_jsonl(const std::string& text,
                                                              const std::string& origin,
                                                              int64_t vocab) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream in(text);
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto bad = [&](const std::string& what) {
      return Status::InvalidInput(fmt::format("{}:{}: {}", origin, line_no, what));
    };
    // Depth-checked, without exceptions: "ORIGIN:LINE: not valid JSON: ..." and the like.
    CF_ASSIGN_OR_RETURN(const nlohmann::json record,
                        parse_json(line, fmt::format("{}:{}", origin, line_no)));
    const nlohmann::json* ids = &record;
    if (record.is_object()) {
      if (record.contains("input_ids")) {
        ids = &record["input_ids"];
      } else if (record.contains("tokens")) {
        ids = &record["tokens"];
      } else {
        return bad("an object needs an \"input_ids\" or \"tokens\" array");
      }
    }
    if (!ids->is_array() || ids->empty()) return bad("expected a non-empty array of token ids");
    if (static_cast<int64_t>(ids->size()) > limits::kMaxTokens) {
      return bad(fmt::format("a sequence must be at most {} tokens ({}), got {}",
                             limits::kMaxTokens, limits::kMaxTokensWhy, ids->size()));
    }
    std::vector<int32_t> seq;
    for (const nlohmann::json& id : *ids) {
      if (!id.is_number_integer()) return bad("token ids must be integers");
      const int64_t value = id.get<int64_t>();
      if (value < 0 || value >= vocab) {
        return bad(fmt::format("token id {} outside the model's vocabulary [0, {})", value, vocab));
      }
      seq.push_back(static_cast<int32_t>(value));
    }
    out.push_back(std::move(seq));
  }
  if (out.empty()) return Status::InvalidInput(origin + ": no sequences");
  return out;
}

StatusOr<std::vector<std::vector<int32_t>>> read_token_file(const std::string& path,
                                                            int64_t vocab) {
  CF_ASSIGN_OR_RETURN(const std::string text, read_text_file(path, limits::kMaxDatasetFileBytes,
                                                             limits::kMaxDatasetFileBytesWhy));
  return parse_token_jsonl(text, path, vocab);
}

TokenBatch token_file_batch(const std::vector<std::vector<int32_t>>& sequences,
                            int64_t global_batch, int64_t step) {
  CF_CHECK(!sequences.empty()) << "an empty token file";
  TokenBatch batch;
  const int64_t n = static_cast<int64_t>(sequences.size());
  for (int64_t i = 0; i < global_batch; ++i) {
    batch.sequences.push_back(sequences[static_cast<size_t>((step * global_batch + i) % n)]);
  }
  return batch;
}

ChunkInputs chunk_inputs(const Chunk& chunk, const TokenBatch& batch) {
  ChunkInputs in;
  in.dependent = chunk.kind == ChunkKind::kDependent;
  in.group = chunk.group;
  in.index = chunk.index;
  int64_t row = 0;
  for (const Segment& seg : chunk.segments) {
    const auto& seq = batch.sequences.at(static_cast<size_t>(seg.sequence));
    const int64_t seq_len = static_cast<int64_t>(seq.size());
    CF_CHECK(seg.offset >= 0 && seg.offset + seg.length <= seq_len)
        << "segment of sequence " << seg.sequence << " outside its " << seq_len << " tokens";
    for (int64_t i = 0; i < seg.length; ++i) {
      const int64_t pos = seg.offset + i;  // position in the whole sequence
      in.ids.push_back(seq[static_cast<size_t>(pos)]);
      in.targets.push_back(pos + 1 < seq_len ? seq[static_cast<size_t>(pos + 1)]
                                             : cpu::kIgnoreTarget);
      in.positions.push_back(static_cast<int32_t>(pos));
    }
    // Standalone: keys are the segment's own rows (block-diagonal causal). Dependent: one
    // segment whose keys are the prefix rows [0, offset) followed by its own.
    if (in.dependent) {
      CF_CHECK_EQ(chunk.segments.size(), 1u);
      in.prefix_tokens = seg.offset;
      in.sequence_tokens = seq_len;
      in.segments.push_back({0, seg.length, 0, seg.offset + seg.length});
    } else {
      in.segments.push_back({row, seg.length, row, seg.length});
    }
    row += seg.length;
  }
  CF_CHECK_EQ(row, chunk.tokens);
  in.chunk_tokens = chunk.tokens;
  return in;
}

}  // namespace cf
