// AVX-512 matmul kernels, included three times (deliberately no include guard) by
// quant_avx512.cc (F/BW/VL: vpmaddubsw + vpmaddwd), quant_avx512vnni.cc (+VNNI: vpdpbusd) and
// quant_avx512vbmi.cc (+VBMI byte permute for Q4_0). Each includer defines KNS (namespace),
// KTARGET (target attribute string), KVNNI and KVBMI (0/1).
// GCC 12 flags the undefined upper half of _mm512_cast*128/256 casts; the lanes are never used.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/half.h"
#include "kernels/quant_impl.h"


#define KFN __attribute__((target(KTARGET), always_inline)) inline
#define KENTRY __attribute__((target(KTARGET)))

namespace redblue {
namespace KNS {
namespace {

// Σ over each 4-byte group of u8·s8 into int32 lanes.
KFN __m512i DotU8S8(__m512i u, __m512i s) {
#if KVNNI
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

// Two f16 scales → lanes 0, 1 of an xmm (lanes 2, 3 zero).
KFN __m128 TwoScales(uint16_t d0, uint16_t d1) {
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d0 | (static_cast<uint32_t>(d1) << 16))));
}
KFN __m128 TwoFloats(const float* p) { return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p))); }

// Weights stream from DRAM once: the kernels ask for them this far ahead, into L2 (past a row's
// end is harmless, prefetches never fault). Measured on this VM, Q4_0 m = 1 from DRAM, one
// thread, best call: 20-21 GB/s with the hardware prefetcher alone or T0 at 4 KiB, 22-24 GB/s
// with T1 at 8-16 KiB.
constexpr int kPrefetchBytes = 16384;

KFN void PrefetchAhead(const void* p) {
  const char* ahead = static_cast<const char*>(p) + kPrefetchBytes;
  _mm_prefetch(ahead, _MM_HINT_T1);
  _mm_prefetch(ahead + 64, _MM_HINT_T1);
  _mm_prefetch(ahead + 128, _MM_HINT_T1);
}

// Eight f16 scales of consecutive blocks `stride` bytes apart (the first at p) → 8 floats.
// The scales sit at even offsets inside the first 128 bytes for Q4_0 (18-byte blocks), so one
// two-register word permute replaces eight scalar loads.
KFN __m256 EightScalesQ4(const uint8_t* p) {
  const __m512i lo = _mm512_loadu_si512(p), hi = _mm512_loadu_si512(p + 64);
  const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 63,
                                       54, 45, 36, 27, 18, 9, 0);
  return _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(lo, idx, hi)));
}
// Four Q8_0 scales (34-byte blocks: offsets 0, 34, 68, 102) → 4 floats.
KFN __m128 FourScalesQ8(const uint8_t* p) {
  const __m512i lo = _mm512_loadu_si512(p), hi = _mm512_loadu_si512(p + 64);
  const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0, 51, 34, 17, 0);
  return _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(lo, idx, hi)));
}

// Σ over 4-byte groups of lo·xlo + hi·xhi (u8·s8) into int32 lanes: both halves of a block
// land in the same lanes, so a quad of blocks needs one conversion and one scale.
KFN __m512i DotQuad(__m512i lo, __m512i xlo, __m512i hi, __m512i xhi) {
#if KVNNI
  return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xlo), hi, xhi);
#else
  // 2·15·127·2 < 2^15: the int16 sums of both halves cannot saturate.
  return _mm512_madd_epi16(_mm512_add_epi16(_mm512_maddubs_epi16(lo, xlo), _mm512_maddubs_epi16(hi, xhi)),
                           _mm512_set1_epi16(1));
#endif
}

// The 64 packed bytes of Q4_0 blocks b..b+3 (16 each, 18-byte stride) in one register.
KFN __m512i QuadBytesQ4(const BlockQ4_0* w) {
#if KVBMI
  // One two-register byte permute; the second load is masked to the 8 bytes the quad still
  // owns (72 in all), so it never reads past the end of the weights.
  const uint8_t* p = reinterpret_cast<const uint8_t*>(w);
  const __m512i idx = _mm512_set_epi8(71, 70, 69, 68, 67, 66, 65, 64, 63, 62, 61, 60, 59, 58, 57, 56, 53, 52, 51, 50,
                                      49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 35, 34, 33, 32, 31, 30, 29, 28,
                                      27, 26, 25, 24, 23, 22, 21, 20, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
                                      3, 2);
  return _mm512_permutex2var_epi8(_mm512_loadu_si512(p), idx, _mm512_maskz_loadu_epi8(0xFFull, p + 64));
#else
  const __m256i t01 =
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[0].qs))),
                              _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[1].qs)), 1);
  const __m256i t23 =
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[2].qs))),
                              _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[3].qs)), 1);
  return _mm512_inserti64x4(_mm512_castsi256_si512(t01), t23, 1);
#endif
}

