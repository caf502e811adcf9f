// AVX-512 rows8 tiles, included twice (deliberately no include guard) by
// quant_avx512_rows8.cc (F/BW/VL: vpmaddubsw + vpmaddwd) and quant_avx512_rows8_vnni.cc
// (+VNNI: vpdpbusd). Each includer defines KNS (namespace), KTARGET (target attribute string)
// and KVNNI (0/1).
//
// Two groups of 8 rows of W per zmm (rows j..j+7 in the low 256 bits, j+8..j+15 in the high), so
// each vpmaddubsw, each broadcast of X's 4 bytes and each scale step serves 16 rows where the
// AVX2 tiles (quant_avx2.cc) serve 8. The arithmetic per row lane is the AVX2 tiles' step for
// step (same integer sums, same float operations in the same order), so the results are the
// same bits on either path. With VNNI a tile sums a sub-block's products in int32 lanes by
// vpdpbusd (one instruction where vpmaddubsw + vpaddw were two) and multiplies the sum by the
// sub-block's scale (vpmulld) where vpmaddwd took the int16 sums and the scale together: the
// int16 sums never saturate, so the integer sums, and the bits, are the same.
//
// A lone group at the end of a task's rows runs with its rows duplicated into the high half
// and only the low half stored (MatmulQ makes tasks of 16 rows, so this is the last group of
// W when n / 8 is odd).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/half.h"
#include "kernels/quant_impl.h"

#define KFN __attribute__((target(KTARGET), always_inline)) inline
#define KENTRY __attribute__((target(KTARGET)))
#define KFN_LAMBDA __attribute__((target(KTARGET), always_inline))

namespace redblue {
namespace KNS {
namespace {

#include "kernels/rows8_pair.inc"

// The tiles (m > 1) prefetch each line of W `ahead` bytes on into L1 (TileAhead, quant_impl.h).
// A tile reads its groups of 8 rows (nb blocks each, one after another in memory) side by side,
// and the next tile's groups follow: past its group's end a prefetch goes on into the same
// group of the next tile (`rows` rows of W on), not into this tile's next group, which is being
// read already. Without it every tile began its groups but the first on a cold stream. On the
// Zen 5 VM, W from memory (`node scripts/kernel-ab.mjs A B q4_0,q4_k,q6_k,q8_0 --rows8 --m N`,
// both orders): m = 8 Q4_0 1.11-1.12×, Q8_0 1.09-1.12×, Q4_K and Q6_K 1.00-1.03×; m = 2 Q4_0 and
// Q4_K 1.06-1.09×, Q8_0 1.10×, Q6_K 1.01×. Calls of up to kTileNearRows rows of X only: at m = 64
// (a prompt's, from L3) Q6_K read 0.94× with it.
class TileStreams {
 public:
  template <typename BlockX8>
  TileStreams(const QuantMatmulArgs& a, int64_t nb, int64_t rows, const BlockX8*)
      : ahead_(TileAhead(a)),
        span_(nb * static_cast<int64_t>(sizeof(BlockX8))),
        hop_(a.m <= kTileNearRows ? rows * a.wStride - span_ : 0) {}
  // The lines of block b + `ahead` bytes of the group that starts at `group`.
  template <typename BlockX8>
  KFN void Prefetch(const BlockX8* group, int64_t b) const {
    const int64_t at = b * static_cast<int64_t>(sizeof(BlockX8)) + ahead_;
    const char* q = reinterpret_cast<const char*>(group) + (at < span_ ? at : at + hop_);
    for (size_t o = 0; o < sizeof(BlockX8); o += 64) _mm_prefetch(q + o, _MM_HINT_T0);
  }
  // Both groups of a pair that reads block b.
  template <typename BlockX8>
  KFN void Prefetch(const Pair<BlockX8>& p, int64_t b) const {
    Prefetch(p.g[0] - b, b);
    Prefetch(p.g[1] - b, b);
  }

 private:
  int64_t ahead_, span_, hop_;
};

KFN __m512i Broadcast4(const int8_t* x) {
  int32_t v;
  std::memcpy(&v, x, 4);
  return _mm512_set1_epi32(v);
}

// A sub-block's running sum of u8·s8 products per row lane, and its scaling. Without VNNI the sum
// is int16 pairs (vpmaddubsw results added) and vpmaddwd takes it with the int16 pair (sc, sc);
// with VNNI it is one int32 per lane (vpdpbusd) times sc. Same integers either way while the
// int16 sums do not saturate, which every tile's bound keeps.
KFN __m512i AddDot(__m512i sum, __m512i u, __m512i x) {
#if KVNNI
  return _mm512_dpbusd_epi32(sum, u, x);
#else
  return _mm512_add_epi16(sum, _mm512_maddubs_epi16(u, x));
#endif
}
KFN __m512i ScaleSum(__m512i sum, __m512i scalePair) {
#if KVNNI
  return _mm512_mullo_epi32(sum, _mm512_srai_epi32(scalePair, 16));
#else
  return _mm512_madd_epi16(sum, scalePair);
#endif
}
// isum + p16 · scalePair per int16 pair, summed into int32 lanes: one vpdpwssd with VNNI (the
// same wrapping int32 sums as vpmaddwd then vpaddd, one vector uop fewer).
KFN __m512i AddScaled(__m512i isum, __m512i p16, __m512i scalePair) {
#if KVNNI
  return _mm512_dpwssd_epi32(isum, p16, scalePair);
#else
  return _mm512_add_epi32(isum, _mm512_madd_epi16(p16, scalePair));
#endif
}
// sum + the u8·s8 products of each 4-byte group, in int32 lanes, for products that cannot wait in
// int16 (a pair reaches 2·127·127).
KFN __m512i AddDotWide(__m512i sum, __m512i u, __m512i x) {
#if KVNNI
  return _mm512_dpbusd_epi32(sum, u, x);
#else
  return _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(u, x), _mm512_set1_epi16(1)));
#endif
}
// Two running sums (as AddDot keeps them) added.
KFN __m512i AddSums(__m512i a, __m512i b) {
#if KVNNI
  return _mm512_add_epi32(a, b);
#else
  return _mm512_add_epi16(a, b);
#endif
}
// The running sum as int32 lanes (scale 1).
KFN __m512i WidenSum(__m512i sum) {
#if KVNNI
  return sum;
#else
  return _mm512_madd_epi16(sum, _mm512_set1_epi16(1));
#endif
}

template <int RX>
KFN void Store(const QuantMatmulArgs& a, int64_t r, int64_t j, bool both, const __m512 acc[RX]) {
  for (int i = 0; i < RX; ++i) {
    float* y = a.y + (r + i) * a.ldy + j;
    if (both)
      _mm512_storeu_ps(y, acc[i]);
    else
      _mm256_storeu_ps(y, _mm512_castps512_ps256(acc[i]));
  }
}

// Σ_g sc_g·bsum_g per row lane (quant_avx2.cc's Rows8ScaledBsums): sp[p] holds the rows' int16
// pairs (sc_2p, sc_2p+1), X's bsums are taken in pairs.
KFN __m512i ScaledBsums(const __m512i sp[8], const BlockQ8_K& xb) {
  __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 8
  for (int p = 0; p < 8; ++p)
    sum = _mm512_add_epi32(sum, _mm512_madd_epi16(sp[p], Broadcast4(reinterpret_cast<const int8_t*>(xb.bsums + 2 * p))));
  return sum;
}

// Q4_0, Q5_0, Q4_1, Q5_1, IQ4_NL: quant_avx2.cc's Nibble32Rows8Tile, 16 rows.
template <int RX, typename BlockX8>
KFN void Nibble32Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both) {
  constexpr bool kQ5 = std::is_same_v<BlockX8, BlockQ5_0x8> || std::is_same_v<BlockX8, BlockQ5_1x8>;
  constexpr bool kAffine = std::is_same_v<BlockX8, BlockQ4_1x8> || std::is_same_v<BlockX8, BlockQ5_1x8>;
  constexpr bool kLookup = std::is_same_v<BlockX8, BlockIQ4_NLx8>;
  const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  const BlockX8* w0 = reinterpret_cast<const BlockX8*>(a.w + j * a.wStride);
  const BlockX8* w1 = both ? reinterpret_cast<const BlockX8*>(a.w + (j + 8) * a.wStride) : w0;
  const int64_t nb = act.nb, nq = act.layout == ActLayout::Q4Quads ? nb / 4 * 4 : 0;
  const TileStreams streams(a, nb, 16, w0);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10), zero = _mm512_setzero_si512();
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockX8> g{{w0 + b, w1 + b}};
    streams.Prefetch(g, b);
    const int64_t lo = b < nq ? (b / 4) * 128 + (b % 4) * 16 : b * kQBlock, hi = lo + (b < nq ? 64 : 16);
    __m512i s16[RX], h16[RX];
    for (int i = 0; i < RX; ++i) s16[i] = h16[i] = _mm512_setzero_si512();
    __m512i fifth = _mm512_setzero_si512();
    if constexpr (kQ5) fifth = Load2(g, g.g[0]->qh);
    auto vector = [&](int v) KFN_LAMBDA {
      const __m512i bits = Load2(g, g.g[0]->qs + 32 * v);
      __m512i ql = _mm512_and_si512(bits, m4), qh = _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4);
      if constexpr (kQ5) {
        ql = _mm512_or_si512(ql, _mm512_and_si512(_mm512_slli_epi16(fifth, 4 - v), m10));
        qh = _mm512_or_si512(qh, _mm512_and_si512(_mm512_srli_epi16(fifth, v), m10));
      }
      if constexpr (kLookup) {
        const __m512i wl = _mm512_shuffle_epi8(table, ql), wh = _mm512_shuffle_epi8(table, qh);
        const __m512i ul = _mm512_abs_epi8(wl), uh = _mm512_abs_epi8(wh);
        const __mmask64 nl = _mm512_movepi8_mask(wl), nh = _mm512_movepi8_mask(wh);
        for (int i = 0; i < RX; ++i) {
          const int8_t* x = act.qs(r + i);
          const __m512i xl = Broadcast4(x + lo + 4 * v), xh = Broadcast4(x + hi + 4 * v);
          // x carries w's sign (AVX2's vpsignb; w = 0 has |w| = 0, so its sign does not matter)
          s16[i] = AddDotWide(AddDotWide(s16[i], ul, _mm512_mask_sub_epi8(xl, nl, zero, xl)), uh,
                              _mm512_mask_sub_epi8(xh, nh, zero, xh));
        }
        return;
      }
      for (int i = 0; i < RX; ++i) {
        const int8_t* x = act.qs(r + i);
        // Q5 without VNNI: the high halves in their own int16 sums (one sum of both could
        // reach 4·2·31·128)
        s16[i] = AddDot(s16[i], ql, Broadcast4(x + lo + 4 * v));
        if constexpr (kQ5 && !KVNNI) h16[i] = AddDot(h16[i], qh, Broadcast4(x + hi + 4 * v));
        else s16[i] = AddDot(s16[i], qh, Broadcast4(x + hi + 4 * v));
      }
    };
    // With VNNI the 4-bit types' vector loop unrolls fully (one int32 sum per row, nothing
    // spilled): Q4_0 at m = 8 from L2 371 → 418 GFLOP/s; without, Q4_1 lost 3% and Q4_0 held.
    if constexpr (kQ5 || (KVNNI && !kLookup)) {
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) vector(v);
    } else {
#pragma GCC unroll 2
      for (int v = 0; v < 4; ++v) vector(v);
    }
    const __m512 dw = Halves2(g, g.g[0]->d);
    __m512 mw = _mm512_setzero_ps();
    if constexpr (kAffine) mw = Halves2(g, g.g[0]->m);
    for (int i = 0; i < RX; ++i) {
      __m512i isum = kLookup ? s16[i] : WidenSum(s16[i]);
      if constexpr (kQ5 && !KVNNI) isum = _mm512_add_epi32(isum, WidenSum(h16[i]));
      const __m512 dx = _mm512_set1_ps(act.d(r + i)[b]), cx = _mm512_set1_ps(act.c(r + i)[b]);
      if constexpr (kAffine || kLookup) {
        acc[i] = _mm512_fmadd_ps(dw, _mm512_mul_ps(dx, _mm512_cvtepi32_ps(isum)), acc[i]);
        if constexpr (kAffine) acc[i] = _mm512_fmadd_ps(mw, cx, acc[i]);
      } else {
        acc[i] = _mm512_fmadd_ps(dw, _mm512_fmadd_ps(dx, _mm512_cvtepi32_ps(isum), cx), acc[i]);
      }
    }
  }
  Store<RX>(a, r, j, both, acc);
}

