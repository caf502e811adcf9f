// JS bindings of the compute kernels: every buffer bound, shape and type is checked here, then
// the plain C++ kernels (kernels/*.h) run on the caller's pinned pool.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/async_task.h"
#include "core/module_registry.h"
#include "core/napi_util.h"
#include "core/thread_pool.h"
#include "kernels/gaussian.h"
#include "kernels/gemm_f32.h"
#include "kernels/quant.h"
#include "kernels/select.h"

namespace redblue {
namespace {

// A typed view of a JS buffer: element pointer and element count.
template <typename T>
struct View {
  T* data = nullptr;
  int64_t length = 0;
  Napi::Object holder;  // keeps the JS object alive for async ops
};

View<float> F32Arg(Napi::Value v, const std::string& what) {
  View<float> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    auto a = v.As<Napi::Float32Array>();
    out.data = a.Data();
    out.length = static_cast<int64_t>(a.ElementLength());
  } else if (v.IsArrayBuffer()) {
    auto a = v.As<Napi::ArrayBuffer>();
    out.data = static_cast<float*>(a.Data());
    out.length = static_cast<int64_t>(a.ByteLength() / sizeof(float));
  } else {
    throw Napi::TypeError::New(v.Env(), what + " must be a Float32Array or an ArrayBuffer of f32 values");
  }
  out.holder = v.As<Napi::Object>();
  return out;
}

View<uint8_t> BytesArg(Napi::Value v, const std::string& what) {
  View<uint8_t> out;
  if (v.IsTypedArray()) {
    auto a = v.As<Napi::TypedArray>();
    out.data = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    out.length = static_cast<int64_t>(a.ByteLength());
  } else if (v.IsArrayBuffer()) {
    auto a = v.As<Napi::ArrayBuffer>();
    out.data = static_cast<uint8_t*>(a.Data());
    out.length = static_cast<int64_t>(a.ByteLength());
  } else if (v.IsDataView()) {
    auto a = v.As<Napi::DataView>();
    out.data = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    out.length = static_cast<int64_t>(a.ByteLength());
  } else {
    throw Napi::TypeError::New(v.Env(), what + " must be a Uint8Array (or another typed array) or an ArrayBuffer");
  }
  out.holder = v.As<Napi::Object>();
  return out;
}

// Reads fields of an options object with clear errors naming the operation and the field.
class Opts {
 public:
  Opts(const Napi::CallbackInfo& info, size_t i, std::string op) : env_(info.Env()), op_(std::move(op)) {
    if (info.Length() <= i || !info[i].IsObject() || info[i].IsArray())
      throw Napi::TypeError::New(env_, op_ + ": expected an options object as argument " + std::to_string(i + 1));
    o_ = info[i].As<Napi::Object>();
  }
  // An element of an array argument (matmulQShared's parts).
  Opts(Napi::Env env, Napi::Value v, std::string op) : env_(env), op_(std::move(op)) {
    if (!v.IsObject() || v.IsArray()) throw Napi::TypeError::New(env_, op_ + ": expected an options object");
    o_ = v.As<Napi::Object>();
  }
  // One property lookup per option (each costs a trip through N-API); undefined/null = absent.
  Napi::Value Field(const char* key) const {
    Napi::Value v = o_.Get(key);
    return v.IsNull() ? Napi::Value(env_.Undefined()) : v;
  }
  int64_t Index(const char* key) const {
    Napi::Value v = Field(key);
    if (v.IsUndefined())
      throw Napi::TypeError::New(env_, op_ + ": option '" + key + "' is required (a non-negative integer)");
    return ToIndex(key, v);
  }
  int64_t Index(const char* key, int64_t def) const {
    Napi::Value v = Field(key);
    return v.IsUndefined() ? def : ToIndex(key, v);
  }
  double Number(const char* key, double def) const {
    Napi::Value v = Field(key);
    if (v.IsUndefined()) return def;
    if (!v.IsNumber()) throw Napi::TypeError::New(env_, op_ + ": option '" + key + "' must be a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  bool Bool(const char* key, bool def) const {
    Napi::Value v = Field(key);
    if (v.IsUndefined()) return def;
    if (!v.IsBoolean())
      throw Napi::TypeError::New(env_, op_ + ": option '" + key + "' must be a boolean (true = transposed)");
    return v.As<Napi::Boolean>().Value();
  }
  std::string String(const char* key, const std::string& def) const {
    Napi::Value v = Field(key);
    if (v.IsUndefined()) return def;
    if (!v.IsString()) throw Napi::TypeError::New(env_, op_ + ": option '" + key + "' must be a string");
    return v.As<Napi::String>().Utf8Value();
  }
  Napi::Value Required(const char* key) const {
    Napi::Value v = Field(key);
    if (v.IsUndefined()) throw Napi::TypeError::New(env_, op_ + ": option '" + key + "' is required");
    return v;
  }

 private:
  int64_t ToIndex(const char* key, Napi::Value v) const {
    if (!v.IsNumber()) throw Napi::TypeError::New(env_, op_ + ": option '" + key + "' must be a non-negative integer");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9.007199254740991e15)
      throw Napi::RangeError::New(env_, op_ + ": option '" + key + "' must be a non-negative integer, got " +
                                            v.ToString().Utf8Value());
    return static_cast<int64_t>(d);
  }

