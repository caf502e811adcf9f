// AMX (AMX-TILE + AMX-INT8) tiles for Q4_0, Q8_0 and Q4_K weights in the rows8 layout: prompts
// and other batches (from 16 or 48 rows of X, by type). One tile op multiplies 16 rows of X by 16
// rows of W over a block (32 values; Q4_K: a pair of sub-blocks, 64), where a vpdpbusd covers 16
// rows of W and one row of X over 4 values.
//
// The integer sums are exact (s8·u8 or s8·s8 products summed in int32, as on every path), and
// each block's sum is scaled and added in the float steps of the AVX-512 tiles
// (quant_avx512_rows8_body.h), in the same order: the results are the same bits as the avx512 and
// avx512vnni paths. Rows of X past the last whole 16 (and single rows: decoding) run the VNNI
// tiles.
//
// Included twice (deliberately no include guard): quant_amx.cc runs the tile ops on AMX;
// quant_amx_emulated.cc defines KAMX_EMULATE and runs them on a plain C++ model of the
// instructions (Intel's pseudo-code for TILELOADD, TDPBSUD, TDPBSSD, TILESTORED), so that every
// cpu with AVX-512 VNNI tests this file's logic (the kernel path "amx-emulated", which only tests
// ask for). Each includer defines KNS (namespace) and KTARGET.
//
// Layout facts this relies on: a rows8 group's vector v holds bytes 4v..4v+3 of each of its 8
// rows (row ρ at byte 4ρ), so the two groups' vectors side by side are one row of AMX's B operand
// (64 bytes: 4 consecutive values of each of 16 rows of W). Q4_0's vectors 0-3 hold values
// 0-15 of a block in their low nibbles and 16-31 in their high ones; Q8_0's vectors 0-3 hold
// values 0-15 and 4-7 values 16-31, so a block's 8 vectors (4 of Q4_0's, split into low and high
// nibbles) are the 8 rows of B over its 32 values. X's block of 16 rows is the A operand (16 rows
// × 32 bytes at X's row stride): Q8_0's prompts take X in natural order, Q4_0's keep a natural copy
// beside the quads the VNNI kernels read (ActRows::natural).
// GCC 12 warns inside its own AVX-512 intrinsics (undefined upper halves it never uses).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/quant_impl.h"

#define KFN __attribute__((target(KTARGET), always_inline)) inline
#define KENTRY __attribute__((target(KTARGET)))