#if KVNNI
// Q4_0 with VNNI, 32 rows of W (two pairs of groups) against 4 (or 8) rows of X: each broadcast of X
// feeds two vpdpbusd. The 16-row tile at m = 8 issued about as many loads (X broadcasts, W,
// scales) as vpdpbusd and was bound by them: m = 8 from L2 409-436 → 489-495 GFLOP/s, m = 512
// 475 → 537-552, m = 2 325 → 366. Same integers and order, so the same bits.
template <int RX>
KFN void Q4_0QuadTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ4_0x8* w[4];
  for (int g = 0; g < 4; ++g) w[g] = reinterpret_cast<const BlockQ4_0x8*>(a.w + (j + 8 * g) * a.wStride);
  const int64_t nb = act.nb, nq = act.layout == ActLayout::Q4Quads ? nb / 4 * 4 : 0;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[2][RX];
  for (int i = 0; i < RX; ++i) acc[0][i] = acc[1][i] = _mm512_setzero_ps();
  const TileStreams streams(a, nb, 32, w[0]);
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockQ4_0x8> g0{{w[0] + b, w[1] + b}}, g1{{w[2] + b, w[3] + b}};
    streams.Prefetch(g0, b);
    streams.Prefetch(g1, b);
    const int64_t lo = b < nq ? (b / 4) * 128 + (b % 4) * 16 : b * kQBlock, hi = lo + (b < nq ? 64 : 16);
    __m512i s0[RX], s1[RX];
    for (int i = 0; i < RX; ++i) s0[i] = s1[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m512i b0 = Load2(g0, g0.g[0]->qs + 32 * v), b1 = Load2(g1, g1.g[0]->qs + 32 * v);
      const __m512i l0 = _mm512_and_si512(b0, m4), h0 = _mm512_and_si512(_mm512_srli_epi16(b0, 4), m4);
      const __m512i l1 = _mm512_and_si512(b1, m4), h1 = _mm512_and_si512(_mm512_srli_epi16(b1, 4), m4);
      for (int i = 0; i < RX; ++i) {
        const int8_t* x = act.qs(r + i);
        const __m512i xl = Broadcast4(x + lo + 4 * v), xh = Broadcast4(x + hi + 4 * v);
        s0[i] = AddDot(AddDot(s0[i], l0, xl), h0, xh);
        s1[i] = AddDot(AddDot(s1[i], l1, xl), h1, xh);
      }
    }
    const __m512 d0 = Halves2(g0, g0.g[0]->d), d1 = Halves2(g1, g1.g[0]->d);
    for (int i = 0; i < RX; ++i) {
      const __m512 dx = _mm512_set1_ps(act.d(r + i)[b]), cx = _mm512_set1_ps(act.c(r + i)[b]);
      acc[0][i] = _mm512_fmadd_ps(d0, _mm512_fmadd_ps(dx, _mm512_cvtepi32_ps(s0[i]), cx), acc[0][i]);
      acc[1][i] = _mm512_fmadd_ps(d1, _mm512_fmadd_ps(dx, _mm512_cvtepi32_ps(s1[i]), cx), acc[1][i]);
    }
  }
  Store<RX>(a, r, j, true, acc[0]);
  Store<RX>(a, r, j + 16, true, acc[1]);
}
#endif

// Q8_0: quant_avx2.cc's Q8Rows8Tile, 16 rows: |w| on vpmaddubsw's unsigned side, X's broadcast
// bytes negated where w is negative (AVX2's vpsignb; w = 0 has |w| = 0), each product pair
// widened by its own vpmaddwd (a pair reaches 2·127·127).
template <int RX>
KFN void Q8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both) {
  const BlockQ8_0x8* w0 = reinterpret_cast<const BlockQ8_0x8*>(a.w + j * a.wStride);
  const BlockQ8_0x8* w1 = both ? reinterpret_cast<const BlockQ8_0x8*>(a.w + (j + 8) * a.wStride) : w0;
  const int64_t nb = act.nb, nq = act.layout == ActLayout::Q4Quads ? nb / 4 * 4 : 0;
  const TileStreams streams(a, nb, 16, w0);
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockQ8_0x8> g{{w0 + b, w1 + b}};
    streams.Prefetch(g, b);
    const int64_t lo = b < nq ? (b / 4) * 128 + (b % 4) * 16 : b * kQBlock, hi = lo + (b < nq ? 64 : 16);
    __m512i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm512_setzero_si512();
#pragma GCC unroll 8  // unrolled 4: m = 8 from L2 309 → 320 GFLOP/s (VNNI), 222 → 237 (avx512)
    for (int v = 0; v < 8; ++v) {
      const __m512i q = Load2(g, g.g[0]->qs + 32 * v);
      const __m512i aq = _mm512_abs_epi8(q);
      const __mmask64 neg = _mm512_movepi8_mask(q);
      for (int i = 0; i < RX; ++i) {
        const __m512i x = Broadcast4(act.qs(r + i) + (v < 4 ? lo + 4 * v : hi + 4 * (v - 4)));
        isum[i] = AddDotWide(isum[i], aq, _mm512_mask_sub_epi8(x, neg, zero, x));
      }
    }
    const __m512 dw = Halves2(g, g.g[0]->d);
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(act.d(r + i)[b])), _mm512_cvtepi32_ps(isum[i]), acc[i]);
  }
  Store<RX>(a, r, j, both, acc);
}

