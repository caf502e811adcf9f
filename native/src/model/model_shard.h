// One rank's part of a GGUF transformer: its slices of the weights copied from the file into
// node-local memory, its KV-head groups' cache (f16, node-local), and Forward, which runs a
// whole step (all layers, both all-reduces per layer, the logits' all-gather) natively.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/node_memory.h"
#include "core/thread_pool.h"
#include "executor/collective.h"
#include "model/model_config.h"

namespace redblue {

// The file mapped read-only for the shard's lifetime (RAII).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Drops the pages read so far from this process's resident set (the page cache keeps them).
  void DropResident();

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// A weight matrix of `rows` rows of `cols` elements of GGUF type `ggml`, rows rowBytes apart.
// rows8: laid out for the kernels' rows8 form (quant.h InterleaveRows8), which only matmuls read.
struct ShardMatrix {
  const uint8_t* data = nullptr;
  int ggml = 0;
  int64_t rows = 0, cols = 0, rowBytes = 0;
  bool rows8 = false;
};

enum class LogitsMode { None, Last, All };

struct ModelLoadInfo {
  uint64_t weightBytes = 0, kvBytes = 0;
  std::string backing;
  double seconds = 0;
};

// Consecutive tokens of one sequence in a step: `count` tokens at positions pos.. of KV slot
// `slot`; logits: whether the step returns the logits after its last token.
struct SeqRun {
  int slot = 0;
  int64_t pos = 0, count = 0;
  // Rows of logits the run asks for: its last `logits` positions (0 none, 1 the last: a decode
  // step or a prompt's end; up to `count`: a prompt scored token by token).
  int64_t logits = 0;
  // ≥ 0: before the step, `slot` takes positions 0..pos-1 of slot `from`'s cache (a prompt's
  // beginning another sequence has computed: n choices of one prompt, a shared system prompt).
  int from = -1;
  // Its rows are the final hidden states (after output_norm: what llama.cpp calls the
  // embeddings), nEmbd floats at the start of each row, instead of logits.
  bool hidden = false;
};

struct ModelForwardTimings {
  double seconds = 0, computeSeconds = 0, exchangeSeconds = 0;
  AllReduceTally allReduces;  // the step's all-reduces, by algorithm
};

class ModelShard {
 public:
  // Checks the configuration against the file's tensor table and plans this rank's slices
  // (UserError on any mismatch, e.g. a column cut inside a quantized block); copies nothing.
  explicit ModelShard(ModelConfig cfg);
  ~ModelShard();
  // Copies the slices into node-local memory and makes the KV cache. progress(done, total) in
  // bytes, called from this thread between batches of copies.
  ModelLoadInfo Load(ThreadPool& pool, const std::function<void(uint64_t, uint64_t)>& progress);
  // Runs nTokens tokens at positions pos.. through every layer; every rank of `peers` makes the
  // same call. logitsOut (when mode is not None) receives nVocab floats per token asked for
  // (the last one, or every one), identical on every rank.
  ModelForwardTimings Forward(const int32_t* tokens, int64_t nTokens, int64_t pos, LogitsMode mode, ThreadPool& pool,
                              Collective& peers, float* logitsOut);
  // One step of several sequences (a server's batch): runs[i] takes the next runs[i].count of
  // `tokens`; every matmul serves all of them at once, attention runs per sequence in its slot.
  // logitsOut receives nVocab floats for each run with logits set, in run order. A slot may
  // appear once per step; a run at position 0 starts its slot's sequence afresh.
  ModelForwardTimings ForwardRuns(const int32_t* tokens, const SeqRun* runs, int nRuns, ThreadPool& pool,
                                  Collective& peers, float* logitsOut);
  const ModelConfig& config() const { return cfg_; }
  bool loaded() const { return loaded_; }

 private:
  struct Layer {
    const float *attnNorm = nullptr, *ffnNorm = nullptr, *qNorm = nullptr, *kNorm = nullptr;
    const float *qBias = nullptr, *kBias = nullptr, *vBias = nullptr, *oBias = nullptr;
    ShardMatrix q, k, v, o, gate, up, down;
  };
  // A strided copy from the file into the weight buffer: `rows` rows of `copyBytes` bytes,
  // `srcStride` apart in the file; toF32: the source is `count` elements of type ggml to widen;
  // rows8: the rows (`count` elements each) interleaved on the way (InterleaveRows8).
  struct Piece {
    uint64_t src = 0, srcStride = 0, dst = 0, copyBytes = 0;
    int64_t rows = 1;
    bool toF32 = false, rows8 = false;
    int ggml = 0;
    int64_t count = 0;
  };
  const ModelTensorRef* Find(const std::string& name, bool required) const;
  // matmulOnly: the copy is read by matmuls alone, so it may take the kernels' rows8 layout.
  uint64_t PlanMatrix(const std::string& name, int64_t rowLo, int64_t rowHi, int64_t colLo, int64_t colHi,
                      const std::vector<int64_t>& shape, ShardMatrix* out, bool matmulOnly);
  uint64_t PlanVector(const std::string& name, int64_t lo, int64_t hi, int64_t length);
  // y = x·wᵀ for each output of one x (m rows of w.cols, ldx apart): a layer's q, k and v, or
  // gate and up, take x quantized once (MatmulQShared).
  struct MatmulOut {
    const ShardMatrix& w;
    float* y;
    int64_t ldy;
  };
  void Matmul(std::initializer_list<MatmulOut> outs, const float* x, int64_t m, int64_t ldx, ThreadPool& pool) const;
  // Slot `to`'s cache takes positions 0..positions-1 of slot `from`'s, every layer.
  void CopyPrefix(int from, int to, int64_t positions);
  // The step itself, after the caller's checks: logits for the tokens at indices `logitRows`
  // (row i their hidden state instead where hiddenRows[i] is non-zero).
  ModelForwardTimings Step(const int32_t* tokens, const SeqRun* runs, int nRuns, const std::vector<int64_t>& logitRows,
                           ThreadPool& pool, Collective& peers, float* logitsOut,
                           const std::vector<uint8_t>& hiddenRows = {});
  void CheckCall(Collective& peers) const;
  void CheckTokens(const int32_t* tokens, int64_t n) const;

  ModelConfig cfg_;
  std::unique_ptr<MappedFile> file_;
  std::vector<Piece> pieces_;
  uint64_t planned_ = 0;  // bytes of the weight buffer
  std::unique_ptr<NodeBuffer> weights_, kv_;
  // Pointers planned as offsets into weights_, set once it exists.
  std::vector<std::pair<const float**, uint64_t>> fixVecs_;
  std::vector<std::pair<ShardMatrix*, uint64_t>> fixMats_;
  std::vector<Layer> layers_;
  const float* outputNorm_ = nullptr;
  const float* ropeFreqs_ = nullptr;
  ShardMatrix output_;
  ShardMatrix embd_;  // in the file mapping (a step reads only its tokens' rows), or copied when mirrorEmbeddings
  int64_t qHeads_ = 0, kvHeads_ = 0, ffRows_ = 0, vocabRows_ = 0;
  uint64_t kvSlotBytes_ = 0;   // K (or V) of one layer for one sequence: kvHeads_ × nCtx × headDim f16
  uint64_t kvLayerBytes_ = 0;  // K (then V) of one layer: nSlots × kvSlotBytes_
  std::vector<int64_t> filled_;  // per slot: positions 0..filled_-1 hold K and V
  bool loaded_ = false;
  std::mutex busy_;  // one Load or Forward at a time
};

}  // namespace redblue
