// AVX2 kernels: one 32-value block per ymm, vpmaddubsw + vpmaddwd (no VNNI in plain AVX2).
// The K-type kernels here also serve the AVX-512 paths (see quant_avx512.cc).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/half.h"
#include "kernels/quant_impl.h"

#define KFN __attribute__((target("avx2,fma,f16c"), always_inline)) inline
#define KENTRY __attribute__((target("avx2,fma,f16c")))
#define KFN_LAMBDA __attribute__((target("avx2,fma,f16c"), always_inline))

namespace redblue {
namespace {

KFN float HSum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// Software prefetch for the row kernels (GEMV and row-invariant rows): LinePrefetch
// (quant_impl.h). On the EPYC dev VM, one core, q4_0 11008×4096 from DRAM: 0.64-0.66 of a plain
// read without, 0.75 at 2 KiB ahead, 0.77-0.78 at 4-8 KiB (`redblue bench kernels --gemv-only`):
// the hardware prefetcher alone leaves the dot products waiting on DRAM. Into L2 where
// PrefetchGemvToL2 says so (Intel; docs/kernels.md): on the Sapphire Rapids day Q8_0's decoding
// (these rows, on the AVX-512 paths too) generated at 0.64 of the bandwidth with prefetcht0.

// Q4_0 / Q8_0 tiles: JR rows of W × RX rows of X, so that each unpacked weight block serves RX
// rows of X and each loaded block of X serves JR rows of W, with JR·RX independent accumulator
// chains. W's per-block scales are gathered 8 at a time (plain integer loads, one vcvtph2ps):
// for Q8_0 per panel of kPanel blocks, multiplied by X's and stored one panel ahead of the dot
// products; for Q4_0 once per task for all its rows of W (Q4Scales).
constexpr int64_t kPanel = 32;
template <int JR>
KFN void GatherScales8(const uint8_t* const w[JR], int64_t blockBytes, int64_t b0, int cnt, __m256 dw[JR]) {
  for (int jj = 0; jj < JR; ++jj) {
    // Assembled in integer registers: eight 2-byte stores read back as one 16-byte load would
    // miss store forwarding. Tail scales are 0 (their products are never used).
    auto at = [&](int t) -> uint64_t {
      uint16_t v;
      std::memcpy(&v, w[jj] + (b0 + t) * blockBytes, 2);
      return v;
    };
    uint64_t h[2] = {0, 0};
    if (cnt == 8) {  // unrolled: constant shifts, h stays in registers
      h[0] = at(0) | at(1) << 16 | at(2) << 32 | at(3) << 48;
      h[1] = at(4) | at(5) << 16 | at(6) << 32 | at(7) << 48;
    } else {
      for (int t = 0; t < cnt; ++t) h[t / 4] |= at(t) << (16 * (t % 4));
    }
    dw[jj] = _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(h[1]), static_cast<long long>(h[0])));
  }
}
KFN __m256 LoadUpTo8(const float* p, int cnt) {  // lanes ≥ cnt read as 0
  if (cnt == 8) return _mm256_loadu_ps(p);
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), idx));
}
KFN __m256 DotU8S8(__m256i u, __m256i s) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
// Q8_0 tiles: scales d_w·d_x of blocks [p0, p0 + kPanel) into sc (kPanel floats per pair of
// rows). Run one panel ahead of the dot products: its scale loads are the first touch of the
// panel's cache lines, and a DRAM miss there must not stall the FMAs queued behind it.
template <int JR, int RX>
KFN void PrepPanel(const uint8_t* const w[JR], int64_t blockBytes, const ActRows& act, int64_t r, int64_t p0,
                   float* sc) {
  const int64_t pn = std::min<int64_t>(kPanel, act.nb - p0);
  for (int64_t b0 = p0; b0 < p0 + pn; b0 += 8) {
    const int cnt = static_cast<int>(std::min<int64_t>(8, act.nb - b0));
    __m256 dw[JR];
    GatherScales8<JR>(w, blockBytes, b0, cnt, dw);
    for (int i = 0; i < RX; ++i) {
      const __m256 dx = LoadUpTo8(act.d(r + i) + b0, cnt);
      for (int jj = 0; jj < JR; ++jj) _mm256_store_ps(sc + (jj * RX + i) * kPanel + (b0 - p0), _mm256_mul_ps(dw[jj], dx));
    }
  }
}

// W's scales for the GEMM tiles, made once per task for its rows of W (not once per tile of X
// rows, as a panel prepared them: 85 times over at m = 512): per row the f32 scales (`compact`,
// nb rounded up to 8) and the same expanded per pair of blocks ([d_b ×4, d_b+1 ×4]: the lanes of
// a two-block vpmaddwd result).
struct Q4Scales {
  const float* compact = nullptr;
  const float* expanded = nullptr;
  int64_t ldc = 0, lde = 0, j0 = 0;
};
KFN void MakeQ4Scales(const QuantMatmulArgs& a, int64_t nb, int64_t j0, int64_t j1, std::vector<float>& buf,
                      Q4Scales& s, int64_t blockBytes = sizeof(BlockQ4_0)) {
  s.ldc = (nb + 7) / 8 * 8;
  s.lde = 4 * s.ldc;
  s.j0 = j0;
  buf.resize(static_cast<size_t>((j1 - j0) * (s.ldc + s.lde)));
  float* c = buf.data();
  float* e = c + (j1 - j0) * s.ldc;
  for (int64_t j = j0; j < j1; ++j, c += s.ldc, e += s.lde) {
    const uint8_t* w[1] = {a.w + j * a.wStride};
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
      __m256 dw[1];
      GatherScales8<1>(w, blockBytes, b0, static_cast<int>(std::min<int64_t>(8, nb - b0)), dw);
      _mm256_storeu_ps(c + b0, dw[0]);
      for (int k = 0; k < 4; ++k)
        _mm256_storeu_ps(e + (b0 / 2 + k) * 8,
                         _mm256_permutevar8x32_ps(dw[0], _mm256_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1,
                                                                          2 * k + 1, 2 * k + 1, 2 * k + 1)));
    }
  }
  s.compact = buf.data();
  s.expanded = buf.data() + (j1 - j0) * s.ldc;
}

// Blocks b and b+1 (b even, inside a quad) of a row of X in quad order: values 0-15 of both
// (low lane b's, high lane b+1's), values 16-31 of both, and their scales expanded ([d_b ×4,
// d_b+1 ×4], ActRows::dxx).
struct QuadPair {
  __m256i lo, hi;
  __m256 dx;
};
KFN QuadPair LoadQuadPair(const ActRows& act, int64_t row, int64_t b) {
  const int8_t* x = act.qs(row) + (b / 4) * 128 + (b % 4) * 16;  // b % 4 is 0 or 2
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64)), _mm256_loadu_ps(act.dxx(row) + 4 * b)};
}

// Rows j..j+JR−1 of W for a tile, with their scales from Q4Scales (compact and expanded).
template <int JR>
struct ScaledRows {
  const uint8_t* w[JR];
  const float* dwc[JR];
  const float* dwe[JR];
  ScaledRows(const QuantMatmulArgs& a, const Q4Scales& sc, int64_t j) {
    for (int jj = 0; jj < JR; ++jj) {
      w[jj] = a.w + (j + jj) * a.wStride;
      dwc[jj] = sc.compact + (j + jj - sc.j0) * sc.ldc;
      dwe[jj] = sc.expanded + (j + jj - sc.j0) * sc.lde;
    }
  }
};

// Q4_0: unsigned nibbles × signed x (max 15·127·2, no vpmaddubsw saturation); the −8 offset
// comes back through the activations' c = −8·d_x·Σq_x, as one FMA per 8 blocks into the same
// accumulator. Activations in quad order (ActLayout::Q4Quads): two blocks per ymm (block b's
// nibble bytes in the low lane, b+1's in the high), so mask/shift, vpmaddwd, conversion and
// FMA serve two blocks (int16 lanes then add 4 products: ≤ 4·15·127); each pair's scales are
// W's (Q4Scales) times X's (ActRows::dxx), both expanded ahead. The last nb % 4 blocks are in
// natural order: one block broadcast to both halves, shifted per 32-bit lane by 0 / 4.
template <int JR, int RX>
KFN void Q4Tile(const QuantMatmulArgs& a, const ActRows& act, const Q4Scales& sc, int64_t r, int64_t j) {
  const ScaledRows<JR> rows(a, sc, j);
  const uint8_t* const* w = rows.w;
  const float* const* dwc = rows.dwc;
  const float* const* dwe = rows.dwe;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
  const int64_t nb = act.nb, nbQuads = act.layout == ActLayout::Q4Quads ? nb / 4 * 4 : 0;
  __m256 acc[JR][RX];
  for (int jj = 0; jj < JR; ++jj)
    for (int i = 0; i < RX; ++i) acc[jj][i] = _mm256_setzero_ps();
  for (int64_t b0 = 0; b0 < nb; b0 += 8) {  // the −8 offsets: d_w·c, 8 blocks per FMA
    const int cnt = static_cast<int>(std::min<int64_t>(8, nb - b0));
    for (int i = 0; i < RX; ++i) {
      const __m256 cx = LoadUpTo8(act.c(r + i) + b0, cnt);
      for (int jj = 0; jj < JR; ++jj) acc[jj][i] = _mm256_fmadd_ps(_mm256_loadu_ps(dwc[jj] + b0), cx, acc[jj][i]);
    }
  }
  int64_t b = 0;
  for (; b + 2 <= nbQuads; b += 2) {
    __m256i lo[JR], hi[JR];
    for (int jj = 0; jj < JR; ++jj) {
      const BlockQ4_0* blk = reinterpret_cast<const BlockQ4_0*>(w[jj]) + b;
      const __m256i v = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs)),
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs)));
      lo[jj] = _mm256_and_si256(v, m4);
      hi[jj] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    for (int i = 0; i < RX; ++i) {
      const QuadPair x = LoadQuadPair(act, r + i, b);
      for (int jj = 0; jj < JR; ++jj) {
        const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[jj], x.lo), _mm256_maddubs_epi16(hi[jj], x.hi));
        const __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(dwe[jj] + 4 * b), x.dx);
        acc[jj][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones)), scale, acc[jj][i]);
      }
    }
  }
  for (; b < nb; ++b) {  // natural order
    __m256i z[JR];
    for (int jj = 0; jj < JR; ++jj) {
      const BlockQ4_0* blk = reinterpret_cast<const BlockQ4_0*>(w[jj]) + b;
      const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs)));
      z[jj] = _mm256_and_si256(_mm256_srlv_epi32(raw, shift), m4);
    }
    for (int i = 0; i < RX; ++i) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.qs(r + i) + b * kQBlock));
      for (int jj = 0; jj < JR; ++jj)
        acc[jj][i] = _mm256_fmadd_ps(DotU8S8(z[jj], x), _mm256_set1_ps(dwc[jj][b] * act.d(r + i)[b]), acc[jj][i]);
    }
  }
  for (int jj = 0; jj < JR; ++jj)
    for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j + jj] = HSum256(acc[jj][i]);
}