  Napi::Env env_;
  std::string op_;
  Napi::Object o_;
};

std::shared_ptr<ThreadPool> PoolArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i) throw Napi::TypeError::New(info.Env(), "expected a ThreadPool as argument " + std::to_string(i + 1));
  auto pool = ThreadPoolFromJs(info[i]);
  if (!pool) throw Napi::Error::New(info.Env(), "this ThreadPool was closed");
  return pool;
}

// Products and extents of user sizes, refusing any that overflow: absurd sizes must fail the
// bounds check, never wrap around it.
int64_t Mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw UserError("sizes too large: " + std::to_string(a) + " × " + std::to_string(b) + " overflows");
  return r;
}
int64_t Span(int64_t rows, int64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0) return 0;
  int64_t r;
  if (__builtin_add_overflow(Mul(rows - 1, ld), cols, &r)) throw UserError("sizes too large: the matrix extent overflows");
  return r;
}

// offset + span must lie inside the view; returns the pointer at offset.
template <typename T>
T* Bounded(const View<T>& v, int64_t offset, int64_t span, const std::string& what, const std::string& shape) {
  if (offset > v.length || span > v.length - offset)
    throw UserError(what + " is too short: " + shape + " needs elements [" + std::to_string(offset) + ", " +
                    std::to_string(offset + span) + ") but it has " + std::to_string(v.length) +
                    " (check the offset, sizes and leading dimension)");
  return v.data + offset;
}

template <typename A, typename B>
bool Overlap(const A* a, int64_t an, const B* b, int64_t bn) {
  if (an == 0 || bn == 0) return false;
  auto a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + bn * sizeof(B) && b0 < a0 + an * sizeof(A);
}

struct GemmCall {
  GemmArgs g;
  std::vector<Napi::Object> keep;
};

GemmCall ParseGemm(const Napi::CallbackInfo& info, size_t i, const char* op) {
  Opts o(info, i, op);
  GemmCall call;
  GemmArgs& g = call.g;
  g.m = o.Index("m");
  g.n = o.Index("n");
  g.k = o.Index("k");
  g.transA = o.Bool("transA", false);
  g.transB = o.Bool("transB", false);
  g.alpha = static_cast<float>(o.Number("alpha", 1.0));
  g.beta = static_cast<float>(o.Number("beta", 0.0));
  g.lda = o.Index("lda", std::max<int64_t>(1, g.transA ? g.m : g.k));
  g.ldb = o.Index("ldb", std::max<int64_t>(1, g.transB ? g.k : g.n));
  g.ldc = o.Index("ldc", std::max<int64_t>(1, g.n));
  CheckGemmArgs(g);
  auto a = F32Arg(o.Required("a"), std::string(op) + ": a");
  auto b = F32Arg(o.Required("b"), std::string(op) + ": b");
  auto c = F32Arg(o.Required("c"), std::string(op) + ": c");
  const std::string dims = "(m=" + std::to_string(g.m) + ", n=" + std::to_string(g.n) + ", k=" + std::to_string(g.k) + ")";
  const int64_t aSpan = g.transA ? Span(g.k, g.m, g.lda) : Span(g.m, g.k, g.lda);
  const int64_t bSpan = g.transB ? Span(g.n, g.k, g.ldb) : Span(g.k, g.n, g.ldb);
  const int64_t cSpan = Span(g.m, g.n, g.ldc);
  g.a = Bounded(a, o.Index("aOffset", 0), aSpan, std::string(op) + ": a",
                std::string(g.transA ? "Aᵀ (k×m" : "A (m×k") + ", lda=" + std::to_string(g.lda) + ") " + dims);
  g.b = Bounded(b, o.Index("bOffset", 0), bSpan, std::string(op) + ": b",
                std::string(g.transB ? "Bᵀ (n×k" : "B (k×n") + ", ldb=" + std::to_string(g.ldb) + ") " + dims);
  g.c = Bounded(c, o.Index("cOffset", 0), cSpan, std::string(op) + ": c",
                "C (m×n, ldc=" + std::to_string(g.ldc) + ") " + dims);
  if (Overlap(g.c, cSpan, g.a, aSpan) || Overlap(g.c, cSpan, g.b, bSpan))
    throw UserError(std::string(op) + ": c must not overlap a or b (the result would depend on the order of writes)");
  call.keep = {a.holder, b.holder, c.holder};
  return call;
}

