// ThreadPool under load, for ThreadSanitizer: a random mix of ParallelFor from outside the pool,
// steps whose worker 0 publishes jobs to the others, pauses long enough (up to 400 µs) that the
// workers spin out and sleep, ParallelRuns (from outside and inside steps, worker 1 slowed so the
// others take its tail), and tasks that throw. Every task (unit) must run exactly once per job,
// every exception must come back to the caller, nothing may hang (the script's timeout) and TSan
// must stay silent. Pools: 3 workers on cpus {0, 1, 0} (one shared) and 2 on {0, 1}.
//   thread_pool_stress [seconds per pool (default 2)] [seed (default 1)]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

using redblue::ThreadPool;

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 2;
  const unsigned seed = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1;
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  const std::vector<std::vector<int>> pools = {{0, 1 % cpus, 0}, {0, 1 % cpus}};
  for (size_t p = 0; p < pools.size(); ++p) {
    ThreadPool pool(pools[p]);
    std::mt19937 rng(seed + static_cast<unsigned>(p));
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    long jobs = 0, thrown = 0, caught = 0, wrong = 0;
    while (std::chrono::steady_clock::now() < end) {
      const int kind = static_cast<int>(rng() % 6);
      const int64_t tasks = 1 + static_cast<int64_t>(rng() % 64);
      const bool fail = rng() % 50 == 0;
      const auto pause = std::chrono::microseconds(rng() % 400);
      std::vector<std::atomic<int>> hit(static_cast<size_t>(tasks));
      std::atomic<long> badWorker{0};
      auto reset = [&] {
        for (auto& h : hit) h.store(0);
      };
      auto check = [&] {
        for (auto& h : hit) wrong += h.load() != 1;
      };
      auto fn = [&](int64_t t, int w) {
        if (w < 0 || w >= static_cast<int>(pool.size())) badWorker++;
        hit[static_cast<size_t>(t)].fetch_add(1);
        if (fail && t == tasks / 2) throw std::runtime_error("task failed on purpose");
      };
      // ParallelRuns: each call whole grains (the last may be short), never past the end.
      const int64_t grain = 1 + static_cast<int64_t>(rng() % 5);
      auto runs = [&](int64_t b, int64_t e, int w) {
        if (w < 0 || w >= static_cast<int>(pool.size()) || b < 0 || e > tasks || b >= e || b % grain != 0 ||
            (e % grain != 0 && e != tasks))
          badWorker++;
        if (w == 1) std::this_thread::sleep_for(std::chrono::microseconds(20));
        for (int64_t t = b; t < e; ++t) fn(t, w);
      };
      thrown += fail;
      try {
        if (kind == 0) {
          pool.ParallelFor(tasks, fn);
        } else if (kind == 1) {
          pool.RunStep([&] {
            for (int i = 0; i < 5; ++i) {
              reset();
              pool.ParallelFor(tasks, fn);
              check();
            }
          });
        } else if (kind == 2) {
          pool.RunStep([&] {
            pool.ParallelFor(tasks, fn);
            std::this_thread::sleep_for(pause);  // the other workers go to sleep
            reset();
            pool.ParallelFor(tasks, fn);
          });
        } else if (kind == 3) {
          std::this_thread::sleep_for(pause);
          pool.ParallelFor(tasks, fn);
        } else if (kind == 4) {
          pool.ParallelRuns(tasks, grain, runs);
        } else {
          pool.RunStep([&] { pool.ParallelRuns(tasks, grain, runs); });
        }
        if (kind != 1) check();
      } catch (const std::runtime_error&) {
        caught++;
      }
      wrong += badWorker.load();
      jobs++;
    }
    std::printf("pool %zu (%zu workers): %ld jobs, %ld failing tasks, %ld exceptions caught, %ld wrong\n", p,
                pool.size(), jobs, thrown, caught, wrong);
    if (wrong || caught != thrown) return 1;
  }
  return 0;
}
