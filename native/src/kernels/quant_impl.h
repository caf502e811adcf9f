// Internal interface between the matmul driver (quant_matmul.cc) and the per-ISA kernels.
#pragma once
#include <xmmintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/half.h"
#include "kernels/quant.h"

namespace redblue {

// Byte order of the int8 values: natural, or per quad of blocks the order the AVX-512 Q4_0
// kernels (and the AVX2 Q4_0 GEMV) unpack nibbles in: [b0..b3 values 0..15][b0..b3 values 16..31] (16 bytes each); the
// last nb % 4 blocks are always natural. Iq4Pairs (Q8_K rows, for IQ4_XS): per 64 values, the
// order a 32-byte load of IQ4_XS nibbles unpacks in: [0..15][32..47][16..31][48..63] (the low
// nibbles hold values 0-15 of two sub-blocks of 32, the high ones 16-31); bsums stay natural.
enum class ActLayout { Natural, Q4Quads, Iq4Pairs };

// Rows of X quantized to Q8_0-like blocks (scales kept as the f16-rounded value in f32, exactly
// what dequantize(quantize_q8_0(X)) gives). Per row: k int8 values (padded to 64 bytes), then
// nb scales d, then nb block terms c for kernels that keep the weights' levels unsigned:
// Q4_0 c = −8·d·Σq (Σ d_w·d_x·(q_w−8)·q_x = d_w·(d_x·Σ q_w·q_x + c)), Q5_0 c = −16·d·Σq, and
// for Q4_1 / Q5_1 Q8_1's s = f16(d·Σq) (with d before rounding, as quantize_row_q8_1_ref), so
// Σ (d_w·q_w + m_w)·x = d_w·d_x·Σ q_w·q_x + m_w·s.
// Rows of quantized X allocated past m, zeros: Rows16Kernel runs a last 3 (or 7) rows through a
// tile of 4 (or 8), which reads one row more. Only m % 4 == 3 needs it; a GEMV (m = 1) pays nothing.
inline int64_t ActPadRows(int64_t m) { return m % 4 == 3 ? 1 : 0; }
struct ActRows {
  const uint8_t* base = nullptr;
  int64_t stride = 0, k = 0, nb = 0, qsBytes = 0;
  ActLayout layout = ActLayout::Natural;  // of the Q8_0 values
  const int8_t* qs(int64_t r) const { return reinterpret_cast<const int8_t*>(base + r * stride); }
  const float* d(int64_t r) const { return reinterpret_cast<const float*>(base + r * stride + qsBytes); }
  const float* c(int64_t r) const { return d(r) + nb; }
  // Q4Quads GEMM (m > 1): the scales again, each repeated 4 times ([d_b ×4, d_b+1 ×4] per pair of
  // blocks, the lanes of a two-block vpmaddwd result), so the tiles need not expand them per
  // row of W. 0 when absent.
  int64_t dxxOffset = 0;
  const float* dxx(int64_t r) const { return reinterpret_cast<const float*>(base + r * stride + dxxOffset); }
  // Q4Quads prompts on AMX (KernelSet::q4NaturalCopy): the values again in natural order, so a
  // block of 16 rows is one 16 × 32-byte tile operand. 0 when absent.
  int64_t naturalOffset = 0;
  const int8_t* natural(int64_t r) const { return reinterpret_cast<const int8_t*>(base + r * stride + naturalOffset); }
  // K types: each row is nb = k/256 Q8_K blocks instead (qs, d, c unused).
  const BlockQ8_K* q8k(int64_t r) const { return reinterpret_cast<const BlockQ8_K*>(base + r * stride); }
};
// Decoding's prefetch of X for the 32-value types' GEMVs, called every 4 blocks: the lines of
// X's values (natural or quad order, both within bytes 32b..32b+127 for b % 4 == 0) and of its d
// and c 32 blocks ahead. W's stream pushes X's lines out of L1, and a load of one that misses
// while every miss buffer waits on DRAM for W holds the block's chain and the window behind it
// (docs/kernels.md, "One prefetch per line").
inline void PrefetchActAhead(const ActRows& act, int64_t r, int64_t b) {
  const char* x = reinterpret_cast<const char*>(act.qs(r) + (b + 32) * 32);
  _mm_prefetch(x, _MM_HINT_T0);
  _mm_prefetch(x + 64, _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(act.d(r) + b + 32), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(act.c(r) + b + 32), _MM_HINT_T0);
}

// Rows8 (QuantMatmulArgs::rows8): W's rows interleaved 8 at a time, so that one vector op serves
// 8 rows of W and a sub-block's scales apply once per 8 rows (one vpmaddwd) where the natural
// layout pays a shuffle and a vpmaddwd per row. A group of 8 rows keeps the bytes of its 8
// natural rows, one BlockQ4_Kx8 per super-block; rows past the last whole group stay natural,
// where they were. InterleaveRows8 (quant_rows8.cc) writes it.
struct BlockQ4_Kx8 {  // 1152 bytes = 8 × BlockQ4_K
  uint16_t d[8], dmin[8];
  uint8_t scales[48], mins[48];  // 64 6-bit values each, in Rows8Six's order
  // Per sub-block pair c (256 bytes): 8 vectors of 32 bytes; vector v holds bytes 4v..4v+3 of
  // each row's 32 bytes of the pair (row ρ at byte 4ρ): low nibbles sub-block 2c, high 2c+1.
  uint8_t qs[1024];
};
// Q5_K: as BlockQ4_Kx8 plus the fifth bits: byte 4ρ + t of qh vector s (sub-block s = 2c + h)
// holds at bit v the fifth bit of element 32s + 4v + t of row ρ (the level whose low 4 bits sit
// in qs vector 8c + v, nibble h).
struct BlockQ5_Kx8 {  // 1408 bytes = 8 × BlockQ5_K
  uint16_t d[8], dmin[8];
  uint8_t scales[48], mins[48];
  uint8_t qh[256];
  uint8_t qs[1024];
};
// Q5_0: as BlockQ4_0x8 plus the fifth bits: byte 4ρ + t of qh holds at bit v the fifth bit of
// element 4v + t of row ρ and at bit 4 + v that of element 16 + 4v + t.
struct BlockQ5_0x8 {  // 176 bytes = 8 × BlockQ5_0
  uint16_t d[8];
  uint8_t qh[32];
  uint8_t qs[128];
};
// Q4_1 / Q5_1: as BlockQ4_0x8 / BlockQ5_0x8 with the 8 rows' mins after their scales.
struct BlockQ4_1x8 {  // 160 bytes = 8 × BlockQ4_1
  uint16_t d[8], m[8];
  uint8_t qs[128];
};
struct BlockQ5_1x8 {  // 192 bytes = 8 × BlockQ5_1
  uint16_t d[8], m[8];
  uint8_t qh[32];
  uint8_t qs[128];
};
// IQ4_NL: as BlockQ4_0x8 (its nibbles index kIq4Values instead of standing for q − 8).
struct BlockIQ4_NLx8 {  // 144 bytes = 8 × BlockIQ4_NL
  uint16_t d[8];
  uint8_t qs[128];
};
// Q8_0: per block of 32, the 8 rows' scales, then 8 vectors of 32 bytes; vector v holds values
// 4v..4v+3 of each row (row ρ at byte 4ρ).
struct BlockQ8_0x8 {  // 272 bytes = 8 × BlockQ8_0
  uint16_t d[8];
  int8_t qs[256];
};
// Q4_0: per block of 32, the 8 rows' scales, then 4 vectors of 32 bytes; vector v holds bytes
// 4v..4v+3 of each row's 16 (row ρ at byte 4ρ): low nibbles elements 4v.., high 16 + 4v...
struct BlockQ4_0x8 {  // 144 bytes = 8 × BlockQ4_0
  uint16_t d[8];
  uint8_t qs[128];
};
// Q6_K: element 64c + 32h + 4v + t of row ρ (c, v < 8 / 4, h < 2, t < 4) has its low 4 bits in
// byte 4ρ + t of ql vector 8c + v (h = 0: low nibble, 1: high) and its top 2 bits at bits 2·(v % 4)
// of byte 4ρ + t of qh vector 4c + 2h + v / 4 — the index of its sub-block of 16, so one qh load
// serves a sub-block. scales: the int8 scales of sub-block g in vector g / 4, row ρ at byte
// 16·(ρ / 4) + 4·(g % 4) + ρ % 4 (Rows8SixIndex's order).
struct BlockQ6_Kx8 {  // 1680 bytes = 8 × BlockQ6_K
  uint16_t d[8];
  int8_t scales[128];
  uint8_t ql[1024];
  uint8_t qh[512];
};
// Q3_K: element 16g + 4w + t of row ρ (sub-block g < 16, w, t < 4) has its two low bits at bits
// 2w of byte 4ρ + t of qs vector g, and its hmask bit at bit Q3KRows8HighBit(g, w) of byte 4ρ + t
// of hm vector g / 2: one qs load serves a sub-block, one hm load two, and the bits sit where
// (qs & 0x33) and (qs >> 2 & 0x33) take them with one shift, so levels w and w + 2 come out of
// one byte's nibbles. scales: the 16 6-bit scales as stored (sc + 32, 0..63) of the 8 rows, two
// Rows8Six tables: sub-blocks 0-7, then 8-15.
inline int Q3KRows8HighBit(int g, int w) { return 2 * (1 - g % 2) + w % 2 + 4 * (w / 2); }
struct BlockQ3_Kx8 {  // 880 bytes = 8 × BlockQ3_K
  uint16_t d[8];
  uint8_t scales[96];
  uint8_t hm[256];
  uint8_t qs[512];
};
// Q2_K: element 16g + 4w + t of row ρ has its two bits at bits 2w of byte 4ρ + t of qs vector g
// (as Q3_K's low bits); scales: the byte (scale | min << 4) of sub-block g, row ρ at 32·(g / 4) +
// Rows8SixIndex(ρ, g), so one vpshufb gives each row lane its byte for a sub-block or a pair.
struct BlockQ2_Kx8 {  // 672 bytes = 8 × BlockQ2_K
  uint16_t d[8], dmin[8];
  uint8_t scales[128];
  uint8_t qs[512];
};
// IQ4_XS: per super-block the 8 rows' d, their 64 sub-block scales as stored (ls, 0..63, the
// kernel takes 32 off) in a Rows8Six table, and Q4_K's byte order: vector v of pair c (sub-blocks
// 2c, 2c + 1) holds natural bytes 32c + 4v..32c + 4v + 3 of each row (row ρ at byte 4ρ), so
// vectors 0-3 are sub-block 2c (low nibbles its elements 4v + t, high 16 + 4v + t) and 4-7 are
// 2c + 1; a nibble meets the activation a 32-byte load of natural IQ4_XS meets it with
// (ActLayout::Iq4Pairs), and one scale serves a whole vector.
struct BlockIQ4_XSx8 {  // 1088 bytes = 8 × BlockIQ4_XS
  uint16_t d[8];
  uint8_t scales[48];
  uint8_t qs[1024];
};
static_assert(sizeof(BlockQ4_Kx8) == 8 * sizeof(BlockQ4_K) && sizeof(BlockQ5_Kx8) == 8 * sizeof(BlockQ5_K) &&
                  sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0) && sizeof(BlockQ8_0x8) == 8 * sizeof(BlockQ8_0) &&
                  sizeof(BlockQ5_0x8) == 8 * sizeof(BlockQ5_0) && sizeof(BlockQ4_1x8) == 8 * sizeof(BlockQ4_1) &&
                  sizeof(BlockQ5_1x8) == 8 * sizeof(BlockQ5_1) && sizeof(BlockQ6_Kx8) == 8 * sizeof(BlockQ6_K) &&
                  sizeof(BlockQ3_Kx8) == 8 * sizeof(BlockQ3_K) && sizeof(BlockQ2_Kx8) == 8 * sizeof(BlockQ2_K) &&
                  sizeof(BlockIQ4_NLx8) == 8 * sizeof(BlockIQ4_NL) && sizeof(BlockIQ4_XSx8) == 8 * sizeof(BlockIQ4_XS),
              "rows8 keeps the bytes of its rows");
