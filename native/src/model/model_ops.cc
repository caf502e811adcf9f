#include "model/model_ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/errors.h"
#include "kernels/exp_avx2.h"
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

namespace {
__attribute__((target("avx2,fma"))) void SwiGluAvx2(float* g, const float* u, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 silu = _mm256_div_ps(x, _mm256_add_ps(one, Exp8(_mm256_sub_ps(zero, x))));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}
}  // namespace

void SwiGluInPlace(float* g, const float* u, int64_t n, Isa isa) {
  const CpuFeatures& f = DetectCpu();
  if (isa != Isa::Scalar && f.avx2 && f.fma) return SwiGluAvx2(g, u, n);
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace redblue
