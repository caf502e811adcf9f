#include "model/model_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/half.h"

namespace redblue {

void RmsNormRows(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double ss = 0;  // as ggml: the sum of squares in double
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
    if (w)
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale * w[i];
    else
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale;
  }
}

void RopeInPlace(float* x, int64_t heads, int64_t headDim, int64_t pos, float base, float scale, bool neox,
                 const float* freqFactors) {
  const int64_t half = headDim / 2;
  // One angle per pair, shared by every head.
  float cs[512], sn[512];
  std::vector<float> big;
  float* c = cs;
  float* s = sn;
  if (half > 512) {
    big.resize(static_cast<size_t>(2 * half));
    c = big.data();
    s = big.data() + half;
  }
  for (int64_t i = 0; i < half; ++i) {
    double theta = static_cast<double>(pos) / scale * std::pow(static_cast<double>(base), -2.0 * i / headDim);
    if (freqFactors) theta /= freqFactors[i];
    c[i] = static_cast<float>(std::cos(theta));
    s[i] = static_cast<float>(std::sin(theta));
  }
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * headDim;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c[i] - x1 * s[i];
      v[b] = x0 * s[i] + x1 * c[i];
    }
  }
}

void CausalAttention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t tasks = a.nTokens * a.qHeads;
  if (tasks == 0) return;
  const int64_t qStride = a.qHeads * a.headDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.headDim));
  std::vector<std::vector<float>> scratch(pool.size());
  pool.ParallelFor(tasks, [&](int64_t task, int worker) {
    const int64_t t = task / a.qHeads, h = task % a.qHeads;
    const int64_t kv = h / a.group;
    const int64_t len = a.pos0 + t + 1;  // causal: positions 0..pos0+t
    std::vector<float>& buf = scratch[static_cast<size_t>(worker)];
    if (static_cast<int64_t>(buf.size()) < len + a.headDim) buf.resize(static_cast<size_t>(len + a.headDim));
    float* score = buf.data();
    float* acc = buf.data() + len;
    const float* q = a.q + t * qStride + h * a.headDim;
    const uint16_t* K = a.kCache + kv * a.nCtx * a.headDim;
    const uint16_t* V = a.vCache + kv * a.nCtx * a.headDim;
    float mx = -INFINITY;
    for (int64_t j = 0; j < len; ++j) {
      const uint16_t* k = K + j * a.headDim;
      float d = 0;
      for (int64_t i = 0; i < a.headDim; ++i) d += q[i] * F16ToF32(k[i]);
      score[j] = d * scale;
      mx = std::max(mx, score[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < len; ++j) {
      score[j] = std::exp(score[j] - mx);
      sum += score[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    std::fill(acc, acc + a.headDim, 0.0f);
    for (int64_t j = 0; j < len; ++j) {
      const float p = score[j] * inv;
      const uint16_t* v = V + j * a.headDim;
      for (int64_t i = 0; i < a.headDim; ++i) acc[i] += p * F16ToF32(v[i]);
    }
    std::copy(acc, acc + a.headDim, a.out + t * qStride + h * a.headDim);
  });
}

void SwiGluInPlace(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace redblue