// A table of 64 6-bit values (row ρ, sub-block s) in 48 bytes: two 32-byte vectors V_h (h = s / 4)
// with (ρ, s) at byte 16·(ρ / 4) + 4·(s % 4) + ρ % 4, so that within each 128-bit lane one
// vpshufb per sub-block puts row ρ's value into 32-bit lane ρ. Bytes 0-31: V_0[j] | V_1[j] << 4
// (low nibbles); byte 32 + i: the top two bits of V_0[i], V_0[16 + i], V_1[i], V_1[16 + i] at
// bits 0, 2, 4, 6.
inline int Rows8SixIndex(int row, int sub) { return 16 * (row / 4) + 4 * (sub % 4) + row % 4; }
inline int Rows8SixHighShift(int row, int sub) { return 2 * (2 * (sub / 4) + row / 4); }
inline uint8_t Rows8Six(const uint8_t* t, int row, int sub) {
  const int j = Rows8SixIndex(row, sub);
  return static_cast<uint8_t>(((t[j] >> (4 * (sub / 4))) & 0xF) | ((t[32 + j % 16] >> Rows8SixHighShift(row, sub)) & 3) << 4);
}

// Whether decoding's row kernels (the one-stream GEMVs, the AVX2 rows) prefetch W into L2 rather
// than L1: on Intel cpus, unless the environment variable REDBLUE_GEMV_PREFETCH says l1 or l2 (to
// compare both on one machine). Resolved (and a bad value thrown) by MatmulQShared's caller
// thread before any kernel runs; after that a kernel's check is one load.
bool ResolveGemvPrefetchToL2();
inline bool PrefetchGemvToL2() {
  static const bool l2 = ResolveGemvPrefetchToL2();
  return l2;
}

