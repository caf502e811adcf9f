// JS bindings of the core: topology, binding, node-local buffers, pinned thread pools, cpu features.
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <sched.h>
#include <unistd.h>
#include <unordered_map>

#include "core/async_task.h"
#include "core/binding.h"
#include "core/cpu_features.h"
#include "core/module_registry.h"
#include "core/napi_util.h"
#include "core/node_memory.h"
#include "core/shared_file.h"
#include "core/thread_pool.h"
#include "core/topology.h"

namespace redblue {
namespace {

Napi::Array IntArray(Napi::Env env, const std::vector<int>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, v[i]));
  return a;
}

Napi::Value JsTopology(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Topology t = ReadTopology();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array pkgs = Napi::Array::New(env);
  for (size_t i = 0; i < t.packages.size(); ++i) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("id", t.packages[i].id);
    p.Set("cpus", IntArray(env, t.packages[i].cpus));
    p.Set("nodes", IntArray(env, t.packages[i].nodes));
    pkgs.Set(static_cast<uint32_t>(i), p);
  }
  Napi::Array nodes = Napi::Array::New(env);
  for (size_t i = 0; i < t.nodes.size(); ++i) {
    const NumaNode& n = t.nodes[i];
    Napi::Object no = Napi::Object::New(env);
    no.Set("id", n.id);
    no.Set("package", n.package);
    no.Set("cpus", IntArray(env, n.cpus));
    no.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(n.memoryBytes)));
    Napi::Array hp = Napi::Array::New(env);
    for (size_t j = 0; j < n.hugePages.size(); ++j) {
      Napi::Object h = Napi::Object::New(env);
      h.Set("pageBytes", Napi::Number::New(env, static_cast<double>(n.hugePages[j].pageBytes)));
      h.Set("total", Napi::Number::New(env, static_cast<double>(n.hugePages[j].total)));
      h.Set("free", Napi::Number::New(env, static_cast<double>(n.hugePages[j].free)));
      hp.Set(static_cast<uint32_t>(j), h);
    }
    no.Set("hugePages", hp);
    nodes.Set(static_cast<uint32_t>(i), no);
  }
  Napi::Array cores = Napi::Array::New(env);
  for (size_t i = 0; i < t.cores.size(); ++i) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("id", t.cores[i].id);
    c.Set("package", t.cores[i].package);
    c.Set("cpus", IntArray(env, t.cores[i].cpus));
    cores.Set(static_cast<uint32_t>(i), c);
  }
  Napi::Array dist = Napi::Array::New(env);
  for (size_t i = 0; i < t.distances.size(); ++i) {
    Napi::Array row = Napi::Array::New(env);
    for (size_t j = 0; j < t.distances[i].size(); ++j)
      row.Set(static_cast<uint32_t>(j), Napi::Number::New(env, static_cast<double>(t.distances[i][j])));
    dist.Set(static_cast<uint32_t>(i), row);
  }
  o.Set("packages", pkgs);
  o.Set("nodes", nodes);
  o.Set("cores", cores);
  o.Set("distances", dist);
  o.Set("hardwareThreads", t.hardwareThreads);
  o.Set("hwlocVersion", t.hwlocVersion);
  return o;
}

Napi::Value JsBindProcess(const Napi::CallbackInfo& info) {
  std::vector<int> cpus = ArgIntArray(info, 0, "cpus");
  int node = static_cast<int>(ArgIndex(info, 1, "node"));
  BindProcess(cpus, node);
  return info.Env().Undefined();
}

Napi::Value JsCurrentAffinity(const Napi::CallbackInfo& info) { return IntArray(info.Env(), CurrentAffinity()); }

Napi::Value JsAllThreadAffinities(const Napi::CallbackInfo& info) {
  auto all = AllThreadAffinities();
  Napi::Array a = Napi::Array::New(info.Env(), all.size());
  for (size_t i = 0; i < all.size(); ++i) a.Set(static_cast<uint32_t>(i), IntArray(info.Env(), all[i]));
  return a;
}

// --- node-local buffers -------------------------------------------------------------------