// Q8_0: |w| unsigned × sign(x, w) (max 128·127·2, below the int16 saturation point).
template <int JR, int RX>
KFN void Q8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const uint8_t* w[JR];
  for (int jj = 0; jj < JR; ++jj) w[jj] = a.w + (j + jj) * a.wStride;
  __m256 acc[JR][RX];
  for (int jj = 0; jj < JR; ++jj)
    for (int i = 0; i < RX; ++i) acc[jj][i] = _mm256_setzero_ps();
  alignas(32) float sc[2][JR * RX * kPanel];  // this panel's scales and the next one's
  PrepPanel<JR, RX>(w, sizeof(BlockQ8_0), act, r, 0, sc[0]);
  for (int64_t p0 = 0, cur = 0; p0 < act.nb; p0 += kPanel, cur ^= 1) {
    const int64_t pn = std::min<int64_t>(kPanel, act.nb - p0);
    if (p0 + kPanel < act.nb) PrepPanel<JR, RX>(w, sizeof(BlockQ8_0), act, r, p0 + kPanel, sc[cur ^ 1]);
    for (int64_t t = 0; t < pn; ++t) {
      const int64_t b = p0 + t;
      __m256i z[JR], az[JR];
      for (int jj = 0; jj < JR; ++jj) {
        const BlockQ8_0* blk = reinterpret_cast<const BlockQ8_0*>(w[jj]) + b;
        z[jj] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs));
        az[jj] = _mm256_abs_epi8(z[jj]);
      }
      for (int i = 0; i < RX; ++i) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.qs(r + i) + b * kQBlock));
        for (int jj = 0; jj < JR; ++jj)
          acc[jj][i] = _mm256_fmadd_ps(DotU8S8(az[jj], _mm256_sign_epi8(x, z[jj])),
                                       _mm256_broadcast_ss(&sc[cur][(jj * RX + i) * kPanel + t]), acc[jj][i]);
      }
    }
  }
  for (int jj = 0; jj < JR; ++jj)
    for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j + jj] = HSum256(acc[jj][i]);
}

// Q8_0 prompt tiles on activations in quad order (ActLayout::Q4Quads, as Q4_0's): a pair of
// blocks per ymm (block b's first 16 values in the low lane, b+1's in the high; then their last
// 16), so the int32 sums of two blocks come out in one register, [b ×4 | b+1 ×4], and one
// conversion and one FMA by the expanded scales (W's, Q4Scales, times X's, ActRows::dxx) serve
// both. Two vpmaddwd stay: two blocks' vpmaddubsw sums added in int16 could reach 4·127·127.
// The last nb % 4 blocks are natural, one block per step.
template <int JR, int RX>
KFN void Q8PairTile(const QuantMatmulArgs& a, const ActRows& act, const Q4Scales& sc, int64_t r, int64_t j) {
  const ScaledRows<JR> rows(a, sc, j);
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t nb = act.nb, nbQuads = nb / 4 * 4;
  __m256 acc[JR][RX];
  for (int jj = 0; jj < JR; ++jj)
    for (int i = 0; i < RX; ++i) acc[jj][i] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nbQuads; b += 2) {
    __m256i lo[JR], hi[JR], alo[JR], ahi[JR];
    for (int jj = 0; jj < JR; ++jj) {
      const BlockQ8_0* blk = reinterpret_cast<const BlockQ8_0*>(rows.w[jj]) + b;
      lo[jj] = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs)),
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs)));
      hi[jj] = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs + 16)),
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs + 16)));
      alo[jj] = _mm256_abs_epi8(lo[jj]);
      ahi[jj] = _mm256_abs_epi8(hi[jj]);
    }
    for (int i = 0; i < RX; ++i) {
      const QuadPair x = LoadQuadPair(act, r + i, b);
      for (int jj = 0; jj < JR; ++jj) {
        const __m256i s32 =
            _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(alo[jj], _mm256_sign_epi8(x.lo, lo[jj])), ones),
                             _mm256_madd_epi16(_mm256_maddubs_epi16(ahi[jj], _mm256_sign_epi8(x.hi, hi[jj])), ones));
        const __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(rows.dwe[jj] + 4 * b), x.dx);
        acc[jj][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), scale, acc[jj][i]);
      }
    }
  }
  for (; b < nb; ++b) {  // natural order
    __m256i z[JR], az[JR];
    for (int jj = 0; jj < JR; ++jj) {
      z[jj] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>((reinterpret_cast<const BlockQ8_0*>(rows.w[jj]) + b)->qs));
      az[jj] = _mm256_abs_epi8(z[jj]);
    }
    for (int i = 0; i < RX; ++i) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.qs(r + i) + b * kQBlock));
      for (int jj = 0; jj < JR; ++jj)
        acc[jj][i] = _mm256_fmadd_ps(DotU8S8(az[jj], _mm256_sign_epi8(x, z[jj])),
                                     _mm256_set1_ps(rows.dwc[jj][b] * act.d(r + i)[b]), acc[jj][i]);
    }
  }
  for (int jj = 0; jj < JR; ++jj)
    for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j + jj] = HSum256(acc[jj][i]);
}

// GEMV (one row of X): one row of W at a time, a single stream, each block's scale taken from
// the block itself (vcvtph2ps of its f16 d, times d_x). Four blocks per step into four
// accumulators: with one, the FMA latency (4 cycles per block) capped Q4_0 at ~11 GB/s and Q8_0
// at ~22 GB/s in cache, below DRAM speed with a neighbour reading too. (The panel tiles above
// kept up worse with DRAM-sized W at one row of X: they win once a block serves several rows.)
template <typename BlockDot>
KFN float RowDot4(int64_t nb, const BlockDot& dot) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  float corr[4] = {0, 0, 0, 0};  // Q4_0's offsets d_w·c, one scalar FMA chain per accumulator
  int64_t b = 0;
  LinePrefetch pf(dot.w);
  for (; b + 4 <= nb; b += 4) {
    pf.Through(dot.w + b + 4);
    for (int u = 0; u < 4; ++u) dot(b + u, acc[u], corr[u]);
  }
  for (; b < nb; ++b) dot(b, acc[0], corr[0]);
  return HSum256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) +
         ((corr[0] + corr[1]) + (corr[2] + corr[3]));
}
struct Q4RowDot {
  const BlockQ4_0* w;
  const int8_t* xq;
  const float *dx, *cx;
  KFN void operator()(int64_t b, __m256& acc, float& corr) const {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs));
    const __m256i z = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
    const float dw = _cvtsh_ss(w[b].d);
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQBlock));
    acc = _mm256_fmadd_ps(DotU8S8(z, x), _mm256_set1_ps(dw * dx[b]), acc);
    corr = std::fma(dw, cx[b], corr);
  }
};
struct Q8RowDot {
  const BlockQ8_0* w;
  const int8_t* xq;
  const float* dx;
  KFN void operator()(int64_t b, __m256& acc, float&) const {
    const __m256i z = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kQBlock));
    acc = _mm256_fmadd_ps(DotU8S8(_mm256_abs_epi8(z), _mm256_sign_epi8(x, z)),
                           _mm256_set1_ps(_cvtsh_ss(w[b].d) * dx[b]), acc);
  }
};
// Q4_0 GEMV on activations in quad order (ActLayout::Q4Quads, [b0..b3 values 0-15][b0..b3
// values 16-31]): two blocks per ymm (block b's 16 nibble bytes in the low lane, b+1's in the
// high), so one mask / shift / two vpmaddubsw / one vpmaddwd / one conversion / one FMA serve
// two blocks; the four scales of a quad are converted and multiplied together (per block the
// int16 pair sums add 4 products: ≤ 4·15·127, no saturation). RX rows of X share each unpacked
// quad, each row with its own accumulators: a row's sums are the same for every RX (rowInvariant
// batches run decode rows this way, so a row gets the bits it gets alone).
template <int RX>
KFN void Q4QuadsRows(const BlockQ4_0* w, const ActRows& act, int64_t r, int64_t nq, float* y) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i pick01 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), pick23 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
  __m256 acc[RX][2];
  __m128 corr[RX];
  for (int i = 0; i < RX; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps(), corr[i] = _mm_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t q = 0; q < nq; ++q) {
    const BlockQ4_0* blk = w + 4 * q;
    pf.Through(blk + 4);
    uint64_t h = 0;
    for (int t = 0; t < 4; ++t) h |= uint64_t(blk[t].d) << (16 * t);
    const __m128 dw = _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(h)));
    __m256i lo[2], hi[2];
    for (int p = 0; p < 2; ++p) {
      const __m256i v = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[2 * p + 1].qs)),
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[2 * p].qs)));
      lo[p] = _mm256_and_si256(v, m4);
      hi[p] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    for (int i = 0; i < RX; ++i) {
      const int8_t* x = act.qs(r + i) + 128 * q;
      const __m256 s = _mm256_castps128_ps256(_mm_mul_ps(dw, _mm_loadu_ps(act.d(r + i) + 4 * q)));
      corr[i] = _mm_fmadd_ps(dw, _mm_loadu_ps(act.c(r + i) + 4 * q), corr[i]);
      for (int p = 0; p < 2; ++p) {
        const __m256i xlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * p));
        const __m256i xhi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 + 32 * p));
        const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[p], xlo), _mm256_maddubs_epi16(hi[p], xhi));
        const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[i][p] = _mm256_fmadd_ps(f, _mm256_permutevar8x32_ps(s, p ? pick23 : pick01), acc[i][p]);
      }
    }
  }
  for (int i = 0; i < RX; ++i) {
    __m128 c = _mm_add_ps(corr[i], _mm_movehl_ps(corr[i], corr[i]));
    c = _mm_add_ss(c, _mm_movehdup_ps(c));
    y[i] = HSum256(_mm256_add_ps(acc[i][0], acc[i][1])) + _mm_cvtss_f32(c);
  }
}
template <int RX>
KFN void Q4Rows(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ4_0* w = reinterpret_cast<const BlockQ4_0*>(a.w + j * a.wStride);
  if (act.layout != ActLayout::Q4Quads) {
    for (int i = 0; i < RX; ++i)
      a.y[(r + i) * a.ldy + j] = RowDot4(act.nb, Q4RowDot{w, act.qs(r + i), act.d(r + i), act.c(r + i)});
    return;
  }
  const int64_t nq = act.nb / 4;
  float y[RX];
  Q4QuadsRows<RX>(w, act, r, nq, y);
  for (int i = 0; i < RX; ++i) {
    const Q4RowDot dot{w, act.qs(r + i), act.d(r + i), act.c(r + i)};
    __m256 acc = _mm256_setzero_ps();  // the last nb % 4 blocks, in natural order
    float corr = 0.0f;
    for (int64_t b = 4 * nq; b < act.nb; ++b) dot(b, acc, corr);
    a.y[(r + i) * a.ldy + j] = y[i] + HSum256(acc) + corr;
  }
}
// Q8_0 GEMV for RX rows of X: RowDot4's four accumulators per row, each W block loaded once.
template <int RX>
KFN void Q8Rows(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(a.w + j * a.wStride);
  if (RX == 1) {
    a.y[r * a.ldy + j] = RowDot4(act.nb, Q8RowDot{w, act.qs(r), act.d(r)});
    return;
  }
  __m256 acc[RX][4];
  for (int i = 0; i < RX; ++i)
    for (int u = 0; u < 4; ++u) acc[i][u] = _mm256_setzero_ps();
  int64_t b = 0;
  LinePrefetch pf(w);
  for (; b < act.nb; ++b) {
    pf.Through(w + b + 1);
    const int u = b < act.nb / 4 * 4 ? static_cast<int>(b % 4) : 0;  // RowDot4's accumulator for block b
    const __m256i z = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i az = _mm256_abs_epi8(z);
    const float dw = _cvtsh_ss(w[b].d);
    for (int i = 0; i < RX; ++i) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.qs(r + i) + b * kQBlock));
      acc[i][u] = _mm256_fmadd_ps(DotU8S8(az, _mm256_sign_epi8(x, z)), _mm256_set1_ps(dw * act.d(r + i)[b]), acc[i][u]);
    }
  }
  const float zero = 0.0f;  // RowDot4's corrections, all zero for Q8_0
  for (int i = 0; i < RX; ++i)
    a.y[(r + i) * a.ldy + j] =
        HSum256(_mm256_add_ps(_mm256_add_ps(acc[i][0], acc[i][1]), _mm256_add_ps(acc[i][2], acc[i][3]))) +
        ((zero + zero) + (zero + zero));
}
KFN void Q4Row(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) { Q4Rows<1>(a, act, r, j); }
KFN void Q8Row(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) { Q8Rows<1>(a, act, r, j); }

