// A JobThread (core/job_thread.h) whose jobs settle Promises on the JS thread. For a client
// whose calls follow one another (the data path to one host): the same thread every time keeps
// its caches and gRPC's per-thread state warm, where libuv's pool hands each call to whichever of
// its threads is free (about 0.1 ms a call more on a small VM). Exceptions in a job become
// rejections, never a crash.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/job_thread.h"

namespace redblue {

class SerialWorker {
 public:
  using Job = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  explicit SerialWorker(Napi::Env env, const char* name) : s_(std::make_shared<State>()) {
    std::shared_ptr<State> st = s_;
    // Node frees the function when the environment goes away (process exit), whatever threads
    // still hold it: its finalizer marks it gone, and the thread touches it only under `mu`
    // while it is not.
    s_->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), name, 0, 1, [st](Napi::Env) {
      std::lock_guard<std::mutex> lk(st->mu);
      st->gone = true;
    });
    s_->tsfn.Unref(env);  // idle, it keeps no process alive
  }
  // Returns at once; the jobs already queued still run and their Promises still settle, then the
  // thread ends (releasing the function last).
  ~SerialWorker() {
    std::shared_ptr<State> s = s_;
    jobs_.Push([s] {
      std::lock_guard<std::mutex> lk(s->mu);
      if (!s->gone) s->tsfn.Release();
    });
    jobs_.Detach();
  }
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  // Queues `job`; the Promise settles with `result(env)` once it ran, or rejects with its error.
  // JS values the job touches are pinned by `keep` until then.
  Napi::Promise Run(Napi::Env env, Job job, Result result, const std::vector<Napi::Value>& keep = {}) {
    auto* t = new Task{Napi::Promise::Deferred::New(env), std::move(job), std::move(result), {}, {}};
    for (auto& v : keep)
      if (v.IsObject()) t->keep.push_back(Napi::Persistent(v.As<Napi::Object>()));
    Napi::Promise p = t->deferred.Promise();
    if (s_->pending++ == 0) s_->tsfn.Ref(env);  // a job in flight keeps the process alive
    std::shared_ptr<State> s = s_;
    jobs_.Push([s, t] { RunAndSettle(s, t); });
    return p;
  }

 private:
  struct Task {
    Napi::Promise::Deferred deferred;
    Job job;
    Result result;
    std::vector<Napi::ObjectReference> keep;
    std::string error;
  };
  struct State {
    std::mutex mu;
    bool gone = false;   // the thread-safe function was finalized
    size_t pending = 0;  // touched on the JS thread only
    Napi::ThreadSafeFunction tsfn;
  };

  // On the job thread: runs the task, then hands it to the JS thread to settle its Promise.
  static void RunAndSettle(const std::shared_ptr<State>& s, Task* t) {
    try {
      t->job();
    } catch (const std::exception& e) {
      t->error = e.what();
      if (t->error.empty()) t->error = "native error";
    } catch (...) {
      t->error = "unknown native error";
    }
    std::lock_guard<std::mutex> lk(s->mu);
    if (s->gone) return;  // the environment is gone: JS references inside may not be freed here
    std::shared_ptr<State> keep = s;
    // Settled on the JS thread; if the environment is closing the task is left behind.
    s->tsfn.NonBlockingCall(t, [keep](Napi::Env env, Napi::Function, Task* task) {
      std::unique_ptr<Task> owned(task);
      if (--keep->pending == 0) keep->tsfn.Unref(env);
      Napi::HandleScope scope(env);
      if (!owned->error.empty()) return owned->deferred.Reject(Napi::Error::New(env, owned->error).Value());
      try {
        owned->deferred.Resolve(owned->result(env));
      } catch (const Napi::Error& e) {
        owned->deferred.Reject(e.Value());
      }
    });
  }

  std::shared_ptr<State> s_;
  JobThread jobs_;  // declared last: destroyed (detached) first, after ~SerialWorker queued the release
};

}  // namespace redblue