struct MatmulCall {
  QuantMatmulArgs q;
  std::vector<Napi::Object> keep;
};

MatmulCall ParseMatmul(const Opts& o, const std::string& op) {
  MatmulCall call;
  QuantMatmulArgs& q = call.q;
  q.type = ParseWeightType(o.String("type", ""));
  q.isa = ParseIsa(o.String("isa", "auto"));
  q.rowInvariant = o.Bool("rowInvariant", false);
  q.rows8 = o.Bool("rows8", false);
  q.m = o.Index("m");
  q.n = o.Index("n");
  q.k = o.Index("k");
  const int64_t rb = RowBytes(q.type, q.k);
  q.wStride = o.Index("wStride", rb);
  q.ldx = o.Index("ldx", std::max<int64_t>(1, q.k));
  q.ldy = o.Index("ldy", std::max<int64_t>(1, q.n));
  CheckQuantMatmulArgs(q);
  auto w = BytesArg(o.Required("w"), std::string(op) + ": w");
  auto x = F32Arg(o.Required("x"), std::string(op) + ": x");
  auto y = F32Arg(o.Required("y"), std::string(op) + ": y");
  const int64_t wSpan = Span(q.n, rb, q.wStride);
  const int64_t xSpan = Span(q.m, q.k, q.ldx), ySpan = Span(q.m, q.n, q.ldy);
  const std::string dims = "(m=" + std::to_string(q.m) + ", n=" + std::to_string(q.n) + ", k=" + std::to_string(q.k) + ")";
  q.w = Bounded(w, o.Index("wOffset", 0), wSpan, std::string(op) + ": w (bytes)",
                std::string("W (n rows of ") + std::to_string(rb) + " bytes of " + WeightTypeName(q.type) +
                    ", stride " + std::to_string(q.wStride) + ") " + dims);
  q.x = Bounded(x, o.Index("xOffset", 0), xSpan, std::string(op) + ": x",
                "X (m×k, ldx=" + std::to_string(q.ldx) + ") " + dims);
  q.y = Bounded(y, o.Index("yOffset", 0), ySpan, std::string(op) + ": y",
                "Y (m×n, ldy=" + std::to_string(q.ldy) + ") " + dims);
  if (Overlap(q.y, ySpan, q.x, xSpan) || Overlap(q.y, ySpan, q.w, wSpan))
    throw UserError(std::string(op) + ": y must not overlap w or x");
  call.keep = {w.holder, x.holder, y.holder};
  return call;
}
MatmulCall ParseMatmul(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return ParseMatmul(Opts(info, i, op), op);
}

// The promise of an async kernel call: the pool (captured by the job) and the JS buffers stay
// alive until it settles.
Napi::Promise StartKernel(Napi::Env env, std::function<void()> job, const std::vector<Napi::Object>& keep) {
  return AsyncTask::Start(
      env, "redblue.kernel", std::move(job), [](Napi::Env e) -> Napi::Value { return e.Undefined(); },
      std::vector<Napi::Value>(keep.begin(), keep.end()));
}

Napi::Value JsGemmF32(const Napi::CallbackInfo& info) {
  auto pool = PoolArg(info, 0);
  GemmCall call = ParseGemm(info, 1, "gemmF32");
  GemmF32(call.g, *pool);
  return info.Env().Undefined();
}

