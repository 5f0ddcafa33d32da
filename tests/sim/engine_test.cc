// The discrete-event engine on hand-built graphs: exact start/end times, (time, seq) tie
// order, channel serialisation, deadlock reports, reuse across runs. No plans, no costs.
#include "sim/engine.h"

#include <gtest/gtest.h>

#include <string>

namespace cf {
namespace {

// Two streams, a -> b over a channel of 5 ns, b -> c on the same stream as a, with no channel.
//   stream 0: a [0,10)           c [27,30)  (c waits for b's output, 0 ns transfer)
//   stream 1:   b starts at 15 (10 + 5 transfer), ends 27
TEST(EngineTest, ChainTimesAreExact) {
  EngineGraph g;
  const int s0 = g.add_stream(), s1 = g.add_stream();
  const int ch = g.add_channel();
  const int a = g.add_task(s0, 10);
  const int c = g.add_task(s0, 3);
  const int b = g.add_task(s1, 12);
  g.add_input(b, a, ch, 5);
  g.add_input(c, b, -1, 0);
  Engine engine;
  EngineResult r;
  engine.run(g, &r);
  ASSERT_FALSE(r.deadlocked());
  EXPECT_EQ(r.start_ns[a], 0);
  EXPECT_EQ(r.end_ns[a], 10);
  EXPECT_EQ(r.start_ns[b], 15);
  EXPECT_EQ(r.end_ns[b], 27);
  EXPECT_EQ(r.start_ns[c], 27);
  EXPECT_EQ(r.end_ns[c], 30);
  EXPECT_EQ(r.makespan_ns, 30);
  EXPECT_EQ(r.transfer_start_ns[0], 10);
  EXPECT_EQ(r.arrival_ns[0], 15);
  // 3 task ends + 2 arrivals.
  EXPECT_EQ(r.events, 5);
}

// Two producers on different streams end at the same time and send over one channel: the
// transfers run one after the other, in the order their producers' events were queued
// (stream 0's task was started first, so its end event has the lower sequence number).
TEST(EngineTest, ChannelSerialisesTransfersInIssueOrder) {
  EngineGraph g;
  const int s0 = g.add_stream(), s1 = g.add_stream(), s2 = g.add_stream(), s3 = g.add_stream();
  const int ch = g.add_channel();
  const int p0 = g.add_task(s0, 7);
  const int p1 = g.add_task(s1, 7);
  const int q0 = g.add_task(s2, 1);
  const int q1 = g.add_task(s3, 1);
  g.add_input(q0, p0, ch, 4);
  g.add_input(q1, p1, ch, 4);
  Engine engine;
  EngineResult r;
  engine.run(g, &r);
  ASSERT_FALSE(r.deadlocked());
  EXPECT_EQ(r.start_ns[q0], 11);  // 7 + 4
  EXPECT_EQ(r.start_ns[q1], 15);  // waits for the channel: 11 + 4
  EXPECT_EQ(r.transfer_start_ns[1], 11);
}

// A task with several inputs starts when the last arrives; a task later in a stream waits
// for the stream even when its inputs are there.
TEST(EngineTest, WaitsForAllInputsAndForItsStream) {
  EngineGraph g;
  const int s0 = g.add_stream(), s1 = g.add_stream(), s2 = g.add_stream();
  const int x = g.add_task(s0, 3);
  const int y = g.add_task(s1, 9);
  const int z = g.add_task(s2, 2);  // needs x and y
  const int w = g.add_task(s2, 1);  // needs x only, but runs after z on its stream
  g.add_input(z, x, -1, 1);
  g.add_input(z, y, -1, 1);
  g.add_input(w, x, -1, 0);
  Engine engine;
  EngineResult r;
  engine.run(g, &r);
  ASSERT_FALSE(r.deadlocked());
  EXPECT_EQ(r.start_ns[z], 10);
  EXPECT_EQ(r.start_ns[w], 12);
  EXPECT_EQ(r.makespan_ns, 13);
}

// Zero-duration tasks and zero-time transfers still run in (time, seq) order, deterministically.
TEST(EngineTest, ZeroDurationsAreOrderedAndRepeatable) {
  EngineGraph g;
  const int s0 = g.add_stream(), s1 = g.add_stream();
  int prev = -1;
  for (int i = 0; i < 17; ++i) {
    const int t0 = g.add_task(s0, i % 3 == 0 ? 0 : 2);
    const int t1 = g.add_task(s1, i % 2 == 0 ? 0 : 1);
    g.add_input(t1, t0, -1, 0);
    if (prev >= 0) g.add_input(t0, prev, -1, 0);
    prev = t1;
  }
  Engine engine;
  EngineResult first, second;
  engine.run(g, &first);
  engine.run(g, &second);
  ASSERT_FALSE(first.deadlocked());
  EXPECT_EQ(first.start_ns, second.start_ns);
  EXPECT_EQ(first.end_ns, second.end_ns);
  EXPECT_EQ(first.events, second.events);
  // Strict alternation: the chain's total is the sum of all durations.
  int64_t total = 0;
  for (int t = 0; t < g.tasks(); ++t) total += g.duration_ns(t);
  EXPECT_EQ(first.makespan_ns, total);
}

// Stream 0 runs A then B; stream 1 runs C then D. B needs D and C needs B: C waits for B,
// which waits (after A) for D, which is behind C on its stream. The engine reports both
// waiting streams, their task and the producer each lacks.
TEST(EngineTest, CycleIsReportedNotHung) {
  EngineGraph g;
  const int s0 = g.add_stream(), s1 = g.add_stream();
  const int a = g.add_task(s0, 4);
  const int b = g.add_task(s0, 4);
  const int c = g.add_task(s1, 4);
  const int d = g.add_task(s1, 4);
  g.add_input(b, d, -1, 0);
  g.add_input(c, b, -1, 0);
  Engine engine;
  EngineResult r;
  engine.run(g, &r);
  ASSERT_TRUE(r.deadlocked());
  EXPECT_EQ(r.end_ns[a], 4);
  EXPECT_EQ(r.start_ns[b], -1);
  ASSERT_EQ(r.deadlock.size(), 2u);
  EXPECT_EQ(r.deadlock[0].stream, s0);
  EXPECT_EQ(r.deadlock[0].task, b);
  EXPECT_EQ(r.deadlock[0].missing_producers, std::vector<int>{d});
  EXPECT_EQ(r.deadlock[1].stream, s1);
  EXPECT_EQ(r.deadlock[1].task, c);
  EXPECT_EQ(r.deadlock[1].missing_producers, std::vector<int>{b});
  const std::string text = describe_deadlock(
      g, r, [](int t) { return "task " + std::to_string(t); },
      [](int s) { return "stream " + std::to_string(s); });
  EXPECT_NE(text.find("stream 0 waits at task 1 for task 3 on stream 1 (not run)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("stream 1 waits at task 2 for task 1 on stream 0 (not run)"),
            std::string::npos)
      << text;
}

// A graph reused after clear() gives the result of a fresh graph.
TEST(EngineTest, ClearedGraphReusesCleanly) {
  EngineGraph g;
  Engine engine;
  EngineResult r;
  for (int round = 0; round < 3; ++round) {
    g.clear();
    const int s = g.add_stream();
    for (int i = 0; i <= round; ++i) g.add_task(s, 5);
    engine.run(g, &r);
    ASSERT_FALSE(r.deadlocked());
    EXPECT_EQ(r.makespan_ns, 5 * (round + 1));
  }
}

}  // namespace
}  // namespace cf
