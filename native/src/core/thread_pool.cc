#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <immintrin.h>
#include <stdexcept>

namespace redblue {

namespace {
// Polls `ready` for up to ~100 µs (the time a futex wake-up takes on a VM); false if it never
// became true, and the caller then sleeps. `shared`: another thread may need this cpu (a caller
// off the pool, a pool that names a cpu twice), so yield every turn; otherwise only every ~20 µs,
// for executors of other processes placed on the same cpus: a system call every turn costs a
// lone worker more than the work it waits for.
template <typename F>
bool SpinFor(F&& ready, bool shared) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now(), deadline = start + std::chrono::microseconds(100);
  auto nextYield = start + std::chrono::microseconds(20);
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      if (ready()) return true;
      _mm_pause();
    }
    const auto now = Clock::now();
    if (shared || now >= nextYield) {
      sched_yield();
      nextYield = now + std::chrono::microseconds(20);
    }
    if (now > deadline) return false;
  }
}
}  // namespace

namespace {
// The pool whose step the current thread (its worker 0) is running, if any.
thread_local const ThreadPool* tlsStepOf = nullptr;
}  // namespace

bool PinCurrentThread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

ThreadPool::ThreadPool(std::vector<int> cpus) : cpus_(std::move(cpus)) {
  if (cpus_.empty()) throw std::invalid_argument("a thread pool needs at least one cpu");
  for (size_t i = 0; i < cpus_.size() && !sharedCpus_; ++i)
    for (size_t j = i + 1; j < cpus_.size(); ++j) sharedCpus_ = sharedCpus_ || cpus_[i] == cpus_[j];
  seen_.assign(cpus_.size(), 0);
  workers_.reserve(cpus_.size());
  for (size_t i = 0; i < cpus_.size(); ++i) workers_.emplace_back([this, i] { WorkerLoop(static_cast<int>(i)); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Sleeping and waking without lost wake-ups: a sleeper counts itself in sleepers_ (seq_cst) under
// mu_ and then re-checks its condition; a publisher moves generation_ (seq_cst) and then reads
// sleepers_. One of the two sees the other's write; when the publisher sees a sleeper it takes
// mu_ (so the sleeper is inside wait) before notifying.
void ThreadPool::WorkerLoop(int index) {
  PinCurrentThread(cpus_[index]);
  const bool leader = index == 0;
  auto ready = [&] {
    return generation_.load() != seen_[index] || stop_.load(std::memory_order_relaxed) ||
           (leader && stepPosted_.load(std::memory_order_acquire));
  };
  for (;;) {
    if (!SpinFor(ready, sharedCpus_)) {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      wake_.wait(lk, ready);
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    if (generation_.load() != seen_[index]) {
      seen_[index] = generation_.load();
      TakeTasks(index);
      continue;
    }
    const std::function<void()>* step = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      step = step_;
      step_ = nullptr;
      stepPosted_.store(false, std::memory_order_relaxed);
    }
    if (!step) continue;
    std::exception_ptr err;
    tlsStepOf = this;
    try {
      (*step)();
    } catch (...) {
      err = std::current_exception();
    }
    tlsStepOf = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stepError_ = err;
      stepDone_ = true;
    }
    done_.notify_all();
  }
}

void ThreadPool::TakeTasks(int worker) {
  const std::function<void(int64_t, int)>& fn = *job_;
  const int64_t tasks = tasks_;
  std::exception_ptr err;
  for (;;) {
    const int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
    if (t >= tasks) break;
    try {
      fn(t, worker);
    } catch (...) {
      if (!err) err = std::current_exception();
    }
  }
  if (err) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!error_) error_ = err;
  }
  if (remaining_.fetch_sub(1) == 1 && doneSleeper_.load()) {
    { std::lock_guard<std::mutex> lk(mu_); }
    done_.notify_all();
  }
}

void ThreadPool::Publish(const std::function<void(int64_t, int)>& fn, int64_t tasks, int participants) {
  job_ = &fn;
  tasks_ = tasks;
  next_.store(0, std::memory_order_relaxed);
  remaining_.store(participants, std::memory_order_relaxed);
  generation_.fetch_add(1);  // seq_cst: publishes the job and orders the sleepers_ read below
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lk(mu_); }
    wake_.notify_all();
  }
}

