// Causal self-attention over a sequence's f16 KV cache: the one part of a layer whose work grows
// with the context (a prompt of n tokens costs n²/2 dot products per head).
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/quant.h"

namespace redblue {

// The KV cache's layout, in f16 values. V of KV head h at position j, dim d: (h·nCtx + j)·headDim
// + d (rows of a position). K: per head, chunks of kKeyChunk positions, each chunk transposed
// (headDim rows of kKeyChunk keys), so a score tile reads 16 keys of one dim as one vector: K
// need not be widened and transposed again at every step (5 % of a step of 8 sequences at 400
// tokens of context, and growing with it). nCtx is a multiple of kKeyChunk (KvCtx rounds up).
constexpr int64_t kKeyChunk = 128;
inline int64_t KvCtx(int64_t nCtx) { return (nCtx + kKeyChunk - 1) / kKeyChunk * kKeyChunk; }
inline int64_t KIndex(int64_t h, int64_t j, int64_t d, int64_t nCtx, int64_t headDim) {
  return (h * nCtx + j / kKeyChunk * kKeyChunk) * headDim + d * kKeyChunk + j % kKeyChunk;
}
inline int64_t VIndex(int64_t h, int64_t j, int64_t d, int64_t nCtx, int64_t headDim) {
  return (h * nCtx + j) * headDim + d;
}

// Causal attention of `nTokens` new tokens (positions pos0..pos0+nTokens−1) for `qHeads` query
// heads over a KV cache laid out as above (nCtx a multiple of kKeyChunk, else UserError). Query
// head i reads KV head i / group. q: nTokens rows of qHeads·headDim; out: the same shape. Softmax
// in f32 with scale 1/sqrt(headDim).
// isa: Scalar, Avx2 (F16C conversions, FMA), or Auto / an AVX-512 path: the AVX-512 tiles
// where the cpu has them and headDim is a multiple of 16, the AVX2 ones otherwise (same bits).
//
// On the tiled paths each output row is bit-identical whatever nTokens and pos0 are (a token
// attended in a prompt batch equals the same token attended alone): a server batching sequences
// gives each the tokens it would get alone.
struct AttentionArgs {
  const float* q = nullptr;
  const uint16_t* kCache = nullptr;
  const uint16_t* vCache = nullptr;
  float* out = nullptr;
  int64_t nTokens = 0, pos0 = 0, qHeads = 0, group = 1, headDim = 0, nCtx = 0;
  Isa isa = Isa::Auto;
};
void CausalAttention(const AttentionArgs& a, ThreadPool& pool);

}  // namespace redblue