// rowInvariant: every row of X through the GEMV arithmetic (Q4Rows / Q8Rows), RX rows at a
// time, so a decode row in a batch gets exactly the bits it gets alone, at GEMV speed.
template <typename Tile>
KFN void RunRows(const Tile& tile, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  int64_t r = r0;
  for (; r + 4 <= r0 + rows; r += 4)
    for (int64_t j = j0; j < j1; ++j) tile.template Rows<4>(r, j);
  for (; r + 2 <= r0 + rows; r += 2)
    for (int64_t j = j0; j < j1; ++j) tile.template Rows<2>(r, j);
  for (; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) tile.template Rows<1>(r, j);
}

// Runs a JR×RX tile over rows [r0, r0+rows) of X (4 at a time: a tile of X stays in L1 while
// the chunk of W rows streams by) and rows [j0, j1) of W, 2 at a time (2×4 accumulators leave
// registers for the operands); a lone row of X goes to the GEMV row kernel.
template <typename Tile>
KFN void RunTiles(const Tile& tile, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  for (int64_t r = r0; r < r0 + rows; r += 4) {
    const int64_t rr = std::min<int64_t>(4, r0 + rows - r);
    int64_t j = j0;
    switch (rr) {
      case 4:
        for (; j + 2 <= j1; j += 2) tile.template Run<2, 4>(r, j);
        for (; j < j1; ++j) tile.template Run<1, 4>(r, j);
        break;
      case 3:
        for (; j + 2 <= j1; j += 2) tile.template Run<2, 3>(r, j);
        for (; j < j1; ++j) tile.template Run<1, 3>(r, j);
        break;
      case 2:
        for (; j + 2 <= j1; j += 2) tile.template Run<2, 2>(r, j);
        for (; j < j1; ++j) tile.template Run<1, 2>(r, j);
        break;
      default:
        for (; j < j1; ++j) tile.Gemv(r, j);
        break;
    }
  }
}
struct Q4Tiles {
  const QuantMatmulArgs& a;
  const ActRows& act;
  const Q4Scales& sc;
  template <int JR, int RX>
  KFN void Run(int64_t r, int64_t j) const { Q4Tile<JR, RX>(a, act, sc, r, j); }
  KFN void Gemv(int64_t r, int64_t j) const { Q4Row(a, act, r, j); }
  template <int RX>
  KFN void Rows(int64_t r, int64_t j) const { Q4Rows<RX>(a, act, r, j); }
};
struct Q8Tiles {
  const QuantMatmulArgs& a;
  const ActRows& act;
  template <int JR, int RX>
  KFN void Run(int64_t r, int64_t j) const { Q8Tile<JR, RX>(a, act, r, j); }
  KFN void Gemv(int64_t r, int64_t j) const { Q8Row(a, act, r, j); }
  template <int RX>
  KFN void Rows(int64_t r, int64_t j) const { Q8Rows<RX>(a, act, r, j); }
};
// Q4_0 runs 1×6 tiles where six rows of X are left: one row of W's nibbles unpacked serves six
// rows of X, and the six accumulators leave registers for the operands (2×4 spilled two
// accumulators to the stack every step). Best of 5 at m=512 n=k=4096 on one Zen core: 79 GFLOP/s
// against 72 for 2×4 (the measurements spread ±10 % on this shared VM).
KENTRY void Q4Kernel(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  thread_local std::vector<float> scratch;
  Q4Scales sc;
  if (a.rowInvariant) return RunRows(Q4Tiles{a, act, sc}, r0, rows, j0, j1);
  if (rows > 1) MakeQ4Scales(a, act.nb, j0, j1, scratch, sc);  // one row of X: the GEMV reads them itself
  const Q4Tiles tile{a, act, sc};
  int64_t r = r0;
  for (; r + 6 <= r0 + rows; r += 6)
    for (int64_t j = j0; j < j1; ++j) tile.Run<1, 6>(r, j);
  if (r < r0 + rows) RunTiles(tile, r, r0 + rows - r, j0, j1);
}
KENTRY void Q8Kernel(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  if (a.rowInvariant) return RunRows(Q8Tiles{a, act}, r0, rows, j0, j1);
  if (act.layout != ActLayout::Q4Quads) return RunTiles(Q8Tiles{a, act}, r0, rows, j0, j1);
  // Quad order (a prompt, m > 1): every row, remainders too, through the pair tiles.
  thread_local std::vector<float> scratch;
  Q4Scales sc;
  MakeQ4Scales(a, act.nb, j0, j1, scratch, sc, sizeof(BlockQ8_0));
  for (int64_t r = r0; r < r0 + rows; r += 4) {
    const int64_t rr = std::min<int64_t>(4, r0 + rows - r);
    int64_t j = j0;
    switch (rr) {
      case 4:
        for (; j + 2 <= j1; j += 2) Q8PairTile<2, 4>(a, act, sc, r, j);
        for (; j < j1; ++j) Q8PairTile<1, 4>(a, act, sc, r, j);
        break;
      case 3:
        for (; j < j1; ++j) Q8PairTile<1, 3>(a, act, sc, r, j);
        break;
      case 2:
        for (; j < j1; ++j) Q8PairTile<1, 2>(a, act, sc, r, j);
        break;
      default:
        for (; j < j1; ++j) Q8PairTile<1, 1>(a, act, sc, r, j);
        break;
    }
  }
}

template <int RX, int kKind>
KFN void HalfTile(const QuantMatmulArgs& a, int64_t r, int64_t j) {
  const uint8_t* w = a.w + j * a.wStride;
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  int64_t e = 0;
  for (; e + 8 <= a.k; e += 8) {
    __m256 wv;
    if (kKind == kF32) {
      wv = _mm256_loadu_ps(reinterpret_cast<const float*>(w + 4 * e));
    } else {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * e));
      wv = kKind == kBf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
    }
    for (int i = 0; i < RX; ++i) acc[i] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(a.x + (r + i) * a.ldx + e), acc[i]);
  }
  for (int i = 0; i < RX; ++i) {
    float y = HSum256(acc[i]);
    for (int64_t t = e; t < a.k; ++t) {
      float wt;
      if (kKind == kF32) {
        std::memcpy(&wt, w + 4 * t, 4);
      } else {
        uint16_t h;
        std::memcpy(&h, w + 2 * t, 2);
        wt = kKind == kBf16 ? Bf16ToF32(h) : _cvtsh_ss(h);
      }
      y += wt * a.x[(r + i) * a.ldx + t];
    }
    a.y[(r + i) * a.ldy + j] = y;
  }
}

// K types. Per super-block and row of X, the integer sum Σ_s sc_s·Σ q·x over its sub-blocks
// stays in 8 int32 lanes (vpmaddubsw then vpmaddwd by the sub-block scale, as ggml's AVX2
// code), one conversion and one FMA by d_w·d_x per super-block. Each weight super-block is
// unpacked once for all RX rows.

// UnpackScalesK4 (quant_impl.h) in one register: the 12 packed bytes (and 4 of qs after them,
// unused) loaded once, no trip through the stack. Out: sc0-7, m0-7 as bytes.
KFN __m128i UnpackScalesK4x(const uint8_t* packed) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));  // u0 u1 u2 (u3: qs)
  const __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));                // u0 u2 u1 u2
  const __m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));                // .  u0 .  u1
  const __m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                   _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i hi = _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(lo, hi);
}

