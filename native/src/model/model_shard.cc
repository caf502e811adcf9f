#include "model/model_shard.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/errors.h"
#include "kernels/half.h"
#include "kernels/quant.h"
#include "model/attention.h"
#include "model/model_ops.h"

namespace redblue {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The WeightType of a GGUF type id, or a UserError naming the tensor.
WeightType TypeOf(const std::string& name, int ggml) {
  try {
    return WeightTypeFromGgml(ggml);
  } catch (const UserError& e) {
    throw UserError(name + ": " + e.what());
  }
}
uint64_t BytesOf(WeightType t, int64_t elements) { return static_cast<uint64_t>(RowBytes(t, elements)); }

std::string Dims(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// Trailing 1s of ne carry no shape.
bool SameShape(std::vector<int64_t> a, std::vector<int64_t> b) {
  while (a.size() > 1 && a.back() == 1) a.pop_back();
  while (b.size() > 1 && b.back() == 1) b.pop_back();
  return a == b;
}

std::string Blk(int l, const char* what) { return "blk." + std::to_string(l) + "." + what; }

constexpr uint64_t kAlign = 64;
uint64_t AlignUp(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

}  // namespace

ModelArch ParseModelArch(const std::string& s) {
  if (s == "llama") return ModelArch::Llama;
  if (s == "qwen2") return ModelArch::Qwen2;
  if (s == "qwen3") return ModelArch::Qwen3;
  throw UserError("unsupported model architecture '" + s + "': llama, qwen2 and qwen3 are supported");
}

void CheckModelConfig(const ModelConfig& c) {
  if (c.nLayer <= 0 || c.nEmbd <= 0 || c.nHead <= 0 || c.nHeadKv <= 0 || c.headDim <= 0 || c.nFf <= 0 ||
      c.nVocab <= 0 || c.nCtx <= 0)
    throw UserError("model hyperparameters nLayer, nEmbd, nHead, nHeadKv, headDim, nFf, nVocab and nCtx must all be ≥ 1");
  if (c.nSlots < 1 || c.nSlots > kMaxModelSlots)
    throw UserError("a model shard holds 1-" + std::to_string(kMaxModelSlots) + " sequences' KV caches, not " +
                    std::to_string(c.nSlots));
  if (c.invariantTokens < 0 || c.invariantTokens > kMaxModelSlots)
    throw UserError("invariantTokens (steps verified token by token) is 0-" + std::to_string(kMaxModelSlots) +
                    ", not " + std::to_string(c.invariantTokens));
  if (c.nHead % c.nHeadKv != 0)
    throw UserError("nHead (" + std::to_string(c.nHead) + ") must be a multiple of nHeadKv (" +
                    std::to_string(c.nHeadKv) + ")");
  if (c.headDim % 2 != 0) throw UserError("headDim must be even for RoPE, got " + std::to_string(c.headDim));
  if (!(c.normEps > 0) || !(c.ropeBase > 0) || !(c.ropeScale > 0))
    throw UserError("normEps, ropeBase and ropeScale must be positive");
  const ModelSplit& s = c.split;
  if (s.ranks < 1 || s.rank < 0 || s.rank >= s.ranks)
    throw UserError("split rank " + std::to_string(s.rank) + " is not one of " + std::to_string(s.ranks) + " ranks");
  auto range = [](const char* what, int64_t lo, int64_t hi, int64_t n) {
    if (lo < 0 || lo > hi || hi > n)
      throw UserError(std::string("split ") + what + " [" + std::to_string(lo) + ", " + std::to_string(hi) +
                      ") is not inside [0, " + std::to_string(n) + ")");
  };
  range("kvHeads", s.kvLo, s.kvHi, c.nHeadKv);
  range("ff", s.ffLo, s.ffHi, c.nFf);
  range("vocab", s.vocabLo, s.vocabHi, c.nVocab);
  if (static_cast<int>(s.vocabPerRank.size()) != s.ranks)
    throw UserError("split vocabPerRank must list the vocabulary rows of all " + std::to_string(s.ranks) + " ranks");
  int64_t sum = 0, before = 0;
  for (int r = 0; r < s.ranks; ++r) {
    if (r == s.rank) before = sum;
    sum += s.vocabPerRank[static_cast<size_t>(r)];
  }
  if (sum != c.nVocab)
    throw UserError("split vocabPerRank sums to " + std::to_string(sum) + ", not the vocabulary's " +
                    std::to_string(c.nVocab) + " rows");
  if (before != s.vocabLo || s.vocabPerRank[static_cast<size_t>(s.rank)] != s.vocabHi - s.vocabLo)
    throw UserError("split vocab [" + std::to_string(s.vocabLo) + ", " + std::to_string(s.vocabHi) +
                    ") is not rank " + std::to_string(s.rank) + "'s rows in vocabPerRank");
}

MappedFile::MappedFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError("cannot open model file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw UserError("cannot stat model file " + path + ": " + std::strerror(e));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    throw UserError("model file " + path + " is empty");
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  int e = errno;
  ::close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) throw UserError("cannot map model file " + path + ": " + std::strerror(e));
  data_ = static_cast<const uint8_t*>(p);
}

void MappedFile::DropResident() {
  if (data_) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

const ModelTensorRef* ModelShard::Find(const std::string& name, bool required) const {
  for (const ModelTensorRef& t : cfg_.tensors)
    if (t.name == name) return &t;
  if (required) throw UserError("the model file " + cfg_.path + " has no tensor " + name + ", which this architecture needs");
  return nullptr;
}

// Rows [rowLo, rowHi) and, within each, elements [colLo, colHi) of a matrix of ne = shape.
uint64_t ModelShard::PlanMatrix(const std::string& name, int64_t rowLo, int64_t rowHi, int64_t colLo, int64_t colHi,
                                const std::vector<int64_t>& shape, ShardMatrix* out, bool matmulOnly) {
  const ModelTensorRef* t = Find(name, true);
  if (!SameShape(t->ne, shape))
    throw UserError(name + " has dims " + Dims(t->ne) + ", the configuration implies " + Dims(shape));
  const WeightType k = TypeOf(name, t->ggmlType);
  const int64_t block = BlockElements(k);
  for (int64_t c : {colLo, colHi})
    if (c % block != 0)
      throw UserError(name + " (" + WeightTypeName(k) + ", blocks of " + std::to_string(block) +
                      " elements) would be cut inside a block at column " + std::to_string(c) +
                      ": the split must cut its rows on multiples of " + std::to_string(block));
  const uint64_t fullRow = BytesOf(k, shape[0]);
  const uint64_t total = fullRow * static_cast<uint64_t>(shape[1]);
  if (t->offset > file_->size() || total > file_->size() - t->offset)
    throw UserError(name + " (" + std::to_string(total) + " bytes at offset " + std::to_string(t->offset) +
                    ") lies beyond the end of the " + std::to_string(file_->size()) + "-byte file " + cfg_.path);
  Piece p;
  p.src = t->offset + static_cast<uint64_t>(rowLo) * fullRow + BytesOf(k, colLo);
  p.srcStride = fullRow;
  p.copyBytes = BytesOf(k, colHi - colLo);
  p.rows = rowHi - rowLo;
  p.dst = planned_;
  out->ggml = t->ggmlType;
  out->rows = rowHi - rowLo;
  out->cols = colHi - colLo;
  out->rowBytes = static_cast<int64_t>(p.copyBytes);
  out->rows8 = p.rows8 = matmulOnly && Rows8Runs(k, cfg_.isa);
  p.ggml = t->ggmlType;
  p.count = colHi - colLo;
  const uint64_t bytes = p.copyBytes * static_cast<uint64_t>(p.rows);
  if (bytes) pieces_.push_back(p);
  planned_ = AlignUp(planned_ + bytes);
  return p.dst;
}

// Elements [lo, hi) of a 1-D tensor of `length` elements, widened to f32.
uint64_t ModelShard::PlanVector(const std::string& name, int64_t lo, int64_t hi, int64_t length) {
  const ModelTensorRef* t = Find(name, true);
  if (!SameShape(t->ne, {length}))
    throw UserError(name + " has dims " + Dims(t->ne) + ", the configuration implies [" + std::to_string(length) + "]");
  const WeightType k = TypeOf(name, t->ggmlType);
  if (BlockElements(k) != 1)
    throw UserError(name + " is " + WeightTypeName(k) + "; 1-D tensors must be f32, f16 or bf16");
  const uint64_t total = BytesOf(k, length);
  if (t->offset > file_->size() || total > file_->size() - t->offset)
    throw UserError(name + " lies beyond the end of the file " + cfg_.path);
  Piece p;
  p.src = t->offset + BytesOf(k, lo);
  p.toF32 = true;
  p.ggml = t->ggmlType;
  p.count = hi - lo;
  p.copyBytes = static_cast<uint64_t>(hi - lo) * 4;
  p.dst = planned_;
  if (p.count) pieces_.push_back(p);
  planned_ = AlignUp(planned_ + p.copyBytes);
  return p.dst;
}

ModelShard::ModelShard(ModelConfig cfg) : cfg_(std::move(cfg)) {
  CheckModelConfig(cfg_);
  const ModelConfig& c = cfg_;
  const ModelSplit& s = c.split;
  file_ = std::make_unique<MappedFile>(c.path);
  const int64_t group = c.nHead / c.nHeadKv, hd = c.headDim, E = c.nEmbd;
  kvHeads_ = s.kvHi - s.kvLo;
  qHeads_ = kvHeads_ * group;
  ffRows_ = s.ffHi - s.ffLo;
  vocabRows_ = s.vocabHi - s.vocabLo;
  const int64_t qLo = s.kvLo * group * hd, qHi = s.kvHi * group * hd;  // rows of attn_q, columns of attn_output
  const int64_t kLo = s.kvLo * hd, kHi = s.kvHi * hd;
  const int64_t qAll = c.nHead * hd, kAll = c.nHeadKv * hd;

  // Offsets into the weight buffer, turned into pointers once it exists.
  std::vector<std::pair<const float**, uint64_t>> vecs;
  std::vector<std::pair<ShardMatrix*, uint64_t>> mats;
  layers_.resize(static_cast<size_t>(c.nLayer));
  auto mat = [&](const std::string& name, int64_t r0, int64_t r1, int64_t c0, int64_t c1, std::vector<int64_t> shape,
                 ShardMatrix* m, bool matmulOnly = true) {
    mats.push_back({m, PlanMatrix(name, r0, r1, c0, c1, shape, m, matmulOnly)});
  };
  auto vec = [&](const std::string& name, int64_t lo, int64_t hi, int64_t n, const float** v) {
    vecs.push_back({v, PlanVector(name, lo, hi, n)});
  };
  for (int l = 0; l < c.nLayer; ++l) {
    Layer& L = layers_[static_cast<size_t>(l)];
    vec(Blk(l, "attn_norm.weight"), 0, E, E, &L.attnNorm);
    vec(Blk(l, "ffn_norm.weight"), 0, E, E, &L.ffnNorm);
    mat(Blk(l, "attn_q.weight"), qLo, qHi, 0, E, {E, qAll}, &L.q);
    mat(Blk(l, "attn_k.weight"), kLo, kHi, 0, E, {E, kAll}, &L.k);
    mat(Blk(l, "attn_v.weight"), kLo, kHi, 0, E, {E, kAll}, &L.v);
    mat(Blk(l, "attn_output.weight"), 0, E, qLo, qHi, {qAll, E}, &L.o);
    mat(Blk(l, "ffn_gate.weight"), s.ffLo, s.ffHi, 0, E, {E, c.nFf}, &L.gate);
    mat(Blk(l, "ffn_up.weight"), s.ffLo, s.ffHi, 0, E, {E, c.nFf}, &L.up);
    mat(Blk(l, "ffn_down.weight"), 0, E, s.ffLo, s.ffHi, {c.nFf, E}, &L.down);
    // Biases: qwen2 always has Q/K/V ones; some llama files carry them, and attn_output's.
    if (c.qkvBias || Find(Blk(l, "attn_q.bias"), false)) {
      vec(Blk(l, "attn_q.bias"), qLo, qHi, qAll, &L.qBias);
      vec(Blk(l, "attn_k.bias"), kLo, kHi, kAll, &L.kBias);
      vec(Blk(l, "attn_v.bias"), kLo, kHi, kAll, &L.vBias);
    }
    if (Find(Blk(l, "attn_output.bias"), false)) vec(Blk(l, "attn_output.bias"), 0, E, E, &L.oBias);
    if (c.qkNorm) {
      vec(Blk(l, "attn_q_norm.weight"), 0, hd, hd, &L.qNorm);
      vec(Blk(l, "attn_k_norm.weight"), 0, hd, hd, &L.kNorm);
    }
  }
  vec("output_norm.weight", 0, E, E, &outputNorm_);
  if (Find("rope_freqs.weight", false)) vec("rope_freqs.weight", 0, hd / 2, hd / 2, &ropeFreqs_);
  const bool tied = Find("output.weight", false) == nullptr;
  mat(tied ? "token_embd.weight" : "output.weight", s.vocabLo, s.vocabHi, 0, E, {E, c.nVocab}, &output_);

  // Token embeddings: the file mapping's pages, or a copy in this node's memory.
  if (c.mirrorEmbeddings) {
    mat("token_embd.weight", 0, c.nVocab, 0, E, {E, c.nVocab}, &embd_, false);  // rows looked up by token
  } else {
    const ModelTensorRef* t = Find("token_embd.weight", true);
    if (!SameShape(t->ne, {E, c.nVocab}))
      throw UserError("token_embd.weight has dims " + Dims(t->ne) + ", the configuration implies " + Dims({E, c.nVocab}));
    const WeightType k = TypeOf(t->name, t->ggmlType);
    embd_.ggml = t->ggmlType;
    embd_.rows = c.nVocab;
    embd_.cols = E;
    embd_.rowBytes = static_cast<int64_t>(BytesOf(k, E));
    const uint64_t total = static_cast<uint64_t>(embd_.rowBytes) * static_cast<uint64_t>(c.nVocab);
    if (t->offset > file_->size() || total > file_->size() - t->offset)
      throw UserError("token_embd.weight lies beyond the end of the file " + cfg_.path);
    embd_.data = file_->data() + t->offset;
  }
  fixVecs_ = std::move(vecs);
  fixMats_ = std::move(mats);
  kvSlotBytes_ = static_cast<uint64_t>(kvHeads_ * KvCtx(c.nCtx) * hd) * 2;
  kvLayerBytes_ = kvSlotBytes_ * static_cast<uint64_t>(c.nSlots);
  filled_.assign(static_cast<size_t>(c.nSlots), 0);
}

ModelShard::~ModelShard() = default;

ModelLoadInfo ModelShard::Load(ThreadPool& pool, const std::function<void(uint64_t, uint64_t)>& progress) {
  std::unique_lock<std::mutex> lk(busy_, std::try_to_lock);
  if (!lk.owns_lock()) throw UserError("this model shard is busy (a load or forward is running)");
  if (loaded_) throw UserError("this model shard is already loaded");
  const double t0 = Now();
  weights_ = std::make_unique<NodeBuffer>(std::max<uint64_t>(planned_, 1), cfg_.node, HugePolicy::Auto);
  uint8_t* base = static_cast<uint8_t*>(weights_->data());
  // Copy tasks of at most ~4 MiB each, in batches, reporting progress between batches.
  struct Task {
    const Piece* p;
    int64_t r0, r1;
  };
  std::vector<Task> tasks;
  uint64_t total = 0;
  for (const Piece& p : pieces_) {
    total += p.copyBytes * static_cast<uint64_t>(p.rows);
    int64_t per = std::max<int64_t>(1, static_cast<int64_t>((4u << 20) / std::max<uint64_t>(p.copyBytes, 1)));
    if (p.rows8) per = (per + 7) / 8 * 8;  // each task starts on a group
    for (int64_t r = 0; r < p.rows; r += per) tasks.push_back({&p, r, std::min(p.rows, r + per)});
  }
  const uint8_t* src = file_->data();
  uint64_t done = 0;
  if (progress) progress(0, total);
  const size_t batch = 64;
  for (size_t b = 0; b < tasks.size(); b += batch) {
    const size_t e = std::min(tasks.size(), b + batch);
    pool.ParallelFor(static_cast<int64_t>(e - b), [&](int64_t i, int) {
      const Task& t = tasks[b + static_cast<size_t>(i)];
      const Piece& p = *t.p;
      if (p.toF32) {
        DequantizeRows(WeightTypeFromGgml(p.ggml), src + p.src, 1, p.count, reinterpret_cast<float*>(base + p.dst),
                       p.count);
        return;
      }
      if (p.rows8) {
        InterleaveRows8(WeightTypeFromGgml(p.ggml), src + p.src + static_cast<uint64_t>(t.r0) * p.srcStride,
                        static_cast<int64_t>(p.srcStride), t.r1 - t.r0, p.count,
                        base + p.dst + static_cast<uint64_t>(t.r0) * p.copyBytes);
        return;
      }
      for (int64_t r = t.r0; r < t.r1; ++r)
        std::memcpy(base + p.dst + static_cast<uint64_t>(r) * p.copyBytes, src + p.src + static_cast<uint64_t>(r) * p.srcStride,
                    p.copyBytes);
    });
    for (size_t i = b; i < e; ++i) done += tasks[i].p->copyBytes * static_cast<uint64_t>(tasks[i].r1 - tasks[i].r0);
    if (progress) progress(done, total);
  }
  // The copies paged the file's slices into this process; they are node-local copies now, so
  // give the file's pages back (token_embd rows fault in again as tokens look them up).
  file_->DropResident();
  for (auto& [ptr, off] : fixVecs_) *ptr = reinterpret_cast<const float*>(base + off);
  for (auto& [m, off] : fixMats_) m->data = base + off;
  const uint64_t kvBytes = kvLayerBytes_ * 2 * static_cast<uint64_t>(cfg_.nLayer);
  if (kvBytes) kv_ = std::make_unique<NodeBuffer>(kvBytes, cfg_.node, HugePolicy::Auto);
  loaded_ = true;
  ModelLoadInfo info;
  info.weightBytes = weights_->mappedSize();
  info.kvBytes = kv_ ? kv_->mappedSize() : 0;
  info.backing = BackingName(weights_->backing());
  info.seconds = Now() - t0;
  return info;
}

void ModelShard::Matmul(std::initializer_list<MatmulOut> outs, const float* x, int64_t m, int64_t ldx,
                        ThreadPool& pool) const {
  if (m == 0) return;
  std::vector<QuantMatmulArgs> parts;
  parts.reserve(outs.size());
  for (const MatmulOut& o : outs) {
    const ShardMatrix& w = o.w;
    if (w.rows == 0) continue;
    if (w.cols == 0) {
      for (int64_t i = 0; i < m; ++i) std::fill(o.y + i * o.ldy, o.y + i * o.ldy + w.rows, 0.0f);
      continue;
    }
    QuantMatmulArgs& q = parts.emplace_back();
    q.type = WeightTypeFromGgml(w.ggml);
    q.w = w.data;
    q.n = w.rows;
    q.k = w.cols;
    q.wStride = w.rowBytes;
    q.x = x;
    q.m = m;
    q.ldx = ldx;
    q.y = o.y;
    q.ldy = o.ldy;
    q.isa = cfg_.isa;
    q.rowInvariant = cfg_.batchInvariant || m <= cfg_.invariantTokens;
    q.rows8 = w.rows8;
  }
  MatmulQShared(parts.data(), parts.size(), pool);
}

void ModelShard::CheckCall(Collective& peers) const {
  const ModelConfig& c = cfg_;
  if (!loaded_) throw UserError("load the model shard before running forward");
  if (peers.size() != c.split.ranks || peers.rank() != c.split.rank)
    throw UserError("the model shard was split for rank " + std::to_string(c.split.rank) + " of " +
                    std::to_string(c.split.ranks) + ", but the collective is rank " + std::to_string(peers.rank()) +
                    " of " + std::to_string(peers.size()));
}

void ModelShard::CheckTokens(const int32_t* tokens, int64_t n) const {
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= cfg_.nVocab)
      throw UserError("token id " + std::to_string(tokens[i]) + " (at index " + std::to_string(i) +
                      ") is outside the vocabulary of " + std::to_string(cfg_.nVocab) + " tokens");
}

ModelForwardTimings ModelShard::Forward(const int32_t* tokens, int64_t nTokens, int64_t pos, LogitsMode mode,
                                        ThreadPool& pool, Collective& peers, float* logitsOut) {
  std::unique_lock<std::mutex> lk(busy_, std::try_to_lock);
  if (!lk.owns_lock()) throw UserError("this model shard is busy (a load or forward is running): wait for it");
  const ModelConfig& c = cfg_;
  CheckCall(peers);
  if (nTokens < 1) throw UserError("forward needs at least one token");
  if (pos < 0 || pos + nTokens > c.nCtx)
    throw UserError("positions " + std::to_string(pos) + ".." + std::to_string(pos + nTokens - 1) +
                    " do not fit the context of " + std::to_string(c.nCtx) + " tokens: start a new sequence or load with a larger nCtx");
  if (pos > filled_[0])
    throw UserError("position " + std::to_string(pos) + " leaves a gap: the KV cache holds positions 0.." +
                    std::to_string(filled_[0] - 1) + ", so the next token must be at position ≤ " + std::to_string(filled_[0]));
  CheckTokens(tokens, nTokens);
  SeqRun run;
  run.pos = pos;
  run.count = nTokens;
  std::vector<int64_t> rows;
  if (mode == LogitsMode::Last) rows.push_back(nTokens - 1);
  if (mode == LogitsMode::All)
    for (int64_t i = 0; i < nTokens; ++i) rows.push_back(i);
  return Step(tokens, &run, 1, rows, pool, peers, logitsOut);
}

ModelForwardTimings ModelShard::ForwardRuns(const int32_t* tokens, const SeqRun* runs, int nRuns, ThreadPool& pool,
                                            Collective& peers, float* logitsOut) {
  std::unique_lock<std::mutex> lk(busy_, std::try_to_lock);
  if (!lk.owns_lock()) throw UserError("this model shard is busy (a load or forward is running): wait for it");
  const ModelConfig& c = cfg_;
  CheckCall(peers);
  if (nRuns < 1) throw UserError("a step needs at least one sequence");
  std::vector<bool> seen(static_cast<size_t>(c.nSlots), false);
  std::vector<int64_t> rows;
  std::vector<uint8_t> hidden;
  int64_t total = 0;
  for (int i = 0; i < nRuns; ++i) {
    const SeqRun& r = runs[i];
    const std::string what = "sequence " + std::to_string(i) + " of the step (slot " + std::to_string(r.slot) + ")";
    if (r.slot < 0 || r.slot >= c.nSlots)
      throw UserError(what + ": the shard holds slots 0-" + std::to_string(c.nSlots - 1));
    if (seen[static_cast<size_t>(r.slot)]) throw UserError(what + ": the slot appears twice in one step");
    seen[static_cast<size_t>(r.slot)] = true;
    if (r.count < 1) throw UserError(what + " carries no tokens");
    if (r.pos < 0 || r.pos + r.count > c.nCtx)
      throw UserError(what + ": positions " + std::to_string(r.pos) + ".." + std::to_string(r.pos + r.count - 1) +
                      " do not fit the context of " + std::to_string(c.nCtx) + " tokens");
    if (r.from >= 0) {
      if (r.from >= c.nSlots || r.from == r.slot)
        throw UserError(what + ": copies from slot " + std::to_string(r.from) + ", which is not another of slots 0-" +
                        std::to_string(c.nSlots - 1));
      if (r.pos > filled_[static_cast<size_t>(r.from)])
        throw UserError(what + ": copies positions 0.." + std::to_string(r.pos - 1) + " of slot " +
                        std::to_string(r.from) + ", which holds 0.." +
                        std::to_string(filled_[static_cast<size_t>(r.from)] - 1));
    }
    const int64_t filled = r.from >= 0 ? r.pos : filled_[static_cast<size_t>(r.slot)];
    if (r.pos > filled)
      throw UserError(what + ": position " + std::to_string(r.pos) + " leaves a gap (the slot holds positions 0.." +
                      std::to_string(filled - 1) + ")");
    if (r.logits < 0 || r.logits > r.count)
      throw UserError(what + " asks for " + std::to_string(r.logits) + " rows of logits but carries " +
                      std::to_string(r.count) + " tokens");
    if (r.hidden && c.nEmbd > c.nVocab)
      throw UserError(what + " asks for hidden states of " + std::to_string(c.nEmbd) +
                      " floats, wider than a row of logits (" + std::to_string(c.nVocab) + ")");
    for (int64_t k = r.count - r.logits; k < r.count; ++k) {
      rows.push_back(total + k);
      hidden.push_back(r.hidden ? 1 : 0);
    }
    total += r.count;
  }
  CheckTokens(tokens, total);
  // Copies first, all of them: a slot the step copies into is no source of another copy.
  for (int i = 0; i < nRuns; ++i)
    for (int j = 0; j < nRuns; ++j)
      if (runs[i].from >= 0 && runs[j].from == runs[i].slot)
        throw UserError("slot " + std::to_string(runs[i].slot) + " takes a copy and gives one in the same step");
  for (int i = 0; i < nRuns; ++i)
    if (runs[i].from >= 0) CopyPrefix(runs[i].from, runs[i].slot, runs[i].pos);
  return Step(tokens, runs, nRuns, rows, pool, peers, logitsOut, hidden);
}

void ModelShard::CopyPrefix(int from, int to, int64_t positions) {
  if (!kv_ || positions == 0) return;
  // Per layer, K then V, per KV head: positions 0.. lie first in the head's rows (K in chunks of
  // kKeyChunk positions, V row by row), so whole chunks cover them; what lies past `positions`
  // is written before it is read, as in a slot used before.
  const int64_t hd = cfg_.headDim, kvCtx = KvCtx(cfg_.nCtx);
  const size_t bytes = static_cast<size_t>((positions + kKeyChunk - 1) / kKeyChunk * kKeyChunk * hd) * 2;
  uint8_t* base = static_cast<uint8_t*>(kv_->data());
  for (int64_t kv = 0; kv < 2 * cfg_.nLayer; ++kv) {
    uint8_t* layer = base + kvLayerBytes_ * static_cast<uint64_t>(kv);
    for (int64_t h = 0; h < kvHeads_; ++h) {
      const uint64_t head = static_cast<uint64_t>(h * kvCtx * hd) * 2;
      std::memcpy(layer + kvSlotBytes_ * static_cast<uint64_t>(to) + head,
                  layer + kvSlotBytes_ * static_cast<uint64_t>(from) + head, bytes);
    }
  }
}

ModelForwardTimings ModelShard::Step(const int32_t* tokens, const SeqRun* runs, int nRuns,
                                     const std::vector<int64_t>& logitRows, ThreadPool& pool, Collective& peers,
                                     float* logitsOut, const std::vector<uint8_t>& hiddenRows) {
  const ModelConfig& c = cfg_;
  int64_t nTokens = 0;
  for (int i = 0; i < nRuns; ++i) nTokens += runs[i].count;
  ModelForwardTimings tm;
  const AllReduceTally tallied = peers.Tally();
  const double start = Now();
  double exchange = 0;
  auto allReduce = [&](float* d, size_t n) {
    double t0 = Now();
    peers.AllReduceSumF32(d, n);
    exchange += Now() - t0;
  };

  const int64_t T = nTokens, E = c.nEmbd, hd = c.headDim, group = c.nHead / c.nHeadKv;
  // A prompt step's activations (~60 KiB a token on a 1B model: 30 MiB at 512 tokens) go back to
  // the system when it ends, after the vectors below: the heap would otherwise keep them, and the
  // executor hold a tenth more than its weights and KV cache for the rest of its life.
  struct TrimHeapAfter {
    bool on;
    ~TrimHeapAfter() {
      if (on) malloc_trim(0);
    }
  } trim{T >= 64};
  std::vector<int64_t> tokPos(static_cast<size_t>(T)), tokSlot(static_cast<size_t>(T));
  for (int i = 0, t = 0; i < nRuns; ++i)
    for (int64_t j = 0; j < runs[i].count; ++j, ++t) {
      tokPos[static_cast<size_t>(t)] = runs[i].pos + j;
      tokSlot[static_cast<size_t>(t)] = runs[i].slot;
    }
  const int64_t qW = qHeads_ * hd, kW = kvHeads_ * hd;
  std::vector<float> x(static_cast<size_t>(T * E)), xn(x.size()), part(x.size());
  std::vector<float> q(static_cast<size_t>(std::max<int64_t>(1, T * qW))), att(q.size());
  std::vector<float> k(static_cast<size_t>(std::max<int64_t>(1, T * kW))), v(k.size());
  std::vector<float> gate(static_cast<size_t>(std::max<int64_t>(1, T * ffRows_))), up(gate.size());

  // Embeddings: the tokens' rows of token_embd, widened to f32.
  const WeightType ek = WeightTypeFromGgml(embd_.ggml);
  for (int64_t i = 0; i < T; ++i)
    DequantizeRows(ek, embd_.data + static_cast<int64_t>(tokens[i]) * embd_.rowBytes, 1, E, &x[static_cast<size_t>(i * E)], E);

  // Each token's rotary cos and sin (hd/2 each), the same in every layer.
  std::vector<float> rope(static_cast<size_t>(T * hd));
  for (int64_t t = 0; t < T; ++t)
    RopeAngles(hd, tokPos[static_cast<size_t>(t)], c.ropeBase, c.ropeScale, ropeFreqs_, &rope[static_cast<size_t>(t * hd)],
               &rope[static_cast<size_t>(t * hd + hd / 2)]);

  uint8_t* kvBase = kv_ ? static_cast<uint8_t*>(kv_->data()) : nullptr;
  for (int l = 0; l < c.nLayer; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    // Attention block.
    RmsNormRows(x.data(), L.attnNorm, xn.data(), T, E, c.normEps);
    if (kvHeads_ > 0) {
      Matmul({{L.q, q.data(), qW}, {L.k, k.data(), kW}, {L.v, v.data(), kW}}, xn.data(), T, E, pool);
      uint16_t* kc = reinterpret_cast<uint16_t*>(kvBase + kvLayerBytes_ * (2 * static_cast<uint64_t>(l)));
      uint16_t* vc = reinterpret_cast<uint16_t*>(kvBase + kvLayerBytes_ * (2 * static_cast<uint64_t>(l) + 1));
      const int64_t slotElems = static_cast<int64_t>(kvSlotBytes_ / 2), kvCtx = KvCtx(c.nCtx);
      for (int64_t t = 0; t < T; ++t) {
        float* qt = &q[static_cast<size_t>(t * qW)];
        float* kt = &k[static_cast<size_t>(t * kW)];
        float* vt = &v[static_cast<size_t>(t * kW)];
        if (L.qBias) {
          for (int64_t i = 0; i < qW; ++i) qt[i] += L.qBias[i];
          for (int64_t i = 0; i < kW; ++i) kt[i] += L.kBias[i], vt[i] += L.vBias[i];
        }
        if (L.qNorm) {
          RmsNormRows(qt, L.qNorm, qt, qHeads_, hd, c.normEps);
          RmsNormRows(kt, L.kNorm, kt, kvHeads_, hd, c.normEps);
        }
        const int64_t p = tokPos[static_cast<size_t>(t)];
        const float* cs = &rope[static_cast<size_t>(t * hd)];
        RopeApply(qt, qHeads_, hd, c.ropeNeox, cs, cs + hd / 2);
        RopeApply(kt, kvHeads_, hd, c.ropeNeox, cs, cs + hd / 2);
        const int64_t slot = tokSlot[static_cast<size_t>(t)];
        uint16_t* ks = kc + slot * slotElems;
        uint16_t* vs = vc + slot * slotElems;
        for (int64_t h = 0; h < kvHeads_; ++h)
          for (int64_t i = 0; i < hd; ++i) {
            ks[KIndex(h, p, i, kvCtx, hd)] = F32ToF16(kt[h * hd + i]);
            vs[VIndex(h, p, i, kvCtx, hd)] = F32ToF16(vt[h * hd + i]);
          }
      }
      // Attention per sequence, over its own slot's cache.
      for (int i = 0, off = 0; i < nRuns; off += static_cast<int>(runs[i].count), ++i) {
        AttentionArgs a;
        a.q = q.data() + off * qW;
        a.kCache = kc + runs[i].slot * slotElems;
        a.vCache = vc + runs[i].slot * slotElems;
        a.out = att.data() + off * qW;
        a.nTokens = runs[i].count;
        a.pos0 = runs[i].pos;
        a.qHeads = qHeads_;
        a.group = group;
        a.headDim = hd;
        a.nCtx = kvCtx;
        a.isa = c.isa;
        CausalAttention(a, pool);
      }
      Matmul({{L.o, part.data(), E}}, att.data(), T, qW, pool);
    } else {
      std::fill(part.begin(), part.end(), 0.0f);
    }
    allReduce(part.data(), part.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] += part[i];
    if (L.oBias)  // after the sum, on every rank alike (the hidden state stays identical)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < E; ++i) x[static_cast<size_t>(t * E + i)] += L.oBias[i];
    // Feed-forward block.
    RmsNormRows(x.data(), L.ffnNorm, xn.data(), T, E, c.normEps);
    if (ffRows_ > 0) {
      Matmul({{L.gate, gate.data(), ffRows_}, {L.up, up.data(), ffRows_}}, xn.data(), T, E, pool);
      SwiGluInPlace(gate.data(), up.data(), T * ffRows_, c.isa);
      Matmul({{L.down, part.data(), E}}, gate.data(), T, ffRows_, pool);
    } else {
      std::fill(part.begin(), part.end(), 0.0f);
    }
    allReduce(part.data(), part.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] += part[i];
  }
  // Positions after a run's last one (from an earlier, longer sequence) are stale now.
  for (int i = 0; i < nRuns; ++i) filled_[static_cast<size_t>(runs[i].slot)] = runs[i].pos + runs[i].count;

  if (!logitRows.empty()) {
    const int64_t rows = static_cast<int64_t>(logitRows.size());
    for (int64_t i = 0; i < rows; ++i)  // the rows asked for, packed (in place: indices ascend)
      std::memmove(&x[static_cast<size_t>(i * E)], &x[static_cast<size_t>(logitRows[static_cast<size_t>(i)] * E)],
                   static_cast<size_t>(E) * 4);
    RmsNormRows(x.data(), outputNorm_, xn.data(), rows, E, c.normEps);
    std::vector<float> local(static_cast<size_t>(std::max<int64_t>(1, rows * vocabRows_)));
    Matmul({{output_, local.data(), vocabRows_}}, xn.data(), rows, E, pool);
    const int P = c.split.ranks;
    if (P == 1) {
      std::memcpy(logitsOut, local.data(), static_cast<size_t>(rows * c.nVocab) * 4);
    } else {
      std::vector<size_t> bytes(static_cast<size_t>(P));
      for (int r = 0; r < P; ++r) bytes[static_cast<size_t>(r)] = static_cast<size_t>(rows * c.split.vocabPerRank[static_cast<size_t>(r)]) * 4;
      std::vector<float> all(static_cast<size_t>(rows * c.nVocab));
      double t0 = Now();
      peers.AllGatherV(local.data(), all.data(), bytes);
      exchange += Now() - t0;
      // Rank-major blocks (rows × vocabPerRank[r] each) → row-major rows × nVocab.
      const float* src = all.data();
      int64_t col = 0;
      for (int r = 0; r < P; ++r) {
        const int64_t n = c.split.vocabPerRank[static_cast<size_t>(r)];
        for (int64_t i = 0; i < rows; ++i) std::memcpy(logitsOut + i * c.nVocab + col, src + i * n, static_cast<size_t>(n) * 4);
        src += rows * n;
        col += n;
      }
    }
    // Rows asked for as hidden states: the normalized state itself, the same on every rank (the
    // output was computed for them too: one matmul for the step's rows, whatever each is for).
    for (int64_t i = 0; i < rows && static_cast<size_t>(i) < hiddenRows.size(); ++i)
      if (hiddenRows[static_cast<size_t>(i)])
        std::memcpy(logitsOut + i * c.nVocab, &xn[static_cast<size_t>(i * E)], static_cast<size_t>(E) * 4);
  }
  tm.seconds = Now() - start;
  tm.allReduces = peers.Tally().Since(tallied);
  tm.exchangeSeconds = exchange;
  tm.computeSeconds = tm.seconds - exchange;
  return tm;
}

}  // namespace redblue
