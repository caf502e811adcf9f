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
// RopeAngles gives a position's cos and sin (d/2 each), computed once per token and step;
// RopeApply turns the heads by them in every layer.
void RopeAngles(int64_t headDim, int64_t pos, float base, float scale, const float* freqFactors, float* cos,
                float* sin);
void RopeApply(float* x, int64_t heads, int64_t headDim, bool neox, const float* cos, const float* sin);

// g[i] = silu(g[i]) · u[i]; the exponential through Exp8 (kernels/exp_avx2.h) unless isa is
// Scalar or the cpu lacks AVX2.
void SwiGluInPlace(float* g, const float* u, int64_t n, Isa isa);

}  // namespace redblue