// IQ4_XS: quant_avx2.cc's Iq4XsRows8Tile, 16 rows (activations in ActLayout::Iq4Pairs).
template <int RX>
KFN void Iq4XsTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both) {
  const BlockIQ4_XSx8* w0 = reinterpret_cast<const BlockIQ4_XSx8*>(a.w + j * a.wStride);
  const BlockIQ4_XSx8* w1 = both ? reinterpret_cast<const BlockIQ4_XSx8*>(a.w + (j + 8) * a.wStride) : w0;
  const int64_t nb = a.k / kQKBlock;
  const TileStreams streams(a, nb, 16, w0);
  const __m512i m4 = _mm512_set1_epi8(0x0F), k32 = _mm512_set1_epi16(32), zero = _mm512_setzero_si512();
  const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockIQ4_XSx8> g{{w0 + b, w1 + b}};
    streams.Prefetch(g, b);
    const __m512i sc[2] = {SixVector2(g, g.g[0]->scales, 0), SixVector2(g, g.g[0]->scales, 1)};
    __m512i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c)
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        const int s = 2 * c + half;
        const __m512i scale = _mm512_sub_epi16(_mm512_shuffle_epi8(sc[s / 4], Pair512(s, s)), k32);
        __m512i d32[RX];  // VNNI: the sub-block's int32 sums, scaled once
        for (int i = 0; i < RX; ++i) d32[i] = _mm512_setzero_si512();
        auto vector = [&](int v) KFN_LAMBDA {
          const __m512i bits = Load2(g, g.g[0]->qs + 256 * c + 32 * v);
          const __m512i wl = _mm512_shuffle_epi8(table, _mm512_and_si512(bits, m4));
          const __m512i wh = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4));
          const __m512i ul = _mm512_abs_epi8(wl), uh = _mm512_abs_epi8(wh);
          const __mmask64 nl = _mm512_movepi8_mask(wl), nh = _mm512_movepi8_mask(wh);
          for (int i = 0; i < RX; ++i) {
            const int8_t* x = act.q8k(r + i)[b].qs + 64 * c + 4 * v;
            const __m512i xl = Broadcast4(x), xh = Broadcast4(x + 32);
            const __m512i sl = _mm512_mask_sub_epi8(xl, nl, zero, xl), sh = _mm512_mask_sub_epi8(xh, nh, zero, xh);
#if KVNNI
            d32[i] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(d32[i], ul, sl), uh, sh);
#else
            const __m512i pl = _mm512_maddubs_epi16(ul, sl), ph = _mm512_maddubs_epi16(uh, sh);
            isum[i] = _mm512_add_epi32(isum[i], _mm512_add_epi32(_mm512_madd_epi16(pl, scale), _mm512_madd_epi16(ph, scale)));
#endif
          }
        };
        if constexpr (KVNNI) {  // at m = 8 from L2: 292 → 301 GFLOP/s
#pragma GCC unroll 4
          for (int v = 4 * half; v < 4 * half + 4; ++v) vector(v);
        } else {
#pragma GCC unroll 2
          for (int v = 4 * half; v < 4 * half + 4; ++v) vector(v);
        }
        if constexpr (KVNNI)
          for (int i = 0; i < RX; ++i) isum[i] = _mm512_add_epi32(isum[i], ScaleSum(d32[i], scale));
      }
    const __m512 dw = Halves2(g, g.g[0]->d);
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(act.q8k(r + i)[b].d)), _mm512_cvtepi32_ps(isum[i]), acc[i]);
  }
  Store<RX>(a, r, j, both, acc);
}

// Q3_K: quant_avx2.cc's Q3KRows8Tile, 16 rows: levels unsigned (0..7), the −4 back through the
// bsums, a sub-block's 4 vpmaddubsw results summed in int16 before its scales (sc − 32).
template <int RX>
KFN void Q3KTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both) {
  const BlockQ3_Kx8* w0 = reinterpret_cast<const BlockQ3_Kx8*>(a.w + j * a.wStride);
  const BlockQ3_Kx8* w1 = both ? reinterpret_cast<const BlockQ3_Kx8*>(a.w + (j + 8) * a.wStride) : w0;
  const int64_t nb = a.k / kQKBlock;
  const TileStreams streams(a, nb, 16, w0);
  const __m512i m33 = _mm512_set1_epi8(0x33), m44 = _mm512_set1_epi8(0x44), m7 = _mm512_set1_epi8(7),
                k32 = _mm512_set1_epi16(32);
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockQ3_Kx8> g{{w0 + b, w1 + b}};
    streams.Prefetch(g, b);
    const __m512i sc[4] = {SixVector2(g, g.g[0]->scales, 0), SixVector2(g, g.g[0]->scales, 1),
                           SixVector2(g, g.g[0]->scales + 48, 0), SixVector2(g, g.g[0]->scales + 48, 1)};
    __m512i isum[RX];
    {
      __m512i sp[8];
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) sp[p] = _mm512_sub_epi16(_mm512_shuffle_epi8(sc[p / 2], Pair512(2 * p, 2 * p + 1)), k32);
      for (int i = 0; i < RX; ++i) {
        const BlockQ8_K& xb = act.q8k(r + i)[b];
        isum[i] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(ScaledBsums(sp, xb), 2));
      }
    }
#pragma GCC unroll 1
    for (int c = 0; c < 4; ++c)
#pragma GCC unroll 4
      for (int s4 = 0; s4 < 4; ++s4) {
        const int sb = 4 * c + s4, u = s4 % 2;
        const __m512i bits = Load2(g, g.g[0]->qs + 32 * sb);
        const __m512i hm = Load2(g, g.g[0]->hm + 32 * (sb / 2));
        const __m512i scale = _mm512_sub_epi16(_mm512_shuffle_epi8(sc[c], Pair512(s4, s4)), k32);
        const __m512i he = u ? _mm512_slli_epi16(hm, 2) : hm, ho = u ? _mm512_slli_epi16(hm, 1) : _mm512_srli_epi16(hm, 1);
        const __m512i e = _mm512_or_si512(_mm512_and_si512(bits, m33), _mm512_and_si512(he, m44));
        const __m512i o = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(bits, 2), m33), _mm512_and_si512(ho, m44));
        const __m512i q[4] = {_mm512_and_si512(e, m7), _mm512_and_si512(o, m7), _mm512_and_si512(_mm512_srli_epi16(e, 4), m7),
                              _mm512_and_si512(_mm512_srli_epi16(o, 4), m7)};
        __m512i s16[RX];
        for (int i = 0; i < RX; ++i) s16[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v)
          for (int i = 0; i < RX; ++i)
            s16[i] = AddDot(s16[i], q[v], Broadcast4(act.q8k(r + i)[b].qs + 16 * sb + 4 * v));
        for (int i = 0; i < RX; ++i) isum[i] = _mm512_add_epi32(isum[i], ScaleSum(s16[i], scale));
      }
    const __m512 dw = Halves2(g, g.g[0]->d);
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(act.q8k(r + i)[b].d)), _mm512_cvtepi32_ps(isum[i]), acc[i]);
  }
  Store<RX>(a, r, j, both, acc);
}

