// The token ids of a global batch (synthetic and seeded, or read from a JSONL file) and what
// one chunk of a Plan feeds the model: ids, next-token targets, RoPE positions and the
// attention segment table. Labels are built on the whole sequence before it is split, so a
// chunk's last token still predicts the next piece's first (DESIGN.md §4.1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/cpu/attention.h"
#include "sim/plan/plan.h"

namespace cf {

// Sequence i of the global batch is sequences[i].
struct TokenBatch {
  std::vector<std::vector<int32_t>> sequences;

  std::vector<int64_t> lengths() const;
  // Tokens that carry a loss: every token but each sequence's last, Σ (length − 1).
  int64_t loss_tokens() const;
};

// Ids uniform in [0, vocab) from a hash of (seed, step, sequence, position): the same batch
// for the same arguments on every platform.
TokenBatch synthetic_tokens(const std::vector<int64_t>& lengths, int64_t vocab, uint64_t seed,
                            int64_t step);

// A JSONL file of token ids: one sequence per line, either a JSON array of integers or an
// object with an "input_ids" (or "tokens") array. Ids must lie in [0, vocab); empty lines are
// skipped; errors name file:line.
StatusOr<std::vector<std::vector<int32_t>>> read_token_file(const std::string& path, int64_t vocab);
StatusOr<std::vector<std::vector<int32_t>>> parse_token_jsonl(const std::string& text,
                                                              const std::string& origin,
                                                              int64_t vocab);

// Step `step`'s global batch from a token file: sequences [step·B, (step+1)·B) taken
// cyclically (the file is repeated when it holds fewer than B·steps sequences).
TokenBatch token_file_batch(const std::vector<std::vector<int32_t>>& sequences,
                            int64_t global_batch, int64_t step);

// What one chunk — or, with context parallelism, one CP rank's shard of it
// (context_parallel.h) — feeds the model. ids, targets and positions have one entry per row
// the rank holds (the chunk's tokens when cp = 1); the segments' query rows are those rows,
// their key rows index the K/V of the whole prefix and chunk, (prefix_tokens + chunk_tokens).
struct ChunkInputs {
  std::vector<int32_t> ids;
  std::vector<int32_t> targets;    // next token of the same sequence, kIgnoreTarget at its end
  std::vector<int32_t> positions;  // restart per standalone segment, continue in a group
  std::vector<AttentionSegment> segments;
  int64_t prefix_tokens = 0;    // dependent piece: tokens of the earlier pieces (its K/V prefix)
  int64_t chunk_tokens = 0;     // tokens of the whole chunk, over all CP ranks
  int64_t sequence_tokens = 0;  // dependent piece: tokens of its whole sequence
  bool dependent = false;
  int group = -1;
  int index = 0;
  int cp = 1;       // context-parallel ranks the chunk is spread over
  int cp_rank = 0;  // which of them these inputs are

  int64_t tokens() const { return static_cast<int64_t>(ids.size()); }  // rows held here
};

ChunkInputs chunk_inputs(const Chunk& chunk, const TokenBatch& batch);

}  // namespace cf