Napi::Value JsGemmF32Async(const Napi::CallbackInfo& info) {
  auto pool = PoolArg(info, 0);
  GemmCall call = ParseGemm(info, 1, "gemmF32Async");
  GemmArgs g = call.g;
  return StartKernel(info.Env(), [g, pool] { GemmF32(g, *pool); }, call.keep);
}

Napi::Value JsOpenBlasGemm(const Napi::CallbackInfo& info) {
  GemmCall call = ParseGemm(info, 0, "openblasGemm");
  int64_t threads = ArgIndex(info, 1, "threads");
  if (threads < 1 || threads > 1024) throw Napi::RangeError::New(info.Env(), "openblasGemm: threads must be in 1..1024");
  OpenBlasGemm(call.g, static_cast<int>(threads));
  return info.Env().Undefined();
}

Napi::Value JsMatmulQ(const Napi::CallbackInfo& info) {
  auto pool = PoolArg(info, 0);
  MatmulCall call = ParseMatmul(info, 1, "matmulQ");
  MatmulQ(call.q, *pool);
  return info.Env().Undefined();
}

Napi::Value JsMatmulQAsync(const Napi::CallbackInfo& info) {
  auto pool = PoolArg(info, 0);
  MatmulCall call = ParseMatmul(info, 1, "matmulQAsync");
  ResolveIsa(call.q.isa);  // fail synchronously on an unsupported path
  QuantMatmulArgs q = call.q;
  return StartKernel(info.Env(), [q, pool] { MatmulQ(q, *pool); }, call.keep);
}

// matmulQShared(pool, [opts, ...]): the parts read one X (MatmulQShared); each y as matmulQ's.
Napi::Value JsMatmulQShared(const Napi::CallbackInfo& info) {
  auto pool = PoolArg(info, 0);
  if (info.Length() < 2 || !info[1].IsArray())
    throw Napi::TypeError::New(info.Env(), "matmulQShared: expected an array of matmulQ options as argument 2");
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<QuantMatmulArgs> parts;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const std::string op = "matmulQShared: part " + std::to_string(i);
    parts.push_back(ParseMatmul(Opts(info.Env(), list.Get(i), op), op).q);
  }
  MatmulQShared(parts.data(), parts.size(), *pool);
  return info.Env().Undefined();
}

// timeMatmulQ(pool, opts, calls) → seconds per call: `calls` back-to-back MatmulQ calls run by
// the pool's worker 0 (as a model step runs them), timed there. From JS each call costs ~10 µs,
// as long as the kernel itself on a matrix that fits in L2, where a kernel's compute shows.
Napi::Value JsTimeMatmulQ(const Napi::CallbackInfo& info) {
  auto pool = PoolArg(info, 0);
  MatmulCall call = ParseMatmul(info, 1, "timeMatmulQ");
  const int64_t calls = ArgIndex(info, 2, "timeMatmulQ: calls");
  if (calls < 1 || calls > 1'000'000) throw UserError("timeMatmulQ: calls must be 1-1000000, not " + std::to_string(calls));
  ResolveIsa(call.q.isa);  // an unsupported path fails here, not on the worker
  double seconds = 0;
  pool->RunStep([&] {
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < calls; ++i) MatmulQ(call.q, *pool);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  return Napi::Number::New(info.Env(), seconds / static_cast<double>(calls));
}

WeightType TypeArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(),
                               "weight type must be a string: 'f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q5_k' or 'q6_k'");
  return ParseWeightType(info[i].As<Napi::String>().Utf8Value());
}

