// The op runner of one stage (stage.h). Where an op runs and which op on another stage feeds
// it or takes its output are the plan's rules, read from the plan index (plan_index.h).
// Receives happen before an op's timer starts, so a measured op is its compute, not its wait;
// it ends when the stream has finished its work (a device backend's kernels are asynchronous);
// its memory record starts before the receive (the received input is the op's). Every buffer
// comes from the stage's stream, every kernel runs on it.
#include "executor/stage.h"

#include <algorithm>

#include "core/check.h"

namespace cf {

StageWorker::StageWorker(const ModelConfig& model, const LayerSplit& split, int dp_rank, int stage,
                         Backend* backend, CpRank cp)
    : model_(model),
      dims_(layer_dims(model)),
      head_dims_{model.hidden, model.vocab, static_cast<float>(model.rms_norm_eps)},
      split_(split),
      pp_(split.pp),
      dp_rank_(dp_rank),
      stage_(stage),
      cp_(cp),
      stream_(backend->create_stream()),
      params_(model, split, stage, &tracker_, stream_.get()),
      store_(&tracker_, model.kv_width(), stream_.get()) {}

int64_t StageWorker::now_ns(StepClock::time_point origin) const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(StepClock::now() - origin).count();
}

void StageWorker::clear_trace() {
  trace_ops_.clear();
  memory_samples_.clear();
  sampled_total_ = -1;
}

void StageWorker::sample_memory(int64_t time_ns, bool all) {
  if (!record_) return;
  const MemoryBreakdown& live = tracker_.live_bytes();
  for (MemoryCategory c : kAllMemoryCategories) {
    if (all || live[c] != sampled_[c]) {
      memory_samples_.push_back({dp_rank_, stage_, time_ns, c, live[c]});
    }
  }
  if (all || tracker_.live_total() != sampled_total_) {
    memory_samples_.push_back({dp_rank_, stage_, time_ns, std::nullopt, tracker_.live_total()});
  }
  sampled_ = live;
  sampled_total_ = tracker_.live_total();
}

void StageWorker::record_op(const OpContext& ctx, int64_t start_ns, int64_t end_ns) {
  if (record_) trace_ops_.push_back(compute_trace_op(*ctx.index, ctx.at, start_ns, end_ns));
}

void StageWorker::record_other(OpKind kind, int64_t start_ns, int64_t end_ns) {
  if (!record_) return;
  TraceOp t;
  t.dp_rank = dp_rank_;
  t.stage = stage_;
  t.kind = kind;
  t.start_ns = start_ns;
  t.end_ns = end_ns;
  trace_ops_.push_back(t);
}

LayerCall StageWorker::layer_call(const OpContext& ctx, int64_t layer) {
  return LayerCall{&dims_,    ctx.inputs, ctx.inputs->dependent ? &store_ : nullptr,
                   layer,     &tracker_,  stream_.get(),
                   transport_};
}

FloatBuffer StageWorker::buffer(MemoryCategory category, int64_t count) {
  return FloatBuffer(stream_->allocator(), &tracker_, category, count);
}

void StageWorker::run_step(const Plan& plan, const TokenBatch& batch, Transport* transport,
                           StepClock::time_point origin, bool record) {
  CF_CHECK(plan.split() == split_) << "the plan splits the layers over pp " << plan.pp << " × vpp "
                                   << plan.vpp << " otherwise than the stage's parameters";
  CF_CHECK(states_.empty() && store_.empty()) << "state left over from the previous step";
  CF_CHECK(cp_.size == 1 || transport != nullptr) << "context parallelism needs a transport";
  record_ = record;
  transport_ = transport;
  tracker_.reset_peaks();
  sample_memory(0, /*all=*/true);
  const int64_t loss_tokens = batch.loss_tokens();
  loss_scale_ = loss_tokens > 0 ? 1.0f / static_cast<float>(loss_tokens) : 0.0f;
  loss_sum_ = 0;
  origin_ = origin;
  inputs_.clear();
  op_memory_.clear();
  // The executor's messages are fp32 activations of the whole hidden width (no tp).
  StatusOr<PlanIndex> index = PlanIndex::build(plan, WireFormat{model_.hidden, 4, 1});
  CF_CHECK(index.ok()) << "the executor runs checked plans: " << index.status().message();
  for (int i = index->stream_begin(dp_rank_, stage_); i < index->stream_end(dp_rank_, stage_);
       ++i) {
    run_op(*index, i, batch, transport, origin);
  }
  CF_CHECK(states_.empty()) << states_.size() << " chunks never ran their backward";
  CF_CHECK(store_.empty()) << "the state store is not empty after the step";
  store_.take_copy_time();
  if (transport != nullptr) transport->finish_step();
  sum_gradients(plan, transport, origin);
}