// Live buffers by base address, so release() can find the mapping behind an ArrayBuffer.
// Node-local buffers and shared files share the holder: both are mappings released early or by GC.
struct Mapping {
  virtual ~Mapping() = default;
  virtual void release() = 0;
};
template <typename T>
struct MappingOf : Mapping {
  std::unique_ptr<T> m;
  explicit MappingOf(std::unique_ptr<T> p) : m(std::move(p)) {}
  void release() override { m->release(); }
};
struct BufferHolder {
  std::unique_ptr<Mapping> buf;
  int64_t accounted = 0;
  size_t bytes = 0;  // the whole mapping (an area's JavaScript buffer may be a window on it)
};
std::mutex gBuffersMu;
std::unordered_map<void*, BufferHolder*> gBuffers;

void FinalizeBuffer(Napi::Env env, void* data, BufferHolder* holder) {
  {
    std::lock_guard<std::mutex> lk(gBuffersMu);
    auto it = gBuffers.find(data);
    if (it != gBuffers.end() && it->second == holder) gBuffers.erase(it);
  }
  if (holder->accounted) Napi::MemoryManagement::AdjustExternalMemory(env, -holder->accounted);
  delete holder;  // unmaps if release() was never called
}

void FinalizeExternal(napi_env env, void* data, void* hint) {
  FinalizeBuffer(Napi::Env(env), data, static_cast<BufferHolder*>(hint));
}

// The largest buffer Node hands JavaScript without copying. An external ArrayBuffer goes
// through node::Buffer::New, which refuses one past Buffer's kMaxLength (2^32 bytes before Node
// 22) after calling its finalizer. Checked before anything is mapped: a 4.8 GB gemm staging area
// used to end in node-addon-api freeing the finalizer's wrapper a second time (an abort, and the
// area's file left in /dev/shm).
size_t MaxExternalBytes(Napi::Env env, std::string* node) {
  const napi_node_version* v = nullptr;
  if (napi_get_node_version(env, &v) != napi_ok || v == nullptr) return size_t(1) << 32;
  *node = "Node " + std::to_string(v->major) + "." + std::to_string(v->minor);
  return v->major >= 22 ? (size_t(1) << 53) - 1 : size_t(1) << 32;
}
void CheckExternalBytes(Napi::Env env, size_t bytes, const std::string& what) {
  std::string node = "this Node";
  const size_t max = MaxExternalBytes(env, &node);
  if (bytes > max)
    throw UserError(what + " of " + std::to_string(bytes) + " bytes is larger than the " + std::to_string(max) +
                    " bytes " + node + " can hand JavaScript as one buffer (buffer.constants.MAX_LENGTH)");
}

// Exposes a mapping as an ArrayBuffer without copying; GC or release() unmaps it. Throws where
// Node refuses the buffer: by then Node may already have run the finalizer (which unmapped it).
// `window`: a mapping past that limit is handed over as a window on its first bytes (native
// code reaches the rest through ReachableBytes) instead of refused.
Napi::ArrayBuffer WrapMapping(Napi::Env env, void* data, size_t bytes, size_t mapped, std::unique_ptr<Mapping> m,
                              const std::string& what, bool window = false) {
  std::string node;
  const size_t visible = window ? std::min(bytes, MaxExternalBytes(env, &node)) : bytes;
  CheckExternalBytes(env, visible, what);
  auto holder = std::make_unique<BufferHolder>();
  holder->buf = std::move(m);
  holder->accounted = static_cast<int64_t>(mapped);
  holder->bytes = bytes;
  BufferHolder* raw = holder.release();
  {
    std::lock_guard<std::mutex> lk(gBuffersMu);
    gBuffers[data] = raw;
  }
  // Counted before the buffer exists: a finalizer that Node runs on failure takes it back.
  Napi::MemoryManagement::AdjustExternalMemory(env, raw->accounted);
  // The C call, not Napi::ArrayBuffer::New: on failure that frees its own wrapper of the
  // finalizer, which Node's failure path has freed already.
  napi_value ab = nullptr;
  if (napi_create_external_arraybuffer(env, data, visible, FinalizeExternal, raw, &ab) != napi_ok) {
    bool finalized;
    {
      std::lock_guard<std::mutex> lk(gBuffersMu);
      auto it = gBuffers.find(data);
      finalized = it == gBuffers.end() || it->second != raw;
      if (!finalized) gBuffers.erase(it);
    }
    if (!finalized) {
      Napi::MemoryManagement::AdjustExternalMemory(env, -raw->accounted);
      delete raw;
    }
    // Node's own pending exception (ERR_BUFFER_TOO_LARGE) would hide ours.
    napi_value pending;
    bool is = false;
    if (napi_is_exception_pending(env, &is) == napi_ok && is) napi_get_and_clear_last_exception(env, &pending);
    throw UserError(what + " of " + std::to_string(bytes) + " bytes: Node refused it as an ArrayBuffer");
  }
  return Napi::ArrayBuffer(env, ab);
}