// Q2_K: quant_avx2.cc's Q2KRows8Tile, 16 rows: a sub-block's 4 vpmaddubsw results summed in
// int16 before its scales (low nibbles), the mins (high nibbles) through the bsums.
template <int RX>
KFN void Q2KTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both) {
  const BlockQ2_Kx8* w0 = reinterpret_cast<const BlockQ2_Kx8*>(a.w + j * a.wStride);
  const BlockQ2_Kx8* w1 = both ? reinterpret_cast<const BlockQ2_Kx8*>(a.w + (j + 8) * a.wStride) : w0;
  const int64_t nb = a.k / kQKBlock;
  const TileStreams streams(a, nb, 16, w0);
  const __m512i m3 = _mm512_set1_epi8(3), m0f = _mm512_set1_epi16(0x0F);
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockQ2_Kx8> g{{w0 + b, w1 + b}};
    streams.Prefetch(g, b);
    __m512i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm512_setzero_si512();
#pragma GCC unroll 1
    for (int c = 0; c < 4; ++c) {
      const __m512i sm = Load2(g, g.g[0]->scales + 32 * c);
#pragma GCC unroll 4
      for (int s4 = 0; s4 < 4; ++s4) {
        const int sb = 4 * c + s4;
        const __m512i bits = Load2(g, g.g[0]->qs + 32 * sb);
        const __m512i scale = _mm512_and_si512(_mm512_shuffle_epi8(sm, Pair512(s4, s4)), m0f);
        __m512i s16[RX];
        for (int i = 0; i < RX; ++i) s16[i] = _mm512_setzero_si512();
        auto vector = [&](int v) KFN_LAMBDA {
          const __m512i q = _mm512_and_si512(v ? _mm512_srli_epi16(bits, 2 * v) : bits, m3);
          for (int i = 0; i < RX; ++i)
            s16[i] = AddDot(s16[i], q, Broadcast4(act.q8k(r + i)[b].qs + 16 * sb + 4 * v));
        };
        if constexpr (RX == 1 || KVNNI) {  // VNNI at m = 8 from L2: 395 → 424 GFLOP/s
#pragma GCC unroll 4
          for (int v = 0; v < 4; ++v) vector(v);
        } else {
#pragma GCC unroll 2
          for (int v = 0; v < 4; ++v) vector(v);
        }
        for (int i = 0; i < RX; ++i) isum[i] = _mm512_add_epi32(isum[i], ScaleSum(s16[i], scale));
      }
    }
    __m512i mp[8];
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p)
      mp[p] = _mm512_srli_epi16(_mm512_shuffle_epi8(Load2(g, g.g[0]->scales + 32 * (p / 2)), Pair512(2 * p, 2 * p + 1)), 4);
    const __m512 dw = Halves2(g, g.g[0]->d), dmw = Halves2(g, g.g[0]->dmin);
    for (int i = 0; i < RX; ++i) {
      const BlockQ8_K& xb = act.q8k(r + i)[b];
      const __m512i bs = ScaledBsums(mp, xb);
      const __m512 dx = _mm512_set1_ps(xb.d);
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum[i]), acc[i]);
      acc[i] = _mm512_fnmadd_ps(_mm512_mul_ps(dmw, dx), _mm512_cvtepi32_ps(bs), acc[i]);
    }
  }
  Store<RX>(a, r, j, both, acc);
}

// Q4_K / Q5_K: quant_avx2.cc's AffineKRows8Tile, 16 rows.
template <int RX, typename BlockX8>
KFN void AffineKTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both) {
  constexpr bool kQ5 = std::is_same_v<BlockX8, BlockQ5_Kx8>;
  constexpr int kRun = kQ5 && !KVNNI ? 4 : 8;  // int16 sums: 8 vectors of Q5_K could saturate
  const BlockX8* w0 = reinterpret_cast<const BlockX8*>(a.w + j * a.wStride);
  const BlockX8* w1 = both ? reinterpret_cast<const BlockX8*>(a.w + (j + 8) * a.wStride) : w0;
  const int64_t nb = a.k / kQKBlock;
  const TileStreams streams(a, nb, 16, w0);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10);
  const __m256i ones256 = _mm256_set1_epi16(1);
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockX8> g{{w0 + b, w1 + b}};
    streams.Prefetch(g, b);
    const __m512i sc[2] = {SixVector2(g, g.g[0]->scales, 0), SixVector2(g, g.g[0]->scales, 1)};
    __m512i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm512_setzero_si512();
    // Sub-blocks 2c and 2c + 1 together: they are the low and high nibbles of the same bytes,
    // loaded once.
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i scale[2] = {_mm512_shuffle_epi8(sc[c / 2], Pair512(2 * c, 2 * c)),
                                _mm512_shuffle_epi8(sc[c / 2], Pair512(2 * c + 1, 2 * c + 1))};
      __m512i fifth[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
      if constexpr (kQ5) fifth[0] = Load2(g, g.g[0]->qh + 64 * c), fifth[1] = Load2(g, g.g[0]->qh + 64 * c + 32);
#pragma GCC unroll 2
      for (int v0 = 0; v0 < 8; v0 += kRun) {
        __m512i s16[2][RX];
        for (int i = 0; i < RX; ++i) s16[0][i] = s16[1][i] = _mm512_setzero_si512();
        auto vector = [&](int v) KFN_LAMBDA {
          const __m512i bits = Load2(g, g.g[0]->qs + 256 * c + 32 * v);
#pragma GCC unroll 2
          for (int half = 0; half < 2; ++half) {
            __m512i q = half ? _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4) : _mm512_and_si512(bits, m4);
            if constexpr (kQ5) {
              const __m512i at4 = v < 4 ? _mm512_sll_epi16(fifth[half], _mm_cvtsi32_si128(4 - v))
                                        : _mm512_srl_epi16(fifth[half], _mm_cvtsi32_si128(v - 4));
              q = _mm512_or_si512(q, _mm512_and_si512(at4, m10));
            }
            for (int i = 0; i < RX; ++i)
              s16[half][i] = AddDot(s16[half][i], q, Broadcast4(act.q8k(r + i)[b].qs + 64 * c + 32 * half + 4 * v));
          }
        };
        if constexpr (RX == 1) {
#pragma GCC unroll 4
          for (int v = v0; v < v0 + kRun; ++v) vector(v);
        } else if constexpr (KVNNI && kQ5) {
          // Q5_K's eight vectors unrolled (at m = 8 from L2 278 → 318-348 GFLOP/s); Q4_K's
          // lost 3-5% so.
#pragma GCC unroll 8
          for (int v = v0; v < v0 + kRun; ++v) vector(v);
        } else {
#pragma GCC unroll 2
          for (int v = v0; v < v0 + kRun; ++v) vector(v);
        }
        for (int i = 0; i < RX; ++i)
          isum[i] = _mm512_add_epi32(isum[i], _mm512_add_epi32(ScaleSum(s16[0][i], scale[0]), ScaleSum(s16[1][i], scale[1])));
      }
    }
    const __m512i mn[2] = {SixVector2(g, g.g[0]->mins, 0), SixVector2(g, g.g[0]->mins, 1)};
    __m512i mp[4];
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) mp[p] = _mm512_shuffle_epi8(mn[p / 2], Pair512(2 * p, 2 * p + 1));
    const __m512 dw = Halves2(g, g.g[0]->d), dmw = Halves2(g, g.g[0]->dmin);
    for (int i = 0; i < RX; ++i) {
      const BlockQ8_K& xb = act.q8k(r + i)[b];
      // (bsum32_2p, bsum32_2p+1) as int16 pairs, dwords 0, 1, 4, 5 (quant_avx2.cc's order)
      const __m256i b32 = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums)), ones256);
      const __m512i b16 = _mm512_castsi256_si512(_mm256_packs_epi32(b32, b32));
      __m512i imin = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int p = 0; p < 4; ++p) {
        const __m512i pair = _mm512_permutexvar_epi32(_mm512_set1_epi32(p < 2 ? p : p + 2), b16);
        imin = _mm512_add_epi32(imin, _mm512_madd_epi16(mp[p], pair));
      }
      const __m512 dx = _mm512_set1_ps(xb.d);
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum[i]), acc[i]);
      acc[i] = _mm512_fnmadd_ps(_mm512_mul_ps(dmw, dx), _mm512_cvtepi32_ps(imin), acc[i]);
    }
  }
  Store<RX>(a, r, j, both, acc);
}