// Decoding's software prefetch of W (the one-stream GEMVs, the AVX2 rows): every 64-byte line
// kGemvPrefetchAhead bytes (into L2: kGemvPrefetchAheadL2) past what the kernel has read, each
// line once. A prefetch per 64
// bytes of each block asked again for a third of Q4_0's lines (144 bytes a group of 8 rows),
// and prefetches are not free: Q4_0's GEMV from L2 on one core of the Zen 5 VM 34-35 GB/s with
// those, 40-44 with one per line (66 with none), Q8_0 36-37 → 50-54, Q6_K 43-44 → 45-50 (`node
// scripts/rows8-paths.mjs l2 q4_0,q4_k,q6_k,q8_0 avx512vnni`); from DRAM Q4_0 0.67-0.71 → 0.73-0.75
// of a plain read, Q8_0 0.72-0.73 → 0.77-0.78 (`redblue bench kernels --gemv-only --threads 1`).
// Every other line only: worse (Q4_K 0.87 → 0.82). Into L2 (prefetcht1) where
// PrefetchGemvToL2 says so: on the Sapphire Rapids day 0.88-0.89 → 0.95-0.97 of a plain read
// (Q4_0), 0.66-0.76 → 0.81-0.83 (Q4_K); prefetcht0 holds a line fill buffer per line in
// flight, of which a core has few. Zen keeps prefetcht0 (Q4_K 0.87-0.88 against 0.78-0.80 with
// prefetcht1 on the Zen 5 VM). Prefetches past the end of the mapping are dropped, never faulted.
// Into L2 half as far (kGemvPrefetchAheadL2): on the Sapphire Rapids VM, one core, Q4_K
// 0.86-0.87 -> 0.91-0.93 of a plain read, Q6_K 0.82-0.84 -> 0.86-0.89, Q8_0 0.92-0.96 ->
// 0.97-1.01 at 2 KiB against 4 KiB (`bench kernels --gemv-only --threads 1`, builds alternated;
// 1, 1.5, 3, 8 and 12 KiB read less).
constexpr int64_t kGemvPrefetchAhead = 4096, kGemvPrefetchAheadL2 = 2048;
class LinePrefetch {
 public:
  // aheadL1: the distance where lines go into L1 (Zen), for a kernel whose groups want another.
  explicit LinePrefetch(const void* w, int64_t aheadL1 = kGemvPrefetchAhead)
      : l2_(PrefetchGemvToL2()),
        ahead_(l2_ ? kGemvPrefetchAheadL2 : aheadL1),
        next_(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w) & ~uintptr_t{63}) + ahead_) {}
  bool intoL2() const { return l2_; }
  // Prefetches the lines not yet asked for up to end + the distance (end: one past the last
  // byte the kernel is about to read).
  void Through(const void* end) {
    const char* e = static_cast<const char*>(end) + ahead_;
    if (l2_) {
      for (; next_ < e; next_ += 64) _mm_prefetch(next_, _MM_HINT_T1);
    } else {
      for (; next_ < e; next_ += 64) _mm_prefetch(next_, _MM_HINT_T0);
    }
  }

 private:
  bool l2_;
  int64_t ahead_;
  const char* next_;
};

