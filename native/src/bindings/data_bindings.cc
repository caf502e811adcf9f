// JS bindings of the native data path between hosts (hosts/data_service.h): a server over a
// staging area, and a client whose reads and writes run off the event loop and settle a Promise.
#include <napi.h>

#include <chrono>
#include <memory>

#include "bindings/credentials_js.h"
#include "core/async_task.h"
#include "core/serial_worker.h"
#include "core/module_registry.h"
#include "core/napi_util.h"
#include "hosts/data_client.h"
#include "hosts/data_service.h"
#include "hosts/mailbox.h"
#include "hosts/raw_tcp.h"

namespace redblue {
namespace {

std::string Str(const Napi::Object& o, const char* key, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return "";
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::string Str(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "expected a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// An all-gather tag: 1-200 characters.
std::string TagArg(const Napi::CallbackInfo& info, size_t i) {
  std::string tag = Str(info, i);
  if (tag.empty() || tag.size() > data::kMaxTag) throw Napi::RangeError::New(info.Env(), "a block tag has 1-200 characters");
  return tag;
}

// new DataServer({ address, token?, tls? }): listening at once; `port` is the one it got.
class JsDataServer : public Napi::ObjectWrap<JsDataServer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DataServer",
                       {InstanceMethod<&JsDataServer::SetArea>("setArea"),
                        InstanceMethod<&JsDataServer::Post>("post"),
                        InstanceMethod<&JsDataServer::ForgetOtherRuns>("forgetOtherRuns"),
                        InstanceMethod<&JsDataServer::ClearMailbox>("clearMailbox"),
                        InstanceMethod<&JsDataServer::Close>("close"),
                        InstanceAccessor<&JsDataServer::Port>("port")});
  }
  explicit JsDataServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsDataServer>(info) {
    if (!info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    try {
      server_ = std::make_unique<data::DataServer>(Str(o, "address", true), CredentialsFromJs(o));
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }
  // setArea(name: string | null, bytes?): the first `bytes` of staging file <name> (the area's
  // size: the file may be longer, rounded to huge pages) that Read, Write and Pipe reach (the
  // server maps it itself); null clears it.
  Napi::Value SetArea(const Napi::CallbackInfo& info) {
    if (!server_) throw Napi::Error::New(info.Env(), "the data server is closed");
    if (!info[0].IsNull() && !info[0].IsUndefined() && !info[0].IsString())
      throw Napi::TypeError::New(info.Env(), "setArea takes a shared file name or null");
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNumber())
      throw Napi::TypeError::New(info.Env(), "setArea's size must be a number of bytes");
    const double bytes = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
    if (!(bytes >= 0) || bytes != static_cast<double>(static_cast<uint64_t>(bytes)))
      throw Napi::RangeError::New(info.Env(), "setArea's size must be a whole number of bytes");
    try {
      server_->SetArea(info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "",
                       static_cast<size_t>(bytes));
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
    return info.Env().Undefined();
  }
  // post(tag, buffer: ArrayBuffer, offset, bytes, readers): this host's all-gather block, for
  // `readers` peers to fetch (copied: the caller's memory may change at once).
  Napi::Value Post(const Napi::CallbackInfo& info) {
    if (!server_) throw Napi::Error::New(info.Env(), "the data server is closed");
    std::string tag = TagArg(info, 0);
    if (!info[1].IsArrayBuffer()) throw Napi::TypeError::New(info.Env(), "the block must be an ArrayBuffer");
    Napi::ArrayBuffer ab = info[1].As<Napi::ArrayBuffer>();
    uint64_t at = ArgIndex(info, 2, "offset"), bytes = ArgIndex(info, 3, "bytes");
    int readers = static_cast<int>(ArgIndex(info, 4, "readers"));
    if (at > ab.ByteLength() || bytes > ab.ByteLength() - at)
      throw Napi::RangeError::New(info.Env(), "the block does not fit its buffer");
    const uint8_t* p = static_cast<const uint8_t*>(ab.Data()) + at;
    server_->mailbox().Post(tag, std::vector<uint8_t>(p, p + bytes), readers);
    return info.Env().Undefined();
  }
  Napi::Value ForgetOtherRuns(const Napi::CallbackInfo& info) {
    if (server_) server_->mailbox().ForgetOtherRuns(TagArg(info, 0));
    return info.Env().Undefined();
  }
  // clearMailbox(reason): fetches waiting for a block fail with UNAVAILABLE and the reason.
  Napi::Value ClearMailbox(const Napi::CallbackInfo& info) {
    if (server_) server_->mailbox().Clear(grpc::Status(grpc::StatusCode::UNAVAILABLE, Str(info, 0)));
    return info.Env().Undefined();
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (server_) server_->Shutdown();
    server_.reset();
    return info.Env().Undefined();
  }
  Napi::Value Port(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), server_ ? server_->port() : 0);
  }