// int32 lanes 4i..4i+3 hold block i's Σ q·x for a quad (ActLayout::Q4Quads), as floats.
KFN __m512 QuadSumsQ4(const BlockQ4_0* w, const int8_t* x) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i z = QuadBytesQ4(w);
  return _mm512_cvtepi32_ps(DotQuad(_mm512_and_si512(z, m4), _mm512_loadu_si512(x),
                                    _mm512_and_si512(_mm512_srli_epi16(z, 4), m4), _mm512_loadu_si512(x + 64)));
}

// Spreads scales s[4q..4q+3] of a group's 8 blocks over the quad's lanes (4 lanes each).
KFN __m512i QuadIdx(int q) {
  const int a = 4 * q;
  return _mm512_set_epi32(a + 3, a + 3, a + 3, a + 3, a + 2, a + 2, a + 2, a + 2, a + 1, a + 1, a + 1, a + 1, a, a,
                          a, a);
}

// RX rows of X against one Q4_0 row. Nibbles stay unsigned (0..15) so they feed vpdpbusd's
// unsigned operand directly; the −8 offset comes back through the per-block correction c.
// Main loop: groups of 8 blocks (two quads) whose scales are converted together.
template <int RX>
KFN void Q4Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ4_0* w = reinterpret_cast<const BlockQ4_0*>(a.w + j * a.wStride);
  const int64_t nb = act.nb;
  const __m512i idx0 = QuadIdx(0), idx1 = QuadIdx(1);
  __m512 acc[RX];
  __m256 corr[RX];
  for (int i = 0; i < RX; ++i) {
    acc[i] = _mm512_setzero_ps();
    corr[i] = _mm256_setzero_ps();
  }
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    PrefetchAhead(w + b);
    const __m256 dw = EightScalesQ4(reinterpret_cast<const uint8_t*>(w + b));
    for (int i = 0; i < RX; ++i) {
      const int8_t* x = act.qs(r + i) + b * kQBlock;
      corr[i] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(act.c(r + i) + b), corr[i]);
      const __m512 sc = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(act.d(r + i) + b)));
      const __m512 s0 = _mm512_mul_ps(QuadSumsQ4(w + b, x), _mm512_permutexvar_ps(idx0, sc));
      acc[i] = _mm512_add_ps(acc[i],
                             _mm512_fmadd_ps(QuadSumsQ4(w + b + 4, x + 128), _mm512_permutexvar_ps(idx1, sc), s0));
    }
  }
  if (b + 4 <= nb) {  // one more quad
    const __m128 dw = _mm_set_ps(F16ToF32(w[b + 3].d), F16ToF32(w[b + 2].d), F16ToF32(w[b + 1].d), F16ToF32(w[b].d));
    for (int i = 0; i < RX; ++i) {
      corr[i] = _mm256_add_ps(corr[i], _mm256_zextps128_ps256(_mm_mul_ps(dw, _mm_loadu_ps(act.c(r + i) + b))));
      const __m512 sc = _mm512_castps128_ps512(_mm_mul_ps(dw, _mm_loadu_ps(act.d(r + i) + b)));
      acc[i] = _mm512_fmadd_ps(QuadSumsQ4(w + b, act.qs(r + i) + b * kQBlock), _mm512_permutexvar_ps(idx0, sc), acc[i]);
    }
    b += 4;
  }
  for (int i = 0; i < RX; ++i) {
    float y = _mm512_reduce_add_ps(_mm512_add_ps(acc[i], _mm512_zextps256_ps512(corr[i])));
    for (int64_t t = b; t < nb; ++t) {  // last 1-3 blocks, natural layout
      const float dw = F16ToF32(w[t].d);
      y += dw * (act.d(r + i)[t] * static_cast<float>(DotQ4BlockUnsigned(w[t].qs, act.qs(r + i) + t * kQBlock)) +
                 act.c(r + i)[t]);
    }
    a.y[(r + i) * a.ldy + j] = y;
  }
}

// Spreads the scales of blocks (2p, 2p+1) over a Q8_0 pair's lanes: 0-7 ← 2p, 8-15 ← 2p+1.
KFN __m512i PairIdxQ8(int p) {
  const int a = 2 * p, b = 2 * p + 1;
  return _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
}

// |w| of Q8_0 blocks b, b+1 and the mask of negative values (x is negated there instead).
KFN __m512i PairQ8(const BlockQ8_0* w) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[0].qs))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[1].qs)), 1);
}
KFN __m512 DotPairQ8(__m512i z, const int8_t* x) {
  const __m512i xi = _mm512_loadu_si512(x);
  return _mm512_cvtepi32_ps(
      DotU8S8(_mm512_abs_epi8(z), _mm512_mask_sub_epi8(xi, _mm512_movepi8_mask(z), _mm512_setzero_si512(), xi)));
}

