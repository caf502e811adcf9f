// JS bindings of the executor steps: whole steps (compute and exchange) run natively and
// settle one Promise, so the event loop is never in the per-operation path.
#include <napi.h>

#include <memory>

#include "core/async_task.h"
#include "core/module_registry.h"
#include "core/napi_util.h"
#include "core/thread_pool.h"
#include "bindings/collective_js.h"
#include "executor/collective.h"
#include "executor/gemm_step.h"
#include "executor/layer_stack.h"

namespace redblue {
namespace {

Napi::Object Obj(const Napi::Value& v, const char* what) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an object");
  return v.As<Napi::Object>();
}
double Num(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be a non-negative integer");
  return d;
}
int64_t Int(const Napi::Object& o, const char* key) { return static_cast<int64_t>(Num(o, key)); }

Napi::ArrayBuffer Buf(const Napi::Value& v, const char* what) {
  if (!v.IsArrayBuffer()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an ArrayBuffer");
  return v.As<Napi::ArrayBuffer>();
}

std::vector<StepBrick> Bricks(const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), "bricks must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<StepBrick> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Object b = Obj(a.Get(i), "brick");
    StepBrick sb{Int(b, "m0"), Int(b, "m1"), Int(b, "n0"), Int(b, "n1"), Int(b, "k0"), Int(b, "k1"),
                 static_cast<uint64_t>(Int(b, "partialOffset"))};
    if (b.Has("doneIndex") && !b.Get("doneIndex").IsUndefined()) sb.doneIndex = Int(b, "doneIndex");
    out.push_back(sb);
  }
  return out;
}

// fillUniform(buffer, byteOffset, count, seed, stream): the counter-based values every rank
// agrees on (seeded inputs and weights).
Napi::Value JsFillUniform(const Napi::CallbackInfo& info) {
  Napi::ArrayBuffer ab = Buf(info[0], "buffer");
  int64_t off = ArgIndex(info, 1, "byteOffset");
  int64_t count = ArgIndex(info, 2, "count");
  int64_t seed = ArgIndex(info, 3, "seed");
  int64_t stream = ArgIndex(info, 4, "stream");
  if (off % 4 != 0) throw UserError("byteOffset must be a multiple of 4");
  if (static_cast<uint64_t>(off) + static_cast<uint64_t>(count) * 4 > ReachableBytes(ab))
    throw UserError("fillUniform: " + std::to_string(count) + " floats at byte " + std::to_string(off) +
                    " do not fit the " + std::to_string(ReachableBytes(ab)) + "-byte buffer");
  FillUniform(reinterpret_cast<float*>(static_cast<char*>(ab.Data()) + off), count, static_cast<uint64_t>(seed),
              static_cast<uint64_t>(stream), 0);
  return info.Env().Undefined();
}

Napi::Object Timings(Napi::Env env, const GemmStepTimings& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("computeSeconds", t.computeSeconds);
  o.Set("exchangeSeconds", t.exchangeSeconds);
  o.Set("totalSeconds", t.totalSeconds);
  o.Set("bytesReceived", static_cast<double>(t.bytesReceived));
  o.Set("steps", static_cast<double>(t.steps));
  o.Set("cChunks", static_cast<double>(t.cChunks));
  o.Set("blocksFetched", static_cast<double>(t.blocksFetched));
  o.Set("bytesFetched", static_cast<double>(t.bytesFetched));
  o.Set("localPeakBytes", static_cast<double>(t.localPeakBytes));
  o.Set("localNode", t.localNode);
  return o;
}

