// JS face of a rank's transformer shard (native/src/model): `new ModelShard(cfg)` checks the
// configuration against the tensor table, `load` copies the rank's slices off the event loop,
// `forward` runs a whole step (all layers and their collectives) natively and settles one
// Promise. Types: native/model.ts.
#include <napi.h>

#include <algorithm>
#include <memory>
#include <tuple>
#include <vector>

#include "core/async_task.h"
#include "core/errors.h"
#include "core/module_registry.h"
#include "core/napi_util.h"
#include "core/thread_pool.h"
#include "bindings/collective_js.h"
#include "executor/collective.h"
#include "model/attention.h"
#include "model/model_shard.h"
#include "model/step_doorbell.h"

namespace redblue {
namespace {

Napi::Object Obj(const Napi::Value& v, const char* what) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an object");
  return v.As<Napi::Object>();
}
double Number(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
int64_t Int(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9.007199254740991e15)
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be a non-negative integer");
  return static_cast<int64_t>(d);
}
int64_t Int(const Napi::Object& o, const char* key) { return Int(o.Get(key), key); }
std::string Str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}
Napi::Array Arr(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array");
  return v.As<Napi::Array>();
}
std::pair<int64_t, int64_t> Range(const Napi::Object& o, const char* key) {
  Napi::Array a = Arr(o.Get(key), key);
  if (a.Length() != 2) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be [lo, hi]");
  return {Int(a.Get(0u), key), Int(a.Get(1u), key)};
}

// An Int32Array of token ids, copied (the step may outlive the JS array's view).
std::shared_ptr<std::vector<int32_t>> TokensArg(const Napi::Value& v) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(v.Env(), "tokens must be an Int32Array");
  Napi::Int32Array ta = v.As<Napi::Int32Array>();
  return std::make_shared<std::vector<int32_t>>(ta.Data(), ta.Data() + ta.ElementLength());
}

// { "shm-flat": n, … }: the algorithms that ran, those that did not left out.
Napi::Object TallyObject(Napi::Env e, const AllReduceTally& t) {
  Napi::Object o = Napi::Object::New(e);
  for (int i = 0; i < static_cast<int>(AllReduceAlgo::kCount); ++i)
    if (t.runs[i]) o.Set(AllReduceAlgoName(i), static_cast<double>(t.runs[i]));
  return o;
}

// A step's result for JS: its times, its all-reduces, and its logits when given.
Napi::Object StepReply(Napi::Env e, const std::vector<float>* logits, const ModelForwardTimings& t) {
  Napi::Object r = Napi::Object::New(e);
  if (logits) {
    Napi::Float32Array a = Napi::Float32Array::New(e, logits->size());
    std::copy(logits->begin(), logits->end(), a.Data());
    r.Set("logits", a);
  }
  r.Set("computeSeconds", t.computeSeconds);
  r.Set("exchangeSeconds", t.exchangeSeconds);
  r.Set("allReduces", TallyObject(e, t.allReduces));
  r.Set("seconds", t.seconds);
  return r;
}

// [{slot, pos, count, logits, from?, hidden?}] → SeqRuns.
std::vector<SeqRun> RunsFromJs(const Napi::Value& v) {
  Napi::Array runs = Arr(v, "runs");
  std::vector<SeqRun> out;
  for (uint32_t k = 0; k < runs.Length(); ++k) {
    Napi::Object r = Obj(runs.Get(k), "run");
    SeqRun run;
    run.slot = static_cast<int>(Int(r, "slot"));
    run.pos = Int(r, "pos");
    run.count = Int(r, "count");
    // true / false: the last row or none (decode steps); a number: that many last rows.
    const Napi::Value l = r.Get("logits");
    run.logits = l.IsNumber() ? l.As<Napi::Number>().Int64Value() : (l.ToBoolean() ? 1 : 0);
    // from: the slot whose first pos positions this one takes before the step (absent: none).
    const Napi::Value from = r.Get("from");
    if (!from.IsUndefined() && !from.IsNull()) run.from = static_cast<int>(Int(r, "from"));
    // hidden: its rows are the final hidden states (embeddings), not logits.
    run.hidden = r.Get("hidden").ToBoolean();
    out.push_back(run);
  }
  return out;
}

