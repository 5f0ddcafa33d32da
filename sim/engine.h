// The discrete-event engine (DESIGN.md §4.6): tasks on streams (one compute stream per
// resource), cross-stream inputs carried over channels (links that serialise transfers),
// integer nanoseconds, events ordered by (time, sequence number) in a binary heap.
// Knows nothing of plans or costs: the simulator builds an EngineGraph and reads the result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cf {

// A static task graph. Each task runs on one stream, in the order tasks were added to that
// stream; it starts when its stream is free and all of its inputs have arrived. An input is
// a producer task; when the producer ends, the input travels `transfer_ns` over `channel`
// (transfers on one channel run one at a time, in the order they were issued) or, with no
// channel, arrives `transfer_ns` after the producer's end.
class EngineGraph {
 public:
  int add_stream();
  int add_channel();
  // Appends a task to the end of `stream`'s order; returns its id (0, 1, ...).
  int add_task(int stream, int64_t duration_ns);
  // `consumer` needs `producer`'s output. `channel` is -1 for none.
  void add_input(int consumer, int producer, int channel, int64_t transfer_ns);
  void reserve(int tasks, int inputs);
  void clear();

  int streams() const { return static_cast<int>(stream_head_.size()); }
  int channels() const { return channels_; }
  int tasks() const { return static_cast<int>(duration_ns_.size()); }
  int inputs() const { return static_cast<int>(edges_.size()); }
  int64_t duration_ns(int task) const { return duration_ns_[task]; }
  // Every duration and transfer added, saturating at kMaxSimulatedNs (core/numeric.h): a bound
  // on every time a run computes. The engine refuses a graph where it saturates.
  int64_t total_ns() const { return total_ns_; }
  int stream_of(int task) const { return stream_[task]; }
  int next_on_stream(int task) const { return next_on_stream_[task]; }

  struct Edge {
    int consumer;
    int producer;
    int channel;
    int64_t transfer_ns;
  };
  const Edge& edge(int index) const { return edges_[index]; }

 private:
  friend class Engine;
  std::vector<int64_t> duration_ns_;
  std::vector<int> stream_;
  std::vector<int> next_on_stream_;  // -1 at the end of a stream
  std::vector<int> stream_head_;     // first task of each stream, -1 when empty
  std::vector<int> stream_tail_;
  std::vector<Edge> edges_;
  int channels_ = 0;
  int64_t total_ns_ = 0;
};

// A stream that could not go on: its next task and the inputs it still lacks.
struct EngineWait {
  int stream = 0;
  int task = 0;
  std::vector<int> missing_producers;  // producer tasks whose output never arrived
};

struct EngineResult {
  std::vector<int64_t> start_ns;           // per task; -1 when it never ran
  std::vector<int64_t> end_ns;             // per task; -1 when it never ran
  std::vector<int64_t> transfer_start_ns;  // per input edge; -1 when never sent
  std::vector<int64_t> arrival_ns;         // per input edge; -1 when never arrived
  int64_t makespan_ns = 0;                 // last task end
  int64_t events = 0;                      // events processed
  std::vector<EngineWait> deadlock;        // empty when every task ran
  bool deadlocked() const { return !deadlock.empty(); }
};

// The event loop. Reusable: buffers are kept between runs (the tuner runs thousands).
class Engine {
 public:
  // Runs `graph` to completion or deadlock. A run that ends with every task done is checked
  // for consistency (each task once, no overlap on a stream, inputs before starts, time
  // never backwards); a broken check aborts (CF_CHECK), it is a bug in the engine.
  void run(const EngineGraph& graph, EngineResult* result);

 private:
  struct Event {
    int64_t time_ns;
    uint32_t seq;
    uint32_t payload;  // bit 31: arrival (edge id) or task end (task id)
  };
  static bool later(const Event& a, const Event& b) {
    return a.time_ns != b.time_ns ? a.time_ns > b.time_ns : a.seq > b.seq;
  }
  void push(int64_t time_ns, uint32_t payload);
  Event pop();
  void try_start(int stream);
  void on_task_end(int task);
  void on_arrival(int edge);
  void find_deadlock();
  void check_consistency() const;

  static constexpr uint32_t kArrivalBit = 1u << 31;

  const EngineGraph* graph_ = nullptr;
  EngineResult* result_ = nullptr;
  std::vector<Event> heap_;
  uint32_t seq_ = 0;
  int64_t now_ns_ = 0;
  std::vector<int> pending_inputs_;  // per task
  std::vector<int> next_task_;       // per stream: next task to run, -1 when done
  std::vector<char> stream_busy_;    // per stream
  std::vector<int64_t> channel_free_ns_;
  std::vector<int> issued_;  // edges over a channel, in the order their transfers were issued
  std::vector<int> consumer_begin_;  // CSR: edges leaving each producer
  std::vector<int> consumer_edges_;
};

// A readable account of a deadlock: each waiting stream and what its task waits for.
// `name_task` and `name_stream` give the caller's names (e.g. "stage 1", "op 7 (B chunk 3)").
template <typename TaskNamer, typename StreamNamer>
std::string describe_deadlock(const EngineGraph& graph, const EngineResult& result,
                              TaskNamer name_task, StreamNamer name_stream) {
  std::string text = "deadlock: no event left but tasks remain";
  for (const EngineWait& wait : result.deadlock) {
    text += "\n  " + name_stream(wait.stream) + " waits at " + name_task(wait.task);
    if (wait.missing_producers.empty()) continue;
    text += " for";
    for (int producer : wait.missing_producers) {
      text += " " + name_task(producer) + " on " + name_stream(graph.stream_of(producer));
      text += result.end_ns[producer] >= 0 ? " (ended, output never arrived)" : " (not run)";
    }
  }
  return text;
}

}  // namespace cf