Napi::Value JsAllocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t bytes = ArgIndex(info, 0, "bytes");
  int node = static_cast<int>(ArgIndex(info, 1, "node"));
  std::string policy = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "auto";
  if (bytes > (int64_t(1) << 46)) throw UserError("allocation of " + std::to_string(bytes) + " bytes is too large");
  CheckExternalBytes(env, static_cast<size_t>(bytes), "a node-local buffer");
  auto nb = std::make_unique<NodeBuffer>(static_cast<size_t>(bytes), node, ParseHugePolicy(policy));
  size_t mapped = nb->mappedSize();
  const char* backing = BackingName(nb->backing());
  void* data = nb->data();
  Napi::Object o = Napi::Object::New(env);
  o.Set("buffer", WrapMapping(env, data, static_cast<size_t>(bytes), mapped, std::make_unique<MappingOf<NodeBuffer>>(std::move(nb)),
                              "a node-local buffer"));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes)));
  o.Set("mappedBytes", Napi::Number::New(env, static_cast<double>(mapped)));
  o.Set("node", node);
  o.Set("backing", backing);
  o.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data))));
  return o;
}

// Maps a file shared between processes (core/shared_file.h): mapSharedFile(name, bytes) creates
// (replacing any old one), mapSharedFile(name) attaches to an existing one, mapSharedFile(name,
// bytes, true) attaches to its first `bytes`.
Napi::Value JsMapSharedFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "shared file name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  const bool sized = info.Length() > 1 && !info[1].IsUndefined();
  const bool attach = info.Length() > 2 && info[2].ToBoolean().Value();
  const bool create = sized && !attach;
  size_t bytes = sized ? static_cast<size_t>(ArgIndex(info, 1, "bytes")) : 0;
  const std::string what = "shared area " + name;
  auto sf = std::make_unique<SharedFile>(name, bytes, create);
  size_t size = sf->size();
  void* data = sf->data();
  try {
    return WrapMapping(env, data, size, size, std::make_unique<MappingOf<SharedFile>>(std::move(sf)), what, true);
  } catch (...) {
    if (create) SharedFile::Unlink(name);  // nobody holds it: the file would stay behind
    throw;
  }
}

// mapSharedFileAsync(name, bytes) → Promise<ArrayBuffer>: mapSharedFile(name, bytes), the file
// made and its pages written on a worker thread. A host's gemm area of several GB takes seconds to
// fault in where first touches are slow (0.8 GB/s on a VM's /dev/shm); on the JS thread that
// stalled the supervisor past its coordinator's keepalive, which dropped the connection.
Napi::Value JsMapSharedFileAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "mapSharedFileAsync(name, bytes)");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const size_t bytes = static_cast<size_t>(ArgIndex(info, 1, "bytes"));
  auto made = std::make_shared<std::unique_ptr<SharedFile>>();
  return AsyncTask::Start(
      env, "redblue.mapSharedFile", [=] { *made = std::make_unique<SharedFile>(name, bytes, true); },
      [=](Napi::Env e) -> Napi::Value {
        std::unique_ptr<SharedFile> sf = std::move(*made);
        const size_t size = sf->size();
        void* data = sf->data();
        try {
          return WrapMapping(e, data, size, size, std::make_unique<MappingOf<SharedFile>>(std::move(sf)),
                             "shared area " + name, true);
        } catch (const std::exception& x) {
          SharedFile::Unlink(name);  // nobody holds it
          throw Napi::Error::New(e, x.what());
        }
      });
}