void StageWorker::run_op(const PlanIndex& index, int at, const TokenBatch& batch,
                         Transport* transport, StepClock::time_point origin) {
  if (before_op_) before_op_(ops_run_);
  ++ops_run_;
  const IndexedOp& entry = index.op(at);
  const Op& op = *entry.op;
  const Chunk& chunk = index.plan().chunks[static_cast<size_t>(op.chunk)];
  auto in = inputs_.find(op.chunk);
  if (in == inputs_.end()) {
    in = inputs_.emplace(op.chunk, shard_inputs(chunk_inputs(chunk, batch), cp_)).first;
  }
  const OpContext ctx{&index, at, &op, &chunk, &in->second, &entry.place};

  OpMemoryRecord memory;
  memory.op_id = op.id;
  memory.pass = op.pass;
  memory.chunk = op.chunk;
  memory.model_chunk = op.model_chunk;
  memory.live_at_start = tracker_.live_bytes();
  memory.host_at_start = host_tracker_.live_total();
  tracker_.start_interval();
  host_tracker_.start_interval();
  FloatBuffer received = receive(ctx, transport, origin);  // before the op's clock starts
  const int64_t start_ns = now_ns(origin);
  sample_memory(start_ns, false);
  if (op.pass == Pass::kBackward) {
    run_backward(ctx, std::move(received), transport);
  } else {
    run_forward(ctx, std::move(received), op.pass, transport);
  }
  stream_->synchronize();  // a device backend's op ends when its kernels have
  const int64_t end_ns = now_ns(origin);
  record_op(ctx, start_ns, end_ns);
  sample_memory(end_ns, false);
  memory.peak_bytes = tracker_.interval_peak();
  memory.at_peak = tracker_.breakdown_at_interval_peak();
  memory.live_at_end = tracker_.live_bytes();
  memory.host_at_end = host_tracker_.live_total();
  memory.host_peak = host_tracker_.interval_peak();
  op_memory_.push_back(memory);
}

// The op's input (t, h): a forward's activation (kept: it is the stage input), a backward's
// gradient (transient), received when it comes from another stage; the first virtual stage's
// forward fills it with the embedding, the last one's backward with the head's dx. R starts
// from the stage input F* kept. The receive is recorded from the call to its return.
FloatBuffer StageWorker::receive(const OpContext& ctx, Transport* transport,
                                 StepClock::time_point origin) {
  const Op& op = *ctx.op;
  if (op.pass == Pass::kRecompute) return FloatBuffer();
  const int64_t count = ctx.inputs->tokens() * model_.hidden;
  FloatBuffer received =
      buffer(op.pass == Pass::kBackward ? MemoryCategory::kTransient : MemoryCategory::kActivations,
             count);
  const IndexedOp& entry = ctx.index->op(ctx.at);
  if (entry.input_crosses) {
    const int from = ctx.index->op(entry.input).stage;
    const int64_t start_ns = now_ns(origin);
    transport->recv(from, {op.chunk, op.model_chunk, op.pass == Pass::kBackward}, received.data(),
                    count);
    if (record_) {
      trace_ops_.push_back(
          message_trace_op(*ctx.index, ctx.at, OpKind::kRecv, start_ns, now_ns(origin)));
    }
  }
  return received;
}