// quantize(type, x: Float32Array, rows, k, path?) → Uint8Array of rows × rowBytes(type, k).
Napi::Value JsQuantize(const Napi::CallbackInfo& info) {
  WeightType t = TypeArg(info, 0);
  if (info.Length() < 2) throw Napi::TypeError::New(info.Env(), "quantize: x must be a Float32Array");
  auto x = F32Arg(info[1], "quantize: x");
  int64_t rows = ArgIndex(info, 2, "quantize: rows"), k = ArgIndex(info, 3, "quantize: k");
  const int64_t rb = RowBytes(t, k);
  Bounded(x, 0, Mul(rows, k), "quantize: x", std::to_string(rows) + "×" + std::to_string(k) + " values");
  // Optional path: 'scalar' forces the scalar reference quantizer (tests compare the two).
  const bool allowSimd = !(info.Length() > 4 && info[4].IsString() && info[4].As<Napi::String>().Utf8Value() == "scalar");
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(info.Env(), static_cast<size_t>(rows * rb));
  // Rows are independent: large inputs (the K types' reference quantizers cost ~80 ns a value,
  // and test suites write many models) are split over the machine's cpus, for the same bytes.
  uint8_t* dst = static_cast<uint8_t*>(out.Data());
  const int64_t threads =
      std::min<int64_t>({static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency())), 8, rows,
                         Mul(rows, k) / 65536 + 1});
  std::vector<std::thread> helpers;
  const int64_t per = (rows + threads - 1) / threads;
  for (int64_t r0 = per; r0 < rows; r0 += per) {
    const int64_t n = std::min(per, rows - r0);
    helpers.emplace_back([=] { QuantizeRows(t, x.data + r0 * k, n, k, k, dst + r0 * rb, allowSimd); });
  }
  QuantizeRows(t, x.data, std::min(per, rows), k, k, dst, allowSimd);
  for (auto& h : helpers) h.join();
  return Napi::Uint8Array::New(info.Env(), static_cast<size_t>(rows * rb), out, 0);
}

// interleaveRows8(type, w, rows, k) → the same rows in the rows8 layout (a new buffer), for
// matmulQ({rows8: true}); rows8Runs(type, path?) → whether that path's kernels run it.
Napi::Value JsInterleaveRows8(const Napi::CallbackInfo& info) {
  WeightType t = TypeArg(info, 0);
  if (info.Length() < 2) throw Napi::TypeError::New(info.Env(), "interleaveRows8: w must be a Uint8Array");
  auto w = BytesArg(info[1], "interleaveRows8: w");
  int64_t rows = ArgIndex(info, 2, "interleaveRows8: rows"), k = ArgIndex(info, 3, "interleaveRows8: k");
  const int64_t rb = RowBytes(t, k);
  Bounded(w, 0, Mul(rows, rb), "interleaveRows8: w", std::to_string(rows) + " rows of " + std::to_string(rb) + " bytes");
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(info.Env(), static_cast<size_t>(rows * rb));
  InterleaveRows8(t, w.data, rb, rows, k, static_cast<uint8_t*>(out.Data()));
  return Napi::Uint8Array::New(info.Env(), static_cast<size_t>(rows * rb), out, 0);
}
Napi::Value JsRows8Runs(const Napi::CallbackInfo& info) {
  WeightType t = TypeArg(info, 0);
  const Isa isa = info.Length() > 1 && info[1].IsString() ? ParseIsa(info[1].As<Napi::String>().Utf8Value()) : Isa::Auto;
  return Napi::Boolean::New(info.Env(), Rows8Runs(t, isa));
}

// quantizeQ8K(x: Float32Array, rows, k, path?) → rows × k/256 Q8_K blocks (292 bytes: f32 d, 256
// int8, 16 int16 bsums): the activations the K-type matmuls run on, for tests and inspection.
// path 'scalar' forces the scalar quantizer (the SIMD one gives the same bytes).
Napi::Value JsQuantizeQ8K(const Napi::CallbackInfo& info) {
  if (info.Length() < 1) throw Napi::TypeError::New(info.Env(), "quantizeQ8K: x must be a Float32Array");
  auto x = F32Arg(info[0], "quantizeQ8K: x");
  int64_t rows = ArgIndex(info, 1, "quantizeQ8K: rows"), k = ArgIndex(info, 2, "quantizeQ8K: k");
  if (k % kQKBlock != 0)
    throw UserError("quantizeQ8K: k must be a multiple of 256 (one Q8_K block), got k=" + std::to_string(k));
  Bounded(x, 0, Mul(rows, k), "quantizeQ8K: x", std::to_string(rows) + "×" + std::to_string(k) + " values");
  const bool allowSimd = !(info.Length() > 3 && info[3].IsString() && info[3].As<Napi::String>().Utf8Value() == "scalar");
  const size_t bytes = static_cast<size_t>(rows * (k / kQKBlock) * int64_t(sizeof(BlockQ8_K)));
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(info.Env(), bytes);
  for (int64_t r = 0; r < rows; ++r)
    QuantizeRowQ8_K(x.data + r * k, k, static_cast<BlockQ8_K*>(out.Data()) + r * (k / kQKBlock), allowSimd);
  return Napi::Uint8Array::New(info.Env(), bytes, out, 0);
}