// RX rows of X against one Q8_0 row; main loop: groups of 4 blocks.
template <int RX>
KFN void Q8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(a.w + j * a.wStride);
  const int64_t nb = act.nb;
  const __m512i idx0 = PairIdxQ8(0), idx1 = PairIdxQ8(1);
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    PrefetchAhead(w + b);
    const __m128 dw = FourScalesQ8(reinterpret_cast<const uint8_t*>(w + b));
    const __m512i z0 = PairQ8(w + b), z1 = PairQ8(w + b + 2);
    for (int i = 0; i < RX; ++i) {
      const int8_t* x = act.qs(r + i) + b * kQBlock;
      const __m512 sc = _mm512_castps128_ps512(_mm_mul_ps(dw, _mm_loadu_ps(act.d(r + i) + b)));
      const __m512 s0 = _mm512_mul_ps(DotPairQ8(z0, x), _mm512_permutexvar_ps(idx0, sc));
      acc[i] = _mm512_add_ps(acc[i], _mm512_fmadd_ps(DotPairQ8(z1, x + 64), _mm512_permutexvar_ps(idx1, sc), s0));
    }
  }
  for (; b + 2 <= nb; b += 2) {
    const __m512i z = PairQ8(w + b);
    const __m128 dw = TwoScales(w[b].d, w[b + 1].d);
    for (int i = 0; i < RX; ++i) {
      const __m128 sc = _mm_mul_ps(dw, TwoFloats(act.d(r + i) + b));
      acc[i] = _mm512_fmadd_ps(DotPairQ8(z, act.qs(r + i) + b * kQBlock),
                               _mm512_permutexvar_ps(idx0, _mm512_castps128_ps512(sc)), acc[i]);
    }
  }
  for (int i = 0; i < RX; ++i) {
    float y = _mm512_reduce_add_ps(acc[i]);
    if (b < nb)
      y += F16ToF32(w[b].d) * act.d(r + i)[b] * static_cast<float>(DotQ8Block(w[b].qs, act.qs(r + i) + b * kQBlock));
    a.y[(r + i) * a.ldy + j] = y;
  }
}

// 16 weights at p → f32 lanes (masked: lanes outside m are zero and never read).
template <int kKind>
KFN __m512 Widen(const uint8_t* p, __mmask16 m) {
  if (kKind == kF32) return _mm512_maskz_loadu_ps(m, p);
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  if (kKind == kBf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}

// RX rows of X (f32) against one F32/F16/BF16 row, widened to f32 16 at a time.
template <int RX, int kKind>
KFN void HalfTile(const QuantMatmulArgs& a, int64_t r, int64_t j) {
  constexpr int kBytes = kKind == kF32 ? 4 : 2;
  const uint8_t* w = a.w + j * a.wStride;
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  int64_t e = 0;
  // Decoding on Zen (a row of W against one row of X): each line kGemvPrefetchAhead ahead and
  // one a KiB kGemvStreamAhead ahead, as the quantized GEMVs (quant_impl.h). On the Zen 5 VM,
  // `redblue bench kernels --gemv-only --gemv-types f16,bf16,f32 --threads 1,2`, alternated
  // twice, one thread and two: F32 0.68-0.80 → 0.96-1.00 of a plain read, F16 0.57-0.66 →
  // 0.66-0.71, BF16 0.56-0.66 → 0.64-0.71 (these two wait on the one FMA chain; more chains
  // would change the sums' bits).
  // Either prefetch alone: F32 0.65-0.82. One prefetch a line written here: LinePrefetch's
  // loop (the GEMVs') read 2-3 % slower in this one-FMA loop.
  const bool ahead = RX == 1 && !PrefetchGemvToL2();
  for (; e + 16 <= a.k; e += 16) {
    if (ahead && ((kBytes * e) & 63) == 0) {
      const char* at = reinterpret_cast<const char*>(w + kBytes * e);
      _mm_prefetch(at + kGemvPrefetchAhead, _MM_HINT_T0);
      if (((kBytes * e) & 1023) == 0) PrefetchStreamLine(at);
    }
    const __m512 wv = Widen<kKind>(w + kBytes * e, 0xFFFF);
    for (int i = 0; i < RX; ++i) acc[i] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(a.x + (r + i) * a.ldx + e), acc[i]);
  }
  if (e < a.k) {  // masked tail: the masked-off lanes are never read
    const __mmask16 m = static_cast<__mmask16>((1u << (a.k - e)) - 1);
    const __m512 wv = Widen<kKind>(w + kBytes * e, m);
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, a.x + (r + i) * a.ldx + e), acc[i]);
  }
  for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j] = _mm512_reduce_add_ps(acc[i]);
}

#include "kernels/row_tiles.inc"

}  // namespace

KernelSet Kernels() {
  KernelSet s;
  s.q8 = Q8Kernel;
  s.q4 = Q4Kernel;
  s.f16 = HalfKernel<kF16>;
  s.bf16 = HalfKernel<kBf16>;
  s.f32 = HalfKernel<kF32>;
  s.q4Layout = ActLayout::Q4Quads;
  return s;
}

}  // namespace KNS
}  // namespace redblue

#undef KFN
#undef KENTRY
