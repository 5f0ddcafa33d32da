// The critical path of an engine run (critical_path.h), as a longest path in the run's DAG.
// Vertices: tasks [0, T), transfers [T, T + E) (one per input edge; an input with no channel
// and no transfer time is an arc from producer to consumer instead), a source T + E joined
// to every task. An arc u → v weighs −duration(u): v can start duration(u) after u starts. The
// shortest distances from the source are then minus the earliest starts.
#include "sim/critical_path.h"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dag_shortest_paths.hpp>
#include <tuple>

#include "core/check.h"

namespace cf {
namespace {

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property,
                                    boost::property<boost::edge_weight_t, int64_t>>;

// The transfers of each channel in the order the run sent them: by start, then arrival (two
// transfers of no duration may share a start), then edge index.
std::vector<int> channel_order(const EngineGraph& graph, const EngineResult& result) {
  std::vector<int> edges;
  for (int e = 0; e < graph.inputs(); ++e) {
    if (graph.edge(e).channel >= 0) edges.push_back(e);
  }
  std::sort(edges.begin(), edges.end(), [&](int a, int b) {
    return std::tuple(graph.edge(a).channel, result.transfer_start_ns[a], result.arrival_ns[a], a) <
           std::tuple(graph.edge(b).channel, result.transfer_start_ns[b], result.arrival_ns[b], b);
  });
  return edges;
}

Graph run_dag(const EngineGraph& graph, const EngineResult& result) {
  const int tasks = graph.tasks(), edges = graph.inputs();
  Graph g(static_cast<size_t>(tasks + edges + 1));
  const int source = tasks + edges;
  for (int t = 0; t < tasks; ++t) {
    boost::add_edge(source, t, 0, g);
    if (const int next = graph.next_on_stream(t); next >= 0) {
      boost::add_edge(t, next, -graph.duration_ns(t), g);
    }
  }
  for (int e = 0; e < edges; ++e) {
    const EngineGraph::Edge& edge = graph.edge(e);
    if (edge.channel < 0 && edge.transfer_ns == 0) {  // nothing travels: a plain dependency
      boost::add_edge(edge.producer, edge.consumer, -graph.duration_ns(edge.producer), g);
      continue;
    }
    boost::add_edge(edge.producer, tasks + e, -graph.duration_ns(edge.producer), g);
    boost::add_edge(tasks + e, edge.consumer, -edge.transfer_ns, g);
  }
  const std::vector<int> order = channel_order(graph, result);
  for (size_t i = 1; i < order.size(); ++i) {
    const int before = order[i - 1], after = order[i];
    if (graph.edge(before).channel != graph.edge(after).channel) continue;
    boost::add_edge(tasks + before, tasks + after, -graph.edge(before).transfer_ns, g);
  }
  return g;
}

}  // namespace

std::vector<CriticalStep> critical_path(const EngineGraph& graph, const EngineResult& result,
                                        int last_task) {
  CF_CHECK(!result.deadlocked()) << "the critical path of a deadlocked run";
  CF_CHECK(last_task >= 0 && last_task < graph.tasks()) << "task " << last_task;
  const int tasks = graph.tasks(), edges = graph.inputs();
  const Graph g = run_dag(graph, result);
  const size_t vertices = boost::num_vertices(g);
  std::vector<int64_t> distance(vertices);
  std::vector<size_t> predecessor(vertices);
  const size_t source = static_cast<size_t>(tasks + edges);
  boost::dag_shortest_paths(g, source,
                            boost::weight_map(boost::get(boost::edge_weight, g))
                                .distance_map(distance.data())
                                .predecessor_map(predecessor.data()));
  // The run started everything at its earliest: the DAG's starts are the run's.
  for (int t = 0; t < tasks; ++t) {
    CF_CHECK_EQ(-distance[static_cast<size_t>(t)], result.start_ns[t]) << "task " << t;
  }
  for (int e = 0; e < edges; ++e) {
    if (graph.edge(e).channel < 0 && graph.edge(e).transfer_ns == 0) continue;
    CF_CHECK_EQ(-distance[static_cast<size_t>(tasks + e)], result.transfer_start_ns[e])
        << "transfer " << e;
  }
  std::vector<CriticalStep> path;
  for (size_t v = static_cast<size_t>(last_task); v != source; v = predecessor[v]) {
    const int id = static_cast<int>(v);
    if (id < tasks) {
      path.push_back({CriticalStep::Kind::kTask, id, result.start_ns[id], result.end_ns[id]});
    } else {
      const int e = id - tasks;
      path.push_back(
          {CriticalStep::Kind::kTransfer, e, result.transfer_start_ns[e], result.arrival_ns[e]});
    }
  }
  std::reverse(path.begin(), path.end());
  return path;
}

}  // namespace cf
