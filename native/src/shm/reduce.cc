#include "shm/reduce.h"

#include <immintrin.h>

#include <cstring>

#include "core/cpu_features.h"

namespace redblue::shm {
namespace {

void SumF32Scalar(float* out, float* out2, const float* const* src, int nsrc, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float acc = src[0][i];
    for (int s = 1; s < nsrc; ++s) acc += src[s][i];
    out[i] = acc;
    if (out2) out2[i] = acc;
  }
}

// All sources of 64 elements are summed in registers, so `out` is written once.
__attribute__((target("avx512f"))) void SumF32Avx512(float* out, float* out2, const float* const* src, int nsrc,
                                                     size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512 a0 = _mm512_loadu_ps(src[0] + i), a1 = _mm512_loadu_ps(src[0] + i + 16);
    __m512 a2 = _mm512_loadu_ps(src[0] + i + 32), a3 = _mm512_loadu_ps(src[0] + i + 48);
    for (int s = 1; s < nsrc; ++s) {
      const float* p = src[s] + i;
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p));
      a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + 16));
      a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + 32));
      a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + 48));
    }
    _mm512_storeu_ps(out + i, a0);
    _mm512_storeu_ps(out + i + 16, a1);
    _mm512_storeu_ps(out + i + 32, a2);
    _mm512_storeu_ps(out + i + 48, a3);
    if (out2) {
      _mm512_storeu_ps(out2 + i, a0);
      _mm512_storeu_ps(out2 + i + 16, a1);
      _mm512_storeu_ps(out2 + i + 32, a2);
      _mm512_storeu_ps(out2 + i + 48, a3);
    }
  }
  for (; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 a = _mm512_maskz_loadu_ps(m, src[0] + i);
    for (int s = 1; s < nsrc; ++s) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(m, src[s] + i));
    _mm512_mask_storeu_ps(out + i, m, a);
    if (out2) _mm512_mask_storeu_ps(out2 + i, m, a);
  }
}

// The maskz forms with a full mask compute the same as the plain ones; GCC 12's plain ones pass
// _mm512_undefined_epi32() (a self-initialised variable) and warn -Wmaybe-uninitialized when inlined.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512 LoadBf16(__mmask16 m, const uint16_t* p) {
  __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, h), 16));
}

// Round to nearest even, NaN kept quiet: the same rule as F32ToBf16. (maskz forms: see LoadBf16.)
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m256i ToBf16(__m512 v) {
  __m512i u = _mm512_castps_si512(v);
  __m512i lsb = _mm512_and_si512(_mm512_maskz_srli_epi32(0xffff, u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
  return _mm512_maskz_cvtepi32_epi16(0xffff, _mm512_maskz_srli_epi32(0xffff, r, 16));
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void SumBf16Avx512(uint16_t* out, uint16_t* out2,
                                                                        const uint16_t* const* src, int nsrc, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 a = LoadBf16(m, src[0] + i);
    for (int s = 1; s < nsrc; ++s) a = _mm512_add_ps(a, LoadBf16(m, src[s] + i));
    __m256i r = ToBf16(a);
    _mm256_mask_storeu_epi16(out + i, m, r);
    if (out2) _mm256_mask_storeu_epi16(out2 + i, m, r);
  }
}

void SumBf16Scalar(uint16_t* out, uint16_t* out2, const uint16_t* const* src, int nsrc, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float acc = Bf16ToF32(src[0][i]);
    for (int s = 1; s < nsrc; ++s) acc += Bf16ToF32(src[s][i]);
    out[i] = F32ToBf16(acc);
    if (out2) out2[i] = out[i];
  }
}

bool HasAvx512() {
  static const bool ok = DetectCpu().avx512f && DetectCpu().avx512bw && DetectCpu().avx512vl;
  return ok;
}

}  // namespace

void SumF32(float* out, float* out2, const float* const* src, int nsrc, size_t n) {
  if (n == 0) return;
  if (!HasAvx512()) return SumF32Scalar(out, out2, src, nsrc, n);
  SumF32Avx512(out, out2, src, nsrc, n);
}

void SumBf16(uint16_t* out, uint16_t* out2, const uint16_t* const* src, int nsrc, size_t n) {
  if (n == 0) return;
  if (!HasAvx512()) return SumBf16Scalar(out, out2, src, nsrc, n);
  SumBf16Avx512(out, out2, src, nsrc, n);
}

void CopyBytes(void* dst, const void* src, size_t bytes) {
  if (bytes && dst != src) std::memcpy(dst, src, bytes);
}

}  // namespace redblue::shm
