// A fixed pool of worker threads, each pinned to one cpu of a node. Kernels and collectives
// run their parallel loops here, so an executor's work never leaves its node's cpus.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace redblue {

class ThreadPool {
 public:
  // One worker per entry of `cpus` (an entry may repeat when cpus are oversubscribed).
  explicit ThreadPool(std::vector<int> cpus);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size(); }
  const std::vector<int>& cpus() const { return cpus_; }

  // Runs fn(task, worker) for task in [0, tasks), distributed dynamically over the workers,
  // and returns when all are done. Only one ParallelFor runs at a time per pool (serialised).
  // The first exception thrown by a task is rethrown here after all workers finished.
  void ParallelFor(int64_t tasks, const std::function<void(int64_t task, int worker)>& fn);

  // Runs fn(begin, end, worker) over [0, units) cut into grains of `grain` units (the last may be
  // shorter). Each worker owns one contiguous run of the grains and goes through it front to
  // back; a worker done with its own takes grains from the back of the others'. A memory-bound
  // loop (a decoding step's GEMVs) then reads each worker's share as one stream the prefetchers
  // follow, while a worker slowed by a neighbour still hands its tail to the others. Every unit
  // is visited exactly once; which worker visits it varies from call to call. Calls cover whole
  // grains (an owner takes several at once while much of its run is left, a thief one), and a
  // one-worker pool (or a single grain) gets one call, fn(0, units, 0).
  void ParallelRuns(int64_t units, int64_t grain, const std::function<void(int64_t begin, int64_t end, int worker)>& fn);

  // Runs fn(worker) once on every worker (e.g. to read back its affinity).
  void OnEachWorker(const std::function<void(int worker)>& fn);

  // Runs a whole step (a model forward, a layer stack) on worker 0, pinned like every worker,
  // and returns when it ends (rethrowing its exception). Inside the step, ParallelFor has worker 0
  // take tasks beside the others, and on a one-cpu pool runs them inline: a step of hundreds of
  // small kernels pays one hand-off instead of one per kernel, and its serial parts (norms,
  // exchanges) run on the node's cpus rather than on whichever cpu the calling thread gets.
  void RunStep(const std::function<void()>& fn);

 private:
  void WorkerLoop(int index);
  void LeaderParallelFor(int64_t tasks, const std::function<void(int64_t, int)>& fn);
  // Hands generation `job` of `tasks` tasks to `participants` workers (a new generation_).
  void Publish(const std::function<void(int64_t, int)>& fn, int64_t tasks, int participants);
  // Runs tasks of the current job as `worker` until none is left; the first exception is kept.
  void TakeTasks(int worker);
  // Waits until every participant has finished the current job; rethrows its first exception.
  void AwaitDone(bool mayYield);

  std::vector<int> cpus_;
  bool sharedCpus_ = false;  // some cpu appears twice: a spinning thread must let the other run
  std::vector<std::thread> workers_;
  std::mutex runMutex_;  // serialises jobs
  // The job, written by its publisher before generation_ moves on and read by the workers after
  // they see it move (no lock on this path: a decoding step hands out hundreds of small jobs).
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int> remaining_{0};  // participants still working on the current job
  // Threads asleep on wake_ / on done_ (after spinning ~100 µs): a publisher or the last worker
  // takes mu_ and notifies only when there are any, so the common, spinning case makes no
  // system call.
  std::atomic<int> sleepers_{0};
  std::atomic<bool> doneSleeper_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // the condition variables, error_, the step hand-off
  std::condition_variable wake_, done_;
  std::exception_ptr error_;
  // The generation each worker last took (worker 0 also marks the ones it publishes in a step).
  std::vector<uint64_t> seen_;
  // A step handed to worker 0 (under mu_), its end and its error.
  const std::function<void()>* step_ = nullptr;
  std::atomic<bool> stepPosted_{false};
  bool stepDone_ = false;
  std::exception_ptr stepError_;
};

// Pins the calling thread to one cpu; returns false if the kernel refused.
bool PinCurrentThread(int cpu);

}  // namespace redblue

#include <memory>
namespace Napi { class Value; }
namespace redblue {
// The native pool behind a JS ThreadPool object (throws a JS TypeError for anything else).
std::shared_ptr<ThreadPool> ThreadPoolFromJs(Napi::Value v);
}  // namespace redblue