namespace redblue {
namespace avx512rows8vnni {
void SetRows8Kernels(KernelSet& s);  // quant_avx512_rows8_vnni.cc
}
namespace KNS {
namespace {

#include "kernels/rows8_pair.inc"

// ldtilecfg's 64-byte operand, palette 1.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

#if KAMX_EMULATE
// The tile registers of this thread and the instructions' pseudo-code (Intel SDM, AMX chapter):
// rows × colsb bytes a tile, rows past `rows` and bytes past `colsb` zero.
struct EmulatedTiles {
  TileConfig cfg;
  alignas(64) uint8_t t[8][16][64];
};
thread_local EmulatedTiles tiles;
inline void EmuConfig(const TileConfig* c) {
  tiles.cfg = *c;
  std::memset(tiles.t, 0, sizeof tiles.t);
}
inline void EmuLoad(int t, const void* base, int64_t stride) {
  std::memset(tiles.t[t], 0, sizeof tiles.t[t]);
  for (int r = 0; r < tiles.cfg.rows[t]; ++r)
    std::memcpy(tiles.t[t][r], static_cast<const uint8_t*>(base) + r * stride, tiles.cfg.colsb[t]);
}
inline void EmuStore(int t, void* base, int64_t stride) {
  for (int r = 0; r < tiles.cfg.rows[t]; ++r)
    std::memcpy(static_cast<uint8_t*>(base) + r * stride, tiles.t[t][r], tiles.cfg.colsb[t]);
}
inline void EmuZero(int t) { std::memset(tiles.t[t], 0, sizeof tiles.t[t]); }
// TDPBSUD (a signed, b unsigned) and TDPBSSD: C[m][n] += Σ_k Σ_i a[m][4k+i] · b[k][4n+i].
template <bool kBSigned>
inline void EmuDot(int c, int a, int b) {
  for (int m = 0; m < tiles.cfg.rows[c]; ++m)
    for (int n = 0; n < tiles.cfg.colsb[c] / 4; ++n) {
      int32_t acc;
      std::memcpy(&acc, &tiles.t[c][m][4 * n], 4);
      for (int k = 0; k < tiles.cfg.colsb[a] / 4; ++k)
        for (int i = 0; i < 4; ++i) {
          const int32_t x = static_cast<int8_t>(tiles.t[a][m][4 * k + i]);
          const uint8_t w = tiles.t[b][k][4 * n + i];
          acc += x * (kBSigned ? static_cast<int32_t>(static_cast<int8_t>(w)) : static_cast<int32_t>(w));
        }
      std::memcpy(&tiles.t[c][m][4 * n], &acc, 4);
    }
}
#define KTILE_CONFIG(c) EmuConfig(c)
#define KTILE_RELEASE() ((void)0)
#define KTILE_ZERO(t) EmuZero(t)
#define KTILE_LOAD(t, base, stride) EmuLoad(t, base, stride)
#define KTILE_STORE(t, base, stride) EmuStore(t, base, stride)
#define KTILE_DP_SU(c, a, b) EmuDot<false>(c, a, b)
#define KTILE_DP_SS(c, a, b) EmuDot<true>(c, a, b)
#else
#define KTILE_CONFIG(c) _tile_loadconfig(c)
#define KTILE_RELEASE() _tile_release()
#define KTILE_ZERO(t) _tile_zero(t)
#define KTILE_LOAD(t, base, stride) _tile_loadd(t, base, stride)
#define KTILE_STORE(t, base, stride) _tile_stored(t, base, stride)
#define KTILE_DP_SU(c, a, b) _tile_dpbsud(c, a, b)
#define KTILE_DP_SS(c, a, b) _tile_dpbssd(c, a, b)
#endif

// tmm0, tmm1: C, 16 rows of X × 16 rows of W in int32 (even and odd blocks, so a block's tile
// ops need not wait for the last block's sums to be read out); tmm2, tmm3: A, a block of 16 rows
// of X (16 × 32 bytes); tmm4, tmm5: B, the block of 16 rows of W (8 rows of 64 bytes). One tile op
// a block: a TDPB* costs about the same whatever its K (16 rows of A a pass), so the block's two
// halves as separate ops (K = 16 each) took twice the tile unit's time.
KFN void ConfigureTiles() {
  TileConfig c;
  for (int t = 0; t < 2; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  for (int t = 2; t < 4; ++t) c.rows[t] = 16, c.colsb[t] = 32;
  for (int t = 4; t < 6; ++t) c.rows[t] = 8, c.colsb[t] = 64;
  KTILE_CONFIG(&c);
}

// A block of 16 rows of W, unpacked once and then read by every tile of 16 rows of X: B's two
// halves (levels as bytes, VNNI order) and the rows' scales as f32.
struct alignas(64) UnpackedBlock {
  uint8_t b[2][4][64];
  float d[16];
};


// Groups w0 (rows j..j+7) and w1 (rows j+8..j+15, or w0 again for a lone group) → nb blocks.
template <typename BlockX8>
KFN void Unpack(const BlockX8* w0, const BlockX8* w1, int64_t nb, UnpackedBlock* out) {
  constexpr bool kQ4 = std::is_same_v<BlockX8, BlockQ4_0x8>;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockX8> g{{w0 + b, w1 + b}};
    UnpackedBlock& u = out[b];
    for (int v = 0; v < 4; ++v) {
      if constexpr (kQ4) {
        const __m512i bits = Load2(g, g.g[0]->qs + 32 * v);
        _mm512_store_si512(u.b[0][v], _mm512_and_si512(bits, m4));
        _mm512_store_si512(u.b[1][v], _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4));
      } else {
        _mm512_store_si512(u.b[0][v], Load2(g, g.g[0]->qs + 32 * v));
        _mm512_store_si512(u.b[1][v], Load2(g, g.g[0]->qs + 32 * (4 + v)));
      }
    }
    _mm512_store_ps(u.d, Halves2(g, g.g[0]->d));
  }
}

// Q4_0: X (signed) · W's unsigned levels, and X's block term c carries the −8 (ActRows); Q8_0:
// signed · signed.
#define REDBLUE_AMX_DP(Q4, C, A, B) \
  do {                              \
    if constexpr (Q4)               \
      KTILE_DP_SU(C, A, B);         \
    else                            \
      KTILE_DP_SS(C, A, B);         \
  } while (0)

// One block: its tile op into C tile T (A tile TA, B tile TB), its sums out to `sums`. `x`: the
// block's 32 values of the first row, rows `stride` apart.
#define REDBLUE_AMX_BLOCK(Q4, T, TA, TB, x, stride, u, sums) \
  do {                                                       \
    KTILE_ZERO(T);                                           \
    KTILE_LOAD(TA, x, stride);                               \
    KTILE_LOAD(TB, (u).b[0], 64);                            \
    REDBLUE_AMX_DP(Q4, T, TA, TB);                           \
    KTILE_STORE(T, sums, 64);                                \
  } while (0)

// A tile's 16 rows of Y: 16 columns, or the first 8 for a lone group of W.
KFN void StoreTile(const QuantMatmulArgs& a, int64_t r, int64_t j, bool both, const __m512* acc) {
  for (int i = 0; i < 16; ++i) {
    float* y = a.y + (r + i) * a.ldy + j;
    if (both)
      _mm512_storeu_ps(y, acc[i]);
    else
      _mm256_storeu_ps(y, _mm512_castps512_ps256(acc[i]));
  }
}

// Rows r..r+15 of X against the 16 rows of W in `w`: the AVX-512 tiles' float steps per block.
template <bool kQ4>
KFN void Tile16(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both, const UnpackedBlock* w) {
  alignas(64) int32_t sums[2][16 * 16];
  const int64_t nb = act.nb;
  // X's values in natural order: Q4_0's quads have a natural copy (ActRows::natural).
  const int8_t* x = act.layout == ActLayout::Q4Quads ? act.natural(r) : act.qs(r);
  const int64_t stride = act.stride;
  // X's scales (and after them its block terms c) per row, found once: the tile stores below
  // clobber memory, which would have every act.d(r + i) recomputed per block. (Gathering them
  // block-major once per call, for one base address a block, was slower: 449 → 372 GFLOP/s.)
  const float* dx0[16];
  for (int i = 0; i < 16; ++i) dx0[i] = act.d(r + i);
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  auto scale = [&](int64_t b, const int32_t* s) __attribute__((target(KTARGET), always_inline)) {
    const __m512 dw = _mm512_load_ps(w[b].d);
    for (int i = 0; i < 16; ++i) {
      const __m512 isum = _mm512_cvtepi32_ps(_mm512_load_si512(s + 16 * i));
      const __m512 dx = _mm512_set1_ps(dx0[i][b]);
      if constexpr (kQ4)
        acc[i] = _mm512_fmadd_ps(dw, _mm512_fmadd_ps(dx, isum, _mm512_set1_ps(dx0[i][nb + b])), acc[i]);
      else
        acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), isum, acc[i]);
    }
  };
  // Block b + 1's tile ops go out before block b's sums are scaled: the float steps wait on
  // a tile store, which the next block's ops then overlap.
  REDBLUE_AMX_BLOCK(kQ4, 0, 2, 4, x, stride, w[0], sums[0]);
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    REDBLUE_AMX_BLOCK(kQ4, 1, 3, 5, x + (b + 1) * kQBlock, stride, w[b + 1], sums[1]);
    scale(b, sums[0]);
    if (b + 2 < nb) REDBLUE_AMX_BLOCK(kQ4, 0, 2, 4, x + (b + 2) * kQBlock, stride, w[b + 2], sums[0]);
    scale(b + 1, sums[1]);
  }
  if (b < nb) scale(b, sums[0]);
  StoreTile(a, r, j, both, acc);
}

