// The arithmetic of a transformer layer between its matmuls, in f32, as llama.cpp computes it.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/quant.h"

namespace redblue {

// y[r] = x[r] / sqrt(mean(x[r]²) + eps) · w, for `rows` rows of n (w: n floats, or null for
// none). y may alias x.
void RmsNormRows(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);

// Rotary position embedding in place on `heads` heads of `headDim` floats each (consecutive),
// for one token at position `pos`. Normal (llama): pairs (2i, 2i+1); NeoX (qwen): (i, i+d/2).
// theta_i = pos/scale · base^(−2i/d) / freqFactors[i] (freqFactors: d/2 floats, or null).
void RopeInPlace(float* x, int64_t heads, int64_t headDim, int64_t pos, float base, float scale, bool neox,
                 const float* freqFactors);

// Causal attention of `nTokens` new tokens (positions pos0..pos0+nTokens−1) for `qHeads` query
// heads over a KV cache of f16 rows: K and V of KV head h at position j are at
// kCache/vCache + (h·nCtx + j)·headDim. Query head i reads KV head i / group. q: nTokens rows of
// qHeads·headDim; out: the same shape. Softmax in f32 with scale 1/sqrt(headDim). Parallel over
// (KV head, token) on the pool: each cached row is widened once for the query heads sharing it.
// isa: Scalar, or Avx2 (F16C conversions, FMA); Auto takes Avx2 when the cpu has it.
struct AttentionArgs {
  const float* q = nullptr;
  const uint16_t* kCache = nullptr;
  const uint16_t* vCache = nullptr;
  float* out = nullptr;
  int64_t nTokens = 0, pos0 = 0, qHeads = 0, group = 1, headDim = 0, nCtx = 0;
  Isa isa = Isa::Auto;
};
void CausalAttention(const AttentionArgs& a, ThreadPool& pool);

// g[i] = silu(g[i]) · u[i].
void SwiGluInPlace(float* g, const float* u, int64_t n);

}  // namespace redblue
