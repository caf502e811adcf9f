// JS bindings of the shared-memory communicator (shm/communicator.h). Every collective and
// message runs on a native thread (one serial queue per group and per peer direction, so calls
// on one group keep their order and different groups run concurrently) and resolves a Promise.
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/job_thread.h"
#include "core/module_registry.h"
#include "core/napi_util.h"
#include "shm/communicator.h"
#include "shm/reduce.h"
#include "shm/sync.h"

namespace redblue {
namespace {

using shm::CommError;
using shm::Communicator;
using shm::DType;

struct Bytes {
  char* data = nullptr;
  size_t size = 0;
  Napi::Object holder;
};

Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() <= i) throw Napi::TypeError::New(env, std::string(what) + " is required (a TypedArray)");
  Napi::Value v = info[i];
  Bytes b;
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    b.data = static_cast<char*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    b.size = t.ByteLength();
    b.holder = t;
  } else if (v.IsDataView()) {
    Napi::DataView d = v.As<Napi::DataView>();
    b.data = static_cast<char*>(d.ArrayBuffer().Data()) + d.ByteOffset();
    b.size = d.ByteLength();
    b.holder = d;
  } else if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer a = v.As<Napi::ArrayBuffer>();
    b.data = static_cast<char*>(a.Data());
    b.size = a.ByteLength();
    b.holder = a;
  } else {
    throw Napi::TypeError::New(env, std::string(what) + " must be a TypedArray, DataView or ArrayBuffer");
  }
  return b;
}

DType ArgDType(const Napi::CallbackInfo& info, size_t i) {
  std::string s = info.Length() > i && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "f32";
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::Bf16;
  throw Napi::TypeError::New(info.Env(), "dtype must be 'f32' or 'bf16', got '" + s + "'");
}

std::vector<size_t> ArgSizes(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsArray())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an array of non-negative integers");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<size_t> out;
  for (uint32_t j = 0; j < a.Length(); ++j) {
    Napi::Value v = a.Get(j);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9.007199254740991e15)
      throw Napi::RangeError::New(info.Env(), std::string(what) + " must contain non-negative integers");
    out.push_back(static_cast<size_t>(d));
  }
  return out;
}