// The end of an affine super-block (Q2_K, Q4_K, Q5_K): the integer sums times d_w·d_x into acc,
// and Σ_g m_g·bsum_g (one vpmaddwd of the mins, one int16 per bsum, by the activations' 16
// bsums) times dmin_w·d_x into accMin.
template <int RX>
KFN void AddAffineSums(const __m256i isum[RX], __m256i mins16, const ActRows& act, int64_t r, int64_t b, float dw,
                       float dmw, __m256 acc[RX], __m256 accMin[RX]) {
  for (int i = 0; i < RX; ++i) {
    const BlockQ8_K& xb = act.q8k(r + i)[b];
    const __m256i imin = _mm256_madd_epi16(mins16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums)));
    acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb.d), _mm256_cvtepi32_ps(isum[i]), acc[i]);
    accMin[i] = _mm256_fmadd_ps(_mm256_set1_ps(dmw * xb.d), _mm256_cvtepi32_ps(imin), accMin[i]);
  }
}

// Q4_K / Q5_K: levels 0..15 (0..31 with qh) × x: at most 31·127·2 per int16 pair, no saturation.
// The mins come in through the activations' bsums: Σ_s m_s·(bsum_2s + bsum_2s+1) is one
// vpmaddwd of the mins (each repeated twice) by the 16 bsums.
template <int RX, typename Block>
KFN void AffineKTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  constexpr bool kQ5 = std::is_same_v<Block, BlockQ5_K>;
  const Block* w = reinterpret_cast<const Block*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  __m256 acc[RX], accMin[RX];
  for (int i = 0; i < RX; ++i) acc[i] = accMin[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    pf.Through(w + b + 1);
    const __m128i sm = UnpackScalesK4x(w[b].scales);  // 8 scales, 8 mins
    const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));  // m0 m0 m1 m1 ...
    const __m256i sm2 = _mm256_broadcastsi128_si256(sm);
    const float dw = _cvtsh_ss(w[b].d), dmw = _cvtsh_ss(w[b].dmin);
    __m256i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm256_setzero_si256();
    __m256i qh = kQ5 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const BlockQ5_K*>(w + b)->qh))
                     : _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * c));
      __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      if (kQ5) {  // fifth bits of this pair of sub-blocks: bits 2c and 2c+1 of each qh byte
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
        qh = _mm256_srli_epi16(qh, 2);
      }
      // Scale of sub-block 2c / 2c+1 in every int16 lane: byte shuffle, high bytes zeroed (0x80).
      const __m256i sLo = _mm256_shuffle_epi8(sm2, _mm256_set1_epi16(static_cast<short>(0x8000 | (2 * c))));
      const __m256i sHi = _mm256_shuffle_epi8(sm2, _mm256_set1_epi16(static_cast<short>(0x8000 | (2 * c + 1))));
      for (int i = 0; i < RX; ++i) {
        const int8_t* x = act.q8k(r + i)[b].qs + 64 * c;
        const __m256i pLo =
            _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))), sLo);
        const __m256i pHi = _mm256_madd_epi16(
            _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32))), sHi);
        isum[i] = _mm256_add_epi32(isum[i], _mm256_add_epi32(pLo, pHi));
      }
    }
    AddAffineSums<RX>(isum, mins16, act, r, b, dw, dmw, acc, accMin);
  }
  for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j] = HSum256(_mm256_sub_ps(acc[i], accMin[i]));
}

// Q4_K (and Q5_K) in the rows8 layout (quant_impl.h): 8 rows of W in the 8 32-bit lanes. A weight vector
// holds 4 consecutive levels of each row, so X's 4 matching bytes are broadcast; a sub-block's 8
// vpmaddubsw results add up in int16 (≤ 8·2·15·128 = 30720, no overflow) and take the rows'
// scales in one vpmaddwd. The mins: Σ_s m_s·bsum32_s as 4 vpmaddwd of (m_2p, m_2p+1) pairs by X's
// (bsum32_2p, bsum32_2p+1). Every row of X takes the same steps whatever RX, so a row's bits do
// not depend on m (no rowInvariant special case). Natural AffineKTile pays a byte shuffle and a
// vpmaddwd per sub-block and row of W, and a horizontal sum per row.
KFN __m256i Rows8SixVector(const uint8_t* t, int h) {  // V_h of a Rows8Six table: bytes 0..63
  const __m256i nib = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t));
  const __m256i top = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 32)));
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
  const __m256i lo = h ? _mm256_and_si256(_mm256_srli_epi16(nib, 4), m4) : _mm256_and_si256(nib, m4);
  const __m256i shift = h ? _mm256_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6) : _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
  return _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srlv_epi32(top, shift), m3), 4));
}
// vpshufb control giving 32-bit lane ρ the int16 pair (V[(ρ, s0)], V[(ρ, s1)]) of a V_h vector
// (bytes in Rows8SixIndex's order); high: each byte into the int16's high half, for a signed
// value that an arithmetic shift by 8 then widens.
KFN __m256i Rows8Pair(int s0, int s1, bool high = false) {
  auto word = [&](int q) {
    const unsigned a = static_cast<unsigned>(4 * (s0 % 4) + q), b = static_cast<unsigned>(4 * (s1 % 4) + q);
    return static_cast<int>(high ? 0x80u | a << 8 | 0x80u << 16 | b << 24 : a | 0x80u << 8 | b << 16 | 0x80u << 24);
  };
  return _mm256_setr_epi32(word(0), word(1), word(2), word(3), word(0), word(1), word(2), word(3));
}
template <int RX, typename BlockX8>
KFN void AffineKRows8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  constexpr bool kQ5 = std::is_same_v<BlockX8, BlockQ5_Kx8>;
  // Q5_K's levels reach 31: 4 vpmaddubsw results per int16 (≤ 4·2·31·128), two vpmaddwd a sub-block.
  constexpr int kRun = kQ5 ? 4 : 8;
  const BlockX8* w = reinterpret_cast<const BlockX8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10), ones = _mm256_set1_epi16(1);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockX8& g = w[b];
    pf.Through(w + b + 1);
    const __m256i sc[2] = {Rows8SixVector(g.scales, 0), Rows8SixVector(g.scales, 1)};
    __m256i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm256_setzero_si256();
    // Unrolled, so that each sub-block's vpshufb control is a constant.
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c)
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {  // low nibbles: sub-block 2c, high: 2c + 1
        const int s = 2 * c + half;
        const __m256i scale = _mm256_shuffle_epi8(sc[s / 4], Rows8Pair(s, s));
        __m256i fifth = _mm256_setzero_si256();  // Q5_K: bit v of each byte is vector v's fifth bit
        if constexpr (kQ5) fifth = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qh + 32 * s));
#pragma GCC unroll 2
        for (int v0 = 0; v0 < 8; v0 += kRun) {
          __m256i s16[RX];
          for (int i = 0; i < RX; ++i) s16[i] = _mm256_setzero_si256();
          auto vector = [&](int v) KFN_LAMBDA {
            const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qs + 256 * c + 32 * v));
            __m256i q = half ? _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4) : _mm256_and_si256(bits, m4);
            if constexpr (kQ5) {  // bit v to bit 4 (16-bit shifts: no bit crosses into bit 4 of the other byte)
              const __m256i at4 = v0 == 0 ? _mm256_sll_epi16(fifth, _mm_cvtsi32_si128(4 - v))
                                          : _mm256_srl_epi16(fifth, _mm_cvtsi32_si128(v - 4));
              q = _mm256_or_si256(q, _mm256_and_si256(at4, m10));
            }
            for (int i = 0; i < RX; ++i) {
              int32_t x4;
              std::memcpy(&x4, act.q8k(r + i)[b].qs + 64 * c + 32 * half + 4 * v, 4);
              s16[i] = _mm256_add_epi16(s16[i], _mm256_maddubs_epi16(q, _mm256_set1_epi32(x4)));
            }
          };
          // Tiles of several rows of X: unrolled twice (fully unrolled, GCC spilled the 4-row
          // tile's sums: GEMM 125 against 165 GFLOP/s). One row: 4 times (Q4_K GEMV 80 against
          // 71 GFLOP/s from cache, Q5_K 61 against 50).
          if constexpr (RX == 1) {
#pragma GCC unroll 4
            for (int v = v0; v < v0 + kRun; ++v) vector(v);
          } else {
#pragma GCC unroll 2
            for (int v = v0; v < v0 + kRun; ++v) vector(v);
          }
          for (int i = 0; i < RX; ++i) isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(s16[i], scale));
        }
      }
    const __m256i mn[2] = {Rows8SixVector(g.mins, 0), Rows8SixVector(g.mins, 1)};
    __m256i mp[4];
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) mp[p] = _mm256_shuffle_epi8(mn[p / 2], Rows8Pair(2 * p, 2 * p + 1));
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.d)));
    const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.dmin)));
    for (int i = 0; i < RX; ++i) {
      const BlockQ8_K& xb = act.q8k(r + i)[b];
      // bsum32_s = bsums[2s] + bsums[2s+1]; packed to int16 pairs: dwords 0, 1, 4, 5 hold pairs 0-3.
      const __m256i b32 = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums)), ones);
      const __m256i b16 = _mm256_packs_epi32(b32, b32);
      __m256i imin = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int p = 0; p < 4; ++p) {
        const __m256i pair = _mm256_permutevar8x32_epi32(b16, _mm256_set1_epi32(p < 2 ? p : p + 2));
        imin = _mm256_add_epi32(imin, _mm256_madd_epi16(mp[p], pair));
      }
      const __m256 dx = _mm256_set1_ps(xb.d);
      acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum[i]), acc[i]);
      acc[i] = _mm256_fnmadd_ps(_mm256_mul_ps(dmw, dx), _mm256_cvtepi32_ps(imin), acc[i]);
    }
  }
  for (int i = 0; i < RX; ++i) _mm256_storeu_ps(a.y + (r + i) * a.ldy + j, acc[i]);
}

