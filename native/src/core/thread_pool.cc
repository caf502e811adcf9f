#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <immintrin.h>
#include <stdexcept>

namespace redblue {

namespace {
// Polls `ready` for up to ~100 µs (the time a futex wake-up takes on a VM); false if it never
// became true, and the caller then sleeps as before.
template <typename F>
bool SpinFor(F&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      if (ready()) return true;
      _mm_pause();
    }
    // The caller and a worker often share a cpu: let the other one run.
    sched_yield();
    if (std::chrono::steady_clock::now() > deadline) return false;
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
  seen_.assign(cpus_.size(), 0);
  workers_.reserve(cpus_.size());
  for (size_t i = 0; i < cpus_.size(); ++i) workers_.emplace_back([this, i] { WorkerLoop(static_cast<int>(i)); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int index) {
  PinCurrentThread(cpus_[index]);
  const bool leader = index == 0;
  for (;;) {
    const std::function<void(int64_t, int)>* job = nullptr;
    const std::function<void()>* step = nullptr;
    SpinFor([&] {
      return published_.load(std::memory_order_acquire) != seen_[index] ||
             (leader && stepPosted_.load(std::memory_order_acquire));
    });
    {
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] { return stop_ || generation_ != seen_[index] || (leader && step_ != nullptr); });
      if (stop_) return;
      if (generation_ != seen_[index]) {
        seen_[index] = generation_;
        job = job_;
      } else {
        step = step_;
        step_ = nullptr;
        stepPosted_.store(false, std::memory_order_relaxed);
      }
    }
    if (step) {
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
      continue;
    }
    std::exception_ptr err;
    for (;;) {
      int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= tasks_) break;
      try {
        (*job)(t, index);
      } catch (...) {
        if (!err) err = std::current_exception();
      }
    }
    std::lock_guard<std::mutex> lk(mu_);
    if (err && !error_) error_ = err;
    remaining_.store(active_ - 1, std::memory_order_release);
    if (--active_ == 0) done_.notify_all();
  }
}

void ThreadPool::ParallelFor(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  if (tlsStepOf == this) return LeaderParallelFor(tasks, fn);
  std::lock_guard<std::mutex> run(runMutex_);
  std::unique_lock<std::mutex> lk(mu_);
  job_ = &fn;
  tasks_ = tasks;
  next_.store(0);
  error_ = nullptr;
  active_ = static_cast<int>(workers_.size());
  remaining_.store(active_, std::memory_order_relaxed);
  ++generation_;
  published_.store(generation_, std::memory_order_release);
  wake_.notify_all();
  lk.unlock();
  SpinFor([&] { return remaining_.load(std::memory_order_acquire) == 0; });
  lk.lock();
  done_.wait(lk, [&] { return active_ == 0; });
  job_ = nullptr;
  if (error_) {
    auto e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

// ParallelFor from worker 0 inside a step: the other workers are idle (the step holds
// runMutex_), so worker 0 publishes to them and takes tasks itself as worker 0.
void ThreadPool::LeaderParallelFor(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
  const int others = static_cast<int>(workers_.size()) - 1;
  if (others == 0 || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    tasks_ = tasks;
    next_.store(0);
    error_ = nullptr;
    active_ = others;
    remaining_.store(others, std::memory_order_relaxed);
    seen_[0] = ++generation_;
    published_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  std::exception_ptr err;
  for (;;) {
    const int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
    if (t >= tasks) break;
    try {
      fn(t, 0);
    } catch (...) {
      if (!err) err = std::current_exception();
    }
  }
  SpinFor([&] { return remaining_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lk(mu_);
  done_.wait(lk, [&] { return active_ == 0; });
  job_ = nullptr;
  if (!err) err = error_;
  error_ = nullptr;
  if (err) std::rethrow_exception(err);
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
