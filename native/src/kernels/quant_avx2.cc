// AVX2 kernels: one 32-value block per ymm, vpmaddubsw + vpmaddwd (no VNNI in plain AVX2).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/half.h"
#include "kernels/quant_impl.h"

#define KFN __attribute__((target("avx2,fma,f16c"), always_inline)) inline
#define KENTRY __attribute__((target("avx2,fma,f16c")))

namespace redblue {
namespace {

KFN float HSum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
KFN __m256 DotU8S8(__m256i u, __m256i s) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

// Q4_0: unsigned nibbles × signed x (max 15·127·2, no vpmaddubsw saturation); −8 offset via c.
template <int RX>
KFN void Q4Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ4_0* w = reinterpret_cast<const BlockQ4_0*>(a.w + j * a.wStride);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[RX];
  float corr[RX];
  for (int i = 0; i < RX; ++i) {
    acc[i] = _mm256_setzero_ps();
    corr[i] = 0.0f;
  }
  for (int64_t b = 0; b < act.nb; ++b) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs));
    const __m256i z = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);
    const float dw = _cvtsh_ss(w[b].d);
    for (int i = 0; i < RX; ++i) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.qs(r + i) + b * kQBlock));
      acc[i] = _mm256_fmadd_ps(DotU8S8(z, x), _mm256_set1_ps(dw * act.d(r + i)[b]), acc[i]);
      corr[i] += dw * act.c(r + i)[b];
    }
  }
  for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j] = HSum256(acc[i]) + corr[i];
}

// Q8_0: |w| unsigned × sign(x, w) (max 128·127·2, below the int16 saturation point).
template <int RX>
KFN void Q8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(a.w + j * a.wStride);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < act.nb; ++b) {
    const __m256i z = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i az = _mm256_abs_epi8(z);
    const float dw = _cvtsh_ss(w[b].d);
    for (int i = 0; i < RX; ++i) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.qs(r + i) + b * kQBlock));
      acc[i] = _mm256_fmadd_ps(DotU8S8(az, _mm256_sign_epi8(x, z)), _mm256_set1_ps(dw * act.d(r + i)[b]), acc[i]);
    }
  }
  for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j] = HSum256(acc[i]);
}

template <int RX, bool kBf16>
KFN void HalfTile(const QuantMatmulArgs& a, int64_t r, int64_t j) {
  const uint8_t* w = a.w + j * a.wStride;
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  int64_t e = 0;
  for (; e + 8 <= a.k; e += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * e));
    const __m256 wv = kBf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
    for (int i = 0; i < RX; ++i) acc[i] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(a.x + (r + i) * a.ldx + e), acc[i]);
  }
  for (int i = 0; i < RX; ++i) {
    float y = HSum256(acc[i]);
    for (int64_t t = e; t < a.k; ++t) {
      uint16_t h;
      std::memcpy(&h, w + 2 * t, 2);
      y += (kBf16 ? Bf16ToF32(h) : _cvtsh_ss(h)) * a.x[(r + i) * a.ldx + t];
    }
    a.y[(r + i) * a.ldy + j] = y;
  }
}

#include "kernels/row_tiles.inc"

}  // namespace

KernelSet Avx2Kernels() {
  KernelSet s;
  s.q8 = Q8Kernel;
  s.q4 = Q4Kernel;
  s.f16 = HalfKernel<false>;
  s.bf16 = HalfKernel<true>;
  return s;
}

}  // namespace redblue