// On Zen, one line of W a step or group kGemvStreamAhead past where a GEMV reads keeps the
// hardware prefetcher's stream running ahead, beside the every-line prefetch (the GEMVs of
// Q4_0, Q4_K, Q5_K, Q6_K, IQ4_XS, Q8_0's rows and the float rows; IQ4_NL's alone; docs/kernels.md,
// "Q4_0 on Zen 5" and the sections after it).
constexpr int64_t kGemvStreamAhead = 16384;
inline void PrefetchStreamLine(const void* at) {
  _mm_prefetch(static_cast<const char*>(at) + kGemvStreamAhead, _MM_HINT_T0);
}

// The AVX-512 tiles' (m > 1) prefetch distance, each line into L1: kGemvPrefetchAhead, but where
// the GEMVs prefetch into L1 (Zen) nearer for a server's step of a few streams (m up to
// kTileNearRows), which reads W from memory about as fast as it computes: 2 KiB against 4 read
// Q4_0 1.12-1.14×, Q4_K 1.03-1.04×, Q6_K 1.07× as fast at m = 8 on one core of the Zen 5 VM
// (`node scripts/kernel-ab.mjs A.node B.node q4_0,q4_k,q6_k,q8_0 --rows8 --m 8`, both orders).
// Q8_0 (twice the bytes a weight) read 0.95-0.97× so, and at m = 64 (a prompt, from L3) 0.85×:
// both keep 4 KiB.
constexpr int64_t kTileNearRows = 16, kTileAheadNear = 2048;
inline int64_t TileAhead(const QuantMatmulArgs& a) {
  const bool near = !PrefetchGemvToL2() && a.m <= kTileNearRows && a.type != WeightType::Q8_0;
  return near ? kTileAheadNear : kGemvPrefetchAhead;
}