// Q6_K: quant_avx2.cc's Q6KRows8Tile, 16 rows.
template <typename BlockX8>
KFN __m512i ScaleI8x2(const Pair<BlockX8>& g, int g0, int g1) {  // int16 pair (sc g0, sc g1) per row lane
  const __m512i v = Load2(g, g.g[0]->scales + 32 * (g0 / 4));
  return _mm512_srai_epi16(_mm512_shuffle_epi8(v, Pair512(g0, g1, true)), 8);
}
template <int RX>
KFN void Q6KTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both) {
  const BlockQ6_Kx8* w0 = reinterpret_cast<const BlockQ6_Kx8*>(a.w + j * a.wStride);
  const BlockQ6_Kx8* w1 = both ? reinterpret_cast<const BlockQ6_Kx8*>(a.w + (j + 8) * a.wStride) : w0;
  const int64_t nb = a.k / kQKBlock;
  const TileStreams streams(a, nb, 16, w0);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  __m512 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockQ6_Kx8> g{{w0 + b, w1 + b}};
    streams.Prefetch(g, b);
    __m512i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm512_setzero_si512();
#pragma GCC unroll 1
    for (int c = 0; c < 4; ++c)
#pragma GCC unroll 4
      for (int hu = 0; hu < 4; ++hu) {
        const int sb = 4 * c + hu, h = hu / 2, u = hu % 2;
        const __m512i hb = Load2(g, g.g[0]->qh + 32 * sb);
        const __m512i scale = ScaleI8x2(g, sb, sb);
        __m512i s16[RX];
#pragma GCC unroll 2
        for (int pair = 0; pair < 2; ++pair) {
          // int16 sums hold two vectors (2·2·63·127 < 2^15), int32 ones the sub-block's four
          if (pair == 0 || !KVNNI)
            for (int i = 0; i < RX; ++i) s16[i] = _mm512_setzero_si512();
#pragma GCC unroll 2
          for (int k2 = 0; k2 < 2; ++k2) {
            const int wv = 2 * pair + k2, v = 4 * u + wv;
            const __m512i bits = Load2(g, g.g[0]->ql + 32 * (8 * c + v));
            const __m512i nib = h ? _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4) : _mm512_and_si512(bits, m4);
            const __m512i top = wv == 0   ? _mm512_slli_epi16(hb, 4)
                                : wv == 1 ? _mm512_slli_epi16(hb, 2)
                                : wv == 2 ? hb
                                          : _mm512_srli_epi16(hb, 2);
            const __m512i q = _mm512_or_si512(nib, _mm512_and_si512(top, m30));
            for (int i = 0; i < RX; ++i)
              s16[i] = AddDot(s16[i], q, Broadcast4(act.q8k(r + i)[b].qs + 64 * c + 32 * h + 4 * v));
          }
          if (pair == 1 || !KVNNI)
            for (int i = 0; i < RX; ++i) isum[i] = _mm512_add_epi32(isum[i], ScaleSum(s16[i], scale));
        }
      }
    __m512i sp[8];
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) sp[p] = ScaleI8x2(g, 2 * p, 2 * p + 1);
    const __m512 dw = Halves2(g, g.g[0]->d);
    for (int i = 0; i < RX; ++i) {
      const BlockQ8_K& xb = act.q8k(r + i)[b];
      const __m512i total = _mm512_sub_epi32(isum[i], _mm512_slli_epi32(ScaledBsums(sp, xb), 5));
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(xb.d)), _mm512_cvtepi32_ps(total), acc[i]);
    }
  }
  Store<RX>(a, r, j, both, acc);
}

// GEMV (one row of X) on one group of 8 rows, one stream: a zmm holds two consecutive weight
// vectors of the group (v in the low half, v + 1 in the high), X's matching 4-byte groups put
// in place by one vpermd from the 64 bytes of X of a sub-block pair. Per super-block the two
// halves' int32 sums are added (integers: the AVX2 tile's sums exactly) and the rest runs at
// 256 bits as there, so the bits are the AVX2 tile's.
KFN __m512i PairIdx(int d) {  // lanes 0-7 ← dword d, 8-15 ← dword d + 1
  return _mm512_set_epi32(d + 1, d + 1, d + 1, d + 1, d + 1, d + 1, d + 1, d + 1, d, d, d, d, d, d, d, d);
}
KFN __m256i AddHalves(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }

// Q4_K and Q5_K. Q5_K: element 4v + t's fifth bit is bit v of its qh byte; (qh >> v) << 4 puts
// it at bit 4 of each byte of a 16-bit word (no other bit lands there), with v per half.
// A lane adds 4 vectors' vpmaddubsw results in int16: ≤ 4·2·31·128.
template <typename BlockX8>
KFN void AffineKGemv(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  constexpr bool kQ5 = std::is_same_v<BlockX8, BlockQ5_Kx8>;
  const BlockX8* w = reinterpret_cast<const BlockX8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m512i m4 = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockX8> g{{w + b, w + b}};  // one group: its scale vectors in both halves
    pf.Through(w + b + 1);
    // Zen: besides every line 4 KiB ahead, one line a group 16 KiB ahead, which keeps the
    // hardware's stream further ahead (as Q4_0's, Nibble32Gemv). In one process against the
    // build without it (`scripts/kernel-ab.mjs … q4_k --rows8`, both orders): 1.20× and 1.22×;
    // TinyLlama Q4_K_M decoding on 2 executors, builds alternated four times, tg64 67.4-77.4
    // against 52.6-77.0 tokens/s (63-76 % of the read bandwidth against 49-76 %). The far line
    // alone, without the every-line prefetch: 1.09-1.13× on one core, slower on two.
    if (!pf.intoL2()) PrefetchStreamLine(w + b);
    const BlockQ8_K& xb = act.q8k(r)[b];
    const __m512i sc[2] = {SixVector2(g, g.g[0]->scales, 0), SixVector2(g, g.g[0]->scales, 1)};
    __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i xc = _mm512_loadu_si512(xb.qs + 64 * c);
      __m512i bits[4];
#pragma GCC unroll 4
      for (int p = 0; p < 4; ++p) bits[p] = _mm512_loadu_si512(w[b].qs + 256 * c + 64 * p);
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        const int s = 2 * c + half;
        __m512i s16 = _mm512_setzero_si512(), fifth = _mm512_setzero_si512();
        if constexpr (kQ5)
          fifth = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qh + 32 * s)));
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {
          __m512i q = half ? _mm512_and_si512(_mm512_srli_epi16(bits[p], 4), m4) : _mm512_and_si512(bits[p], m4);
          if constexpr (kQ5) {
            const __m512i v = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(2 * p)),
                                                 _mm256_set1_epi16(static_cast<int16_t>(2 * p + 1)), 1);
            q = _mm512_or_si512(q, _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(fifth, v), 4), m10));
          }
          s16 = AddDot(s16, q, _mm512_permutexvar_epi32(PairIdx(8 * half + 2 * p), xc));
        }
        isum = _mm512_add_epi32(isum, ScaleSum(s16, _mm512_shuffle_epi8(sc[s / 4], Pair512(s, s))));
      }
    }
    const __m256i mn[2] = {_mm512_castsi512_si256(SixVector2(g, g.g[0]->mins, 0)),
                           _mm512_castsi512_si256(SixVector2(g, g.g[0]->mins, 1))};
    const __m256i b32 = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums)), ones);
    const __m256i b16 = _mm256_packs_epi32(b32, b32);
    __m256i imin = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      const __m256i mp = _mm256_shuffle_epi8(mn[p / 2], _mm512_castsi512_si256(Pair512(2 * p, 2 * p + 1)));
      imin = _mm256_add_epi32(imin, _mm256_madd_epi16(mp, _mm256_permutevar8x32_epi32(b16, _mm256_set1_epi32(p < 2 ? p : p + 2))));
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].d)));
    const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].dmin)));
    const __m256 dx = _mm256_set1_ps(xb.d);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(AddHalves(isum)), acc);
    acc = _mm256_fnmadd_ps(_mm256_mul_ps(dmw, dx), _mm256_cvtepi32_ps(imin), acc);
  }
  _mm256_storeu_ps(a.y + r * a.ldy + j, acc);
}

