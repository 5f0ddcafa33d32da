// The discrete-event engine: graph building, the run loop, deadlock detection and the
// end-of-run consistency check. See engine.h for the semantics.
#include "sim/engine.h"

#include <algorithm>

#include "core/check.h"
#include "core/numeric.h"

namespace cf {

int EngineGraph::add_stream() {
  stream_head_.push_back(-1);
  stream_tail_.push_back(-1);
  return streams() - 1;
}

int EngineGraph::add_channel() { return channels_++; }

int EngineGraph::add_task(int stream, int64_t duration_ns) {
  CF_CHECK(stream >= 0 && stream < streams()) << "stream " << stream;
  CF_CHECK_GE(duration_ns, 0);
  const int task = tasks();
  total_ns_ = saturating_add_ns(total_ns_, std::min(duration_ns, kMaxSimulatedNs));
  duration_ns_.push_back(duration_ns);
  stream_.push_back(stream);
  next_on_stream_.push_back(-1);
  if (stream_tail_[stream] < 0) {
    stream_head_[stream] = task;
  } else {
    next_on_stream_[stream_tail_[stream]] = task;
  }
  stream_tail_[stream] = task;
  return task;
}

void EngineGraph::add_input(int consumer, int producer, int channel, int64_t transfer_ns) {
  CF_CHECK(consumer >= 0 && consumer < tasks()) << "consumer " << consumer;
  CF_CHECK(producer >= 0 && producer < tasks()) << "producer " << producer;
  CF_CHECK(channel >= -1 && channel < channels_) << "channel " << channel;
  CF_CHECK_GE(transfer_ns, 0);
  total_ns_ = saturating_add_ns(total_ns_, std::min(transfer_ns, kMaxSimulatedNs));
  edges_.push_back(Edge{consumer, producer, channel, transfer_ns});
}

void EngineGraph::reserve(int tasks, int inputs) {
  duration_ns_.reserve(tasks);
  stream_.reserve(tasks);
  next_on_stream_.reserve(tasks);
  edges_.reserve(inputs);
}

void EngineGraph::clear() {
  duration_ns_.clear();
  stream_.clear();
  next_on_stream_.clear();
  stream_head_.clear();
  stream_tail_.clear();
  edges_.clear();
  total_ns_ = 0;
  channels_ = 0;
}

void Engine::push(int64_t time_ns, uint32_t payload) {
  CF_CHECK(seq_ != UINT32_MAX) << "event sequence numbers exhausted";
  heap_.push_back(Event{time_ns, seq_++, payload});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

Engine::Event Engine::pop() {
  std::pop_heap(heap_.begin(), heap_.end(), later);
  Event event = heap_.back();
  heap_.pop_back();
  return event;
}

// The run loop: pop the earliest event, advance the clock, dispatch.
void Engine::run(const EngineGraph& graph, EngineResult* result) {
  graph_ = &graph;
  result_ = result;
  const int tasks = graph.tasks();
  const int streams = graph.streams();
  const int edges = graph.inputs();
  CF_CHECK(static_cast<uint32_t>(tasks) < kArrivalBit && static_cast<uint32_t>(edges) < kArrivalBit)
      << "graph too large";
  result->start_ns.assign(tasks, -1);
  result->end_ns.assign(tasks, -1);
  result->transfer_start_ns.assign(edges, -1);
  result->arrival_ns.assign(edges, -1);
  result->deadlock.clear();
  result->makespan_ns = 0;
  result->events = 0;

  // Consumers of each producer as CSR (counting sort keeps edge order within a producer).
  pending_inputs_.assign(tasks, 0);
  consumer_begin_.assign(tasks + 1, 0);
  for (const EngineGraph::Edge& e : graph.edges_) {
    ++pending_inputs_[e.consumer];
    ++consumer_begin_[e.producer + 1];
  }
  for (int t = 0; t < tasks; ++t) consumer_begin_[t + 1] += consumer_begin_[t];
  consumer_edges_.resize(edges);
  {
    std::vector<int>& fill = next_task_;  // borrowed as a cursor, reset below
    fill.assign(consumer_begin_.begin(), consumer_begin_.end() - 1);
    for (int i = 0; i < edges; ++i) consumer_edges_[fill[graph.edges_[i].producer]++] = i;
  }
  next_task_.assign(graph.stream_head_.begin(), graph.stream_head_.end());
  stream_busy_.assign(streams, 0);
  channel_free_ns_.assign(graph.channels(), 0);
  issued_.clear();
  heap_.clear();
  seq_ = 0;
  now_ns_ = 0;

  for (int s = 0; s < streams; ++s) try_start(s);
  while (!heap_.empty()) {
    const Event event = pop();
    CF_CHECK_GE(event.time_ns, now_ns_) << "time went backwards";
    now_ns_ = event.time_ns;
    ++result->events;
    if (event.payload & kArrivalBit) {
      on_arrival(static_cast<int>(event.payload & ~kArrivalBit));
    } else {
      on_task_end(static_cast<int>(event.payload));
    }
  }
  result->makespan_ns = now_ns_;
  find_deadlock();
  if (!result->deadlocked()) check_consistency();
}

void Engine::try_start(int stream) {
  if (stream_busy_[stream]) return;
  const int task = next_task_[stream];
  if (task < 0 || pending_inputs_[task] > 0) return;
  stream_busy_[stream] = 1;
  result_->start_ns[task] = now_ns_;
  push(now_ns_ + graph_->duration_ns_[task], static_cast<uint32_t>(task));
}

void Engine::on_task_end(int task) {
  const int stream = graph_->stream_[task];
  result_->end_ns[task] = now_ns_;
  stream_busy_[stream] = 0;
  next_task_[stream] = graph_->next_on_stream_[task];
  for (int i = consumer_begin_[task]; i < consumer_begin_[task + 1]; ++i) {
    const int edge = consumer_edges_[i];
    const EngineGraph::Edge& e = graph_->edges_[edge];
    int64_t send_ns = now_ns_;
    if (e.channel >= 0) {
      send_ns = std::max(send_ns, channel_free_ns_[e.channel]);
      channel_free_ns_[e.channel] = send_ns + e.transfer_ns;
      issued_.push_back(edge);
    }
    result_->transfer_start_ns[edge] = send_ns;
    push(send_ns + e.transfer_ns, kArrivalBit | static_cast<uint32_t>(edge));
  }
  try_start(stream);
}

void Engine::on_arrival(int edge) {
  result_->arrival_ns[edge] = now_ns_;
  const int consumer = graph_->edges_[edge].consumer;
  if (--pending_inputs_[consumer] == 0) try_start(graph_->stream_[consumer]);
}

// With the queue empty, any stream whose next task is set is stuck: name what it lacks.
void Engine::find_deadlock() {
  for (int s = 0; s < graph_->streams(); ++s) {
    const int task = next_task_[s];
    if (task < 0) continue;
    EngineWait wait{s, task, {}};
    for (int i = 0; i < graph_->inputs(); ++i) {
      const EngineGraph::Edge& e = graph_->edges_[i];
      if (e.consumer == task && result_->arrival_ns[i] < 0)
        wait.missing_producers.push_back(e.producer);
    }
    result_->deadlock.push_back(std::move(wait));
  }
}

void Engine::check_consistency() const {
  const EngineResult& r = *result_;
  for (int t = 0; t < graph_->tasks(); ++t) {
    CF_CHECK(r.start_ns[t] >= 0 && r.end_ns[t] >= 0) << "task " << t << " never ran";
    CF_CHECK_EQ(r.end_ns[t] - r.start_ns[t], graph_->duration_ns_[t]);
    const int next = graph_->next_on_stream_[t];
    if (next >= 0) CF_CHECK_LE(r.end_ns[t], r.start_ns[next]) << "overlap on a stream";
  }
  for (int i = 0; i < graph_->inputs(); ++i) {
    const EngineGraph::Edge& e = graph_->edges_[i];
    CF_CHECK_GE(r.transfer_start_ns[i], r.end_ns[e.producer]);
    CF_CHECK_EQ(r.arrival_ns[i] - r.transfer_start_ns[i], e.transfer_ns);
    CF_CHECK_LE(r.arrival_ns[i], r.start_ns[e.consumer]) << "task started before its input";
  }
  // Transfers on one channel never overlap: in the order they were issued, each starts after
  // the one before it arrived; and every transfer over a channel was issued once.
  std::vector<int64_t> channel_end(static_cast<size_t>(graph_->channels()), 0);
  int over_channels = 0;
  for (int i = 0; i < graph_->inputs(); ++i) over_channels += graph_->edges_[i].channel >= 0;
  CF_CHECK_EQ(static_cast<int>(issued_.size()), over_channels) << "transfers issued";
  for (const int i : issued_) {
    const size_t channel = static_cast<size_t>(graph_->edges_[i].channel);
    CF_CHECK_LE(channel_end[channel], r.transfer_start_ns[i]) << "channel overlap";
    channel_end[channel] = r.arrival_ns[i];
  }
  CF_CHECK(heap_.empty()) << "events left after the run";
}

}  // namespace cf