// Q8_0 in the rows8 layout: signed weights, so |w| takes vpmaddubsw's unsigned side and X's
// broadcast bytes w's sign (vpsignb); a product pair reaches 2·127·127, so each vpmaddubsw is
// widened by one vpmaddwd before the sums; d_w·d_x·Σ as the natural kernels. X in the Q8_0
// tiles' layout (quad order for prompts, else natural), read through each block's low and
// high 16 values.
template <int RX>
KFN void Q8Rows8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ8_0x8* w = reinterpret_cast<const BlockQ8_0x8*>(a.w + j * a.wStride);
  const int64_t nb = act.nb, nq = act.layout == ActLayout::Q4Quads ? nb / 4 * 4 : 0;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_0x8& g = w[b];
    pf.Through(w + b + 1);
    // Decoding on Zen: and one line every 4 groups (1088 bytes) 16 KiB ahead, as the AVX-512
    // GEMVs' far line (quant_impl.h). One core of the Zen 5 VM, `bench kernels --gemv-only
    // --gemv-types q8_0 --threads 1,2`, builds alternated twice: 0.67-0.69 of a plain read →
    // 1.01-1.03, two threads 0.70-0.75 → 0.87-0.95; `kernel-ab … q8_0 --rows8` 1.23-1.41× (a line
    // every group 0.94×, every 2 1.13-1.18×, every 8 1.29×).
    if (RX == 1 && !pf.intoL2() && b % 4 == 0) PrefetchStreamLine(w + b);
    const int64_t lo = b < nq ? (b / 4) * 128 + (b % 4) * 16 : b * kQBlock, hi = lo + (b < nq ? 64 : 16);
    __m256i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int v = 0; v < 8; ++v) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qs + 32 * v));
      const __m256i aq = _mm256_abs_epi8(q);
      for (int i = 0; i < RX; ++i) {
        int32_t x4;
        std::memcpy(&x4, act.qs(r + i) + (v < 4 ? lo + 4 * v : hi + 4 * (v - 4)), 4);
        const __m256i p = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(_mm256_set1_epi32(x4), q));
        isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(p, ones));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.d)));
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(act.d(r + i)[b])), _mm256_cvtepi32_ps(isum[i]), acc[i]);
  }
  for (int i = 0; i < RX; ++i) _mm256_storeu_ps(a.y + (r + i) * a.ldy + j, acc[i]);
}

// Q4_0 (and Q5_0, Q4_1, Q5_1) in the rows8 layout: 8 rows of W in the 32-bit lanes, X's 4 matching bytes
// broadcast; a block's 8 vpmaddubsw results add up in int16 (≤ 8·2·15·127; Q5_0's levels reach
// 31, so its low and high halves sum apart, ≤ 4·2·31·127 each), one vpmaddwd makes each row's
// sum, and d_w·(d_x·Σq·x + c) as the natural kernels (c carries the −8 or −16). X comes in the
// set's layout for the type (quad order or natural), read through the offsets of each block's
// low and high 16 values.
template <int RX, typename BlockX8>
KFN void Nibble32Rows8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  constexpr bool kQ5 = std::is_same_v<BlockX8, BlockQ5_0x8> || std::is_same_v<BlockX8, BlockQ5_1x8>;
  // Q4_1 / Q5_1: x = d·q + m, so Σ = d_w·d_x·Σq·x + m_w·s_x (s_x = ActRows::c).
  constexpr bool kAffine = std::is_same_v<BlockX8, BlockQ4_1x8> || std::is_same_v<BlockX8, BlockQ5_1x8>;
  // IQ4_NL: signed levels looked up in kIq4Values, multiplied as Q8Rows8Tile's (|w| by x carrying
  // w's sign), each product widened at once (a pair reaches 2·127·127): Σ = d_w·d_x·Σw·x.
  constexpr bool kLookup = std::is_same_v<BlockX8, BlockIQ4_NLx8>;
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  const BlockX8* w = reinterpret_cast<const BlockX8*>(a.w + j * a.wStride);
  const int64_t nb = act.nb, nq = act.layout == ActLayout::Q4Quads ? nb / 4 * 4 : 0;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10), ones = _mm256_set1_epi16(1);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockX8& g = w[b];
    pf.Through(w + b + 1);
    if (RX == 1 && b % 4 == 0) PrefetchActAhead(act, r, b);  // decoding: X's lines too (quant_impl.h)
    const int64_t lo = b < nq ? (b / 4) * 128 + (b % 4) * 16 : b * kQBlock, hi = lo + (b < nq ? 64 : 16);
    __m256i s16[RX], h16[RX];  // int16 sums (IQ4_NL: int32); h16: Q5_0's high halves
    for (int i = 0; i < RX; ++i) s16[i] = h16[i] = _mm256_setzero_si256();
    __m256i fifth = _mm256_setzero_si256();  // Q5_0: bit v / 4 + v of each byte: vector v's low / high fifth bit
    if constexpr (kQ5) fifth = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qh));
    auto vector = [&](int v) KFN_LAMBDA {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qs + 32 * v));
      __m256i ql = _mm256_and_si256(bits, m4), qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      if constexpr (kQ5) {  // bit v (4 + v) to bit 4; 16-bit shifts move no bit into bit 4 of the other byte
        ql = _mm256_or_si256(ql, _mm256_and_si256(_mm256_slli_epi16(fifth, 4 - v), m10));
        qh = _mm256_or_si256(qh, _mm256_and_si256(_mm256_srli_epi16(fifth, v), m10));
      }
      if constexpr (kLookup) {
        const __m256i wl = _mm256_shuffle_epi8(table, ql), wh = _mm256_shuffle_epi8(table, qh);
        const __m256i ul = _mm256_abs_epi8(wl), uh = _mm256_abs_epi8(wh);
        for (int i = 0; i < RX; ++i) {
          const int8_t* x = act.qs(r + i);
          int32_t xl, xh;
          std::memcpy(&xl, x + lo + 4 * v, 4);
          std::memcpy(&xh, x + hi + 4 * v, 4);
          const __m256i pl = _mm256_maddubs_epi16(ul, _mm256_sign_epi8(_mm256_set1_epi32(xl), wl));
          const __m256i ph = _mm256_maddubs_epi16(uh, _mm256_sign_epi8(_mm256_set1_epi32(xh), wh));
          s16[i] = _mm256_add_epi32(s16[i], _mm256_add_epi32(_mm256_madd_epi16(pl, ones), _mm256_madd_epi16(ph, ones)));
        }
        return;
      }
      for (int i = 0; i < RX; ++i) {
        const int8_t* x = act.qs(r + i);
        int32_t xl, xh;
        std::memcpy(&xl, x + lo + 4 * v, 4);
        std::memcpy(&xh, x + hi + 4 * v, 4);
        const __m256i pl = _mm256_maddubs_epi16(ql, _mm256_set1_epi32(xl));
        const __m256i ph = _mm256_maddubs_epi16(qh, _mm256_set1_epi32(xh));
        if constexpr (kQ5) {
          s16[i] = _mm256_add_epi16(s16[i], pl);
          h16[i] = _mm256_add_epi16(h16[i], ph);
        } else {
          s16[i] = _mm256_add_epi16(s16[i], _mm256_add_epi16(pl, ph));
        }
      }
    };
    // Q5's shift counts must be constants (the loop unrolled 4); the others unrolled 2: fully
    // unrolled, GCC hoisted the 4-row tile's 32 products and spilled them (Q4_0 GEMM 119 against
    // 141 GFLOP/s).
    if constexpr (kQ5) {
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) vector(v);
    } else {
#pragma GCC unroll 2
      for (int v = 0; v < 4; ++v) vector(v);
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.d)));
    __m256 mw = _mm256_setzero_ps();
    if constexpr (kAffine) mw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.m)));
    for (int i = 0; i < RX; ++i) {
      __m256i isum = kLookup ? s16[i] : _mm256_madd_epi16(s16[i], ones);  // IQ4_NL's sums are int32 already
      if constexpr (kQ5) isum = _mm256_add_epi32(isum, _mm256_madd_epi16(h16[i], ones));
      const __m256 dx = _mm256_set1_ps(act.d(r + i)[b]), cx = _mm256_set1_ps(act.c(r + i)[b]);
      if constexpr (kAffine || kLookup) {
        acc[i] = _mm256_fmadd_ps(dw, _mm256_mul_ps(dx, _mm256_cvtepi32_ps(isum)), acc[i]);
        if constexpr (kAffine) acc[i] = _mm256_fmadd_ps(mw, cx, acc[i]);
      } else {
        acc[i] = _mm256_fmadd_ps(dw, _mm256_fmadd_ps(dx, _mm256_cvtepi32_ps(isum), cx), acc[i]);
      }
    }
  }
  for (int i = 0; i < RX; ++i) _mm256_storeu_ps(a.y + (r + i) * a.ldy + j, acc[i]);
}
// Q6_K in the rows8 layout: per sub-block of 16, one qh load gives the top bits of its 4 weight
// vectors; levels stay unsigned (0..63) so two vpmaddubsw results fit an int16 (≤ 2·2·63·128),
// each pair takes the rows' scales in one vpmaddwd; the −32 comes back through the bsums as in
// Q6KTile (Σ_g sc_g·bsum_g, 8 vpmaddwd of scale pairs by X's bsum pairs).
KFN __m256i Rows8ScaleI8(const int8_t* scales, int g0, int g1) {  // int16 pair (sc g0, sc g1) per row lane
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * (g0 / 4)));  // g1 / 4 = g0 / 4
  return _mm256_srai_epi16(_mm256_shuffle_epi8(v, Rows8Pair(g0, g1, true)), 8);
}
// Σ_g sc_g·bsum_g per row lane: sp[p] holds the rows' int16 scale pairs (sc_2p, sc_2p+1).
KFN __m256i Rows8ScaledBsums(const __m256i sp[8], const BlockQ8_K& xb) {
  __m256i sum = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int p = 0; p < 8; ++p) {
    int32_t b2;
    std::memcpy(&b2, xb.bsums + 2 * p, 4);
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(sp[p], _mm256_set1_epi32(b2)));
  }
  return sum;
}
template <int RX>
KFN void Q6KRows8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ6_Kx8* w = reinterpret_cast<const BlockQ6_Kx8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ6_Kx8& g = w[b];
    pf.Through(w + b + 1);
    __m256i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 1  // c not unrolled: 16 sub-blocks unrolled spilled the 4-row tile's sums
    for (int c = 0; c < 4; ++c)
#pragma GCC unroll 4  // sb % 4 constant: the scale's vpshufb control is
    for (int hu = 0; hu < 4; ++hu) {  // sub-block sb = 4c + 2h + u
      const int sb = 4 * c + hu, h = hu / 2, u = hu % 2;
      const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qh + 32 * sb));
      const __m256i scale = Rows8ScaleI8(g.scales, sb, sb);