// gemmStep(pool, communicator, staging, args) → Promise<timings>
Napi::Value JsGemmStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto pool = ThreadPoolFromJs(info[0]);
  auto peers = CollectiveFromJs(info[1]);
  Napi::ArrayBuffer staging = Buf(info[2], "staging");
  Napi::Object o = Obj(info[3], "args");
  auto args = std::make_shared<GemmStepArgs>();
  args->staging = static_cast<char*>(staging.Data());
  args->stagingBytes = ReachableBytes(staging);
  args->m = Int(o, "m");
  args->n = Int(o, "n");
  args->k = Int(o, "k");
  args->aOffset = Int(o, "aOffset");
  args->bOffset = Int(o, "bOffset");
  args->cOffset = Int(o, "cOffset");
  args->mine = Bricks(o.Get("mine"));
  args->all = Bricks(o.Get("all"));
  args->cRow0 = Int(o, "cRow0");
  args->cRow1 = Int(o, "cRow1");
  args->node = static_cast<int>(Int(o, "node"));
  if (o.Has("doneCount") && !o.Get("doneCount").IsUndefined()) {
    args->doneOffset = static_cast<uint64_t>(Int(o, "doneOffset"));
    args->doneCount = Int(o, "doneCount");
  }
  CheckGemmStep(*args);  // bad input is a synchronous error
  auto out = std::make_shared<GemmStepTimings>();
  return AsyncTask::Start(
      env, "redblue.gemmStep", [=] { pool->RunStep([&] { *out = GemmStep(*args, *pool, *peers); }); },
      [=](Napi::Env e) -> Napi::Value { return Timings(e, *out); }, {staging, info[0], info[1]});
}