// Work done on a queue thread and finished (resolve/reject) on the JS thread.
struct Pending {
  explicit Pending(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  std::vector<Napi::ObjectReference> keep;  // buffers the native thread uses
  bool failed = false;
  std::string error;
  std::function<Napi::Value(Napi::Env)> result;  // built on the native thread, run on JS thread
};

class JsCommunicator;
void FinishPending(Napi::Env env, Napi::Function, JsCommunicator* self, Pending* p);
using Tsfn = Napi::TypedThreadSafeFunction<JsCommunicator, Pending, FinishPending>;

// What shmOpen hands to the JS class constructor.
struct Opened {
  std::shared_ptr<Communicator> comm;
  uint64_t queueSpinNs = 0;
};

// Keeps the segment mapped while JS still holds a zero-copy view into it.
struct ViewHolder {
  std::shared_ptr<Communicator> comm;
};

class JsCommunicator : public Napi::ObjectWrap<JsCommunicator> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ShmCommunicator",
                       {InstanceAccessor<&JsCommunicator::Rank>("rank"),
                        InstanceAccessor<&JsCommunicator::Size>("size"),
                        InstanceAccessor<&JsCommunicator::Path>("path"),
                        InstanceAccessor<&JsCommunicator::Backing>("backing"),
                        InstanceAccessor<&JsCommunicator::SegmentBytes>("segmentBytes"),
                        InstanceAccessor<&JsCommunicator::SlotBytes>("slotBytes"),
                        InstanceAccessor<&JsCommunicator::MailboxBytes>("mailboxBytes"),
                        InstanceMethod<&JsCommunicator::Group>("group"),
                        InstanceMethod<&JsCommunicator::Barrier>("barrier"),
                        InstanceMethod<&JsCommunicator::AllReduce>("allReduce"),
                        InstanceMethod<&JsCommunicator::SlotBuffer>("slotBuffer"),
                        InstanceMethod<&JsCommunicator::AllReduceSlot>("allReduceSlot"),
                        InstanceMethod<&JsCommunicator::AllGatherV>("allGatherV"),
                        InstanceMethod<&JsCommunicator::ReduceScatterV>("reduceScatterV"),
                        InstanceMethod<&JsCommunicator::Broadcast>("broadcast"),
                        InstanceMethod<&JsCommunicator::Send>("send"),
                        InstanceMethod<&JsCommunicator::Recv>("recv"),
                        InstanceMethod<&JsCommunicator::SendBuffer>("sendBuffer"),
                        InstanceMethod<&JsCommunicator::PostSend>("postSend"),
                        InstanceMethod<&JsCommunicator::RecvBuffer>("recvBuffer"),
                        InstanceMethod<&JsCommunicator::ReleaseRecv>("releaseRecv"),
                        InstanceMethod<&JsCommunicator::Bench>("bench"),
                        InstanceMethod<&JsCommunicator::UsePool>("usePool"),
                        InstanceMethod<&JsCommunicator::Close>("close")});
  }
  // The class of each environment (main thread and every worker thread that loads the addon).
  static PerEnvConstructor& Constructor() {
    static PerEnvConstructor ctors;
    return ctors;
  }
  std::shared_ptr<Communicator> communicator() const { return comm_; }

  explicit JsCommunicator(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsCommunicator>(info) {
    if (info.Length() < 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "use shmOpen() to create a communicator");
    auto* opened = info[0].As<Napi::External<Opened>>().Data();
    comm_ = opened->comm;
    queueSpinNs_ = opened->queueSpinNs;
    rank_ = comm_->rank();
    size_ = comm_->size();
    path_ = comm_->segment().path();
    backing_ = comm_->segment().backing();
    segmentBytes_ = comm_->segment().bytes();
    slotBytes_ = comm_->segment().slotHalfBytes();
    mailboxBytes_ = comm_->segment().p2pBytes();
    tsfn_ = Tsfn::New(info.Env(), "redblue-shm", 0, 1, this);
    tsfn_.Unref(info.Env());
    // An open communicator is a membership peers rely on: it must end at close() or process
    // exit, never when the garbage collector finds the JS object unreachable (e.g. a rank that
    // awaits forever). So hold it strongly until close(); this does not keep the loop alive.
    Ref();
    // A process that exits without close() still leaves (and removes the segment if last).
    env_ = info.Env();
    napi_add_env_cleanup_hook(env_, OnEnvCleanup, this);
  }
  static void OnEnvCleanup(void* self) {
    auto* c = static_cast<JsCommunicator*>(self);
    c->hooked_ = false;
    c->Shutdown();
  }
  ~JsCommunicator() override { Shutdown(); }


  void Done(Napi::Env env) {
    if (--pending_ == 0) {
      tsfn_.Unref(env);
      Unref();
    }
  }

 private:
  Communicator& C(Napi::Env env) {
    if (!comm_ || closed_) throw Napi::Error::New(env, "this communicator was closed");
    return *comm_;
  }
  const shm::Group& G(const Napi::CallbackInfo& info, size_t i) {
    int ch = static_cast<int>(ArgIndex(info, i, "group"));
    auto it = groups_.find(ch);
    if (it == groups_.end())
      throw Napi::RangeError::New(info.Env(), "group " + std::to_string(ch) + " was not created with group() in this process");
    return it->second;
  }
  JobThread& Queue(int key) {
    auto& q = queues_[key];
    if (!q) q = std::make_unique<JobThread>(queueSpinNs_);
    return *q;
  }

  // Queues `work` on queue `key`; the returned Promise settles with work's result or error.
  Napi::Value Submit(Napi::Env env, int key, std::vector<Napi::Object> keep,
                     std::function<void(Pending&)> work) {
    C(env);
    auto* p = new Pending(env);
    for (auto& o : keep) p->keep.push_back(Napi::Persistent(o));
    if (pending_++ == 0) {
      tsfn_.Ref(env);
      Ref();
    }
    Napi::Promise promise = p->deferred.Promise();
    Tsfn tsfn = tsfn_;
    Queue(key).Push([p, work = std::move(work), tsfn]() mutable {
      try {
        work(*p);
      } catch (const std::exception& e) {
        p->failed = true;
        p->error = e.what();
      } catch (...) {
        p->failed = true;
        p->error = "unknown native error in a shm collective";
      }
      tsfn.BlockingCall(p);
    });
    return promise;
  }

  // Accessors read values cached at construction: they stay valid after close().
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), rank_); }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), size_); }
  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }
  Napi::Value Backing(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), backing_); }
  Napi::Value SegmentBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(segmentBytes_));
  }
  Napi::Value SlotBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(slotBytes_));
  }
  Napi::Value MailboxBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(mailboxBytes_));
  }

  Napi::Value Group(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      shm::Group g = C(info.Env()).MakeGroup(ArgIntArray(info, 0, "ranks"));
      groups_[g.channel] = g;
      return Napi::Number::New(info.Env(), g.channel);
    });
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      shm::Group g = G(info, 0);
      auto comm = comm_;
      return Submit(info.Env(), g.channel, {}, [comm, g](Pending&) { comm->Barrier(g); });
    });
  }

  Napi::Value AllReduce(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      shm::Group g = G(info, 0);
      Bytes b = ArgBytes(info, 1, "data");
      DType t = ArgDType(info, 2);
      if (b.size % shm::ElemBytes(t))
        throw Napi::RangeError::New(info.Env(), "data length must be a multiple of the element size");
      auto comm = comm_;
      return Submit(info.Env(), g.channel, {b.holder}, [comm, g, b, t](Pending&) {
        comm->AllReduce(b.data, b.size / shm::ElemBytes(t), t, g);
      });
    });
  }

  // A view of this rank's slot for the next collective on the group (zero-copy all-reduce input).
  Napi::Value SlotBuffer(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      shm::Group g = G(info, 0);
      size_t count = static_cast<size_t>(ArgIndex(info, 1, "count"));
      DType t = ArgDType(info, 2);
      void* data = C(info.Env()).SlotBuffer(g, count, t);
      return View(info.Env(), comm_, data, count * shm::ElemBytes(t));
    });
  }

  Napi::Value AllReduceSlot(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      shm::Group g = G(info, 0);
      size_t count = static_cast<size_t>(ArgIndex(info, 1, "count"));
      DType t = ArgDType(info, 2);
      if (count * shm::ElemBytes(t) > C(info.Env()).segment().slotHalfBytes())
        throw Napi::RangeError::New(info.Env(), "count exceeds the slot: open with a larger slotBytes");
      auto comm = comm_;
      return Submit(info.Env(), g.channel, {}, [comm, g, count, t](Pending&) { comm->AllReduceSlot(count, t, g); });
    });
  }

  Napi::Value AllGatherV(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      shm::Group g = G(info, 0);
      Bytes send = ArgBytes(info, 1, "send");
      Bytes recv = ArgBytes(info, 2, "recv");
      std::vector<size_t> sizes = ArgSizes(info, 3, "recvBytes");
      if (sizes.size() != static_cast<size_t>(g.size()))
        throw Napi::RangeError::New(info.Env(), "recvBytes needs one entry per group member");
      size_t total = 0;
      for (size_t s : sizes) total += s;
      if (send.size != sizes[g.me])
        throw Napi::RangeError::New(info.Env(), "send has " + std::to_string(send.size) + " bytes but recvBytes says " +
                                                    std::to_string(sizes[g.me]) + " for this rank");
      if (recv.size < total)
        throw Napi::RangeError::New(info.Env(), "recv has " + std::to_string(recv.size) + " bytes, needs " +
                                                    std::to_string(total));
      auto comm = comm_;
      return Submit(info.Env(), g.channel, {send.holder, recv.holder},
                    [comm, g, send, recv, sizes](Pending&) { comm->AllGatherV(send.data, recv.data, sizes, g); });
    });
  }

  Napi::Value ReduceScatterV(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      shm::Group g = G(info, 0);
      Bytes send = ArgBytes(info, 1, "send");
      Bytes recv = ArgBytes(info, 2, "recv");
      std::vector<size_t> counts = ArgSizes(info, 3, "counts");
      DType t = ArgDType(info, 4);
      size_t E = shm::ElemBytes(t);
      if (counts.size() != static_cast<size_t>(g.size()))
        throw Napi::RangeError::New(info.Env(), "counts needs one entry per group member");
      size_t total = 0;
      for (size_t c : counts) total += c;
      if (send.size != total * E)
        throw Napi::RangeError::New(info.Env(), "send must hold sum(counts) elements (" + std::to_string(total * E) +
                                                    " bytes), got " + std::to_string(send.size));
      if (recv.size < counts[g.me] * E)
        throw Napi::RangeError::New(info.Env(), "recv must hold counts[me] elements");
      auto comm = comm_;
      return Submit(info.Env(), g.channel, {send.holder, recv.holder}, [comm, g, send, recv, counts, t](Pending&) {
        comm->ReduceScatterV(send.data, recv.data, counts, t, g);
      });
    });
  }

  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      shm::Group g = G(info, 0);
      Bytes b = ArgBytes(info, 1, "data");
      int root = static_cast<int>(ArgIndex(info, 2, "root"));
      if (std::find(g.ranks.begin(), g.ranks.end(), root) == g.ranks.end())
        throw Napi::RangeError::New(info.Env(),
                                    "broadcast root " + std::to_string(root) + " is not a member of group " + g.Describe());
      auto comm = comm_;
      return Submit(info.Env(), g.channel, {b.holder},
                    [comm, g, b, root](Pending&) { comm->Broadcast(b.data, b.size, root, g); });
    });
  }

  static constexpr int kSendKey = 1000, kRecvKey = 2000;

  Napi::Value Send(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      int dst = static_cast<int>(ArgIndex(info, 0, "dst"));
      Bytes b = ArgBytes(info, 1, "data");
      auto comm = comm_;
      return Submit(info.Env(), kSendKey + dst, {b.holder}, [comm, dst, b](Pending&) { comm->Send(dst, b.data, b.size); });
    });
  }

  // recv(src[, out]): into `out` (resolves with the byte count) or a new ArrayBuffer.
  Napi::Value Recv(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      int src = static_cast<int>(ArgIndex(info, 0, "src"));
      auto comm = comm_;
      if (info.Length() > 1 && !info[1].IsUndefined()) {
        Bytes out = ArgBytes(info, 1, "out");
        return Submit(info.Env(), kRecvKey + src, {out.holder}, [comm, src, out](Pending& p) {
          size_t n = comm->Recv(src, [&](size_t total) -> void* {
            if (total > out.size)
              throw shm::CommError("recv: the message from rank " + std::to_string(src) + " has " + std::to_string(total) +
                                   " bytes but the buffer holds " + std::to_string(out.size));
            return out.data;
          });
          p.result = [n](Napi::Env env) { return Napi::Number::New(env, static_cast<double>(n)); };
        });
      }
      return Submit(info.Env(), kRecvKey + src, {}, [comm, src](Pending& p) {
        auto buf = std::make_shared<std::vector<char>>();
        comm->Recv(src, [&](size_t total) -> void* {
          buf->resize(total);
          return buf->data();
        });
        p.result = [buf](Napi::Env env) -> Napi::Value {
          Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, buf->size());
          if (!buf->empty()) std::memcpy(ab.Data(), buf->data(), buf->size());
          return ab;
        };
      });
    });
  }

  static Napi::ArrayBuffer View(Napi::Env env, const std::shared_ptr<Communicator>& comm, void* data, size_t bytes) {
    auto* holder = new ViewHolder{comm};
    return Napi::ArrayBuffer::New(env, data, bytes, [](Napi::Env, void*, ViewHolder* h) { delete h; }, holder);
  }

  // Resolves with an ArrayBuffer over the mailbox to dst once it is free (zero-copy send).
  Napi::Value SendBuffer(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      int dst = static_cast<int>(ArgIndex(info, 0, "dst"));
      auto comm = comm_;
      return Submit(info.Env(), kSendKey + dst, {}, [comm, dst](Pending& p) {
        size_t cap = 0;
        void* data = comm->SendBuffer(dst, &cap);
        p.result = [comm, data, cap](Napi::Env env) -> Napi::Value { return View(env, comm, data, cap); };
      });
    });
  }

  Napi::Value PostSend(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      C(info.Env()).PostSend(static_cast<int>(ArgIndex(info, 0, "dst")), static_cast<size_t>(ArgIndex(info, 1, "bytes")));
      return info.Env().Undefined();
    });
  }

  Napi::Value RecvBuffer(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      int src = static_cast<int>(ArgIndex(info, 0, "src"));
      auto comm = comm_;
      return Submit(info.Env(), kRecvKey + src, {}, [comm, src](Pending& p) {
        size_t bytes = 0;
        const void* data = comm->RecvBuffer(src, &bytes);
        p.result = [comm, data, bytes](Napi::Env env) -> Napi::Value {
          return View(env, comm, const_cast<void*>(data), bytes);
        };
      });
    });
  }

  Napi::Value ReleaseRecv(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      C(info.Env()).ReleaseRecv(static_cast<int>(ArgIndex(info, 0, "src")));
      return info.Env().Undefined();
    });
  }

  // bench(op, group, bytes, iters[, dtype]): seconds per operation of a native loop (after a
  // warm-up and a barrier), so no JS round trip is counted.
  Napi::Value Bench(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      std::string op = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
      if (op != "allReduce" && op != "allReduceSlot" && op != "allGather" && op != "barrier" && op != "reduceScatter" &&
          op != "broadcast")
        throw Napi::TypeError::New(info.Env(),
                                   "bench op must be allReduce, allReduceSlot, allGather, reduceScatter, broadcast or barrier");
      shm::Group g = G(info, 1);
      size_t bytes = static_cast<size_t>(ArgIndex(info, 2, "bytes"));
      int64_t iters = ArgIndex(info, 3, "iters");
      DType t = ArgDType(info, 4);
      if (iters < 1) throw Napi::RangeError::New(info.Env(), "iters must be at least 1");
      if (bytes > (size_t(1) << 32)) throw Napi::RangeError::New(info.Env(), "bytes must be at most 4 GiB");
      auto comm = comm_;
      return Submit(info.Env(), g.channel, {}, [comm, g, op, bytes, iters, t](Pending& p) {
        size_t E = shm::ElemBytes(t), n = static_cast<size_t>(g.size());
        size_t count = bytes / E;
        std::vector<char> a(bytes + 64, 0), b(bytes + 64, 0);
        auto once = [&]() {
          if (op == "allReduce") comm->AllReduce(a.data(), count, t, g);
          else if (op == "allReduceSlot") {
            comm->SlotBuffer(g, count, t);  // where a producer would write its input
            comm->AllReduceSlot(count, t, g);
          }
          else if (op == "allGather") comm->AllGather(a.data(), count / n * E, b.data(), g);  // like MPI: count/n elements each
          else if (op == "reduceScatter") comm->ReduceScatter(a.data(), b.data(), count / n, t, g);
          else if (op == "broadcast") comm->Broadcast(a.data(), bytes, g.ranks[0], g);
          else comm->Barrier(g);
        };
        int64_t warm = std::min<int64_t>(iters, 10);
        for (int64_t i = 0; i < warm; ++i) once();
        comm->Barrier(g);
        uint64_t t0 = shm::NowNs();
        for (int64_t i = 0; i < iters; ++i) once();
        double sec = static_cast<double>(shm::NowNs() - t0) * 1e-9 / static_cast<double>(iters);
        p.result = [sec](Napi::Env env) { return Napi::Number::New(env, sec); };
      });
    });
  }

  // usePool(pool | null[, minBytes]): large copies and sums run on the pool's pinned workers.
  Napi::Value UsePool(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      Communicator& c = C(info.Env());
      std::shared_ptr<ThreadPool> pool;
      if (info.Length() > 0 && !info[0].IsNull() && !info[0].IsUndefined()) pool = ThreadPoolFromJs(info[0]);
      size_t minBytes = info.Length() > 1 && !info[1].IsUndefined() ? static_cast<size_t>(ArgIndex(info, 1, "minBytes"))
                                                                    : (256u << 10);
      c.UsePool(pool, minBytes);
      return info.Env().Undefined();
    });
  }

  // Fails calls in flight, leaves the segment (the last rank removes it) and stops the threads.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    bool wasOpen = !closed_;
    Shutdown();
    if (wasOpen) Unref();  // the reference taken at construction: now it may be collected
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (hooked_) {
      hooked_ = false;
      napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    }
    if (closed_) return;
    closed_ = true;
    if (comm_) comm_->Leave();
    queues_.clear();  // joins: queued calls fail fast with "closed" and post their completion
    tsfn_.Release();
    comm_.reset();  // the mapping lives on while zero-copy views hold it
  }


  std::shared_ptr<Communicator> comm_;
  uint64_t queueSpinNs_ = 0;
  int rank_ = 0, size_ = 0;
  std::string path_, backing_;
  size_t segmentBytes_ = 0, slotBytes_ = 0, mailboxBytes_ = 0;
  std::map<int, shm::Group> groups_;
  std::map<int, std::unique_ptr<JobThread>> queues_;  // joined on close
  Tsfn tsfn_;
  int64_t pending_ = 0;
  bool closed_ = false;
  napi_env env_ = nullptr;
  bool hooked_ = true;
};