#pragma GCC unroll 2
      for (int pair = 0; pair < 2; ++pair) {
        __m256i s16[RX];
        for (int i = 0; i < RX; ++i) s16[i] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int k2 = 0; k2 < 2; ++k2) {
          const int wv = 2 * pair + k2, v = 4 * u + wv;
          const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.ql + 32 * (8 * c + v)));
          const __m256i nib = h ? _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4) : _mm256_and_si256(bits, m4);
          const __m256i top = wv == 0   ? _mm256_slli_epi16(hb, 4)
                              : wv == 1 ? _mm256_slli_epi16(hb, 2)
                              : wv == 2 ? hb
                                        : _mm256_srli_epi16(hb, 2);
          const __m256i q = _mm256_or_si256(nib, _mm256_and_si256(top, m30));
          for (int i = 0; i < RX; ++i) {
            int32_t x4;
            std::memcpy(&x4, act.q8k(r + i)[b].qs + 64 * c + 32 * h + 4 * v, 4);
            s16[i] = _mm256_add_epi16(s16[i], _mm256_maddubs_epi16(q, _mm256_set1_epi32(x4)));
          }
        }
        for (int i = 0; i < RX; ++i) isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(s16[i], scale));
      }
    }
    __m256i sp[8];
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) sp[p] = Rows8ScaleI8(g.scales, 2 * p, 2 * p + 1);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.d)));
    for (int i = 0; i < RX; ++i) {
      const BlockQ8_K& xb = act.q8k(r + i)[b];
      const __m256i total = _mm256_sub_epi32(isum[i], _mm256_slli_epi32(Rows8ScaledBsums(sp, xb), 5));
      acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xb.d)), _mm256_cvtepi32_ps(total), acc[i]);
    }
  }
  for (int i = 0; i < RX; ++i) _mm256_storeu_ps(a.y + (r + i) * a.ldy + j, acc[i]);
}

// Q3_K in the rows8 layout: levels unsigned (q + 4 in 0..7: two qs bits, the hm bit at bit 2), a
// sub-block's 4 vpmaddubsw results summed in int16 (≤ 4·2·7·127), then its scales (sc − 32, one
// per row lane) by one vpmaddwd; the −4 back through the bsums as Q6KRows8Tile's −32.
template <int RX>
KFN void Q3KRows8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ3_Kx8* w = reinterpret_cast<const BlockQ3_Kx8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m33 = _mm256_set1_epi8(0x33), m44 = _mm256_set1_epi8(0x44), m7 = _mm256_set1_epi8(7),
                k32 = _mm256_set1_epi16(32);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ3_Kx8& g = w[b];
    pf.Through(w + b + 1);
    // V_c: the stored scales of sub-blocks 4c..4c+3 (0..63, Rows8SixIndex's order).
    const __m256i sc[4] = {Rows8SixVector(g.scales, 0), Rows8SixVector(g.scales, 1), Rows8SixVector(g.scales + 48, 0),
                           Rows8SixVector(g.scales + 48, 1)};
    __m256i isum[RX];
    {
      __m256i sp[8];
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p)
        sp[p] = _mm256_sub_epi16(_mm256_shuffle_epi8(sc[p / 2], Rows8Pair(2 * p, 2 * p + 1)), k32);
      for (int i = 0; i < RX; ++i)
        isum[i] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(Rows8ScaledBsums(sp, act.q8k(r + i)[b]), 2));
    }
#pragma GCC unroll 1
    for (int c = 0; c < 4; ++c)
#pragma GCC unroll 4  // sub-block 4c + s4: the scale's vpshufb control a constant
      for (int s4 = 0; s4 < 4; ++s4) {
        const int sb = 4 * c + s4, u = s4 % 2;
        const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qs + 32 * sb));
        const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.hm + 32 * (sb / 2)));
        const __m256i scale = _mm256_sub_epi16(_mm256_shuffle_epi8(sc[c], Rows8Pair(s4, s4)), k32);
        // Levels 0 and 2 (low, high nibble of e), 1 and 3 (of o): two qs bits and the hm bit each
        // (Q3KRows8HighBit: one shift brings a sub-block's hm bits to bits 2 and 6).
        const __m256i he = u ? _mm256_slli_epi16(hm, 2) : hm, ho = u ? _mm256_slli_epi16(hm, 1) : _mm256_srli_epi16(hm, 1);
        const __m256i e = _mm256_or_si256(_mm256_and_si256(bits, m33), _mm256_and_si256(he, m44));
        const __m256i o = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2), m33), _mm256_and_si256(ho, m44));
        const __m256i q[4] = {_mm256_and_si256(e, m7), _mm256_and_si256(o, m7), _mm256_and_si256(_mm256_srli_epi16(e, 4), m7),
                              _mm256_and_si256(_mm256_srli_epi16(o, 4), m7)};
        __m256i s16[RX];
        for (int i = 0; i < RX; ++i) s16[i] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v)
          for (int i = 0; i < RX; ++i) {
            int32_t x4;
            std::memcpy(&x4, act.q8k(r + i)[b].qs + 16 * sb + 4 * v, 4);
            s16[i] = _mm256_add_epi16(s16[i], _mm256_maddubs_epi16(q[v], _mm256_set1_epi32(x4)));
          }
        for (int i = 0; i < RX; ++i) isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(s16[i], scale));
      }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.d)));
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(act.q8k(r + i)[b].d)), _mm256_cvtepi32_ps(isum[i]),
                               acc[i]);
  }
  for (int i = 0; i < RX; ++i) _mm256_storeu_ps(a.y + (r + i) * a.ldy + j, acc[i]);
}

// Q2_K in the rows8 layout: levels 0..3 at Q3_K's low-bit places, a sub-block's 4 vpmaddubsw
// results summed in int16, its 4-bit scales by one vpmaddwd; the mins through the bsums
// (Rows8ScaledBsums), d_w·d_x·Σ − dmin_w·d_x·Σ_min as the natural kernel.
template <int RX>
KFN void Q2KRows8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ2_Kx8* w = reinterpret_cast<const BlockQ2_Kx8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m3 = _mm256_set1_epi8(3), m0f = _mm256_set1_epi16(0x0F);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ2_Kx8& g = w[b];
    pf.Through(w + b + 1);
    __m256i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int c = 0; c < 4; ++c) {
      const __m256i sm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.scales + 32 * c));
#pragma GCC unroll 4  // sub-block 4c + s4: the scale's vpshufb control a constant
      for (int s4 = 0; s4 < 4; ++s4) {
        const int sb = 4 * c + s4;
        const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qs + 32 * sb));
        const __m256i scale = _mm256_and_si256(_mm256_shuffle_epi8(sm, Rows8Pair(s4, s4)), m0f);
        __m256i s16[RX];
        for (int i = 0; i < RX; ++i) s16[i] = _mm256_setzero_si256();
        auto vector = [&](int v) KFN_LAMBDA {
          const __m256i q = _mm256_and_si256(v ? _mm256_srli_epi16(bits, 2 * v) : bits, m3);
          for (int i = 0; i < RX; ++i) {
            int32_t x4;
            std::memcpy(&x4, act.q8k(r + i)[b].qs + 16 * sb + 4 * v, 4);
            s16[i] = _mm256_add_epi16(s16[i], _mm256_maddubs_epi16(q, _mm256_set1_epi32(x4)));
          }
        };
        // Fully unrolled for one row of X (constant shifts: the GEMV is bound by them); twice for
        // more: fully unrolled, GCC hoisted the 4-row tile's 16 products and spilled them (GEMM
        // 144 against 159 GFLOP/s).
        if constexpr (RX == 1) {
#pragma GCC unroll 4
          for (int v = 0; v < 4; ++v) vector(v);
        } else {
#pragma GCC unroll 2
          for (int v = 0; v < 4; ++v) vector(v);
        }
        for (int i = 0; i < RX; ++i) isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(s16[i], scale));
      }
    }
    __m256i mp[8];  // the rows' min pairs (m_2p, m_2p+1): high nibbles
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p)
      mp[p] = _mm256_srli_epi16(
          _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.scales + 32 * (p / 2))),
                              Rows8Pair(2 * p, 2 * p + 1)),
          4);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.d)));
    const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.dmin)));
    for (int i = 0; i < RX; ++i) {
      const BlockQ8_K& xb = act.q8k(r + i)[b];
      const __m256 dx = _mm256_set1_ps(xb.d);
      acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum[i]), acc[i]);
      acc[i] = _mm256_fnmadd_ps(_mm256_mul_ps(dmw, dx), _mm256_cvtepi32_ps(Rows8ScaledBsums(mp, xb)), acc[i]);
    }
  }
  for (int i = 0; i < RX; ++i) _mm256_storeu_ps(a.y + (r + i) * a.ldy + j, acc[i]);
}

// IQ4_XS in the rows8 layout (BlockIQ4_XSx8): levels looked up in kIq4Values and multiplied as
// Iq4XsTile's (|w| by x carrying w's sign), each vpmaddubsw widened at once by its sub-block's
// scale less 32 (one vpmaddwd: a product pair reaches 2·127·127), X in the Iq4Pairs order the
// natural tile takes; a super-block's sums are exact int32, then one FMA a row by d_w·d_x. Saves
// the natural tile's per-row scale shuffles and horizontal sums.
template <int RX>
KFN void Iq4XsRows8Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockIQ4_XSx8* w = reinterpret_cast<const BlockIQ4_XSx8*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m4 = _mm256_set1_epi8(0x0F), k32 = _mm256_set1_epi16(32);
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockIQ4_XSx8& g = w[b];
    pf.Through(w + b + 1);
    const __m256i sc[2] = {Rows8SixVector(g.scales, 0), Rows8SixVector(g.scales, 1)};
    __m256i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c)
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {  // vectors 4·half.. of pair c: sub-block 2c + half
        const int s = 2 * c + half;
        const __m256i scale = _mm256_sub_epi16(_mm256_shuffle_epi8(sc[s / 4], Rows8Pair(s, s)), k32);
        auto vector = [&](int v) KFN_LAMBDA {
          const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.qs + 256 * c + 32 * v));
          const __m256i wl = _mm256_shuffle_epi8(table, _mm256_and_si256(bits, m4));
          const __m256i wh = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4));
          const __m256i ul = _mm256_abs_epi8(wl), uh = _mm256_abs_epi8(wh);
          for (int i = 0; i < RX; ++i) {
            const int8_t* x = act.q8k(r + i)[b].qs + 64 * c + 4 * v;
            int32_t xl, xh;
            std::memcpy(&xl, x, 4);
            std::memcpy(&xh, x + 32, 4);
            const __m256i pl = _mm256_maddubs_epi16(ul, _mm256_sign_epi8(_mm256_set1_epi32(xl), wl));
            const __m256i ph = _mm256_maddubs_epi16(uh, _mm256_sign_epi8(_mm256_set1_epi32(xh), wh));
            isum[i] = _mm256_add_epi32(isum[i],
                                       _mm256_add_epi32(_mm256_madd_epi16(pl, scale), _mm256_madd_epi16(ph, scale)));
          }
        };
