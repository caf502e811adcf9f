// Helpers shared by every binding: argument checks and the rule that no C++ exception
// crosses into JS other than as a JS error.
#pragma once
#include <napi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/errors.h"

namespace redblue {

// The bytes native code may reach through an ArrayBuffer: its length, or for a shared area
// mapped past what Node hands JavaScript as one buffer (mapSharedFile), the whole mapping, of
// which JavaScript sees the first bytes (core_bindings.cc).
size_t ReachableBytes(Napi::ArrayBuffer ab);

// Wraps a binding so that any std::exception becomes a JS Error (RangeError for UserError
// carrying "out of range"), never std::terminate.
template <typename F>
Napi::Value Guarded(const Napi::CallbackInfo& info, F&& body) {
  Napi::Env env = info.Env();
  try {
    return body(info);
  } catch (const Napi::Error&) {
    throw;  // already a JS error; node-addon-api rethrows it into JS
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "out of memory in the redblue addon");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  } catch (...) {
    throw Napi::Error::New(env, "unknown native error in the redblue addon");
  }
}

#define REDBLUE_EXPORT(exports, name, fn)                                                       \
  exports.Set(name, Napi::Function::New(exports.Env(), [](const Napi::CallbackInfo& info) {    \
                return ::redblue::Guarded(info, fn);                                            \
              }))

inline double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// A non-negative integer that fits in int64 (sizes, ids, counts).
inline int64_t ArgIndex(const Napi::CallbackInfo& info, size_t i, const char* what) {
  double v = ArgNumber(info, i, what);
  if (!(v >= 0) || v != static_cast<double>(static_cast<int64_t>(v)) || v > 9.007199254740991e15)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a non-negative integer, got " +
                                                Napi::Number::New(info.Env(), v).ToString().Utf8Value());
  return static_cast<int64_t>(v);
}

inline std::vector<int> ArgIntArray(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsArray())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an array of integers");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int> out;
  out.reserve(a.Length());
  for (uint32_t j = 0; j < a.Length(); ++j) {
    Napi::Value v = a.Get(j);
    if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must contain integers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != static_cast<int>(d))
      throw Napi::RangeError::New(info.Env(), std::string(what) + " must contain non-negative integers");
    out.push_back(static_cast<int>(d));
  }
  return out;
}

}  // namespace redblue

#include <map>
#include <memory>
#include <mutex>

namespace redblue {

// A JS class's constructor, one per N-API environment: the main thread and every worker thread
// that loads the addon have their own, and a single static would hand one environment's class
// to another (an abort). Forgotten when its environment is torn down.
class PerEnvConstructor {
 public:
  void Set(Napi::Env env, Napi::Function ctor) {
    std::lock_guard<std::mutex> lk(mu_);
    auto& slot = ctors_[env];
    if (!slot) {
      slot = std::make_unique<Napi::FunctionReference>();
      napi_add_env_cleanup_hook(env, &PerEnvConstructor::Forget, new Hook{this, env});
    }
    *slot = Napi::Persistent(ctor);
  }
  Napi::FunctionReference& Get(Napi::Env env) {
    std::lock_guard<std::mutex> lk(mu_);
    auto& slot = ctors_[env];
    if (!slot) slot = std::make_unique<Napi::FunctionReference>();
    return *slot;
  }
  bool IsInstance(Napi::Value v) {
    if (!v.IsObject()) return false;
    Napi::FunctionReference& ctor = Get(v.Env());
    return !ctor.IsEmpty() && v.As<Napi::Object>().InstanceOf(ctor.Value());
  }

 private:
  struct Hook {
    PerEnvConstructor* self;
    napi_env env;
  };
  static void Forget(void* arg) {
    std::unique_ptr<Hook> h(static_cast<Hook*>(arg));
    std::lock_guard<std::mutex> lk(h->self->mu_);
    h->self->ctors_.erase(h->env);
  }
  std::mutex mu_;
  std::map<napi_env, std::unique_ptr<Napi::FunctionReference>> ctors_;
};

}  // namespace redblue
