// JS binding of bulk data over UCX (ucx/ucx_rma.h, through ucx/ucx_loader.h):
//   new UcxData() — a UCX worker of this process (loads redblue_ucx.so);
//   expose(buffer: ArrayBuffer) → Buffer: registers the buffer for peers' RMA (replacing the
//     one exposed before) and gives its descriptor; unexpose() drops it (call before the memory
//     goes);
//   connect(descriptor, timeoutMs) → UcxRemote: read / readAdd / write(offset, buffer,
//     bufferOffset, bytes, reps?) → Promise, each on the remote's own thread, and close();
//   ucxBytesMoved() → bytes this process moved by UCX RMA.
#include <napi.h>

#include <chrono>
#include <memory>

#include "core/module_registry.h"
#include "core/napi_util.h"
#include "core/serial_worker.h"
#include "ucx/ucx_loader.h"

namespace redblue {
namespace {

PerEnvConstructor gRemoteCtor;

class JsUcxRemote : public Napi::ObjectWrap<JsUcxRemote> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UcxRemote",
                       {InstanceMethod<&JsUcxRemote::Read>("read"), InstanceMethod<&JsUcxRemote::ReadAdd>("readAdd"),
                        InstanceMethod<&JsUcxRemote::Write>("write"), InstanceMethod<&JsUcxRemote::Close>("close")});
  }
  explicit JsUcxRemote(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsUcxRemote>(info) {
    if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "a UcxRemote comes from UcxData.connect()");
    remote_ = *info[0].As<Napi::External<std::shared_ptr<ucx::Remote>>>().Data();
    worker_ = std::make_unique<SerialWorker>(info.Env(), "redblue.ucxRemote");
  }
  Napi::Value Read(const Napi::CallbackInfo& info) { return Move(info, ucx::Remote::Op::kRead); }
  Napi::Value ReadAdd(const Napi::CallbackInfo& info) { return Move(info, ucx::Remote::Op::kReadAdd); }
  Napi::Value Write(const Napi::CallbackInfo& info) { return Move(info, ucx::Remote::Op::kWrite); }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    worker_.reset();  // calls already queued still run (they hold the remote) and settle
    remote_.reset();
    return info.Env().Undefined();
  }

 private:
  Napi::Value Move(const Napi::CallbackInfo& info, ucx::Remote::Op op) {
    Napi::Env env = info.Env();
    if (!remote_) throw Napi::Error::New(env, "the UCX remote is closed");
    uint64_t offset = ArgIndex(info, 0, "offset");
    if (!info[1].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
    Napi::ArrayBuffer ab = info[1].As<Napi::ArrayBuffer>();
    uint64_t at = ArgIndex(info, 2, "bufferOffset"), bytes = ArgIndex(info, 3, "bytes");
    const uint64_t total = ReachableBytes(ab);
    if (at > total || bytes > total - at)
      throw Napi::RangeError::New(env, std::to_string(bytes) + " bytes at " + std::to_string(at) + " do not fit the " +
                                           std::to_string(total) + "-byte buffer");
    uint8_t* p = static_cast<uint8_t*>(ab.Data()) + at;
    if (op == ucx::Remote::Op::kReadAdd && (reinterpret_cast<uintptr_t>(p) % 4 || bytes % 4))
      throw Napi::RangeError::New(env, "readAdd adds whole f32 values: the destination and bytes must be multiples of 4");
    // A 5th argument `reps` repeats the call in native code and resolves with the seconds taken
    // (bench transport: RMA without a JS round trip per block).
    int64_t reps = info.Length() > 4 && !info[4].IsUndefined() ? ArgIndex(info, 4, "reps") : 0;
    auto remote = remote_;
    auto seconds = std::make_shared<double>(0);
    return worker_->Run(
        env,
        [=] {
          if (reps == 0) return remote->Move(op, offset, p, bytes);
          auto t0 = std::chrono::steady_clock::now();
          for (int64_t i = 0; i < reps; ++i) remote->Move(op, offset, p, bytes);
          *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        },
        [=](Napi::Env e) -> Napi::Value { return reps ? Napi::Number::New(e, *seconds) : e.Undefined(); },
        {info[1], info.This()});
  }
  std::shared_ptr<ucx::Remote> remote_;
  std::unique_ptr<SerialWorker> worker_;
};

class JsUcxData : public Napi::ObjectWrap<JsUcxData> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UcxData",
                       {InstanceAccessor<&JsUcxData::Address>("address"),
                        InstanceMethod<&JsUcxData::Expose>("expose"), InstanceMethod<&JsUcxData::Unexpose>("unexpose"),
                        InstanceMethod<&JsUcxData::Connect>("connect"), InstanceMethod<&JsUcxData::Close>("close")});
  }
  explicit JsUcxData(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsUcxData>(info) {
    try {
      worker_ = ucx::LoadedWorker::Create();
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }
  Napi::Value Address(const Napi::CallbackInfo& info) {
    if (!worker_) return info.Env().Undefined();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), worker_->address().data(), worker_->address().size());
  }
  Napi::Value Expose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!worker_) throw Napi::Error::New(env, "the UCX worker is closed");
    if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    exposed_.reset();
    buffer_.Reset();
    try {
      exposed_ = std::make_unique<ucx::Exposed>(worker_, ab.Data(), ReachableBytes(ab));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    // Peers read and write this memory until unexpose(): the buffer may not be collected first.
    buffer_ = Napi::Persistent(ab.As<Napi::Object>());
    return Napi::Buffer<uint8_t>::Copy(env, exposed_->descriptor().data(), exposed_->descriptor().size());
  }
  Napi::Value Unexpose(const Napi::CallbackInfo& info) {
    exposed_.reset();
    buffer_.Reset();
    return info.Env().Undefined();
  }
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!worker_) throw Napi::Error::New(env, "the UCX worker is closed");
    if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "descriptor must be a Buffer (a peer's ucxArea)");
    auto d = info[0].As<Napi::Buffer<uint8_t>>();
    uint64_t timeoutMs = ArgIndex(info, 1, "timeoutMs");
    std::shared_ptr<ucx::Remote> remote;
    try {
      remote = std::make_shared<ucx::Remote>(worker_, std::vector<uint8_t>(d.Data(), d.Data() + d.Length()), timeoutMs);
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    auto ext = Napi::External<std::shared_ptr<ucx::Remote>>::New(
        env, new std::shared_ptr<ucx::Remote>(remote), [](Napi::Env, std::shared_ptr<ucx::Remote>* p) { delete p; });
    return gRemoteCtor.Get(env).New({ext});
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    exposed_.reset();
    buffer_.Reset();
    worker_.reset();  // remotes made by connect() keep it until they close
    return info.Env().Undefined();
  }

 private:
  std::shared_ptr<ucx::LoadedWorker> worker_;
  std::unique_ptr<ucx::Exposed> exposed_;
  Napi::ObjectReference buffer_;  // the exposed memory's owner, kept alive while exposed
};

Napi::Value JsUcxBytesMoved(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ucx::BytesMoved()));
}

void InitUcx(Napi::Env env, Napi::Object exports) {
  gRemoteCtor.Set(env, JsUcxRemote::Define(env));
  exports.Set("UcxData", JsUcxData::Define(env));
  REDBLUE_EXPORT(exports, "ucxBytesMoved", JsUcxBytesMoved);
}

}  // namespace
REDBLUE_MODULE(InitUcx);
}  // namespace redblue