void FinishPending(Napi::Env env, Napi::Function, JsCommunicator* self, Pending* p) {
  std::unique_ptr<Pending> owned(p);
  if (!env) return;  // environment shutting down
  if (p->failed) {
    Napi::Error e = Napi::Error::New(env, p->error);
    e.Set("code", Napi::String::New(env, "ERR_REDBLUE_SHM"));
    p->deferred.Reject(e.Value());
  } else {
    try {
      p->deferred.Resolve(p->result ? p->result(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      p->deferred.Reject(e.Value());
    }
  }
  self->Done(env);
}

class OpenWorker : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Env env, shm::CommOptions opt, uint64_t queueSpinNs)
      : Napi::AsyncWorker(env), opt_(std::move(opt)), deferred_(Napi::Promise::Deferred::New(env)) {
    opened_.queueSpinNs = queueSpinNs;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      opened_.comm = std::make_shared<Communicator>(opt_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    auto ext = Napi::External<Opened>::New(env, &opened_);
    deferred_.Resolve(JsCommunicator::Constructor().Get(env).New({ext}));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  shm::CommOptions opt_;
  Napi::Promise::Deferred deferred_;
  Opened opened_;
};

double OptNumber(Napi::Object o, const char* key, double def) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return def;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9.007199254740991e15)
    throw Napi::RangeError::New(o.Env(), std::string("option ") + key + " must be a non-negative number");
  return d;
}