// dequantize(type, w: bytes, rows, k) → Float32Array of rows × k.
Napi::Value JsDequantize(const Napi::CallbackInfo& info) {
  WeightType t = TypeArg(info, 0);
  if (info.Length() < 2) throw Napi::TypeError::New(info.Env(), "dequantize: w must be a Uint8Array");
  auto w = BytesArg(info[1], "dequantize: w");
  int64_t rows = ArgIndex(info, 2, "dequantize: rows"), k = ArgIndex(info, 3, "dequantize: k");
  const int64_t rb = RowBytes(t, k);
  Bounded(w, 0, Mul(rows, rb), "dequantize: w (bytes)",
          std::to_string(rows) + " rows of " + std::to_string(rb) + " bytes of " + WeightTypeName(t));
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(rows * k));
  DequantizeRows(t, w.data, rows, k, out.Data(), k);
  return out;
}

Napi::Value JsRowBytes(const Napi::CallbackInfo& info) {
  WeightType t = TypeArg(info, 0);
  return Napi::Number::New(info.Env(), static_cast<double>(RowBytes(t, ArgIndex(info, 1, "k"))));
}

// ggmlTypeId(type) → the GGUF tensor type id; weightTypeFromGgml(id) → the type name.
Napi::Value JsGgmlTypeId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), GgmlTypeId(TypeArg(info, 0)));
}
Napi::Value JsWeightTypeFromGgml(const Napi::CallbackInfo& info) {
  const int64_t id = ArgIndex(info, 0, "weightTypeFromGgml: id");
  if (id > 1 << 20) throw UserError("ggml type id " + std::to_string(id) + " is not supported");
  return Napi::String::New(info.Env(), WeightTypeName(WeightTypeFromGgml(static_cast<int>(id))));
}

Napi::Value JsKernelPaths(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  Napi::Array supported = Napi::Array::New(info.Env());
  uint32_t n = 0;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni, Isa::Avx512Vbmi, Isa::Amx})
    if (IsaSupported(i)) supported.Set(n++, IsaName(i));
  o.Set("supported", supported);
  o.Set("auto", IsaName(ResolveIsa(Isa::Auto)));
  return o;
}

// readBytes(pool, buffer, offset?, length?) → checksum; the STREAM-like read reference.
Napi::Value JsReadBytes(const Napi::CallbackInfo& info) {
  auto pool = PoolArg(info, 0);
  if (info.Length() < 2) throw Napi::TypeError::New(info.Env(), "readBytes: expected a buffer");
  auto b = BytesArg(info[1], "readBytes: buffer");
  int64_t off = info.Length() > 2 && !info[2].IsUndefined() ? ArgIndex(info, 2, "readBytes: offset") : 0;
  int64_t len = info.Length() > 3 && !info[3].IsUndefined() ? ArgIndex(info, 3, "readBytes: length") : b.length - std::min(off, b.length);
  const uint8_t* p = Bounded(b, off, len, "readBytes: buffer", std::to_string(len) + " bytes");
  return Napi::Number::New(info.Env(), static_cast<double>(ReadBytes(p, static_cast<size_t>(len), *pool)));
}

// argmaxF32(x, scalar?) → the index of the largest value, or -1 - i where x[i] is NaN or +Infinity.
Napi::Value JsArgmaxF32(const Napi::CallbackInfo& info) {
  if (info.Length() < 1) throw Napi::TypeError::New(info.Env(), "argmaxF32: x must be a Float32Array");
  auto x = F32Arg(info[0], "argmaxF32: x");
  if (x.length < 1) throw Napi::RangeError::New(info.Env(), "argmaxF32: x is empty");
  const bool scalar = info.Length() > 1 && info[1].ToBoolean();
  int64_t bad = -1;
  const int64_t r = (scalar ? ArgmaxF32Scalar : ArgmaxF32)(x.data, x.length, &bad);
  return Napi::Number::New(info.Env(), static_cast<double>(bad >= 0 ? -1 - bad : r));
}