// The older form, into L2: each 64-byte span of one block kGemvPrefetchAhead on. Q4_0's
// one-block-a-step GEMV keeps it on Intel (Nibble32Gemv).
template <size_t kBytes>
inline void PrefetchGemvBlockToL2(const void* block) {
  const char* q = static_cast<const char*>(block) + kGemvPrefetchAhead;
  for (size_t o = 0; o < kBytes; o += 64) _mm_prefetch(q + o, _MM_HINT_T1);
}

// Y[r0..r0+rows) × [j0, j1) for one weight type on one ISA. F32/F16/BF16 kernels read X directly.
using QKernel = void (*)(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                         int64_t j1);

struct KernelSet {
  QKernel q8 = nullptr, q4 = nullptr, f16 = nullptr, bf16 = nullptr, f32 = nullptr;
  QKernel q2k = nullptr, q3k = nullptr, q4k = nullptr, q5k = nullptr, q6k = nullptr;
  QKernel q41 = nullptr, q50 = nullptr, q51 = nullptr, iq4nl = nullptr, iq4xs = nullptr;
  ActLayout q4Layout = ActLayout::Natural;    // of the Q4_0 kernels' activations
  ActLayout q8Layout = ActLayout::Natural;    // of the Q8_0 GEMM tiles' (m > 1, not row-invariant)
  ActLayout iq4xsLayout = ActLayout::Natural;  // of the IQ4_XS kernels' (Natural or Iq4Pairs)
  // Q4_0 prompts (m > 1, not row-invariant) also get X in natural order (ActRows::natural): AMX.
  bool q4NaturalCopy = false;
  // Kernels on rows8 weights (whole groups: j0 and j1 multiples of 8); null where this path
  // runs the type only in the natural layout.
  QKernel q8Rows8 = nullptr, q4Rows8 = nullptr, q50Rows8 = nullptr, q41Rows8 = nullptr, q51Rows8 = nullptr, q4kRows8 = nullptr, q5kRows8 = nullptr, q6kRows8 = nullptr,
         q3kRows8 = nullptr, q2kRows8 = nullptr, iq4nlRows8 = nullptr, iq4xsRows8 = nullptr;
  QKernel ForRows8(WeightType t) const {
    switch (t) {
      case WeightType::Q8_0: return q8Rows8;
      case WeightType::Q4_0: return q4Rows8;
      case WeightType::Q5_0: return q50Rows8;
      case WeightType::Q4_1: return q41Rows8;
      case WeightType::Q5_1: return q51Rows8;
      case WeightType::Q4_K: return q4kRows8;
      case WeightType::Q5_K: return q5kRows8;
      case WeightType::Q6_K: return q6kRows8;
      case WeightType::Q3_K: return q3kRows8;
      case WeightType::Q2_K: return q2kRows8;
      case WeightType::IQ4_NL: return iq4nlRows8;
      case WeightType::IQ4_XS: return iq4xsRows8;
      default: return nullptr;
    }
  }
  QKernel For(WeightType t) const {
    switch (t) {
      case WeightType::Q8_0: return q8;
      case WeightType::Q4_0: return q4;
      case WeightType::F16: return f16;
      case WeightType::BF16: return bf16;
      case WeightType::F32: return f32;
      case WeightType::Q2_K: return q2k;
      case WeightType::Q3_K: return q3k;
      case WeightType::Q4_K: return q4k;
      case WeightType::Q5_K: return q5k;
      case WeightType::Q6_K: return q6k;
      case WeightType::Q4_1: return q41;
      case WeightType::Q5_0: return q50;
      case WeightType::Q5_1: return q51;
      case WeightType::IQ4_NL: return iq4nl;
      case WeightType::IQ4_XS: return iq4xs;
    }
    return nullptr;
  }
};
// Which widening the f32-activation kernels do to a weight (HalfTile's kKind).
enum HalfKind { kF16 = 0, kBf16 = 1, kF32 = 2 };
KernelSet ScalarKernels();
KernelSet Avx2Kernels();
KernelSet Avx512Kernels(bool vnni, bool vbmi);  // vbmi implies vnni
// Avx512Kernels(true, false) with Q4_0 / Q8_0 batches on AMX tiles (or their C++ model: tests)
KernelSet AmxKernels(bool emulated);

