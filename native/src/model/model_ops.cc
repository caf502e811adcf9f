#include "model/model_ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/errors.h"
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

// The attention's inner loops: f16 rows widened to f32, dot products, and p·v accumulations.
struct AttentionKernels {
  void (*widen)(const uint16_t* h, float* out, int64_t n);
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float* acc, float p, const float* v, int64_t n);
  bool avx2 = false;  // the fused AVX2 path below serves head sizes that are whole ymm
};

void WidenScalar(const uint16_t* h, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = F16ToF32(h[i]);
}
float DotScalar(const float* a, const float* b, int64_t n) {
  float d = 0;
  for (int64_t i = 0; i < n; ++i) d += a[i] * b[i];
  return d;
}
void AxpyScalar(float* acc, float p, const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += p * v[i];
}

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
AVX2_FN void WidenAvx2(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) out[i] = F16ToF32(h[i]);
}
AVX2_FN float DotAvx2(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  float d = _mm_cvtss_f32(s);
  for (; i < n; ++i) d += a[i] * b[i];
  return d;
}
AVX2_FN void AxpyAvx2(float* acc, float p, const float* v, int64_t n) {
  const __m256 pv = _mm256_set1_ps(p);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
  for (; i < n; ++i) acc[i] += p * v[i];
}
// One KV head's attention for its nh query heads over positions [0, len), for head sizes that
// are whole ymm: K and V rows widened once into kw / vw, the dot products of eight keys reduced
// together (one transpose-add instead of eight horizontal sums), and each head's output held in
// registers while V streams by (instead of a load, FMA and store of the output per key). The
// softmax between the two halves is the caller's, shared with the other paths.
AVX2_FN __m256 SumEach8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6, __m256 a7) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}
AVX2_FN void ScoresAvx2(const float* q, const float* kw, int64_t len, int64_t nh, int64_t hd, float scale,
                        float* score) {
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t h = 0; h < nh; ++h) {
    const float* qh = q + h * hd;
    float* sh = score + h * len;
    int64_t j = 0;
    for (; j + 8 <= len; j += 8) {
      __m256 acc[8];
      for (int kk = 0; kk < 8; ++kk) acc[kk] = _mm256_setzero_ps();
      for (int64_t c = 0; c < hd; c += 8) {
        const __m256 qv = _mm256_loadu_ps(qh + c);
        for (int kk = 0; kk < 8; ++kk) acc[kk] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kw + (j + kk) * hd + c), acc[kk]);
      }
      _mm256_storeu_ps(sh + j, _mm256_mul_ps(SumEach8(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]), vs));
    }
    for (; j < len; ++j) sh[j] = DotAvx2(qh, kw + j * hd, hd) * scale;
  }
}
AVX2_FN void WeightedValuesAvx2(const float* score, const float* vw, int64_t len, int64_t nh, int64_t hd, float* out,
                                int64_t outStride) {
  for (int64_t h = 0; h < nh; ++h) {
    const float* sh = score + h * len;
    for (int64_t c0 = 0; c0 < hd; c0 += 64) {  // eight ymm of the output at a time
      const int64_t n8 = std::min<int64_t>(8, (hd - c0) / 8);
      __m256 acc[8];
      for (int c = 0; c < 8; ++c) acc[c] = _mm256_setzero_ps();
      for (int64_t j = 0; j < len; ++j) {
        const __m256 p = _mm256_set1_ps(sh[j]);
        const float* v = vw + j * hd + c0;
        for (int c = 0; c < 8; ++c)
          if (c < n8) acc[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * c), acc[c]);
      }
      for (int c = 0; c < 8; ++c)
        if (c < n8) _mm256_storeu_ps(out + h * outStride + c0 + 8 * c, acc[c]);
    }
  }
}
#undef AVX2_FN

