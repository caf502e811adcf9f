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

namespace {
// Σ x² in double, as ggml sums it, but in 8 lanes (lane l takes x[i]² for i ≡ l mod 8), the
// lanes added 0 to 7, then the last n mod 8 values: the same bits on every path (a float's
// square is exact in double, so an fma and a multiply-then-add give the same sums).
// One serial sum was a 4-cycle chain per value (2.5 µs a row of 2048): 1.8 % of a step of 8
// sequences.
constexpr int kLanes = 8;
// The lanes' sums of x[0, i) added, then x[i, n) one by one.
double FoldLanes(const double* lane, const float* x, int64_t i, int64_t n) {
  double ss = 0;
  for (int l = 0; l < kLanes; ++l) ss += lane[l];
  for (; i < n; ++i) ss += double(x[i]) * double(x[i]);
  return ss;
}
double SumSquaresScalar(const float* x, int64_t n) {
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += double(x[i + l]) * double(x[i + l]);
  return FoldLanes(lane, x, i, n);
}
__attribute__((target("avx2,fma"))) double SumSquaresAvx2(const float* x, int64_t n) {
  __m256d lo = _mm256_setzero_pd(), hi = lo;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    lo = _mm256_fmadd_pd(a, a, lo);
    hi = _mm256_fmadd_pd(b, b, hi);
  }
  alignas(32) double lane[kLanes];
  _mm256_store_pd(lane, lo);
  _mm256_store_pd(lane + 4, hi);
  return FoldLanes(lane, x, i, n);
}
}  // namespace

void RmsNormRows(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  const CpuFeatures& f = DetectCpu();
  const auto sumSquares = f.avx2 && f.fma ? SumSquaresAvx2 : SumSquaresScalar;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const double ss = sumSquares(xr, n);
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
    if (w)
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale * w[i];
    else
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale;
  }
}

void RopeAngles(int64_t headDim, int64_t pos, float base, float scale, const float* freqFactors, float* c,
                float* s) {
  for (int64_t i = 0; i < headDim / 2; ++i) {
    double theta = static_cast<double>(pos) / scale * std::pow(static_cast<double>(base), -2.0 * i / headDim);
    if (freqFactors) theta /= freqFactors[i];
    c[i] = static_cast<float>(std::cos(theta));
    s[i] = static_cast<float>(std::sin(theta));
  }
}

void RopeApply(float* x, int64_t heads, int64_t headDim, bool neox, const float* c, const float* s) {
  const int64_t half = headDim / 2;
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
