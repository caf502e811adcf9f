// One thread of its own that runs jobs in the order they were pushed: the one serial queue of
// the addon (the data path's clients through SerialWorker, the shm communicator's groups). After
// a job it may spin `spinNs` for the next before sleeping, so back-to-back calls do not each pay
// for a thread wake-up. On destruction the jobs already queued still run: the destructor waits
// for them (join), or, after Detach(), returns at once and the thread ends when they are done.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace redblue {

class JobThread {
 public:
  using Job = std::function<void()>;

  explicit JobThread(uint64_t spinNs = 0) : s_(std::make_shared<State>()) {
    s_->spinNs = spinNs;
    std::shared_ptr<State> s = s_;
    thread_ = std::thread([s] { Loop(*s); });
  }
  ~JobThread() {
    {
      std::lock_guard<std::mutex> lk(s_->mu);
      s_->stop = true;
    }
    s_->cv.notify_one();
    if (detached_) thread_.detach();
    else thread_.join();
  }
  JobThread(const JobThread&) = delete;
  JobThread& operator=(const JobThread&) = delete;

  void Push(Job job) {
    {
      std::lock_guard<std::mutex> lk(s_->mu);
      s_->jobs.push_back(std::move(job));
      s_->queued.fetch_add(1, std::memory_order_release);
    }
    if (s_->sleeping.load()) s_->cv.notify_one();
  }
  // The destructor will not wait for queued jobs (they hold what they need themselves).
  void Detach() { detached_ = true; }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> jobs;
    std::atomic<int> queued{0};
    std::atomic<bool> sleeping{false};
    bool stop = false;
    uint64_t spinNs = 0;
  };

  static void Loop(State& s) {
    using Clock = std::chrono::steady_clock;
    for (;;) {
      if (s.spinNs) {
        const auto until = Clock::now() + std::chrono::nanoseconds(s.spinNs);
        while (s.queued.load(std::memory_order_acquire) == 0 && Clock::now() < until) Relax();
      }
      Job job;
      {
        std::unique_lock<std::mutex> lk(s.mu);
        s.sleeping.store(true);
        s.cv.wait(lk, [&] { return s.stop || !s.jobs.empty(); });
        s.sleeping.store(false);
        if (s.jobs.empty()) return;  // stopped, and nothing left to run
        job = std::move(s.jobs.front());
        s.jobs.pop_front();
        s.queued.fetch_sub(1, std::memory_order_relaxed);
      }
      job();
    }
  }
  static void Relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  std::shared_ptr<State> s_;  // shared with the thread, which may outlive us (Detach)
  std::thread thread_;
  bool detached_ = false;
};

}  // namespace redblue
