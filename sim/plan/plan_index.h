// The plan's rules, stated once (DESIGN.md §4.2-4.3): where an op runs (its virtual stage, its
// layers, whether it holds the embedding or the LM head and loss), what its chunk's attention
// sees, what crosses a stage boundary, and which op on another stage it waits for. The rule
// functions are below; PlanIndex applies them to every op of a Plan once. The simulator, the
// executor's stage worker and the checker read the index; the tuner's bounds, which price
// chunks before a plan exists, call the same rule functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "sim/plan/plan.h"
#include "traces/trace.h"

namespace cf {

// One attention segment of a chunk: `q_len` query tokens that see `kv_prefix` earlier keys of
// the same sequence (0 for standalone segments) plus themselves causally.
struct AttentionSpan {
  int64_t q_len = 0;
  int64_t kv_prefix = 0;
  bool operator==(const AttentionSpan&) const = default;
};
// The chunk's spans, one per segment, appended to *out. A dependent piece's prefix is its
// offset in its sequence (it attends to pieces 0..index−1); a standalone segment has none.
void attention_spans(const Chunk& chunk, std::vector<AttentionSpan>* out);

// Where model chunk v of stage s sits: virtual stage v·pp + s runs the split's layers of that
// model chunk after those of virtual stages 0..v·pp + s − 1 (layer_split.h: L/(pp·vpp) each
// when even, else the stage's own count); virtual stage 0 also the embedding, the last one
// (pp·vpp − 1) the final norm, LM head and loss.
struct StagePlace {
  int virtual_stage = 0;
  int64_t first_layer = 0;
  int64_t end_layer = 0;  // one past the last
  bool first = false;     // embedding
  bool last = false;      // LM head and loss
  int64_t layers() const { return end_layer - first_layer; }
};
StagePlace stage_place(const LayerSplit& split, int stage, int model_chunk);

// The cross-stage rule: what a pass of (chunk, model chunk v) on stage s needs.
//  F / F*: the activation from the forward of the same chunk on the previous virtual stage
//          (stage s−1 with v, or stage pp−1 with v−1 when s = 0); none on virtual stage 0,
//          which reads the embedding.
//  R:      nothing from another stage: it reuses the stage input its F* kept.
//  B:      the gradient from the backward on the next virtual stage (stage s+1 with v, or stage
//          0 with v+1 when s = pp−1); on the last virtual stage, its own loss: the chunk's R on
//          this stage when it has one, else its forward (same stage, no message).
enum class InputSource { kNone, kForward, kBackward, kOwnLoss };
struct OpInput {
  InputSource source = InputSource::kNone;
  int stage = -1;  // where the producer runs
  int model_chunk = 0;
};
OpInput input_of(Pass pass, int stage, int model_chunk, int pp, int vpp);

// How an activation (or its gradient) crosses a stage boundary: tokens × hidden elements of
// `element_bytes`, split over `shards` GPUs (sequence parallelism splits it over tp).
struct WireFormat {
  int64_t hidden = 0;
  int element_bytes = 2;  // bf16 on GPUs; the CPU executor sends fp32
  int shards = 1;
};
// ceil(tokens · hidden · element_bytes / shards): the message of one GPU.
int64_t boundary_bytes(int64_t tokens, const WireFormat& wire);

// One op of the plan with what the rules say about it.
struct IndexedOp {
  const Op* op = nullptr;
  int dp_rank = 0;
  int stage = 0;
  StagePlace place;
  int input = -1;              // the op whose output this one needs (an index), -1 for none
  bool input_crosses = false;  // that op runs on another stage: its output comes as a message
  int64_t input_bytes = 0;     // the message's bytes (boundary_bytes of the chunk), 0 if none
  int consumer = -1;           // the op on another stage that needs this one's output, -1: none
};

class PlanIndex {
 public:
  // InvalidInput when an op names a chunk outside the plan, an op's input is not in the plan,
  // or a pass of a chunk repeats on a stage (check_plan reports such plans by rule first).
  // The plan's shape (dp ranks of pp stages each; rank r is DP rank r) is CHECKed.
  // `plan` must outlive the index.
  static StatusOr<PlanIndex> build(const Plan& plan, const WireFormat& wire);
  // As build, into this index, reusing its buffers (a simulator indexes thousands of plans).
  Status rebuild(const Plan& plan, const WireFormat& wire);

  const Plan& plan() const { return *plan_; }
  // Ops in (dp rank, stage, stream position) order: a stream's ops are contiguous.
  int size() const { return static_cast<int>(ops_.size()); }
  const IndexedOp& op(int i) const { return ops_[static_cast<size_t>(i)]; }
  const std::vector<IndexedOp>& ops() const { return ops_; }
  int stream_begin(int dp_rank, int stage) const { return stream_begin_[stream(dp_rank, stage)]; }
  int stream_end(int dp_rank, int stage) const { return stream_begin_[stream(dp_rank, stage) + 1]; }
  std::span<const AttentionSpan> spans(int chunk) const;

 private:
  size_t stream(int dp_rank, int stage) const {
    return static_cast<size_t>(dp_rank * plan_->pp + stage);
  }
  const Plan* plan_ = nullptr;
  std::vector<IndexedOp> ops_;
  std::vector<int> stream_begin_;  // dp·pp + 1 entries
  std::vector<AttentionSpan> spans_;
  std::vector<int> span_begin_;     // chunks + 1 entries
  std::vector<int> slots_;          // per (chunk, model chunk, stage, pass class): an op, or −1
  std::vector<StagePlace> places_;  // per virtual stage
};

// The trace op of compute op `i` that ran over [start_ns, end_ns): the join key and the
// chunk's fields, the same in predicted and measured traces.
TraceOp compute_trace_op(const PlanIndex& index, int i, int64_t start_ns, int64_t end_ns);
// The trace op of the message that op `consumer`'s input crosses a boundary with (its
// input_crosses is set): a kSend on the producer's stage or a kRecv on the consumer's, over
// [start_ns, end_ns), with the chunk, the pass it serves, the peer stage and the bytes.
TraceOp message_trace_op(const PlanIndex& index, int consumer, OpKind kind, int64_t start_ns,
                         int64_t end_ns);

// "op 12 (B3 v1)", for messages.
std::string op_label(const Op& op);

}  // namespace cf