// The message's key names the receiver's model chunk and whether it is a gradient. The send
// is recorded from the call to its return (inside the op that sends it).
void StageWorker::send(const OpContext& ctx, const float* data, Transport* transport) {
  const int consumer = ctx.index->op(ctx.at).consumer;
  if (consumer < 0) return;
  const IndexedOp& to = ctx.index->op(consumer);
  stream_->synchronize();  // the transport reads `data` as the stream left it
  const int64_t start_ns = now_ns(origin_);
  transport->send(to.stage, {ctx.op->chunk, to.op->model_chunk, ctx.op->pass == Pass::kBackward},
                  data, ctx.inputs->tokens() * model_.hidden);
  if (record_) {
    trace_ops_.push_back(
        message_trace_op(*ctx.index, consumer, OpKind::kSend, start_ns, now_ns(origin_)));
  }
}

// The tied embedding pair (Megatron-LM's embedding all-reduce), then the dp·cp ranks of the
// stage (each CP rank's gradients are those of its own tokens), after the ops.
void StageWorker::sum_gradients(const Plan& plan, Transport* transport,
                                StepClock::time_point origin) {
  const bool tied_pair = model_.tied_embeddings && pp_ > 1 && (stage_ == 0 || stage_ == pp_ - 1);
  const bool reduce = plan.dp * cp_.size > 1;
  if (!tied_pair && !reduce) return;
  const int64_t start_ns = now_ns(origin);
  stream_->synchronize();  // the transport reads the gradients as the stream left them
  if (tied_pair) {
    const ParamLayout& layout = params_.layout();
    const int64_t offset = stage_ == 0 ? layout.embedding_offset() : layout.tied_copy_offset();
    transport->allreduce_tied(gradients_at(offset), model_.vocab * model_.hidden);
  }
  if (reduce) transport->allreduce_dp(params_.gradients(), params_.count());
  stream_->synchronize();
  record_other(OpKind::kDpReduce, start_ns, now_ns(origin));
}

void StageWorker::optimizer_step(const AdamWHyper& hyper, int64_t step,
                                 StepClock::time_point origin, bool record) {
  record_ = record;
  const int64_t start_ns = now_ns(origin);
  params_.adamw_step(hyper, step);
  params_.zero_gradients();
  stream_->synchronize();
  record_other(OpKind::kOptimizer, start_ns, now_ns(origin));
}

FloatBuffer StageWorker::forward_layers(const OpContext& ctx, ChunkState* st, bool keep,
                                        bool store_kv) {
  const int64_t t = ctx.inputs->tokens(), h = model_.hidden;
  const int64_t n = ctx.place->layers();
  const MemoryCategory cat = keep ? MemoryCategory::kActivations : MemoryCategory::kTransient;
  if (keep) st->layers.resize(static_cast<size_t>(n));
  FloatBuffer carry;  // the previous layer's output when activations are dropped
  for (int64_t i = 0; i < n; ++i) {
    LayerActs dropped;
    LayerActs& a = keep ? st->layers[static_cast<size_t>(i)] : dropped;
    if (!keep && i > 0) a.x_owned = std::move(carry);
    a.x = i == 0 ? st->stage_input.data() : a.x_owned.data();
    // The output is the next layer's kept input, or on the last virtual stage the head's.
    const bool out_kept = keep && (i + 1 < n || ctx.place->last);
    FloatBuffer out =
        buffer(out_kept ? MemoryCategory::kActivations : MemoryCategory::kTransient, t * h);
    const int64_t layer = ctx.place->first_layer + i;
    layer_forward(out.data(), &a, layer_tensors(params_.weights(), params_.layout(), layer),
                  layer_call(ctx, layer), cat, store_kv);
    if (i + 1 == n) return out;
    if (keep) {
      st->layers[static_cast<size_t>(i + 1)].x_owned = std::move(out);
    } else {
      carry = std::move(out);
    }
  }
  CF_CHECK(false) << "a model chunk without layers";
  return FloatBuffer();
}

