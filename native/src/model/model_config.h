// The transformer step of `redblue generate`, plain C++ (no N-API):
//   1. model_config.h  what a rank is told: hyperparameters, the GGUF tensor table, its split
//   2. model_ops.{h,cc} the arithmetic between matmuls (RMSNorm, RoPE, attention, SwiGLU)
//   3. model_shard.{h,cc} a rank's slices of the weights and its KV cache, and Forward
// Tensor parallel as Megatron: Q/K/V and gate/up by output rows (whole KV-head groups, one n_ff
// slice), attn_output and ffn_down by input columns (one all-reduce each), the vocabulary
// projection by rows then all-gathered. The hidden state is replicated on every rank.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/quant.h"

namespace redblue {

enum class ModelArch { Llama, Qwen2, Qwen3 };

constexpr int kMaxModelSlots = 64;  // sequences one shard serves at once
ModelArch ParseModelArch(const std::string& s);  // "llama" | "qwen2" | "qwen3"

// One tensor of the GGUF file, as its header describes it.
struct ModelTensorRef {
  std::string name;
  int ggmlType = 0;         // GGUF `type` (0 F32, 1 F16, 2 Q4_0, 8 Q8_0, 30 BF16, ...)
  std::vector<int64_t> ne;  // ggml ne: ne[0] is the row length
  uint64_t offset = 0;      // absolute byte offset of its data in the file
};

// What this rank computes: KV-head groups [kvLo, kvHi) (with their nHead/nHeadKv query heads),
// the n_ff slice [ffLo, ffHi), vocabulary rows [vocabLo, vocabHi); vocabPerRank: every rank's
// vocabulary rows in rank order (the all-gather of the logits).
struct ModelSplit {
  int rank = 0, ranks = 1;
  int64_t kvLo = 0, kvHi = 0, ffLo = 0, ffHi = 0, vocabLo = 0, vocabHi = 0;
  std::vector<int64_t> vocabPerRank;
};

struct ModelConfig {
  std::string path;
  int node = 0;
  ModelArch arch = ModelArch::Llama;
  int nLayer = 0;
  int64_t nEmbd = 0, nHead = 0, nHeadKv = 0, headDim = 0, nFf = 0, nVocab = 0, nCtx = 0;
  float normEps = 1e-5f, ropeBase = 10000.0f, ropeScale = 1.0f;
  bool ropeNeox = false;
  bool qkNorm = false;   // qwen3: RMSNorm over each head of Q and K before RoPE
  bool qkvBias = false;  // biases on Q, K, V: required (qwen2); other archs use them when the file has them
  std::vector<ModelTensorRef> tensors;
  ModelSplit split;
  Isa isa = Isa::Auto;  // instruction-set path of the matmuls and the attention (tests force scalar)
  // Sequences whose KV caches this rank holds side by side (nCtx positions each): a server's
  // batch of streams. batchInvariant: matmul rows through the row-invariant kernels, so a
  // sequence's tokens do not depend on what else shares its steps.
  int nSlots = 1;
  bool batchInvariant = false;
  // Steps of at most this many tokens also take the row-invariant kernels: a step that verifies
  // drafted tokens (generate --lookup) gives each its logits as a step of its own would.
  int invariantTokens = 0;
  // A copy of token_embd in this node's memory (the planner's choice when ranks sit on
  // different memory nodes); otherwise rows are read from the file's shared pages.
  bool mirrorEmbeddings = false;
};

// Throws UserError naming the first inconsistency (shapes, split ranges, head grouping).
void CheckModelConfig(const ModelConfig& c);

}  // namespace redblue