// Q4_K on tiles. A sub-block's integer sum is scaled by its 6-bit scale before the super-block's
// sums are added (then one float step a super-block). The scale is folded into B instead of
// applied to each sub-block's sums: sc = 8·hi + lo (hi, lo ≤ 7), B_lo = q·lo and B_hi = q·hi
// (≤ 105, unsigned bytes), so Σ_s sc_s·Σ q·x = C(B_lo) + 8·C(B_hi), where each C adds all 8
// sub-blocks in the tile unit: two tile stores a super-block instead of eight. The integers are
// exact, so the float steps (AffineKTile's, in its order) give the VNNI bits.
struct alignas(64) UnpackedKBlock {
  uint8_t lo[4][16][64], hi[4][16][64];  // per sub-block pair p: B rows 0-7 sub-block 2p, 8-15 2p+1
  int32_t minPairs[4][16];               // per pair p, per row of W: (min_2p, min_2p+1) as int16s
  float d[16], dmin[16];
};

KFN void UnpackK(const BlockQ4_Kx8* w0, const BlockQ4_Kx8* w1, int64_t nb, UnpackedKBlock* out) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), even = _mm512_set1_epi16(0x00FF), k7 = _mm512_set1_epi16(7);
  // q·m for bytes q ≤ 15 and int16 lanes m ≤ 7 (both bytes of a lane share its m)
  auto times = [&](__m512i q, __m512i m) __attribute__((target(KTARGET), always_inline)) {
    const __m512i e = _mm512_mullo_epi16(_mm512_and_si512(q, even), m);
    const __m512i o = _mm512_mullo_epi16(_mm512_srli_epi16(q, 8), m);
    return _mm512_or_si512(e, _mm512_slli_epi16(o, 8));
  };
  for (int64_t b = 0; b < nb; ++b) {
    const Pair<BlockQ4_Kx8> g{{w0 + b, w1 + b}};
    UnpackedKBlock& u = out[b];
    // The scale and min tables' V_h (as the VNNI tiles take them); a sub-block's values come out
    // with one vpshufb: both int16s of row n's lane (scales), or (min_2p, min_2p+1) (Pair512).
    const __m512i sc6[2] = {SixVector2(g, g.g[0]->scales, 0), SixVector2(g, g.g[0]->scales, 1)};
    const __m512i mn6[2] = {SixVector2(g, g.g[0]->mins, 0), SixVector2(g, g.g[0]->mins, 1)};
    for (int p = 0; p < 4; ++p) {
      __m512i lo[2], hi[2];
      for (int h = 0; h < 2; ++h) {
        const __m512i sc = _mm512_shuffle_epi8(sc6[p / 2], Pair512(2 * p + h, 2 * p + h));
        lo[h] = _mm512_and_si512(sc, k7);
        hi[h] = _mm512_srli_epi16(sc, 3);
      }
      for (int v = 0; v < 8; ++v) {
        const __m512i bits = Load2(g, g.g[0]->qs + 256 * p + 32 * v);
        const __m512i ql = _mm512_and_si512(bits, m4), qh = _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4);
        _mm512_store_si512(u.lo[p][v], times(ql, lo[0]));
        _mm512_store_si512(u.hi[p][v], times(ql, hi[0]));
        _mm512_store_si512(u.lo[p][8 + v], times(qh, lo[1]));
        _mm512_store_si512(u.hi[p][8 + v], times(qh, hi[1]));
      }
      _mm512_store_si512(u.minPairs[p], _mm512_shuffle_epi8(mn6[p / 2], Pair512(2 * p, 2 * p + 1)));
    }
    _mm512_store_ps(u.d, Halves2(g, g.g[0]->d));
    _mm512_store_ps(u.dmin, Halves2(g, g.g[0]->dmin));
  }
}