class JsLayerStack : public Napi::ObjectWrap<JsLayerStack> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LayerStack",
                       {InstanceMethod<&JsLayerStack::AddLayers>("addLayers"),
                        InstanceMethod<&JsLayerStack::Run>("run"),
                        InstanceMethod<&JsLayerStack::Release>("release"),
                        InstanceAccessor<&JsLayerStack::WeightBytes>("weightBytes"),
                        InstanceAccessor<&JsLayerStack::LayersMade>("layersMade"),
                        InstanceAccessor<&JsLayerStack::Backing>("backing")});
  }
  explicit JsLayerStack(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsLayerStack>(info) {
    Napi::Object o = Obj(info[0], "config");
    LayerStackConfig c;
    Napi::Value d = o.Get("dtype");
    if (!d.IsString()) throw Napi::TypeError::New(info.Env(), "dtype must be a string");
    c.dtype = d.As<Napi::String>().Utf8Value();
    c.n = Int(o, "n");
    c.k = Int(o, "k");
    c.layers = static_cast<int>(Int(o, "layers"));
    c.seed = static_cast<uint64_t>(Int(o, "seed"));
    c.mirror = o.Get("mirror").ToBoolean();
    c.rowLo = Int(o, "rowLo");
    c.rowHi = Int(o, "rowHi");
    c.node = static_cast<int>(Int(o, "node"));
    try {
      stack_ = std::make_shared<LayerStack>(c);
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }

 private:
  std::shared_ptr<LayerStack> Alive(Napi::Env env) {
    if (!stack_) throw Napi::Error::New(env, "this LayerStack was released");
    return stack_;
  }
  // addLayers(pool, count, source?, sourceOffset?) → Promise<layersMade>. With `source` (an
  // ArrayBuffer holding whole layers as n×k f32, layer after layer from sourceOffset, starting at
  // the next layer to make) the weights are taken from it, else made from the seed.
  Napi::Value AddLayers(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& i) -> Napi::Value {
      auto stack = Alive(i.Env());
      auto pool = ThreadPoolFromJs(i[0]);
      int64_t count = ArgIndex(i, 1, "count");
      const float* src = nullptr;
      std::vector<Napi::Value> keep{i[0], i.This()};
      if (i.Length() > 2 && i[2].IsArrayBuffer()) {
        Napi::ArrayBuffer ab = i[2].As<Napi::ArrayBuffer>();
        int64_t off = ArgIndex(i, 3, "sourceOffset");
        const LayerStackConfig& c = stack->config();
        uint64_t need = static_cast<uint64_t>(off) + 4ull * count * c.n * c.k;
        if (off % 4 || need > ReachableBytes(ab))
          throw UserError("addLayers: " + std::to_string(count) + " layers of " + std::to_string(c.n) + "×" +
                          std::to_string(c.k) + " f32 do not fit the source area");
        src = reinterpret_cast<const float*>(static_cast<char*>(ab.Data()) + off);
        keep.push_back(ab);
      }
      return AsyncTask::Start(
          i.Env(), "redblue.addLayers",
          [=] {
            const LayerStackConfig& c = stack->config();
            for (int64_t l = 0; l < count; ++l) stack->AddLayer(*pool, src ? src + l * c.n * c.k : nullptr);
          },
          [=](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, stack->layersMade()); }, keep);
    });
  }
  // run(pool, communicator, { m, iters, seed, rowsPerRank, out?: ArrayBuffer, yOffset, xOffset })
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& i) -> Napi::Value {
      auto stack = Alive(i.Env());
      auto pool = ThreadPoolFromJs(i[0]);
      auto peers = CollectiveFromJs(i[1]);
      Napi::Object o = Obj(i[2], "options");
      int64_t m = Int(o, "m");
      int iters = static_cast<int>(Int(o, "iters"));
      uint64_t seed = static_cast<uint64_t>(Int(o, "seed"));
      Napi::Value rv = o.Get("rowsPerRank");
      if (!rv.IsArray()) throw Napi::TypeError::New(i.Env(), "rowsPerRank must be an array");
      std::vector<int64_t> rows;
      for (uint32_t j = 0; j < rv.As<Napi::Array>().Length(); ++j)
        rows.push_back(static_cast<int64_t>(rv.As<Napi::Array>().Get(j).As<Napi::Number>().Int64Value()));
      bool balance = o.Get("balance").ToBoolean();
      float* yOut = nullptr;
      float* xOut = nullptr;
      std::vector<Napi::Value> keep{i[0], i[1], i.This()};
      Napi::Value ov = o.Get("out");
      if (ov.IsArrayBuffer()) {
        Napi::ArrayBuffer out = ov.As<Napi::ArrayBuffer>();
        uint64_t yOff = static_cast<uint64_t>(Int(o, "yOffset")), xOff = static_cast<uint64_t>(Int(o, "xOffset"));
        const LayerStackConfig& c = stack->config();
        uint64_t yBytes = 4ull * c.layers * m * c.n, xBytes = 4ull * m * c.k;
        const uint64_t outBytes = ReachableBytes(out);
        if (yOff % 4 || xOff % 4 || yOff + yBytes > outBytes || xOff + xBytes > outBytes)
          throw UserError("run: the output area is too small for Y and X of the last pass");
        yOut = reinterpret_cast<float*>(static_cast<char*>(out.Data()) + yOff);
        xOut = reinterpret_cast<float*>(static_cast<char*>(out.Data()) + xOff);
        keep.push_back(out);
      }
      auto result = std::make_shared<PassTimings>();
      return AsyncTask::Start(
          i.Env(), "redblue.layerRun",
          [=] { pool->RunStep([&] { *result = stack->Run(m, iters, seed, *pool, *peers, rows, yOut, xOut, balance); }); },
          [=](Napi::Env e) -> Napi::Value {
            Napi::Object r = Napi::Object::New(e);
            r.Set("seconds", result->seconds);
            r.Set("computeSeconds", result->computeSeconds);
            r.Set("waitSeconds", result->waitSeconds);
            r.Set("exchangeSeconds", result->exchangeSeconds);
            r.Set("passes", result->passes);
            Napi::Array split = Napi::Array::New(e, result->rows.size());
            for (uint32_t j = 0; j < result->rows.size(); ++j) split.Set(j, static_cast<double>(result->rows[j]));
            r.Set("rows", split);
            return r;
          },
          keep);
    });
  }
  Napi::Value Release(const Napi::CallbackInfo& info) {
    stack_.reset();
    return info.Env().Undefined();
  }
  Napi::Value WeightBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), stack_ ? static_cast<double>(stack_->weightBytes()) : 0);
  }
  Napi::Value LayersMade(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), stack_ ? stack_->layersMade() : 0);
  }
  Napi::Value Backing(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), stack_ ? stack_->backing() : "released");
  }
  std::shared_ptr<LayerStack> stack_;
};

void InitExecutor(Napi::Env env, Napi::Object exports) {
  REDBLUE_EXPORT(exports, "fillUniform", JsFillUniform);
  REDBLUE_EXPORT(exports, "gemmStep", JsGemmStep);
  exports.Set("LayerStack", JsLayerStack::Define(env));
}

}  // namespace
REDBLUE_MODULE(InitExecutor);
}  // namespace redblue