 private:
  std::unique_ptr<data::DataServer> server_;
};

// new DataClient({ address, token?, tls? }); read(offset, dst: ArrayBuffer, dstOffset, bytes,
// chunkBytes, deadlineMs), readAdd (the same, adding f32 values into dst) and write(offset,
// src: ArrayBuffer, srcOffset, bytes, chunkBytes, deadlineMs) return Promises.
class JsDataClient : public Napi::ObjectWrap<JsDataClient> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DataClient",
                       {InstanceMethod<&JsDataClient::Read>("read"), InstanceMethod<&JsDataClient::ReadAdd>("readAdd"),
                        InstanceMethod<&JsDataClient::Write>("write"), InstanceMethod<&JsDataClient::Connect>("connect"),
                        InstanceMethod<&JsDataClient::Fetch>("fetch"),
                        InstanceMethod<&JsDataClient::Close>("close")});
  }
  explicit JsDataClient(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsDataClient>(info) {
    if (!info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    client_ = std::make_shared<data::DataClient>(Str(o, "address", true), CredentialsFromJs(o));
    worker_ = std::make_unique<SerialWorker>(info.Env(), "redblue.dataClient");
  }
  enum class Op { kRead, kReadAdd, kWrite };
  Napi::Value Read(const Napi::CallbackInfo& info) { return Move(info, Op::kRead); }
  Napi::Value ReadAdd(const Napi::CallbackInfo& info) { return Move(info, Op::kReadAdd); }
  Napi::Value Write(const Napi::CallbackInfo& info) { return Move(info, Op::kWrite); }
  // fetch(tag, fromHost, deadlineMs) → Promise<Buffer>: the peer's all-gather block.
  Napi::Value Fetch(const Napi::CallbackInfo& info) {
    if (!client_) throw Napi::Error::New(info.Env(), "the data client is closed");
    std::string tag = TagArg(info, 0);
    auto from = static_cast<uint32_t>(ArgIndex(info, 1, "fromHost"));
    uint64_t deadline = ArgIndex(info, 2, "deadlineMs");
    auto client = client_;
    auto block = std::make_shared<std::vector<uint8_t>>();
    return worker_->Run(
        info.Env(), [=] { *block = client->Fetch(tag, from, deadline); },
        [=](Napi::Env e) -> Napi::Value { return Napi::Buffer<uint8_t>::Copy(e, block->data(), block->size()); });
  }
  // connect(deadlineMs) → Promise<boolean>: the connection is up.
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    if (!client_) throw Napi::Error::New(info.Env(), "the data client is closed");
    uint64_t deadline = ArgIndex(info, 0, "deadlineMs");
    auto client = client_;
    auto up = std::make_shared<bool>(false);
    return worker_->Run(
        info.Env(), [=] { *up = client->Connect(deadline); },
        [=](Napi::Env e) -> Napi::Value { return Napi::Boolean::New(e, *up); });
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    client_.reset();
    worker_.reset();  // calls already queued still run and settle
    return info.Env().Undefined();
  }

 private:
  Napi::Value Move(const Napi::CallbackInfo& info, Op op) {
    Napi::Env env = info.Env();
    if (!client_) throw Napi::Error::New(env, "the data client is closed");
    uint64_t offset = ArgIndex(info, 0, "offset");
    if (!info[1].IsArrayBuffer())
      throw Napi::TypeError::New(env, op == Op::kWrite ? "src must be an ArrayBuffer" : "dst must be an ArrayBuffer");
    Napi::ArrayBuffer ab = info[1].As<Napi::ArrayBuffer>();
    uint64_t at = ArgIndex(info, 2, "bufferOffset"), bytes = ArgIndex(info, 3, "bytes");
    uint64_t chunk = ArgIndex(info, 4, "chunkBytes"), deadline = ArgIndex(info, 5, "deadlineMs");
    const uint64_t total = ReachableBytes(ab);
    if (at > total || bytes > total - at)
      throw Napi::RangeError::New(env, std::to_string(bytes) + " bytes at " + std::to_string(at) + " do not fit the " +
                                           std::to_string(total) + "-byte buffer");
    if (chunk != 0 && (chunk < 4096 || chunk > data::kMaxChunk))
      throw Napi::RangeError::New(env, "chunkBytes must be 0 (the default) or lie in 4096..4194304");
    if (op == Op::kReadAdd && ((reinterpret_cast<uintptr_t>(ab.Data()) + at) % 4 || bytes % 4 || chunk % 4))
      throw Napi::RangeError::New(env, "readAdd adds whole f32 values: the destination, bytes and chunkBytes must be multiples of 4");
    // A 7th argument `reps` repeats the call that many times in native code and resolves with
    // the seconds they took (bench transport: the data path without a JS round trip per block).
    int64_t reps = info.Length() > 6 && !info[6].IsUndefined() ? ArgIndex(info, 6, "reps") : 0;
    uint8_t* p = static_cast<uint8_t*>(ab.Data()) + at;
    auto client = client_;
    auto seconds = std::make_shared<double>(0);
    // One call after another on the client's own thread (core/serial_worker.h).
    return worker_->Run(
        env,
        [=] {
          auto once = [&] {
            auto c = static_cast<uint32_t>(chunk);
            if (op == Op::kRead) client->Read(offset, p, bytes, c, deadline);
            else if (op == Op::kReadAdd) client->ReadAdd(offset, reinterpret_cast<float*>(p), bytes, c, deadline);
            else client->Write(offset, p, bytes, c, deadline);
          };
          if (reps == 0) return once();
          auto t0 = std::chrono::steady_clock::now();
          for (int64_t i = 0; i < reps; ++i) once();
          *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        },
        [=](Napi::Env e) -> Napi::Value { return reps ? Napi::Number::New(e, *seconds) : e.Undefined(); },
        {info[1], info.This()});
  }
  std::shared_ptr<data::DataClient> client_;
  std::unique_ptr<SerialWorker> worker_;
};