Napi::Value JsShmOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "shmOpen takes an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  if (!o.Get("name").IsString()) throw Napi::TypeError::New(env, "option name must be a string");
  shm::CommOptions opt;
  opt.name = o.Get("name").As<Napi::String>().Utf8Value();
  opt.rank = static_cast<int>(OptNumber(o, "rank", -1));
  opt.ranks = static_cast<int>(OptNumber(o, "size", 0));
  opt.slotBytes = static_cast<size_t>(OptNumber(o, "slotBytes", static_cast<double>(opt.slotBytes)));
  opt.p2pBytes = static_cast<size_t>(OptNumber(o, "mailboxBytes", static_cast<double>(opt.p2pBytes)));
  opt.maxGroups = static_cast<int>(OptNumber(o, "maxGroups", opt.maxGroups));
  opt.token = static_cast<uint64_t>(OptNumber(o, "token", 0));
  opt.timeoutNs = static_cast<uint64_t>(OptNumber(o, "timeoutMs", 30000) * 1e6);
  opt.attachTimeoutNs = static_cast<uint64_t>(OptNumber(o, "attachTimeoutMs", 10000) * 1e6);
  opt.spinNs = o.Has("spinUs") && !o.Get("spinUs").IsUndefined() ? static_cast<int64_t>(OptNumber(o, "spinUs", 0) * 1e3) : -1;
  opt.smallBytes = static_cast<size_t>(OptNumber(o, "smallBytes", 0));
  opt.roundBytes = static_cast<size_t>(OptNumber(o, "roundBytes", 0));
  if (o.Has("hugePages") && o.Get("hugePages").IsString()) opt.hugePages = o.Get("hugePages").As<Napi::String>().Utf8Value();
  // Off by default: on a box with few cpus the spinning queue thread competes with the ranks.
  uint64_t queueSpinNs = static_cast<uint64_t>(OptNumber(o, "queueSpinUs", 0) * 1e3);
  auto* w = new OpenWorker(env, opt, queueSpinNs);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value JsShmRemoveStale(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "name must be a string");
  return Napi::Boolean::New(info.Env(), shm::RemoveIfStale(info[0].As<Napi::String>().Utf8Value()));
}