KFN void Q6KGemv(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ6_Kx8* w = reinterpret_cast<const BlockQ6_Kx8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  // the top bits of vectors (0, 1) and (2, 3) of a sub-block: qh shifted left 4 / 2, none / right 2
  const __m512i shl01 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i shr23 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
  __m256 acc = _mm256_setzero_ps();
  // Into L1 (Zen) 5 KiB ahead, about three of its 1680-byte groups as 4 KiB is for Q4_K's 1152:
  // on the Zen 5 VM, `bench kernels --gemv-only --gemv-types q6_k --threads 1` read 0.90-0.92 of
  // a plain read at 5 KiB, 0.86-0.90 at 4, 0.86-0.92 at 6, 0.85-0.90 at 7 (alternated three
  // times; Q4_K read best at 4 KiB: 0.85-0.88 against 0.82-0.86 at 3 and 6).
  LinePrefetch pf(w, 5120);
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockQ6_Kx8> g{{w + b, w + b}};
    pf.Through(w + b + 1);
    // Zen: and one line a group 16 KiB ahead, as AffineKGemv. `bench kernels --gemv-only
    // --gemv-types q6_k --threads 1,2`, builds alternated three times: one core 0.96-1.01 of a
    // plain read against 0.89-0.93, two 0.90-1.05 against 0.82-0.91; TinyLlama Q4_K_M decoding
    // on 2 executors 77-78 % of the read bandwidth against 69-72 % (tg64 83.9-89.1 against
    // 75.8-84.8 tokens/s, one executor 55.5-56.7 against 50.7-51.0).
    if (!pf.intoL2()) PrefetchStreamLine(w + b);
    const BlockQ8_K& xb = act.q8k(r)[b];
    __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // by pair: two vpdpwssd chains
#pragma GCC unroll 1
    for (int c = 0; c < 4; ++c) {
      const __m512i xc = _mm512_loadu_si512(xb.qs + 64 * c);
#pragma GCC unroll 4
      for (int hu = 0; hu < 4; ++hu) {
        const int sb = 4 * c + hu, h = hu / 2, u = hu % 2;
        const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qh + 32 * sb)));
        const __m512i scale = ScaleI8x2(g, sb, sb);
#pragma GCC unroll 2
        for (int pair = 0; pair < 2; ++pair) {
          const int v = 4 * u + 2 * pair;
          const __m512i bits = _mm512_loadu_si512(w[b].ql + 32 * (8 * c + v));
          const __m512i nib = h ? _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4) : _mm512_and_si512(bits, m4);
          const __m512i top = pair == 0 ? _mm512_sllv_epi16(hb, shl01) : _mm512_srlv_epi16(hb, shr23);
          const __m512i q = _mm512_ternarylogic_epi32(nib, top, m30, 0xF8);  // nib | (top & m30)
          const __m512i p16 = _mm512_maddubs_epi16(q, _mm512_permutexvar_epi32(PairIdx(8 * h + v), xc));
          isum[pair] = AddScaled(isum[pair], p16, scale);
        }
      }
    }
    __m256i bs = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) {
      int32_t b2;
      std::memcpy(&b2, xb.bsums + 2 * p, 4);
      bs = _mm256_add_epi32(bs, _mm256_madd_epi16(_mm512_castsi512_si256(ScaleI8x2(g, 2 * p, 2 * p + 1)), _mm256_set1_epi32(b2)));
    }
    const __m256i total = _mm256_sub_epi32(AddHalves(_mm512_add_epi32(isum[0], isum[1])), _mm256_slli_epi32(bs, 5));
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].d)));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xb.d)), _mm256_cvtepi32_ps(total), acc);
  }
  _mm256_storeu_ps(a.y + r * a.ldy + j, acc);
}

// Q4_0 and IQ4_NL: a block's 4 weight vectors in two zmm, X's low and high 16 bytes of the block
// each give two pair vectors. IQ4_NL looks its levels up and multiplies signed by signed as
// Nibble32Tile does, each product pair widened at once.
template <typename BlockX8>
KFN void Nibble32Gemv(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  constexpr bool kLookup = std::is_same_v<BlockX8, BlockIQ4_NLx8>;
  const BlockX8* w = reinterpret_cast<const BlockX8*>(a.w + j * a.wStride);
  const int64_t nb = act.nb, nq = act.layout == ActLayout::Q4Quads ? nb / 4 * 4 : 0;
  const __m512i m4 = _mm512_set1_epi8(0x0F), ones = _mm512_set1_epi16(1), zero = _mm512_setzero_si512();
  const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  const int8_t* x = act.qs(r);
  const float *dx = act.d(r), *cx = kLookup ? nullptr : act.c(r);
  __m256 acc = _mm256_setzero_ps();
  // Block b with X's low 16 values at xlo, high at xhi.
  auto block = [&](int64_t b, const int8_t* xlo, const int8_t* xhi) KFN_LAMBDA {
    const __m512i xl = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xlo)));
    const __m512i xh = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xhi)));
    // Q4_0: int16 sums, or int32 with VNNI (AddDot), low and high nibbles in separate chains;
    // IQ4_NL: int32.
    __m512i sum = _mm512_setzero_si512(), sumH = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int p = 0; p < 2; ++p) {
      const __m512i bits = _mm512_loadu_si512(w[b].qs + 64 * p);
      const __m512i ql = _mm512_and_si512(bits, m4), qh = _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4);
      const __m512i pxl = _mm512_permutexvar_epi32(PairIdx(2 * p), xl), pxh = _mm512_permutexvar_epi32(PairIdx(2 * p), xh);
      if constexpr (kLookup) {
        const __m512i wl = _mm512_shuffle_epi8(table, ql), wh = _mm512_shuffle_epi8(table, qh);
        const __m512i pl =
            _mm512_maddubs_epi16(_mm512_abs_epi8(wl), _mm512_mask_sub_epi8(pxl, _mm512_movepi8_mask(wl), zero, pxl));
        const __m512i ph =
            _mm512_maddubs_epi16(_mm512_abs_epi8(wh), _mm512_mask_sub_epi8(pxh, _mm512_movepi8_mask(wh), zero, pxh));
        sum = _mm512_add_epi32(sum, _mm512_add_epi32(_mm512_madd_epi16(pl, ones), _mm512_madd_epi16(ph, ones)));
      } else {
        sum = AddDot(sum, ql, pxl);
        sumH = AddDot(sumH, qh, pxh);
      }
    }
    const __m256i isum = AddHalves(kLookup ? sum : WidenSum(AddSums(sum, sumH)));
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].d)));
    const __m256 d = _mm256_set1_ps(dx[b]);
    if constexpr (kLookup)
      acc = _mm256_fmadd_ps(dw, _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum)), acc);
    else
      acc = _mm256_fmadd_ps(dw, _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), _mm256_set1_ps(cx[b])), acc);
  };
  int64_t b = 0;
  if (PrefetchGemvToL2()) {
    // Intel: one block a step, each prefetching its own 64-byte spans, X's lines left to L2,
    // as before Zen 5's four-block step (since replaced by the eight-block one below) was made. On the Sapphire Rapids VM that step
    // (with one prefetch per line, or per block, or without X's prefetch) read 0.94-0.96 of a
    // plain read against this form's 1.04-1.05 (`bench kernels --gemv-only --gemv-types q4_0
    // --threads 1`), and TinyLlama Q4_0 decoding 86-89 % of the read bandwidth against 91-94 %
    // (`bench model --no-reference --pp 16 --tg 64 --reps 2`, alternated). Its own return and a
    // prefetch with no run-time choice keep acc in a register (without them GCC kept it on the
    // stack, 0.93× of this form in `scripts/kernel-ab.mjs … q4_0 --rows8`).
    for (; b < nb; ++b) {
      PrefetchGemvBlockToL2<sizeof(BlockX8)>(w + b);
      const int64_t lo = b < nq ? (b / 4) * 128 + (b % 4) * 16 : b * kQBlock, hi = lo + (b < nq ? 64 : 16);
      block(b, x + lo, x + hi);
    }
    _mm256_storeu_ps(a.y + r * a.ldy + j, acc);
    return;
  }
  // Elsewhere (Zen): eight blocks a step where X is in quads (X's offsets are constants, the
  // scalar work around a block's ~20 vector instructions shared), X's own lines prefetched 32
  // blocks ahead, and of W one line a step, 16 KiB ahead: the hardware prefetcher fetches the
  // rest, and that lone far line keeps its stream running ahead. A prefetch of every line holds
  // one of the core's few miss buffers per line until DRAM answers, and took them from the loads
  // of X, whose misses stall the block's chain. On the Zen 5 VM, one core (`bench kernels
  // --gemv-only --gemv-types q4_0 --threads 1`, variants alternated in one build): four blocks a
  // step with every line of W prefetched 4 KiB ahead, 0.62-0.72 of a plain read; without W's
  // prefetch 0.72-0.82, eight blocks a step 0.75-0.80 (1.165× in `scripts/kernel-ab.mjs`); every
  // line, into L1 or L2, 1-8 KiB ahead, 0.69-0.78; without X's prefetch 0.69-0.70. One line a
  // step 16 KiB ahead against none, in one process (`node scripts/kernel-ab.mjs A.node B.node q4_0
  // --rows8`, both orders, twice): 1.15-1.17×; 8 KiB read about as 16 in `bench kernels`, two
  // lines a step less, one into L2 less. Fewer vector uops (high nibbles as n·16 through vpandn,
  // the sum shifted once; X's permutes from one 64-byte load per quad): no change.
  // Then every line again 4 KiB ahead, beside the far line (as AffineKGemv; the trial above
  // without the far line lost): `scripts/kernel-ab.mjs … q4_0 --rows8` 1.10-1.18× (3 KiB 1.06×,
  // 6 KiB 1.13×); `bench kernels --gemv-only --gemv-types q4_0 --threads 1,2`, alternated twice:
  // one core 0.91-0.93 → 0.97-0.98 of a plain read, two 0.87-0.93 → 0.89-1.00; TinyLlama Q4_0
  // decoding on 2 executors (`bench model --no-reference --pp 16 --tg 64 --reps 2`, alternated
  // three times) 98.6-99.2 → 106.7-109.5 tokens/s, one executor 53.3-54.1 → 58.0-61.1.
  LinePrefetch pf(w);
  for (; b + 8 <= nq; b += 8) {
    PrefetchStreamLine(w + b);
    if constexpr (!kLookup) pf.Through(w + b + 8);  // IQ4_NL, heavier in compute: 0.96× with it
    const int8_t* xq = x + b * kQBlock;
    PrefetchActAhead(act, r, b);
    PrefetchActAhead(act, r, b + 4);
#pragma GCC unroll 8
    for (int u = 0; u < 8; ++u) block(b + u, xq + 128 * (u / 4) + 16 * (u % 4), xq + 128 * (u / 4) + 64 + 16 * (u % 4));
  }
  for (; b < nq; b += 4) {
    const int8_t* xq = x + b * kQBlock;
    PrefetchActAhead(act, r, b);
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) block(b + u, xq + 16 * u, xq + 64 + 16 * u);
  }
  for (; b < nb; ++b) block(b, x + b * kQBlock, x + b * kQBlock + 16);
  _mm256_storeu_ps(a.y + r * a.ldy + j, acc);
}

