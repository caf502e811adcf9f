// Causal self-attention over a sequence's f16 KV cache: the one part of a layer whose work grows
// with the context (a prompt of n tokens costs n²/2 dot products per head).
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/quant.h"

namespace redblue {

// Causal attention of `nTokens` new tokens (positions pos0..pos0+nTokens−1) for `qHeads` query
// heads over a KV cache of f16 rows: K and V of KV head h at position j are at
// kCache/vCache + (h·nCtx + j)·headDim. Query head i reads KV head i / group. q: nTokens rows of
// qHeads·headDim; out: the same shape. Softmax in f32 with scale 1/sqrt(headDim).
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