// Seconds per memcpy of `bytes` between two private buffers: the bandwidth limit collectives
// are compared with.
Napi::Value JsShmMemcpy(const Napi::CallbackInfo& info) {
  size_t bytes = static_cast<size_t>(ArgIndex(info, 0, "bytes"));
  int64_t iters = ArgIndex(info, 1, "iters");
  if (bytes < 1 || bytes > (size_t(1) << 32) || iters < 1)
    throw Napi::RangeError::New(info.Env(), "bytes must be in 1..4 GiB and iters at least 1");
  std::vector<char> a(bytes, 1), b(bytes, 0);
  for (int i = 0; i < 2; ++i) shm::CopyBytes(b.data(), a.data(), bytes);
  uint64_t t0 = shm::NowNs();
  for (int64_t i = 0; i < iters; ++i) {
    shm::CopyBytes(i & 1 ? a.data() : b.data(), i & 1 ? b.data() : a.data(), bytes);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(shm::NowNs() - t0) * 1e-9 / static_cast<double>(iters));
}

void InitShm(Napi::Env env, Napi::Object exports) {
  REDBLUE_EXPORT(exports, "shmOpen", JsShmOpen);
  REDBLUE_EXPORT(exports, "shmRemoveStale", JsShmRemoveStale);
  REDBLUE_EXPORT(exports, "shmMemcpy", JsShmMemcpy);
  Napi::Function cls = JsCommunicator::Define(env);
  JsCommunicator::Constructor().Set(env, cls);
  exports.Set("ShmCommunicator", cls);
}

}  // namespace
REDBLUE_MODULE(InitShm);

// Native executor steps reach a JS communicator's Communicator through this.
std::shared_ptr<shm::Communicator> CommunicatorFromJs(Napi::Value v) {
  if (!JsCommunicator::Constructor().IsInstance(v))
    throw Napi::TypeError::New(v.Env(), "expected a shared-memory communicator (from shmOpen)");
  auto comm = Napi::ObjectWrap<JsCommunicator>::Unwrap(v.As<Napi::Object>())->communicator();
  if (!comm) throw Napi::Error::New(v.Env(), "this communicator was closed");
  return comm;
}
}  // namespace redblue