#pragma GCC unroll 2
        for (int v = 4 * half; v < 4 * half + 4; ++v) vector(v);
      }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.d)));
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(act.q8k(r + i)[b].d)), _mm256_cvtepi32_ps(isum[i]),
                               acc[i]);
  }
  for (int i = 0; i < RX; ++i) _mm256_storeu_ps(a.y + (r + i) * a.ldy + j, acc[i]);
}

// Rows8 kernels: 4 rows of X a tile, then 2, then 1, every row through the same steps. Q4_K at m =
// 512, n = 1024, k = 4096 on one Zen 3 core: 165 GFLOP/s with 4 rows, 148 with 3, 164-169 with 5.
template <typename Tiles>
KENTRY void Rows8Kernel(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                        int64_t j1) {
  int64_t r = r0;
  for (; r + 4 <= r0 + rows; r += 4)
    for (int64_t j = j0; j < j1; j += 8) Tiles::template Run<4>(a, act, r, j);
  for (; r + 2 <= r0 + rows; r += 2)
    for (int64_t j = j0; j < j1; j += 8) Tiles::template Run<2>(a, act, r, j);
  for (; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; j += 8) Tiles::template Run<1>(a, act, r, j);
}
struct Iq4XsRows8Tiles {
  template <int RX>
  KFN static void Run(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) { Iq4XsRows8Tile<RX>(a, act, r, j); }
};
struct Q8Rows8Tiles {
  template <int RX>
  KFN static void Run(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) { Q8Rows8Tile<RX>(a, act, r, j); }
};
template <typename BlockX8>
struct Nibble32Rows8Tiles {
  template <int RX>
  KFN static void Run(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
    Nibble32Rows8Tile<RX, BlockX8>(a, act, r, j);
  }
};
struct Q6KRows8Tiles {
  template <int RX>
  KFN static void Run(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) { Q6KRows8Tile<RX>(a, act, r, j); }
};
struct Q2KRows8Tiles {
  template <int RX>
  KFN static void Run(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) { Q2KRows8Tile<RX>(a, act, r, j); }
};
struct Q3KRows8Tiles {
  template <int RX>
  KFN static void Run(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) { Q3KRows8Tile<RX>(a, act, r, j); }
};
template <typename BlockX8>
struct AffineKRows8Tiles {
  template <int RX>
  KFN static void Run(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
    AffineKRows8Tile<RX, BlockX8>(a, act, r, j);
  }
};


// Q6_K and Q3_K keep their levels unsigned and take the offset (32, 4 = 2^shift) back per
// super-block: the sums start at −offset·Σ_g sc_g·bsum_g (one vpmaddwd of the 16 scales by the
// activations' 16 bsums).
template <int RX>
KFN void StartOffsetSums(__m256i sc16, const ActRows& act, int64_t r, int64_t b, int shift, __m256i isum[RX]) {
  for (int i = 0; i < RX; ++i) {
    const __m256i bias =
        _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.q8k(r + i)[b].bsums)));
    isum[i] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sll_epi32(bias, _mm_cvtsi32_si128(shift)));
  }
}
// The int8 scales g (elements 0-15 of a run of 32) and g + 1 (16-31), each in every int16 lane of
// the low / high 128-bit lane: scale byte into the high byte of the lane, then an arithmetic shift
// sign-extends it (in-lane, where vpmovsxbw would cross lanes). sc2: the 16 scales in both lanes.
KFN __m256i ScalePair16(__m256i sc2, int g) {
  const char lo = static_cast<char>(g), hi = static_cast<char>(g + 1), z = static_cast<char>(0x80);
  return _mm256_srai_epi16(
      _mm256_shuffle_epi8(sc2, _mm256_setr_epi8(z, lo, z, lo, z, lo, z, lo, z, lo, z, lo, z, lo, z, lo, z, hi, z, hi,
                                                z, hi, z, hi, z, hi, z, hi, z, hi, z, hi)),
      8);
}

// Q6_K: levels kept unsigned (0..63, ≤ 63·127·2 per int16 pair), the −32 back through the bsums.
template <int RX>
KFN void Q6KTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    pf.Through(w + b + 1);
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const __m256i sc2 = _mm256_broadcastsi128_si256(sc8);
    const float dw = _cvtsh_ss(w[b].d);
    __m256i isum[RX];
    StartOffsetSums<RX>(sc16, act, r, b, 5, isum);
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].ql + 64 * h));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].ql + 64 * h + 32));
      const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qh + 32 * h));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4)),
          _mm256_or_si256(_mm256_and_si256(l1, m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4)),
      };
      for (int t = 0; t < 4; ++t) {
        const __m256i s = ScalePair16(sc2, 8 * h + 2 * t);
        for (int i = 0; i < RX; ++i) {
          const __m256i x =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.q8k(r + i)[b].qs + 128 * h + 32 * t));
          isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(_mm256_maddubs_epi16(q[t], x), s));
        }
      }
    }
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(dw * act.q8k(r + i)[b].d), _mm256_cvtepi32_ps(isum[i]), acc[i]);
  }
  for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j] = HSum256(acc[i]);
}

// UnpackScalesQ3K in registers: low nibbles of bytes 0-7 are scales 0-7, their high nibbles
// scales 8-15; scale g's top two bits are bits 2·(g / 4) of byte 8 + g % 4, so a byte shuffle
// gives each scale its byte and one variable dword shift (0, 2, 4, 6 per group of 4) its bits.
KFN __m128i ScalesQ3K(const uint8_t* packed) {
  uint32_t top;
  std::memcpy(&top, packed + 8, 4);
  const __m128i low = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed)), m4 = _mm_set1_epi8(0x0F);
  const __m128i nibbles = _mm_unpacklo_epi64(_mm_and_si128(low, m4), _mm_and_si128(_mm_srli_epi16(low, 4), m4));
  const __m128i spread =
      _mm_shuffle_epi8(_mm_cvtsi32_si128(static_cast<int>(top)), _mm_setr_epi8(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3));
  const __m128i bits = _mm_and_si128(_mm_srlv_epi32(spread, _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
  return _mm_sub_epi8(_mm_or_si128(nibbles, _mm_slli_epi16(bits, 4)), _mm_set1_epi8(32));
}

// Q3_K as Q6_K: levels made unsigned (q + 4 in 0..7, from two qs bits and the hmask bit), the
// −4 offset taken back through the activations' bsums (−4·Σ sc_g·bsum_g), and each 16's scale
// applied by vpmaddwd. The third bits of elements 32t + l of half h sit in bit 4h + t of hmask[l].
template <int RX>
KFN void Q3KTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ3_K* w = reinterpret_cast<const BlockQ3_K*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    pf.Through(w + b + 1);
    const __m128i sc8 = ScalesQ3K(w[b].scales);
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const __m256i sc2 = _mm256_broadcastsi128_si256(sc8);
    const float dw = _cvtsh_ss(w[b].d);
    __m256i isum[RX];
    StartOffsetSums<RX>(sc16, act, r, b, 2, isum);
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].hmask));
    for (int h = 0; h < 2; ++h) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * h));
      for (int t = 0; t < 4; ++t) {
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * t), m3);
        // bit 4h + t of each hmask byte, moved to bit 2 (one shift, one mask)
        const int hs = 4 * h + t;
        const __m256i moved = hs >= 2 ? _mm256_srli_epi16(hm, hs - 2) : _mm256_slli_epi16(hm, 2 - hs);
        const __m256i hi = _mm256_and_si256(moved, four);
        const __m256i q = _mm256_or_si256(lo, hi);
        const __m256i s = ScalePair16(sc2, 8 * h + 2 * t);
        for (int i = 0; i < RX; ++i) {
          const __m256i x =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.q8k(r + i)[b].qs + 128 * h + 32 * t));
          isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), s));
        }
      }
    }
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(dw * act.q8k(r + i)[b].d), _mm256_cvtepi32_ps(isum[i]), acc[i]);
  }
  for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j] = HSum256(acc[i]);
}

// Q2_K: levels 0..3 at Q3_K's low-bit positions, each 16's 4-bit scale applied by vpmaddwd (as
// Q3_K's), its 4-bit min through the activations' bsums (one vpmaddwd, as Q4_K's).
template <int RX>
KFN void Q2KTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockQ2_K* w = reinterpret_cast<const BlockQ2_K*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(0x0F);
  __m256 acc[RX], accMin[RX];
  for (int i = 0; i < RX; ++i) acc[i] = accMin[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    pf.Through(w + b + 1);
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales));
    const __m256i sc2 = _mm256_broadcastsi128_si256(_mm_and_si128(packed, m4));
    const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
    const float dw = _cvtsh_ss(w[b].d), dmw = _cvtsh_ss(w[b].dmin);
    __m256i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * h));
      for (int t = 0; t < 4; ++t) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * t), m3);
        const __m256i s = ScalePair16(sc2, 8 * h + 2 * t);
        for (int i = 0; i < RX; ++i) {
          const __m256i x =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.q8k(r + i)[b].qs + 128 * h + 32 * t));
          isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), s));
        }
      }
    }
    AddAffineSums<RX>(isum, mins16, act, r, b, dw, dmw, acc, accMin);
  }
  for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j] = HSum256(_mm256_sub_ps(acc[i], accMin[i]));
}

// UnpackScalesIq4Xs in a register, as int16 less 32: scales_l's nibbles in order are the low
// four bits of scales 0-7; scale j's top two bits, bits 2j..2j+1 of scales_h, reach the top of
// lane j by a multiply by 2^(14−2j) and come down by one shift.
KFN __m128i ScalesIq4Xs16(const BlockIQ4_XS& blk) {
  uint32_t l;
  std::memcpy(&l, blk.scales_l, 4);
  const __m128i v = _mm_cvtsi32_si128(static_cast<int>(l)), m4 = _mm_set1_epi8(0x0F);
  const __m128i low = _mm_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4)));
  const __m128i top = _mm_srli_epi16(
      _mm_mullo_epi16(_mm_set1_epi16(static_cast<short>(blk.scales_h)),
                      _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1)),
      14);
  return _mm_sub_epi16(_mm_or_si128(low, _mm_slli_epi16(top, 4)), _mm_set1_epi16(32));
}