// gaussianFillF32(x, mean, std, state: Float64Array [s, hasSpare, spare]): fills x with
// mean + std · N(0, 1) and leaves state where the sequence stopped (model/synth.ts).
Napi::Value JsGaussianFillF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "gaussianFillF32: expected (x, mean, std, state)");
  auto x = F32Arg(info[0], "gaussianFillF32: x");
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[3].As<Napi::Float64Array>().ElementLength() != 3)
    throw Napi::TypeError::New(env, "gaussianFillF32: state must be a Float64Array of 3");
  auto st = info[3].As<Napi::Float64Array>();
  const double s = st[0];
  if (!(s >= 1 && s <= 4294967295.0) || s != std::floor(s))
    throw Napi::RangeError::New(env, "gaussianFillF32: state[0] must be an integer in 1..2^32-1");
  GaussianState g{static_cast<uint32_t>(s), st[1] != 0, st[2]};
  GaussianFill(x.data, x.length, info[1].As<Napi::Number>().DoubleValue(), info[2].As<Napi::Number>().DoubleValue(), &g);
  st[0] = g.s;
  st[1] = g.has_spare ? 1 : 0;
  st[2] = g.spare;
  return env.Undefined();
}

// topKF32(x, k, ids: Int32Array, scalar?) → -1, the k largest's indices in ids[0..k) ascending;
// or i where x[i] is NaN or +Infinity.
Napi::Value JsTopKF32(const Napi::CallbackInfo& info) {
  if (info.Length() < 3) throw Napi::TypeError::New(info.Env(), "topKF32: expected (x, k, ids)");
  auto x = F32Arg(info[0], "topKF32: x");
  const int64_t k = ArgIndex(info, 1, "topKF32: k");
  if (k < 1 || k > x.length)
    throw Napi::RangeError::New(info.Env(), "topKF32: k must be within 1.." + std::to_string(x.length));
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "topKF32: ids must be an Int32Array");
  auto ids = info[2].As<Napi::Int32Array>();
  if (static_cast<int64_t>(ids.ElementLength()) < k)
    throw Napi::RangeError::New(info.Env(), "topKF32: ids holds fewer than k entries");
  const bool scalar = info.Length() > 3 && info[3].ToBoolean();
  int64_t bad = -1;
  (scalar ? TopKF32Scalar : TopKF32)(x.data, x.length, k, ids.Data(), &bad);
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

void InitKernels(Napi::Env env, Napi::Object exports) {
  REDBLUE_EXPORT(exports, "gemmF32", JsGemmF32);
  REDBLUE_EXPORT(exports, "gemmF32Async", JsGemmF32Async);
  REDBLUE_EXPORT(exports, "openblasGemm", JsOpenBlasGemm);
  REDBLUE_EXPORT(exports, "matmulQ", JsMatmulQ);
  REDBLUE_EXPORT(exports, "matmulQAsync", JsMatmulQAsync);
  REDBLUE_EXPORT(exports, "matmulQShared", JsMatmulQShared);
  REDBLUE_EXPORT(exports, "timeMatmulQ", JsTimeMatmulQ);
  REDBLUE_EXPORT(exports, "quantize", JsQuantize);
  REDBLUE_EXPORT(exports, "dequantize", JsDequantize);
  REDBLUE_EXPORT(exports, "quantizeQ8K", JsQuantizeQ8K);
  REDBLUE_EXPORT(exports, "interleaveRows8", JsInterleaveRows8);
  REDBLUE_EXPORT(exports, "rows8Runs", JsRows8Runs);
  REDBLUE_EXPORT(exports, "rowBytes", JsRowBytes);
  REDBLUE_EXPORT(exports, "kernelPaths", JsKernelPaths);
  REDBLUE_EXPORT(exports, "ggmlTypeId", JsGgmlTypeId);
  REDBLUE_EXPORT(exports, "weightTypeFromGgml", JsWeightTypeFromGgml);
  REDBLUE_EXPORT(exports, "readBytes", JsReadBytes);
  REDBLUE_EXPORT(exports, "argmaxF32", JsArgmaxF32);
  REDBLUE_EXPORT(exports, "gaussianFillF32", JsGaussianFillF32);
  REDBLUE_EXPORT(exports, "topKF32", JsTopKF32);
}

}  // namespace
REDBLUE_MODULE(InitKernels);
}  // namespace redblue