// tmm0, tmm1: C_lo and C_hi (16 × 16 int32); tmm2: A, a sub-block pair of 16 rows of X (16 × 64
// bytes); tmm4, tmm5: B_lo and B_hi of the pair (16 rows of 64 bytes).
KFN void ConfigureTilesK() {
  TileConfig c;
  for (int t = 0; t < 2; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  c.rows[2] = 16, c.colsb[2] = 64;
  for (int t = 4; t < 6; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  KTILE_CONFIG(&c);
}

// Rows r..r+15 of X (Q8_K) against the 16 rows of W in `w`.
KFN void Tile16K(const QuantMatmulArgs& a, const ActRows& act, int64_t r, int64_t j, bool both,
                 const UnpackedKBlock* w) {
  alignas(64) int32_t sums[2][16 * 16];
  const int64_t nb = act.nb, stride = act.stride;
  const __m256i ones = _mm256_set1_epi16(1);
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K* x0 = act.q8k(r) + b;
    const UnpackedKBlock& u = w[b];
    KTILE_ZERO(0);
    KTILE_ZERO(1);
    for (int p = 0; p < 4; ++p) {
      KTILE_LOAD(2, x0->qs + 64 * p, stride);
      KTILE_LOAD(4, u.lo[p], 64);
      KTILE_LOAD(5, u.hi[p], 64);
      KTILE_DP_SU(0, 2, 4);
      KTILE_DP_SU(1, 2, 5);
    }
    KTILE_STORE(0, sums[0], 64);
    KTILE_STORE(1, sums[1], 64);
    const __m512 dw = _mm512_load_ps(u.d), dmw = _mm512_load_ps(u.dmin);
    __m512i mp[4];
    for (int p = 0; p < 4; ++p) mp[p] = _mm512_load_si512(u.minPairs[p]);
    for (int i = 0; i < 16; ++i) {
      const BlockQ8_K& xb = *reinterpret_cast<const BlockQ8_K*>(reinterpret_cast<const uint8_t*>(x0) + i * stride);
      const __m512i isum = _mm512_add_epi32(_mm512_load_si512(sums[0] + 16 * i),
                                            _mm512_slli_epi32(_mm512_load_si512(sums[1] + 16 * i), 3));
      // (bsum32_2p, bsum32_2p+1) as int16 pairs, dwords 0, 1, 4, 5 (as AffineKTile)
      const __m256i b32 = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums)), ones);
      const __m512i b16 = _mm512_castsi256_si512(_mm256_packs_epi32(b32, b32));
      __m512i imin = _mm512_setzero_si512();
      for (int p = 0; p < 4; ++p) {
        const __m512i pair = _mm512_permutexvar_epi32(_mm512_set1_epi32(p < 2 ? p : p + 2), b16);
        imin = _mm512_add_epi32(imin, _mm512_madd_epi16(mp[p], pair));
      }
      const __m512 dx = _mm512_set1_ps(xb.d);
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum), acc[i]);
      acc[i] = _mm512_fnmadd_ps(_mm512_mul_ps(dmw, dx), _mm512_cvtepi32_ps(imin), acc[i]);
    }
  }
  StoreTile(a, r, j, both, acc);
}