// IQ4_XS: indices looked up in kIq4Values (one vpshufb), signed × signed through vpmaddubsw on |w|
// and x carrying w's sign (≤ 127·127·2 per int16 pair, no saturation); each sub-block's ls − 32
// is the vpmaddwd multiplier, so a super-block's sum is exact in int32 and takes one FMA by
// d_w·d_x. A 32-byte load of qs holds sub-blocks 2c and 2c+1 (low nibbles: values 0-15 of each,
// high: 16-31); the activations come in that order (ActLayout::Iq4Pairs), so the nibbles are
// used as they unpack, each 128-bit lane with its own sub-block's scale.
template <int RX>
KFN void Iq4XsTile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  const BlockIQ4_XS* w = reinterpret_cast<const BlockIQ4_XS*>(a.w + j * a.wStride);
  const int64_t nb = a.k / kQKBlock;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  __m256 acc[RX];
  for (int i = 0; i < RX; ++i) acc[i] = _mm256_setzero_ps();
  LinePrefetch pf(w);
  for (int64_t b = 0; b < nb; ++b) {
    pf.Through(w + b + 1);
    const __m256i sc = _mm256_broadcastsi128_si256(ScalesIq4Xs16(w[b]));
    const float dw = _cvtsh_ss(w[b].d);
    __m256i isum[RX];
    for (int i = 0; i < RX; ++i) isum[i] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * c));
      const __m256i wLo = _mm256_shuffle_epi8(table, _mm256_and_si256(bits, m4));
      const __m256i wHi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4));
      const __m256i uLo = _mm256_abs_epi8(wLo), uHi = _mm256_abs_epi8(wHi);
      // int16 scale 2c in the low lane, 2c + 1 in the high one
      const char s0 = static_cast<char>(4 * c), s1 = static_cast<char>(4 * c + 2);
      const __m256i s = _mm256_shuffle_epi8(
          sc, _mm256_setr_epi8(s0, s0 + 1, s0, s0 + 1, s0, s0 + 1, s0, s0 + 1, s0, s0 + 1, s0, s0 + 1, s0, s0 + 1, s0,
                               s0 + 1, s1, s1 + 1, s1, s1 + 1, s1, s1 + 1, s1, s1 + 1, s1, s1 + 1, s1, s1 + 1, s1,
                               s1 + 1, s1, s1 + 1));
      for (int i = 0; i < RX; ++i) {
        const int8_t* x = act.q8k(r + i)[b].qs + 64 * c;
        const __m256i xLo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
        const __m256i xHi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32));
        const __m256i pLo = _mm256_madd_epi16(_mm256_maddubs_epi16(uLo, _mm256_sign_epi8(xLo, wLo)), s);
        const __m256i pHi = _mm256_madd_epi16(_mm256_maddubs_epi16(uHi, _mm256_sign_epi8(xHi, wHi)), s);
        isum[i] = _mm256_add_epi32(isum[i], _mm256_add_epi32(pLo, pHi));
      }
    }
    for (int i = 0; i < RX; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(dw * act.q8k(r + i)[b].d), _mm256_cvtepi32_ps(isum[i]), acc[i]);
  }
  for (int i = 0; i < RX; ++i) a.y[(r + i) * a.ldy + j] = HSum256(acc[i]);
}

#define REDBLUE_K_TILES 1
#define REDBLUE_OWN_Q0_KERNELS 1  // Q4Kernel, Q8Kernel above
#include "kernels/row_tiles.inc"

// Q4_1 / Q5_0 / Q5_1 / IQ4_NL (the 32-element types llama.cpp falls back to where a K type or
// IQ4_XS does not fit a row): one block's 32 levels as unsigned bytes (0..15 or 0..31) in element
// order; the fifth bits spread from qh's 32 bits to bit 4 of each byte (byte j tests bit j % 8 of
// qh byte j / 8).
template <typename Block>
KFN __m256i Levels32(const Block& blk) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs));
  __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
  if constexpr (Nibble32Traits<Block>::kFifthBit) {
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                               _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202,
                                                                  0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    q = _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
  }
  return q;
}

// RX rows of X against one row of W: unsigned levels × signed x (≤ 31·127·2, no vpmaddubsw
// saturation), one FMA per block and row with d_w·d_x; the block's offset comes back as
// o_w·c_x (ActRows::c: −16·d_x·Σq_x for Q5_0, Q8_1's s = d_x·Σq_x for the _1 types, whose o_w
// is m). IQ4_NL has no offset: its levels are looked up (signed) and multiplied as IQ4_XS's. Scales and offsets 8 blocks at a time: one vcvtph2ps for 8 f16, one FMA for 8 offsets,
// instead of two f16 conversions and a scalar FMA per block. Each row has its own sums in the
// same order whatever RX is (rowInvariant holds).
template <int RX, typename Block>
KFN void Nibble32Tile(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j) {
  constexpr bool kAffine = Nibble32Traits<Block>::kAffine, kLookup = Nibble32Traits<Block>::kLookup;
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
  const uint8_t* w[1] = {a.w + j * a.wStride};
  const uint8_t* m[1] = {w[0] + 2};  // Q4_1 / Q5_1: m follows d
  const Block* blk = reinterpret_cast<const Block*>(w[0]);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc0[RX], acc1[RX], off[RX];
  for (int i = 0; i < RX; ++i) acc0[i] = acc1[i] = off[i] = _mm256_setzero_ps();
  alignas(32) float sc[RX][8];
  // Row pointers once: with -fno-strict-aliasing every store to sc would reload act's fields.
  const int8_t* xq[RX];
  const float *xd[RX], *xc[RX];
  for (int i = 0; i < RX; ++i) xq[i] = act.qs(r + i), xd[i] = act.d(r + i), xc[i] = act.c(r + i);
  for (int64_t b0 = 0; b0 < act.nb; b0 += 8) {
    const int cnt = static_cast<int>(std::min<int64_t>(8, act.nb - b0));
    __m256 dw[1], ow[1];
    GatherScales8<1>(w, sizeof(Block), b0, cnt, dw);
    if constexpr (kAffine) GatherScales8<1>(m, sizeof(Block), b0, cnt, ow);
    else ow[0] = dw[0];
    for (int i = 0; i < RX; ++i) {
      _mm256_store_ps(sc[i], _mm256_mul_ps(dw[0], LoadUpTo8(xd[i] + b0, cnt)));
      if constexpr (!kLookup) off[i] = _mm256_fmadd_ps(ow[0], LoadUpTo8(xc[i] + b0, cnt), off[i]);
    }
    // Blocks in pairs, one accumulator each, named at compile time: indexed at run time
    // (acc[t & 1]) the accumulators lived on the stack, a store and a load per block.
    auto step = [&](int t, __m256* into) KFN_LAMBDA {
      const int64_t b = b0 + t;
      const __m256i q = Levels32(blk[b]);
      const __m256i v = kLookup ? _mm256_shuffle_epi8(table, q) : q;
      const __m256i u = kLookup ? _mm256_abs_epi8(v) : q;
      for (int i = 0; i < RX; ++i) {
        __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i] + b * kQBlock));
        if constexpr (kLookup) x = _mm256_sign_epi8(x, v);
        const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, x), ones));
        into[i] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(&sc[i][t]), into[i]);
      }
    };
    int t = 0;
    for (; t + 2 <= cnt; t += 2) {
      _mm_prefetch(reinterpret_cast<const char*>(blk + b0 + t) + kGemvPrefetchAhead, _MM_HINT_T0);
      step(t, acc0);
      step(t + 1, acc1);
    }
    if (t < cnt) step(t, acc0);
  }
  for (int i = 0; i < RX; ++i)
    a.y[(r + i) * a.ldy + j] = HSum256(_mm256_add_ps(_mm256_add_ps(acc0[i], acc1[i]), off[i]));
}
template <typename Block>
struct Nibble32Call {
  const QuantMatmulArgs& a;
  const ActRows& act;
  template <int R>
  KFN void Run(int64_t r, int64_t j) const { Nibble32Tile<R, Block>(a, act, r, j); }
};
template <typename Block>
KENTRY void Nibble32Kernel(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                           int64_t j1) {
  RunRowTiles<4>(Nibble32Call<Block>{a, act}, r0, rows, j0, j1);
}

}  // namespace

KernelSet Avx2Kernels() {
  KernelSet s;
  s.q8 = Q8Kernel;
  s.q4 = Q4Kernel;
  s.f16 = HalfKernel<kF16>;
  s.bf16 = HalfKernel<kBf16>;
  s.f32 = HalfKernel<kF32>;
  s.q2k = Q2KKernel;
  s.q3k = Q3KKernel;
  s.q4k = AffineKKernel<BlockQ4_K>;
  s.q5k = AffineKKernel<BlockQ5_K>;
  s.q6k = Q6KKernel;
  s.q41 = Nibble32Kernel<BlockQ4_1>;
  s.q50 = Nibble32Kernel<BlockQ5_0>;
  s.q51 = Nibble32Kernel<BlockQ5_1>;
  s.iq4nl = Nibble32Kernel<BlockIQ4_NL>;
  s.iq4xs = Iq4XsKernel;
  s.q4Layout = ActLayout::Q4Quads;  // two blocks per ymm
  s.q8Layout = ActLayout::Q4Quads;  // prompts (m > 1): Q8PairTile
  s.iq4xsLayout = ActLayout::Iq4Pairs;
  s.q8Rows8 = Rows8Kernel<Q8Rows8Tiles>;
  s.q4Rows8 = Rows8Kernel<Nibble32Rows8Tiles<BlockQ4_0x8>>;
  s.q50Rows8 = Rows8Kernel<Nibble32Rows8Tiles<BlockQ5_0x8>>;
  s.q41Rows8 = Rows8Kernel<Nibble32Rows8Tiles<BlockQ4_1x8>>;
  s.q51Rows8 = Rows8Kernel<Nibble32Rows8Tiles<BlockQ5_1x8>>;
  s.iq4nlRows8 = Rows8Kernel<Nibble32Rows8Tiles<BlockIQ4_NLx8>>;
  s.q4kRows8 = Rows8Kernel<AffineKRows8Tiles<BlockQ4_Kx8>>;
  s.q5kRows8 = Rows8Kernel<AffineKRows8Tiles<BlockQ5_Kx8>>;
  s.q6kRows8 = Rows8Kernel<Q6KRows8Tiles>;
  s.q3kRows8 = Rows8Kernel<Q3KRows8Tiles>;
  s.q2kRows8 = Rows8Kernel<Q2KRows8Tiles>;
  s.iq4xsRows8 = Rows8Kernel<Iq4XsRows8Tiles>;
  return s;
}

}  // namespace redblue