void StageWorker::run_forward(const OpContext& ctx, FloatBuffer input, Pass pass,
                              Transport* transport) {
  const Op& op = *ctx.op;
  const ChunkInputs& in = *ctx.inputs;
  const ParamLayout& layout = params_.layout();
  const std::pair<int, int> key{op.chunk, op.model_chunk};
  const bool keep = pass != Pass::kForwardKeepKV;  // F and R keep activations
  if (pass == Pass::kRecompute) {
    // R: from the stage input F* kept; K/V are already in the store.
    CF_CHECK(states_.count(key) && !states_[key].stage_input.empty())
        << "R" << op.chunk << " without its F* on stage " << stage_;
  } else {
    CF_CHECK(states_.count(key) == 0) << "chunk " << op.chunk << " forwarded twice";
    if (ctx.place->first) {
      embed_forward(input.data(), weights_at(layout.embedding_offset()), in, head_dims_,
                    stream_.get());
    }
    states_[key].stage_input = std::move(input);
  }
  ChunkState& st = states_[key];
  FloatBuffer out = forward_layers(ctx, &st, keep, /*store_kv=*/pass != Pass::kRecompute);
  if (ctx.place->last) {
    HeadActs dropped;
    HeadActs& head = keep ? st.head : dropped;
    head.x = std::move(out);
    const double loss = head_forward(
        &head, weights_at(layout.final_norm_offset()), weights_at(layout.head_offset()), in,
        head_dims_, loss_scale_, keep ? MemoryCategory::kActivations : MemoryCategory::kTransient,
        /*want_grad=*/keep, &tracker_, stream_.get());
    if (pass != Pass::kRecompute) loss_sum_ += loss;  // R repeats F*'s loss: count it once
  } else {
    send(ctx, out.data(), transport);  // R has no consumer: the next stage recomputes its own
  }
}

void StageWorker::run_backward(const OpContext& ctx, FloatBuffer dout, Transport* transport) {
  const Op& op = *ctx.op;
  const ChunkInputs& in = *ctx.inputs;
  const int64_t t = in.tokens(), h = model_.hidden;
  const ParamLayout& layout = params_.layout();
  const std::pair<int, int> key{op.chunk, op.model_chunk};
  auto it = states_.find(key);
  CF_CHECK(it != states_.end() && !it->second.layers.empty())
      << "B" << op.chunk << " on stage " << stage_ << " without kept activations";
  ChunkState& st = it->second;
  if (ctx.place->last) {
    head_backward(dout.data(), gradients_at(layout.final_norm_offset()),
                  gradients_at(layout.head_offset()), st.head,
                  weights_at(layout.final_norm_offset()), weights_at(layout.head_offset()),
                  head_dims_, t, &tracker_, stream_.get());
    st.head = HeadActs{};
  }
  const StagePlace& place = *ctx.place;
  for (int64_t layer = place.end_layer - 1; layer >= place.first_layer; --layer) {
    const size_t i = static_cast<size_t>(layer - place.first_layer);
    FloatBuffer dx = buffer(MemoryCategory::kTransient, t * h);
    layer_backward(dx.data(), dout.data(), st.layers[i],
                   layer_tensors(params_.weights(), layout, layer),
                   layer_tensors(params_.gradients(), layout, layer), layer_call(ctx, layer));
    st.layers[i] = LayerActs{};  // this layer's activations are spent
    dout = std::move(dx);
  }
  states_.erase(it);
  if (in.dependent) store_.release(in.group, in.index, place.first_layer, place.end_layer);
  if (place.first) {
    embed_backward(gradients_at(layout.embedding_offset()), dout.data(), in, head_dims_,
                   stream_.get());
  } else {
    send(ctx, dout.data(), transport);
  }
}

}  // namespace cf