template <WeightType T>
QKernel VnniRows8() {
  static const QKernel k = [] {
    KernelSet s;
    avx512rows8vnni::SetRows8Kernels(s);
    return s.ForRows8(T);
  }();
  return k;
}

template <WeightType T>
KENTRY void Rows8Kernel(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                        int64_t j1) {
  constexpr bool kK = T == WeightType::Q4_K;
  using BlockX8 = std::conditional_t<T == WeightType::Q4_0, BlockQ4_0x8,
                                     std::conditional_t<kK, BlockQ4_Kx8, BlockQ8_0x8>>;
  using Unpacked = std::conditional_t<kK, UnpackedKBlock, UnpackedBlock>;
  // Q4_0's quads without their natural copy (a row-invariant call: the VNNI tiles' bits per row
  // whatever m) run on the VNNI tiles.
  const bool tiles = act.layout != ActLayout::Q4Quads || act.naturalOffset != 0;
  // The tiles pay W's unpacking once per 16 rows of W, shared by every 16 rows of X; below 48
  // rows of X it did not pay for Q4_0 (m = 16: 263-283 against the VNNI tiles' 311-320 GFLOP/s,
  // m = 32: 332 against 319), one core, from cache, scripts/rows8-paths.mjs gemm T
  // avx512vnni,amx --m M. Q4_K's (scales decoded by vpshufb, levels multiplied) pays from 16:
  // m = 16 221-290 against 206-259, 32 384 / 280, 64 513 / 299, 512 585 / 302. Q8_0 only copies.
  const int64_t least = T == WeightType::Q4_0 ? 48 : 16;
  const int64_t full = tiles && rows >= least ? rows / 16 * 16 : 0;
  if (full > 0) {
    // Sized once per thread to the longest row seen (Q4_0, k = 5632: 101 KiB, read from L2).
    thread_local std::vector<Unpacked> unpacked;
    if (unpacked.size() < static_cast<size_t>(act.nb)) unpacked.resize(static_cast<size_t>(act.nb));
    if constexpr (kK)
      ConfigureTilesK();
    else
      ConfigureTiles();
    for (int64_t j = j0; j < j1; j += 16) {
      const bool both = j + 16 <= j1;
      const BlockX8* w0 = reinterpret_cast<const BlockX8*>(a.w + j * a.wStride);
      const BlockX8* w1 = both ? reinterpret_cast<const BlockX8*>(a.w + (j + 8) * a.wStride) : w0;
      if constexpr (kK)
        UnpackK(w0, w1, act.nb, unpacked.data());
      else
        Unpack(w0, w1, act.nb, unpacked.data());
      // The tile loads are asm that reads memory the compiler does not see: stores first.
      __asm__ volatile("" ::: "memory");
      for (int64_t r = r0; r < r0 + full; r += 16) {
        if constexpr (kK)
          Tile16K(a, act, r, j, both, unpacked.data());
        else
          Tile16<T == WeightType::Q4_0>(a, act, r, j, both, unpacked.data());
      }
    }
    KTILE_RELEASE();  // no tile state to save on a context switch while other work runs
  }
  if (rows > full) VnniRows8<T>()(a, act, r0 + full, rows - full, j0, j1);
}

}  // namespace

// Q4_0's, Q8_0's and Q4_K's rows8 kernels on AMX tiles, over a VNNI set (the caller checked the cpu and
// Linux's permission: EnableAmx).
void SetRows8Kernels(KernelSet& s) {
  s.q4Rows8 = Rows8Kernel<WeightType::Q4_0>;
  s.q8Rows8 = Rows8Kernel<WeightType::Q8_0>;
  s.q4kRows8 = Rows8Kernel<WeightType::Q4_K>;
}

}  // namespace KNS
}  // namespace redblue

#undef KFN
#undef KENTRY
#undef KTILE_CONFIG
#undef KTILE_RELEASE
#undef KTILE_ZERO
#undef KTILE_LOAD
#undef KTILE_STORE
#undef KTILE_DP_SU
#undef KTILE_DP_SS
#undef REDBLUE_AMX_DP
#undef REDBLUE_AMX_BLOCK