ModelConfig ConfigFromJs(const Napi::Object& o) {
  ModelConfig c;
  c.path = Str(o, "path");
  c.node = static_cast<int>(Int(o, "node"));
  c.arch = ParseModelArch(Str(o, "arch"));
  c.qkNorm = c.arch == ModelArch::Qwen3;
  c.qkvBias = c.arch == ModelArch::Qwen2;
  c.nLayer = static_cast<int>(Int(o, "nLayer"));
  c.nEmbd = Int(o, "nEmbd");
  c.nHead = Int(o, "nHead");
  c.nHeadKv = Int(o, "nHeadKv");
  c.headDim = Int(o, "headDim");
  c.nFf = Int(o, "nFf");
  c.nVocab = Int(o, "nVocab");
  c.nCtx = Int(o, "nCtx");
  c.normEps = static_cast<float>(Number(o, "normEps"));
  c.ropeBase = static_cast<float>(Number(o, "ropeBase"));
  c.ropeScale = static_cast<float>(Number(o, "ropeScale"));
  c.ropeNeox = o.Get("ropeNeox").ToBoolean();
  if (o.Has("kernelPath") && !o.Get("kernelPath").IsUndefined()) c.isa = ResolveIsa(ParseIsa(Str(o, "kernelPath")));
  if (o.Has("slots") && !o.Get("slots").IsUndefined()) c.nSlots = static_cast<int>(Int(o, "slots"));
  c.batchInvariant = o.Get("batchInvariant").ToBoolean();
  if (o.Has("invariantTokens") && !o.Get("invariantTokens").IsUndefined())
    c.invariantTokens = static_cast<int>(Int(o, "invariantTokens"));
  c.mirrorEmbeddings = o.Get("mirrorEmbeddings").ToBoolean();
  Napi::Array ts = Arr(o.Get("tensors"), "tensors");
  for (uint32_t i = 0; i < ts.Length(); ++i) {
    Napi::Object t = Obj(ts.Get(i), "tensor");
    ModelTensorRef r;
    r.name = Str(t, "name");
    r.ggmlType = static_cast<int>(Int(t, "type"));
    Napi::Array dims = Arr(t.Get("dims"), "dims");
    for (uint32_t j = 0; j < dims.Length(); ++j) r.ne.push_back(Int(dims.Get(j), "dims"));
    r.offset = static_cast<uint64_t>(Int(t, "offset"));
    c.tensors.push_back(std::move(r));
  }
  Napi::Object s = Obj(o.Get("split"), "split");
  c.split.rank = static_cast<int>(Int(s, "rank"));
  c.split.ranks = static_cast<int>(Int(s, "ranks"));
  std::tie(c.split.kvLo, c.split.kvHi) = Range(s, "kvHeads");
  std::tie(c.split.ffLo, c.split.ffHi) = Range(s, "ff");
  std::tie(c.split.vocabLo, c.split.vocabHi) = Range(s, "vocab");
  Napi::Array per = Arr(s.Get("vocabPerRank"), "vocabPerRank");
  for (uint32_t j = 0; j < per.Length(); ++j) c.split.vocabPerRank.push_back(Int(per.Get(j), "vocabPerRank"));
  return c;
}

