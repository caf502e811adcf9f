// Runs a native job off the JS thread and settles a Promise with its result. Exceptions in
// the job become Promise rejections (never a crash). JS values the job touches are pinned
// with `Keep` so the GC cannot free them while it runs.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

namespace redblue {

class AsyncTask : public Napi::AsyncWorker {
 public:
  using Job = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise Start(Napi::Env env, const char* name, Job job, Result result,
                             std::vector<Napi::Value> keep = {}) {
    auto* t = new AsyncTask(env, name, std::move(job), std::move(result));
    for (auto& v : keep)
      if (v.IsObject()) t->keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    Napi::Promise p = t->deferred_.Promise();
    t->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      job_();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(result_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  AsyncTask(Napi::Env env, const char* name, Job job, Result result)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)),
        result_(std::move(result)) {}
  Napi::Promise::Deferred deferred_;
  Job job_;
  Result result_;
  std::vector<Napi::ObjectReference> keep_;
};

}  // namespace redblue