// rawTcpServe(host, port): { port } — the reference server of bench transport, for the life of
// the process. rawTcpFetch / rawTcpPush(host, port, bytes, reps) → Promise<seconds of the last
// reps> (pulling from the server, or pushing to it).
Napi::Value JsRawTcpServe(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "host must be a string");
  // Lives as long as the process (a benchmark peer), never destroyed: its threads may still run
  // while the process exits.
  auto* server = new data::RawTcpServer(info[0].As<Napi::String>().Utf8Value(), static_cast<int>(ArgIndex(info, 1, "port")));
  return Napi::Number::New(info.Env(), server->port());
}

template <bool Push>
Napi::Value JsRawTcpMove(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "host must be a string");
  std::string host = info[0].As<Napi::String>().Utf8Value();
  int port = static_cast<int>(ArgIndex(info, 1, "port"));
  uint64_t bytes = ArgIndex(info, 2, "bytes");
  if (bytes >= (uint64_t(1) << 62)) throw Napi::RangeError::New(info.Env(), "bytes is too large");
  int reps = static_cast<int>(ArgIndex(info, 3, "reps"));
  auto seconds = std::make_shared<double>(0);
  return AsyncTask::Start(
      info.Env(), Push ? "redblue.rawTcpPush" : "redblue.rawTcpFetch",
      [=] { *seconds = Push ? data::RawTcpPush(host, port, bytes, reps) : data::RawTcpFetch(host, port, bytes, reps); },
      [=](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *seconds); });
}

void InitData(Napi::Env env, Napi::Object exports) {
  exports.Set("DataServer", JsDataServer::Define(env));
  exports.Set("DataClient", JsDataClient::Define(env));
  REDBLUE_EXPORT(exports, "rawTcpServe", JsRawTcpServe);
  REDBLUE_EXPORT(exports, "rawTcpFetch", JsRawTcpMove<false>);
  REDBLUE_EXPORT(exports, "rawTcpPush", JsRawTcpMove<true>);
}

}  // namespace
REDBLUE_MODULE(InitData);
}  // namespace redblue