class JsModelShard : public Napi::ObjectWrap<JsModelShard> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ModelShard",
                       {InstanceMethod<&JsModelShard::Load>("load"), InstanceMethod<&JsModelShard::Forward>("forward"),
                        InstanceMethod<&JsModelShard::ForwardRuns>("forwardRuns"),
                        InstanceMethod<&JsModelShard::StartStepLoop>("startStepLoop"),
                        InstanceMethod<&JsModelShard::StopStepLoop>("stopStepLoop"),
                        InstanceMethod<&JsModelShard::Release>("release")});
  }
  explicit JsModelShard(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsModelShard>(info) {
    try {
      shard_ = std::make_shared<ModelShard>(ConfigFromJs(Obj(info[0], "config")));
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }

 private:
  std::shared_ptr<ModelShard> Alive(Napi::Env env) {
    if (!shard_) throw Napi::Error::New(env, "this ModelShard was released");
    return shard_;
  }
  // load(pool, onProgress?) → Promise<{ weightBytes, kvBytes, backing, seconds }>
  Napi::Value Load(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& i) -> Napi::Value {
      auto shard = Alive(i.Env());
      auto pool = ThreadPoolFromJs(i[0]);
      const bool report = i.Length() > 1 && i[1].IsFunction();
      Napi::ThreadSafeFunction tsfn;
      if (report) tsfn = Napi::ThreadSafeFunction::New(i.Env(), i[1].As<Napi::Function>(), "redblue.modelProgress", 0, 1);
      auto out = std::make_shared<ModelLoadInfo>();
      return AsyncTask::Start(
          i.Env(), "redblue.modelLoad",
          [=]() mutable {
            struct Done {  // the progress function is released however the load ends
              Napi::ThreadSafeFunction& f;
              bool on;
              ~Done() {
                if (on) f.Release();
              }
            } done{tsfn, report};
            std::function<void(uint64_t, uint64_t)> progress;
            if (report)
              progress = [&tsfn](uint64_t d, uint64_t t) {
                tsfn.NonBlockingCall([d, t](Napi::Env e, Napi::Function f) {
                  try {
                    f.Call({Napi::Number::New(e, static_cast<double>(d)), Napi::Number::New(e, static_cast<double>(t))});
                  } catch (const Napi::Error&) {
                    // A throwing progress callback must not abort the load (nor the process).
                  }
                });
              };
            *out = shard->Load(*pool, progress);
          },
          [=](Napi::Env e) -> Napi::Value {
            Napi::Object r = Napi::Object::New(e);
            r.Set("weightBytes", static_cast<double>(out->weightBytes));
            r.Set("kvBytes", static_cast<double>(out->kvBytes));
            r.Set("backing", out->backing);
            r.Set("seconds", out->seconds);
            return r;
          },
          {i[0], i.This()});
    });
  }
  // forward(pool, peers, tokens: Int32Array, pos, 'last' | 'all' | 'none') → Promise<result>
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& i) -> Napi::Value {
      auto shard = Alive(i.Env());
      auto pool = ThreadPoolFromJs(i[0]);
      auto peers = CollectiveFromJs(i[1]);
      auto tokens = TokensArg(i[2]);
      int64_t pos = Int(i[3], "pos");
      if (!i[4].IsString()) throw Napi::TypeError::New(i.Env(), "logits must be 'last', 'all' or 'none'");
      std::string m = i[4].As<Napi::String>().Utf8Value();
      LogitsMode mode = m == "last" ? LogitsMode::Last : m == "all" ? LogitsMode::All : LogitsMode::None;
      if (mode == LogitsMode::None && m != "none")
        throw Napi::TypeError::New(i.Env(), "logits must be 'last', 'all' or 'none', got '" + m + "'");
      const int64_t rows = mode == LogitsMode::All ? static_cast<int64_t>(tokens->size()) : mode == LogitsMode::Last ? 1 : 0;
      const size_t want = static_cast<size_t>(rows * shard->config().nVocab);
      // Optional Float32Array to write the logits into (kept alive below until the step ends).
      float* into = nullptr;
      if (i.Length() > 5 && !i[5].IsUndefined()) {
        if (!i[5].IsTypedArray() || i[5].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
          throw Napi::TypeError::New(i.Env(), "the logits target must be a Float32Array");
        Napi::Float32Array t = i[5].As<Napi::Float32Array>();
        if (t.ElementLength() < want)
          throw Napi::RangeError::New(i.Env(), "the logits target holds " + std::to_string(t.ElementLength()) +
                                                   " floats; this step's logits are " + std::to_string(want));
        into = t.Data();
      }
      auto logits = std::make_shared<std::vector<float>>(into ? 0 : want);
      auto out = std::make_shared<ModelForwardTimings>();
      return AsyncTask::Start(
          i.Env(), "redblue.modelForward",
          [=] {
            pool->RunStep([&] {
              *out = shard->Forward(tokens->data(), static_cast<int64_t>(tokens->size()), pos, mode, *pool, *peers,
                                    into ? into : logits->data());
            });
          },
          [=](Napi::Env e) -> Napi::Value {
            return StepReply(e, mode != LogitsMode::None && !into ? logits.get() : nullptr, *out);
          },
          {i[0], i[1], i.This(), i.Length() > 5 ? i[5] : i.Env().Undefined()});
    });
  }
  // forwardRuns(pool, peers, tokens: Int32Array, runs: {slot, pos, count, logits}[]) →
  // Promise<{logits?: Float32Array (nVocab per run that asks), …times}>: a batched step.
  Napi::Value ForwardRuns(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& i) -> Napi::Value {
      auto shard = Alive(i.Env());
      auto pool = ThreadPoolFromJs(i[0]);
      auto peers = CollectiveFromJs(i[1]);
      auto tokens = TokensArg(i[2]);
      auto runs = std::make_shared<std::vector<SeqRun>>(RunsFromJs(i[3]));
      int64_t total = 0, rows = 0;
      for (const SeqRun& r : *runs) total += r.count, rows += r.logits;
      if (total != static_cast<int64_t>(tokens->size()))
        throw Napi::RangeError::New(i.Env(), "the runs hold " + std::to_string(total) + " tokens but " +
                                                 std::to_string(tokens->size()) + " were given");
      auto logits = std::make_shared<std::vector<float>>(static_cast<size_t>(rows * shard->config().nVocab));
      auto out = std::make_shared<ModelForwardTimings>();
      return AsyncTask::Start(
          i.Env(), "redblue.modelForwardRuns",
          [=] {
            pool->RunStep([&] {
              *out = shard->ForwardRuns(tokens->data(), runs->data(), static_cast<int>(runs->size()), *pool, *peers,
                                        logits->data());
            });
          },
          [=](Napi::Env e) -> Napi::Value { return StepReply(e, logits.get(), *out); },
          {i[0], i[1], i.This()});
    });
  }
  // startStepLoop(pool, peers, area: ArrayBuffer, rank): a thread that runs the steps the
  // coordinator posts in the area's doorbell (model/step_doorbell.h) until stopStepLoop.
  Napi::Value StartStepLoop(const Napi::CallbackInfo& info) {
    return Guarded(info, [this](const Napi::CallbackInfo& i) -> Napi::Value {
      auto shard = Alive(i.Env());
      auto pool = ThreadPoolFromJs(i[0]);
      auto peers = CollectiveFromJs(i[1]);
      if (!i[2].IsArrayBuffer()) throw Napi::TypeError::New(i.Env(), "area must be an ArrayBuffer (the staging area)");
      Napi::ArrayBuffer area = i[2].As<Napi::ArrayBuffer>();
      const int rank = static_cast<int>(Int(i[3], "rank"));
      loop_.reset();  // one loop at a time
      loop_ = std::make_unique<StepLoop>(shard, pool, peers, static_cast<uint8_t*>(area.Data()), area.ByteLength(), rank);
      area_ = Napi::Persistent(area);  // mapped for as long as the loop reads it
      return i.Env().Undefined();
    });
  }
  Napi::Value StopStepLoop(const Napi::CallbackInfo& info) {
    loop_.reset();
    area_.Reset();
    return info.Env().Undefined();
  }
  // Drops this object's hold; a load or forward in flight keeps the shard until it ends.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    loop_.reset();
    area_.Reset();
    shard_.reset();
    return info.Env().Undefined();
  }
  std::shared_ptr<ModelShard> shard_;
  std::unique_ptr<StepLoop> loop_;
  Napi::Reference<Napi::ArrayBuffer> area_;
};