// IQ4_XS (activations in ActLayout::Iq4Pairs: a sub-block pair's low-nibble values at X's
// bytes 0-31 of its 64, high at 32-63).
KFN void Iq4XsGemv(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockIQ4_XSx8* w = reinterpret_cast<const BlockIQ4_XSx8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m512i m4 = _mm512_set1_epi8(0x0F), k32 = _mm512_set1_epi16(32), zero = _mm512_setzero_si512();
  const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  __m256 acc = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockIQ4_XSx8> g{{w + b, w + b}};
    pf.Through(w + b + 1);
    // Zen: and the far line (AffineKGemv): `kernel-ab … iq4_xs --rows8` 1.17-1.26×; `bench
    // kernels --gemv-only --gemv-types iq4_xs --threads 1,2` 0.81-0.86 → 0.89-0.91 of a plain
    // read on one core, 0.75-0.80 → 0.80-0.83 on two (alternated twice).
    if (!pf.intoL2()) PrefetchStreamLine(w + b);
    const BlockQ8_K& xb = act.q8k(r)[b];
    const __m512i sc[2] = {SixVector2(g, g.g[0]->scales, 0), SixVector2(g, g.g[0]->scales, 1)};
    __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // low and high nibbles' chains
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i xc = _mm512_loadu_si512(xb.qs + 64 * c);
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        const int s = 2 * c + half;
        const __m512i scale = _mm512_sub_epi16(_mm512_shuffle_epi8(sc[s / 4], Pair512(s, s)), k32);
#pragma GCC unroll 2
        for (int v = 4 * half; v < 4 * half + 4; v += 2) {
          const __m512i bits = _mm512_loadu_si512(w[b].qs + 256 * c + 32 * v);
          const __m512i wl = _mm512_shuffle_epi8(table, _mm512_and_si512(bits, m4));
          const __m512i wh = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4));
          const __m512i xl = _mm512_permutexvar_epi32(PairIdx(v), xc), xh = _mm512_permutexvar_epi32(PairIdx(8 + v), xc);
          const __m512i pl =
              _mm512_maddubs_epi16(_mm512_abs_epi8(wl), _mm512_mask_sub_epi8(xl, _mm512_movepi8_mask(wl), zero, xl));
          const __m512i ph =
              _mm512_maddubs_epi16(_mm512_abs_epi8(wh), _mm512_mask_sub_epi8(xh, _mm512_movepi8_mask(wh), zero, xh));
          isum[0] = AddScaled(isum[0], pl, scale), isum[1] = AddScaled(isum[1], ph, scale);
        }
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].d)));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xb.d)), _mm256_cvtepi32_ps(AddHalves(_mm512_add_epi32(isum[0], isum[1]))), acc);
  }
  _mm256_storeu_ps(a.y + r * a.ldy + j, acc);
}

// Q3_K: sub-blocks 2k and 2k + 1 of a group in one zmm (their qs vectors lie together, and they
// share an hm vector, shifted per half as the AVX2 tile shifts it per sub-block).
KFN __m512i Halves16(int lo, int hi) {  // int16 lanes: lo in the low 256 bits, hi in the high
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(lo)), _mm256_set1_epi16(static_cast<int16_t>(hi)), 1);
}
KFN void Q3KGemv(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ3_Kx8* w = reinterpret_cast<const BlockQ3_Kx8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m512i m33 = _mm512_set1_epi8(0x33), m44 = _mm512_set1_epi8(0x44), m7 = _mm512_set1_epi8(7),
                k32 = _mm512_set1_epi16(32);
  // he: hm (sub-block 2k), hm << 2 (2k + 1); ho: hm >> 1, hm << 1
  const __m512i heL = Halves16(0, 2), hoR = Halves16(1, 0), hoL = Halves16(0, 1);
  __m256 acc = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockQ3_Kx8> g{{w + b, w + b}};
    pf.Through(w + b + 1);
    const BlockQ8_K& xb = act.q8k(r)[b];
    const __m512i sc[4] = {SixVector2(g, g.g[0]->scales, 0), SixVector2(g, g.g[0]->scales, 1),
                           SixVector2(g, g.g[0]->scales + 48, 0), SixVector2(g, g.g[0]->scales + 48, 1)};
    __m256i bsum;
    {
      __m512i sp[8];
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) sp[p] = _mm512_sub_epi16(_mm512_shuffle_epi8(sc[p / 2], Pair512(2 * p, 2 * p + 1)), k32);
      bsum = _mm512_castsi512_si256(ScaledBsums(sp, xb));
    }
    __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 1
    for (int c = 0; c < 4; ++c) {
      const __m512i xc = _mm512_loadu_si512(xb.qs + 64 * c);
#pragma GCC unroll 2
      for (int k2 = 0; k2 < 2; ++k2) {  // sub-blocks sb = 4c + 2·k2 and sb + 1
        const int sb = 4 * c + 2 * k2, s4 = 2 * k2;
        const __m512i bits = _mm512_loadu_si512(w[b].qs + 32 * sb);
        const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].hm + 32 * (sb / 2))));
        const __m512i ctl = _mm512_inserti64x4(Pair512(s4, s4), _mm512_castsi512_si256(Pair512(s4 + 1, s4 + 1)), 1);
        const __m512i scale = _mm512_sub_epi16(_mm512_shuffle_epi8(sc[c], ctl), k32);
        const __m512i he = _mm512_sllv_epi16(hm, heL), ho = _mm512_sllv_epi16(_mm512_srlv_epi16(hm, hoR), hoL);
        const __m512i e = _mm512_or_si512(_mm512_and_si512(bits, m33), _mm512_and_si512(he, m44));
        const __m512i o = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(bits, 2), m33), _mm512_and_si512(ho, m44));
        const __m512i q[4] = {_mm512_and_si512(e, m7), _mm512_and_si512(o, m7), _mm512_and_si512(_mm512_srli_epi16(e, 4), m7),
                              _mm512_and_si512(_mm512_srli_epi16(o, 4), m7)};
        __m512i s16 = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {  // X: dword 4·(sb − 4c) + v (low half), 4 further (high)
          const int d = 4 * (sb - 4 * c) + v;
          const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(d), _mm256_set1_epi32(d + 4), 1);
          s16 = AddDot(s16, q[v], _mm512_permutexvar_epi32(idx, xc));
        }
        isum = _mm512_add_epi32(isum, ScaleSum(s16, scale));
      }
    }
    const __m256i total = _mm256_sub_epi32(AddHalves(isum), _mm256_slli_epi32(bsum, 2));
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].d)));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xb.d)), _mm256_cvtepi32_ps(total), acc);
  }
  _mm256_storeu_ps(a.y + r * a.ldy + j, acc);
}