// What ActRows::c holds for a weight type's kernels.
enum class ActTerm { Offset8, Offset16, Q8_1Sum };
ActTerm ActTermFor(WeightType t);

// Quantizes 32 values to Q8_0 as quantize_row_q8_0_ref does (q = roundf(x·(1/d)), d = amax/127),
// writing values 0..15 to lo and 16..31 to hi; returns the unrounded d and Σq. The AVX-512
// version is bit-identical (tests compare them).
struct Q8Block {
  float d;
  int32_t sum;
};
using Q8BlockFn = Q8Block (*)(const float* x, int8_t* lo, int8_t* hi);
Q8BlockFn Q8BlockQuantizer(bool allowSimd);

// One row of X → Q8_K blocks (quantize_row_q8_K_ref); the SIMD version gives the same bytes.
using Q8KRowFn = void (*)(const float* x, int64_t k, BlockQ8_K* y);
Q8KRowFn Q8KQuantizer(bool allowSimd);

// IQ4_NL / IQ4_XS rows (quantize_iq4_nl / quantize_iq4_xs, no importance matrix) and IQ4_XS back
// to f32 (IQ4_NL shares the 32-element types' dequantizer); quant_iq4.cc.
void QuantizeIq4Row(WeightType t, const float* x, int64_t k, uint8_t* out);
void DequantizeIq4XsRow(const uint8_t* w, int64_t k, float* out);
// IQ4_XS's 8 sub-block scales less 32 (−32..31), as dequantize_row_iq4_xs reads them.
inline void UnpackScalesIq4Xs(const BlockIQ4_XS& b, int8_t out[8]) {
  for (int j = 0; j < 8; ++j)
    out[j] = static_cast<int8_t>((((b.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b.scales_h >> (2 * j)) & 3) << 4)) - 32);
}