// ringDoorbell(area: ArrayBuffer, tokens: Int32Array, runs: {slot, pos, count, logits}[], ranks, timeoutMs)
// → Promise<{ seconds, computeSeconds, exchangeSeconds, allReduces }[]>: the coordinator's side of a step.
Napi::Value JsRingDoorbell(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "area must be an ArrayBuffer (the staging area)");
  Napi::ArrayBuffer area = info[0].As<Napi::ArrayBuffer>();
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, "tokens must be an Int32Array");
  Napi::Int32Array ta = info[1].As<Napi::Int32Array>();
  auto step = std::make_shared<DoorbellStep>();
  step->tokens.assign(ta.Data(), ta.Data() + ta.ElementLength());
  step->runs = RunsFromJs(info[2]);
  const int ranks = static_cast<int>(Int(info[3], "ranks"));
  const uint64_t timeoutMs = static_cast<uint64_t>(Int(info[4], "timeoutMs"));
  uint8_t* base = static_cast<uint8_t*>(area.Data());
  const size_t bytes = area.ByteLength();
  // Posted here (a bad step throws at once); only the wait goes to a worker thread.
  const uint32_t seq = PostDoorbell(base, bytes, *step, ranks);
  auto out = std::make_shared<std::vector<DoorbellTimings>>();
  return AsyncTask::Start(
      env, "redblue.ringDoorbell", [=] { *out = AwaitDoorbell(base, bytes, seq, ranks, timeoutMs); },
      [=](Napi::Env e) -> Napi::Value {
        Napi::Array a = Napi::Array::New(e, out->size());
        for (size_t r = 0; r < out->size(); ++r) {
          Napi::Object o = Napi::Object::New(e);
          o.Set("seconds", (*out)[r].seconds);
          o.Set("computeSeconds", (*out)[r].computeSeconds);
          o.Set("exchangeSeconds", (*out)[r].exchangeSeconds);
          o.Set("allReduces", TallyObject(e, (*out)[r].allReduces));
          a.Set(static_cast<uint32_t>(r), o);
        }
        return a;
      },
      {info[0]});
}