AttentionKernels KernelsFor(Isa isa) {
  const CpuFeatures& f = DetectCpu();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  if (isa == Isa::Scalar || (isa == Isa::Auto && !avx2)) return {WidenScalar, DotScalar, AxpyScalar};
  if (!avx2) throw UserError(std::string("the ") + IsaName(isa) + " attention path needs AVX2, FMA and F16C, which this cpu lacks");
  return {WidenAvx2, DotAvx2, AxpyAvx2, true};  // AVX-512 cpus run the AVX2 path: attention is a small share of a step
}

}  // namespace

void CausalAttention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t kvHeads = a.group > 0 ? a.qHeads / a.group : 0;
  if (a.nTokens == 0 || kvHeads == 0) return;
  const AttentionKernels kern = KernelsFor(a.isa);
  // Tasks: (token, KV head, a range of that head's query heads). The range is the whole group
  // unless there are too few (token, KV head) pairs to keep the pool busy.
  const int64_t pairs = a.nTokens * kvHeads;
  const int64_t splits = std::min<int64_t>(a.group, std::max<int64_t>(1, (2 * static_cast<int64_t>(pool.size()) + pairs - 1) / pairs));
  const int64_t per = (a.group + splits - 1) / splits;
  const int64_t qStride = a.qHeads * a.headDim, hd = a.headDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<std::vector<float>> scratch(pool.size());
  pool.ParallelFor(pairs * splits, [&](int64_t task, int worker) {
    const int64_t t = task / (kvHeads * splits), kv = task / splits % kvHeads, part = task % splits;
    const int64_t h0 = kv * a.group + part * per, h1 = std::min(kv * a.group + a.group, h0 + per);
    if (h1 <= h0) return;
    const int64_t nh = h1 - h0;
    const int64_t len = a.pos0 + t + 1;  // causal: positions 0..pos0+t
    std::vector<float>& buf = scratch[static_cast<size_t>(worker)];
    const bool fused = kern.avx2 && hd % 8 == 0;
    const size_t need = static_cast<size_t>(nh * len + nh * hd + hd + (fused ? 2 * len * hd : 0));
    if (buf.size() < need) buf.resize(need);
    float* score = buf.data();            // nh × len
    float* acc = score + nh * len;        // nh × hd
    float* row = acc + nh * hd;           // one widened K or V row
    const uint16_t* K = a.kCache + kv * a.nCtx * hd;
    const uint16_t* V = a.vCache + kv * a.nCtx * hd;
    const float* q = a.q + t * qStride + h0 * hd;
    float* kw = row + hd;  // fused path: every K row, then every V row, widened
    float* vw = kw + len * hd;
    if (fused) {
      WidenAvx2(K, kw, len * hd);
      ScoresAvx2(q, kw, len, nh, hd, scale, score);
    } else {
      for (int64_t j = 0; j < len; ++j) {
        kern.widen(K + j * hd, row, hd);
        for (int64_t h = 0; h < nh; ++h) score[h * len + j] = kern.dot(q + h * hd, row, hd) * scale;
      }
    }
    for (int64_t h = 0; h < nh; ++h) {
      float* s = score + h * len;
      float mx = -INFINITY;
      for (int64_t j = 0; j < len; ++j) mx = std::max(mx, s[j]);
      double sum = 0;
      for (int64_t j = 0; j < len; ++j) {
        s[j] = std::exp(s[j] - mx);
        sum += s[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < len; ++j) s[j] *= inv;
    }
    if (fused) {
      WidenAvx2(V, vw, len * hd);
      WeightedValuesAvx2(score, vw, len, nh, hd, a.out + t * qStride + h0 * hd, hd);
      return;
    }
    std::fill(acc, acc + nh * hd, 0.0f);
    for (int64_t j = 0; j < len; ++j) {
      kern.widen(V + j * hd, row, hd);
      for (int64_t h = 0; h < nh; ++h) kern.axpy(acc + h * hd, score[h * len + j], row, hd);
    }
    for (int64_t h = 0; h < nh; ++h) std::copy(acc + h * hd, acc + (h + 1) * hd, a.out + t * qStride + (h0 + h) * hd);
  });
}

void SwiGluInPlace(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace redblue