// Round to nearest, ties to even, through the float adder (ggml's nearest_int): adding
// 1.5·2²³ leaves the integer in the low mantissa bits. Valid for |v| < 2²², as in ggml.
inline int NearestInt(float v) {
  const float t = v + 12582912.0f;
  return static_cast<int>(F32Bits(t) & 0x007fffffu) - 0x00400000;
}
constexpr float kGroupEps = 1e-15f;  // ggml GROUP_MAX_EPS: below this a group counts as all zero

// K-type rows (k a multiple of 256) in ggml's layouts; quant_kformats.cc.
void QuantizeKRow(WeightType t, const float* x, int64_t k, uint8_t* out);
void DequantizeKRow(WeightType t, const uint8_t* w, int64_t k, float* out);

// The 12 packed bytes of a Q4_K / Q5_K super-block → its eight 6-bit scales (bytes 0-7 of
// out) and eight mins (bytes 8-15), as ggml's get_scale_min_k4, four sub-blocks per 32-bit word.
// Words, not bytes: SIMD callers build a register from them without a store-forwarding stall.
inline void UnpackScalesK4(const uint8_t* packed, uint32_t out[4]) {
  uint32_t u[3];
  std::memcpy(u, packed, 12);
  out[0] = u[0] & 0x3f3f3f3fu;                                                 // sc 0-3
  out[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);         // sc 4-7
  out[2] = u[1] & 0x3f3f3f3fu;                                                 // m 0-3
  out[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);  // m 4-7
}
inline void UnpackScalesK4(const uint8_t* packed, uint8_t sc[8], uint8_t m[8]) {
  uint32_t o[4];
  UnpackScalesK4(packed, o);
  std::memcpy(sc, o, 8);
  std::memcpy(m, o + 2, 8);
}

// Q3_K's 12 packed scale bytes → its 16 scales less 32 (−32..31), as ggml's kmask unpacking.
inline void UnpackScalesQ3K(const uint8_t* packed, int8_t out[16]) {
  uint32_t a[4];
  std::memcpy(a, packed, 12);
  const uint32_t tmp = a[2], k1 = 0x03030303u, k2 = 0x0f0f0f0fu;
  a[2] = ((a[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
  a[3] = ((a[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
  a[0] = (a[0] & k2) | ((tmp & k1) << 4);
  a[1] = (a[1] & k2) | (((tmp >> 2) & k1) << 4);
  std::memcpy(out, a, 16);
  for (int g = 0; g < 16; ++g) out[g] = static_cast<int8_t>(out[g] - 32);
}

// Scalar tail helpers shared by the SIMD kernels (one block, natural layout).
inline int32_t DotQ8Block(const int8_t* w, const int8_t* x) {
  int32_t s = 0;
  for (int i = 0; i < kQBlock; ++i) s += int32_t(w[i]) * x[i];
  return s;
}
inline int32_t DotQ4BlockUnsigned(const uint8_t* qs, const int8_t* x) {  // Σ q·x, q in 0..15
  int32_t s = 0;
  for (int i = 0; i < kQBlock / 2; ++i) s += int32_t(qs[i] & 0x0F) * x[i] + int32_t(qs[i] >> 4) * x[i + 16];
  return s;
}

}  // namespace redblue