// mappedBytes(buffer): the whole mapping behind an area's buffer (its byteLength unless windowed).
Napi::Value JsMappedBytes(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(info.Env(), "mappedBytes() takes an ArrayBuffer");
  return Napi::Number::New(info.Env(), static_cast<double>(ReachableBytes(info[0].As<Napi::ArrayBuffer>())));
}

// areaCopy(buffer, offset, view, toArea): copies between an area (anywhere in its mapping, also
// past the window JavaScript sees) and a typed array.
Napi::Value JsAreaCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsArrayBuffer() || !info[2].IsTypedArray())
    throw Napi::TypeError::New(env, "areaCopy(buffer, offset, view, toArea) takes an ArrayBuffer and a typed array");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  const uint64_t offset = static_cast<uint64_t>(ArgIndex(info, 1, "offset"));
  Napi::TypedArray view = info[2].As<Napi::TypedArray>();
  const size_t n = view.ByteLength();
  const size_t total = ReachableBytes(ab);
  if (offset > total || n > total - offset)
    throw UserError(std::to_string(n) + " bytes at " + std::to_string(offset) + " do not fit the " + std::to_string(total) +
                    "-byte area");
  uint8_t* area = static_cast<uint8_t*>(ab.Data()) + offset;
  uint8_t* mine = static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  if (info[3].ToBoolean().Value()) std::memcpy(area, mine, n);
  else std::memcpy(mine, area, n);
  return env.Undefined();
}

Napi::Value JsUnlinkSharedFile(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "shared file name must be a string");
  return Napi::Boolean::New(info.Env(), SharedFile::Unlink(info[0].As<Napi::String>().Utf8Value()));
}

// Unmaps now and detaches the ArrayBuffer (its length becomes 0), so no JS view can touch
// freed memory. Returns false if the buffer was not ours or already released.
Napi::Value JsRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "release() takes the ArrayBuffer");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  BufferHolder* holder = nullptr;
  {
    std::lock_guard<std::mutex> lk(gBuffersMu);
    auto it = gBuffers.find(data);
    if (it == gBuffers.end()) return Napi::Boolean::New(env, false);
    holder = it->second;
    gBuffers.erase(it);
  }
  ab.Detach();
  holder->buf->release();
  return Napi::Boolean::New(env, true);
}

// --- pinned thread pools -----------------------------------------------------------------

class JsThreadPool : public Napi::ObjectWrap<JsThreadPool> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ThreadPool",
                       {InstanceAccessor<&JsThreadPool::Size>("size"),
                        InstanceMethod<&JsThreadPool::Cpus>("cpus"),
                        InstanceMethod<&JsThreadPool::WorkerAffinity>("workerAffinity"),
                        InstanceMethod<&JsThreadPool::Close>("close")});
  }
  explicit JsThreadPool(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsThreadPool>(info) {
    std::vector<int> cpus;
    try {
      cpus = ArgIntArray(info, 0, "cpus");
    } catch (const Napi::Error&) {
      throw;
    }
    if (cpus.empty()) throw Napi::RangeError::New(info.Env(), "a thread pool needs at least one cpu");
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    for (int c : cpus)
      if (c >= ncpu)
        throw Napi::RangeError::New(info.Env(), "cpu " + std::to_string(c) + " does not exist: this machine has cpus 0-" +
                                                    std::to_string(ncpu - 1));
    pool_ = std::make_shared<ThreadPool>(cpus);
  }
  std::shared_ptr<ThreadPool> pool() const { return pool_; }
  static JsThreadPool* Unwrap(Napi::Value v) {
    if (!Constructor().IsInstance(v)) throw Napi::TypeError::New(v.Env(), "expected a ThreadPool");
    return Napi::ObjectWrap<JsThreadPool>::Unwrap(v.As<Napi::Object>());
  }
  static PerEnvConstructor& Constructor() {
    static PerEnvConstructor ctors;
    return ctors;
  }

 private:
  std::shared_ptr<ThreadPool> Alive(Napi::Env env) {
    if (!pool_) throw Napi::Error::New(env, "this ThreadPool was closed");
    return pool_;
  }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), pool_ ? static_cast<double>(pool_->size()) : 0);
  }
  Napi::Value Cpus(const Napi::CallbackInfo& info) { return IntArray(info.Env(), Alive(info.Env())->cpus()); }
  Napi::Value WorkerAffinity(const Napi::CallbackInfo& info) {
    auto pool = Alive(info.Env());
    std::vector<std::vector<int>> aff(pool->size());
    std::vector<int> ran(pool->size(), -1);
    pool->OnEachWorker([&](int w) {
      aff[w] = CurrentAffinity();
      ran[w] = sched_getcpu();
    });
    Napi::Array a = Napi::Array::New(info.Env(), aff.size());
    for (size_t i = 0; i < aff.size(); ++i) {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("allowed", IntArray(info.Env(), aff[i]));
      o.Set("ranOn", ran[i]);
      a.Set(static_cast<uint32_t>(i), o);
    }
    return a;
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    pool_.reset();
    return info.Env().Undefined();
  }
  std::shared_ptr<ThreadPool> pool_;
};