// 4 rows of X a tile, then 2, then 1 (as quant_avx2.cc's Rows8Kernel), 16 rows of W a step. A
// lone row of X (a decoding step) reads one group at a time instead: a GEMV waits on memory,
// and the 16-row tiles' two streams read DRAM slower than one (one core, 4096² matrices from
// DRAM: Q4_K 26.5 against the AVX2 tile's 28.0 GB/s; from 2 rows of X on, the 16-row tiles
// are as fast or faster, at 8 rows 1.4-1.5×). Q4_0, IQ4_NL, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS have a
// one-stream AVX-512 GEMV above (docs/kernels.md has the figures); Q8_0, Q5_0, Q4_1, Q5_1
// and Q2_K take the AVX2 tile.
// The 16-row tile of type T, RX rows of X.
template <WeightType T, int RX>
KFN void Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both) {
  if constexpr (T == WeightType::Q4_0) Nibble32Tile<RX, BlockQ4_0x8>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q5_0) Nibble32Tile<RX, BlockQ5_0x8>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q4_1) Nibble32Tile<RX, BlockQ4_1x8>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q5_1) Nibble32Tile<RX, BlockQ5_1x8>(a, act, r, j, both);
  else if constexpr (T == WeightType::IQ4_NL) Nibble32Tile<RX, BlockIQ4_NLx8>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q8_0) Q8Tile<RX>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q2_K) Q2KTile<RX>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q3_K) Q3KTile<RX>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q4_K) AffineKTile<RX, BlockQ4_Kx8>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q5_K) AffineKTile<RX, BlockQ5_Kx8>(a, act, r, j, both);
  else if constexpr (T == WeightType::Q6_K) Q6KTile<RX>(a, act, r, j, both);
  else Iq4XsTile<RX>(a, act, r, j, both);
}
// Types with a one-stream GEMV (above); the others decode on the AVX2 tile.
constexpr bool HasGemv(WeightType t) {
  return t == WeightType::Q4_0 || t == WeightType::IQ4_NL || t == WeightType::Q3_K || t == WeightType::Q4_K ||
         t == WeightType::Q5_K || t == WeightType::Q6_K || t == WeightType::IQ4_XS;
}
template <WeightType T>
KFN void Gemv(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  if constexpr (T == WeightType::Q4_0) Nibble32Gemv<BlockQ4_0x8>(a, act, r, j);
  else if constexpr (T == WeightType::IQ4_NL) Nibble32Gemv<BlockIQ4_NLx8>(a, act, r, j);
  else if constexpr (T == WeightType::Q3_K) Q3KGemv(a, act, r, j);
  else if constexpr (T == WeightType::Q4_K) AffineKGemv<BlockQ4_Kx8>(a, act, r, j);
  else if constexpr (T == WeightType::Q5_K) AffineKGemv<BlockQ5_Kx8>(a, act, r, j);
  else if constexpr (T == WeightType::Q6_K) Q6KGemv(a, act, r, j);
  else if constexpr (T == WeightType::IQ4_XS) Iq4XsGemv(a, act, r, j);
}

template <WeightType T>
KENTRY void Rows16Kernel(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                         int64_t j1) {
  if (rows == 1) {
    if constexpr (HasGemv(T)) {
      for (int64_t j = j0; j < j1; j += 8) Gemv<T>(a, act, r0, j);
    } else {
      static const QKernel one = Avx2Kernels().ForRows8(T);
      one(a, act, r0, rows, j0, j1);
    }
    return;
  }
  auto sweep = [&](auto rx, const QuantMatmulArgs& a, const ActRows& act, int64_t r) KFN_LAMBDA {
    int64_t j = j0;
#if KVNNI
    if constexpr (T == WeightType::Q4_0)
      for (; j + 32 <= j1; j += 32) Q4_0QuadTile<decltype(rx)::value>(a, act, r, j);
#endif
    for (; j + 16 <= j1; j += 16) Tile<T, decltype(rx)::value>(a, act, r, j, true);
    if (j < j1) Tile<T, decltype(rx)::value>(a, act, r, j, false);
  };
  // The last `valid` rows through a tile of RX = valid + 1: X's row past m is zeros
  // (QuantizeAct adds it, ActPadRows), and the tile's rows go to a scratch Y of which the
  // valid ones are copied out. One unpacking of W for them all instead of one per tile of 2 and 1
  // (m = 3) or of 4, 2 and 1 (m = 7, with VNNI); a row's sums do not depend on RX, so rowInvariant
  // holds. A step of one sequence and 2 or 6 drafted tokens (generate --lookup), 2 executors,
  // TinyLlama Q4_0 (scripts/draft-step.mjs): m = 3 1.39-1.46× → 1.35-1.38× the time of m = 1,
  // m = 7 2.15-2.17× → 1.94-2.04×. Padding further costs more than it saves
  // (m = 5 through the 8-row tile: 1.69× → 1.90-1.97×).
  auto padded = [&](auto rx, int64_t r, int64_t valid) KFN_LAMBDA {
    constexpr int64_t RX = decltype(rx)::value;
    thread_local std::vector<float> scratch;
    if (scratch.size() < static_cast<size_t>(RX * a.ldy)) scratch.resize(static_cast<size_t>(RX * a.ldy));
    QuantMatmulArgs b = a;
    b.y = scratch.data();
    ActRows shifted = act;
    shifted.base = act.base + r * act.stride;
    sweep(rx, b, shifted, 0);
    for (int64_t i = 0; i < valid; ++i)
      std::memcpy(a.y + (r + i) * a.ldy + j0, b.y + i * a.ldy + j0, static_cast<size_t>(j1 - j0) * sizeof(float));
  };
  int64_t r = r0;
  const int64_t end = r0 + rows;
  // With VNNI (one int32 sum a row, nothing spilled) 8 rows of X a tile share each unpacked
  // vector of W and its scales: m = 8 from L2 +5-20% by type (Q4_0 394 → 420-432 GFLOP/s),
  // Q2_K level. Without VNNI the int16 sums of 8 rows cost more than they share (Q5_0 -17%).
  // Q4_0 takes them against 32 rows of W (Q4_0QuadTile), 8 rows of X too although its 32
  // accumulators then exceed the registers: W is read once per sweep, not twice. m = 8, one
  // core: from L2 516 → 530-541 GFLOP/s, from memory (rows8-paths gemm --dram) 325-355 →
  // 398-428 (4 rows a sweep → 8).
  constexpr bool kEight = KVNNI && T != WeightType::Q2_K;
  if constexpr (kEight) {
    for (; r + 8 <= end; r += 8) sweep(std::integral_constant<int, 8>{}, a, act, r);
    if (end - r == 7) return padded(std::integral_constant<int, 8>{}, r, 7);
  }
  for (; r + 4 <= end; r += 4) sweep(std::integral_constant<int, 4>{}, a, act, r);
  if (end - r == 3) return padded(std::integral_constant<int, 4>{}, r, 3);
  for (; r + 2 <= end; r += 2) sweep(std::integral_constant<int, 2>{}, a, act, r);
  for (; r < end; ++r) sweep(std::integral_constant<int, 1>{}, a, act, r);
}

}  // namespace

void SetRows8Kernels(KernelSet& s) {
  s.q4Rows8 = Rows16Kernel<WeightType::Q4_0>;
  s.q50Rows8 = Rows16Kernel<WeightType::Q5_0>;
  s.q41Rows8 = Rows16Kernel<WeightType::Q4_1>;
  s.q51Rows8 = Rows16Kernel<WeightType::Q5_1>;
  s.iq4nlRows8 = Rows16Kernel<WeightType::IQ4_NL>;
  s.q8Rows8 = Rows16Kernel<WeightType::Q8_0>;
  s.q2kRows8 = Rows16Kernel<WeightType::Q2_K>;
  s.q3kRows8 = Rows16Kernel<WeightType::Q3_K>;
  s.q4kRows8 = Rows16Kernel<WeightType::Q4_K>;
  s.q5kRows8 = Rows16Kernel<WeightType::Q5_K>;
  s.q6kRows8 = Rows16Kernel<WeightType::Q6_K>;
  s.iq4xsRows8 = Rows16Kernel<WeightType::IQ4_XS>;
}

}  // namespace KNS
}  // namespace redblue

#pragma GCC diagnostic pop

#undef KFN
#undef KENTRY
#undef KFN_LAMBDA