// stopDoorbell(area): every loop on the area ends, and a ring waiting on it fails.
Napi::Value JsStopDoorbell(const Napi::CallbackInfo& info) {
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(info.Env(), "area must be an ArrayBuffer");
  Napi::ArrayBuffer area = info[0].As<Napi::ArrayBuffer>();
  try {
    StopDoorbell(static_cast<uint8_t*>(area.Data()), area.ByteLength());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return info.Env().Undefined();
}

// causalAttention(pool, {q, k, v, nTokens, pos0, qHeads, group, headDim, nCtx, path?}) → Float32Array:
// one KV cache's attention on its own (q: Float32Array, k and v: Uint16Array of f16 rows, K and V
// of head h at position j at (h·nCtx + j)·headDim; copied into a shard cache's layout first), for
// the kernel's tests and benches.
Napi::Value JsCausalAttention(const Napi::CallbackInfo& info) {
  auto pool = ThreadPoolFromJs(info[0]);
  if (!pool) throw Napi::TypeError::New(info.Env(), "causalAttention: argument 1 must be an open ThreadPool");
  Napi::Object o = Obj(info[1], "causalAttention options");
  AttentionArgs a;
  a.nTokens = Int(o, "nTokens");
  a.pos0 = Int(o, "pos0");
  a.qHeads = Int(o, "qHeads");
  a.group = Int(o, "group");
  a.headDim = Int(o, "headDim");
  a.nCtx = Int(o, "nCtx");
  if (o.Has("path") && !o.Get("path").IsUndefined()) a.isa = ResolveIsa(ParseIsa(Str(o, "path")));
  if (a.group == 0 || a.qHeads % a.group != 0 || a.headDim == 0)
    throw UserError("causalAttention: qHeads must be a multiple of group, and headDim above 0");
  if (a.pos0 + a.nTokens > a.nCtx) throw UserError("causalAttention: pos0 + nTokens exceeds nCtx");
  const int64_t qElems = a.nTokens * a.qHeads * a.headDim, kvElems = a.qHeads / a.group * a.nCtx * a.headDim;
  Napi::Value qv = o.Get("q"), kv = o.Get("k"), vv = o.Get("v");
  if (!qv.IsTypedArray() || qv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      static_cast<int64_t>(qv.As<Napi::Float32Array>().ElementLength()) != qElems)
    throw UserError("causalAttention: q must be a Float32Array of nTokens × qHeads × headDim");
  for (const Napi::Value* c : {&kv, &vv})
    if (!c->IsTypedArray() || c->As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array ||
        static_cast<int64_t>(c->As<Napi::Uint16Array>().ElementLength()) != kvElems)
      throw UserError("causalAttention: k and v must be Uint16Arrays of (qHeads / group) × nCtx × headDim f16 values");
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(qElems));
  a.q = qv.As<Napi::Float32Array>().Data();
  const int64_t kvHeads = a.qHeads / a.group, hd = a.headDim, ctx = KvCtx(a.nCtx);
  std::vector<uint16_t> kc(static_cast<size_t>(kvHeads * ctx * hd)), vc(kc.size());
  const uint16_t* k = kv.As<Napi::Uint16Array>().Data();
  const uint16_t* v = vv.As<Napi::Uint16Array>().Data();
  for (int64_t h = 0; h < kvHeads; ++h)
    for (int64_t j = 0; j < a.nCtx; ++j)
      for (int64_t d = 0; d < hd; ++d) {
        kc[static_cast<size_t>(KIndex(h, j, d, ctx, hd))] = k[(h * a.nCtx + j) * hd + d];
        vc[static_cast<size_t>(VIndex(h, j, d, ctx, hd))] = v[(h * a.nCtx + j) * hd + d];
      }
  a.nCtx = ctx;
  a.kCache = kc.data();
  a.vCache = vc.data();
  a.out = out.Data();
  CausalAttention(a, *pool);
  return out;
}

void InitModel(Napi::Env env, Napi::Object exports) {
  exports.Set("ModelShard", JsModelShard::Define(env));
  REDBLUE_EXPORT(exports, "ringDoorbell", JsRingDoorbell);
  REDBLUE_EXPORT(exports, "stopDoorbell", JsStopDoorbell);
  REDBLUE_EXPORT(exports, "causalAttention", JsCausalAttention);
  exports.Set("doorbellBytes", Napi::Number::New(env, static_cast<double>(kDoorbellBytes)));
}

}  // namespace
REDBLUE_MODULE(InitModel);
}  // namespace redblue
