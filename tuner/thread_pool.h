// A fixed set of worker threads that run `fn(index, worker)` for index 0..n-1, each index
// once, and return when all are done. `worker` (0..threads-1) selects per-thread scratch
// state (a Simulator, a Job copy). The calling thread is worker 0. Not a task queue.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

namespace cf {

class ThreadPool {
 public:
  explicit ThreadPool(int threads) : threads_(std::max(1, threads)) {}

  int threads() const { return threads_; }

  void parallel_for(int n, const std::function<void(int index, int worker)>& fn) const {
    std::atomic<int> next{0};
    auto loop = [&](int worker) {
      for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i, worker);
    };
    const int helpers = std::min(threads_, n) - 1;
    std::vector<std::thread> pool;
    pool.reserve(std::max(helpers, 0));
    for (int w = 1; w <= helpers; ++w) pool.emplace_back(loop, w);
    loop(0);
    for (std::thread& t : pool) t.join();
  }

  // All cores of the machine (at least 1).
  static int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

 private:
  int threads_;
};

}  // namespace cf