Napi::Value JsCpuFeatures(const Napi::CallbackInfo& info) {
  const CpuFeatures& f = DetectCpu();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx2", f.avx2 && f.fma);
  o.Set("f16c", f.f16c);
  o.Set("avx512f", f.avx512f);
  o.Set("avx512bw", f.avx512bw);
  o.Set("avx512vl", f.avx512vl);
  o.Set("avx512vnni", f.avx512vnni);
  o.Set("avx512bf16", f.avx512bf16);
  o.Set("amxTile", f.amxTile);
  o.Set("amxBf16", f.amxBf16);
  o.Set("amxInt8", f.amxInt8);
  return o;
}

// amxPermission(): whether Linux grants this process AMX tile state (asks for it; false without AMX).
Napi::Value JsAmxPermission(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), EnableAmx()); }

void InitCore(Napi::Env env, Napi::Object exports) {
  REDBLUE_EXPORT(exports, "topology", JsTopology);
  REDBLUE_EXPORT(exports, "bindProcess", JsBindProcess);
  REDBLUE_EXPORT(exports, "currentAffinity", JsCurrentAffinity);
  REDBLUE_EXPORT(exports, "allThreadAffinities", JsAllThreadAffinities);
  REDBLUE_EXPORT(exports, "allocate", JsAllocate);
  REDBLUE_EXPORT(exports, "release", JsRelease);
  REDBLUE_EXPORT(exports, "mapSharedFile", JsMapSharedFile);
  REDBLUE_EXPORT(exports, "unlinkSharedFile", JsUnlinkSharedFile);
  REDBLUE_EXPORT(exports, "mappedBytes", JsMappedBytes);
  REDBLUE_EXPORT(exports, "mapSharedFileAsync", JsMapSharedFileAsync);
  REDBLUE_EXPORT(exports, "areaCopy", JsAreaCopy);
  REDBLUE_EXPORT(exports, "cpuFeatures", JsCpuFeatures);
  REDBLUE_EXPORT(exports, "amxPermission", JsAmxPermission);
  Napi::Function pool = JsThreadPool::Define(env);
  JsThreadPool::Constructor().Set(env, pool);
  exports.Set("ThreadPool", pool);
}

}  // namespace
REDBLUE_MODULE(InitCore);

size_t ReachableBytes(Napi::ArrayBuffer ab) {
  std::lock_guard<std::mutex> lk(gBuffersMu);
  auto it = gBuffers.find(ab.Data());
  const size_t own = ab.ByteLength();
  // A detached or released buffer (length 0) reaches nothing, whatever was mapped there.
  return it != gBuffers.end() && own > 0 && it->second->bytes > own ? it->second->bytes : own;
}
}  // namespace redblue

// Other modules reach a JS ThreadPool's native pool through this.
namespace redblue {
std::shared_ptr<ThreadPool> ThreadPoolFromJs(Napi::Value v) { return JsThreadPool::Unwrap(v)->pool(); }
}  // namespace redblue