void ThreadPool::AwaitDone(bool mayYield) {
  auto done = [&] { return remaining_.load() == 0; };
  if (!SpinFor(done, mayYield)) {
    std::unique_lock<std::mutex> lk(mu_);
    doneSleeper_.store(true);
    done_.wait(lk, done);
    doneSleeper_.store(false);
  }
  job_ = nullptr;
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lk(mu_);
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

void ThreadPool::ParallelFor(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  if (tlsStepOf == this) return LeaderParallelFor(tasks, fn);
  std::lock_guard<std::mutex> run(runMutex_);
  Publish(fn, tasks, static_cast<int>(workers_.size()));
  // The caller is off the pool and may share a cpu with a worker: it yields while it spins.
  AwaitDone(true);
}

// ParallelFor from worker 0 inside a step: the other workers are idle (the step holds
// runMutex_), so worker 0 publishes to them and takes tasks itself as worker 0.
void ThreadPool::LeaderParallelFor(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
  const int others = static_cast<int>(workers_.size()) - 1;
  if (others == 0 || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  seen_[0] = generation_.load() + 1;  // worker 0 runs this generation here, not in its loop
  Publish(fn, tasks, others + 1);
  TakeTasks(0);
  AwaitDone(sharedCpus_);
}

void ThreadPool::RunStep(const std::function<void()>& fn) {
  if (tlsStepOf == this) return fn();  // a step inside a step: already on worker 0
  std::lock_guard<std::mutex> run(runMutex_);
  std::unique_lock<std::mutex> lk(mu_);
  step_ = &fn;
  stepDone_ = false;
  stepError_ = nullptr;
  stepPosted_.store(true, std::memory_order_release);
  wake_.notify_all();
  done_.wait(lk, [&] { return stepDone_; });
  if (stepError_) {
    auto e = stepError_;
    stepError_ = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::ParallelRuns(int64_t units, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (units <= 0) return;
  grain = std::max<int64_t>({1, grain, (units >> 31) + 1});  // grain indices fit the 32-bit halves below
  const int64_t grains = (units + grain - 1) / grain;
  const int64_t runs = std::min<int64_t>(grains, static_cast<int64_t>(workers_.size()));
  if (runs == 1) {
    ParallelFor(1, [&](int64_t, int worker) { fn(0, units, worker); });
    return;
  }
  // A run's grains not yet taken, [front, back), packed in one word so that its owner (front)
  // and a thief (back) agree on the last one through one compare-and-swap.
  struct alignas(64) Run {
    std::atomic<uint64_t> span;
  };
  std::vector<Run> run(static_cast<size_t>(runs));
  for (int64_t r = 0; r < runs; ++r)
    run[r].span.store(static_cast<uint64_t>(grains * r / runs) << 32 | static_cast<uint64_t>(grains * (r + 1) / runs),
                      std::memory_order_relaxed);
  // Grains [g, g + count) taken from run r: a thief takes the last one; the owner an eighth of
  // what is left (at least one), so it pays a compare-and-swap and a call per few grains while
  // the tail it leaves for thieves stays fine-grained (one executor of 2 cores, TinyLlama Q4_0,
  // alternated with a grain a time in one process: 0.6-1.1% less time in the calls).
  auto take = [&](int64_t r, bool fromBack, int64_t& count) -> int64_t {
    uint64_t s = run[r].span.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t front = s >> 32, back = s & 0xffffffffu;
      if (front >= back) return -1;
      const uint64_t k = fromBack ? 1 : std::max<uint64_t>(1, (back - front) / 8);
      const uint64_t next = fromBack ? (front << 32 | (back - 1)) : ((front + k) << 32 | back);
      if (run[r].span.compare_exchange_weak(s, next, std::memory_order_relaxed)) {
        count = static_cast<int64_t>(k);
        return static_cast<int64_t>(fromBack ? back - 1 : front);
      }
    }
  };
  auto visit = [&](int64_t g, int64_t count, int worker) {
    fn(g * grain, std::min(units, (g + count) * grain), worker);
  };
  ParallelFor(runs, [&](int64_t r, int worker) {
    // Its own run front to back, then the others' tails from their backs.
    int64_t count = 0;
    for (int64_t g; (g = take(r, false, count)) >= 0;) visit(g, count, worker);
    for (int64_t i = 1; i < runs; ++i)
      for (int64_t g; (g = take((r + i) % runs, true, count)) >= 0;) visit(g, count, worker);
  });
}

void ThreadPool::OnEachWorker(const std::function<void(int)>& fn) {
  // Each worker takes exactly one task only if tasks == workers and they all wait on a barrier;
  // simpler: run per-worker tasks keyed by the worker index.
  std::vector<std::atomic<int>> ran(workers_.size());
  for (auto& r : ran) r.store(0);
  std::atomic<int> remaining{static_cast<int>(workers_.size())};
  // Spin until each worker has run once: tasks are claimed dynamically, so hand out many.
  ParallelFor(static_cast<int64_t>(workers_.size()) * 64, [&](int64_t, int w) {
    if (ran[w].exchange(1) == 0) {
      fn(w);
      remaining.fetch_sub(1);
    }
    while (remaining.load() > 0) std::this_thread::yield();
  });
}

}  // namespace redblue
