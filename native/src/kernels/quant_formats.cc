// ggml block formats: quantize (bit-exact with ggml's *_reference functions) and dequantize.
// GCC 12 warns inside its own AVX-512 reduction intrinsics (undefined upper halves it never uses).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cpu_features.h"

#include "core/errors.h"
#include "kernels/half.h"
#include "kernels/quant.h"
#include "kernels/quant_impl.h"

namespace redblue {

namespace {

// One row per type: the JS name, ggml's type id, elements and bytes per block.
struct TypeInfo {
  WeightType type;
  const char* name;
  int ggml;
  int64_t blockElements, blockBytes;
};
constexpr TypeInfo kTypes[] = {
    {WeightType::F32, "f32", 0, 1, 4},
    {WeightType::F16, "f16", 1, 1, 2},
    {WeightType::BF16, "bf16", 30, 1, 2},
    {WeightType::Q8_0, "q8_0", 8, kQBlock, sizeof(BlockQ8_0)},
    {WeightType::Q4_0, "q4_0", 2, kQBlock, sizeof(BlockQ4_0)},
    {WeightType::Q4_1, "q4_1", 3, kQBlock, sizeof(BlockQ4_1)},
    {WeightType::Q5_0, "q5_0", 6, kQBlock, sizeof(BlockQ5_0)},
    {WeightType::Q5_1, "q5_1", 7, kQBlock, sizeof(BlockQ5_1)},
    {WeightType::Q2_K, "q2_k", 10, kQKBlock, sizeof(BlockQ2_K)},
    {WeightType::Q3_K, "q3_k", 11, kQKBlock, sizeof(BlockQ3_K)},
    {WeightType::Q4_K, "q4_k", 12, kQKBlock, sizeof(BlockQ4_K)},
    {WeightType::Q5_K, "q5_k", 13, kQKBlock, sizeof(BlockQ5_K)},
    {WeightType::Q6_K, "q6_k", 14, kQKBlock, sizeof(BlockQ6_K)},
    {WeightType::IQ4_NL, "iq4_nl", 20, kQBlock, sizeof(BlockIQ4_NL)},
    {WeightType::IQ4_XS, "iq4_xs", 23, kQKBlock, sizeof(BlockIQ4_XS)},
};

const TypeInfo& Info(WeightType t) {
  for (const TypeInfo& i : kTypes)
    if (i.type == t) return i;
  throw UserError("unknown weight type value " + std::to_string(static_cast<int>(t)));
}

std::string TypeList(bool withIds) {
  std::string out;
  for (const TypeInfo& i : kTypes) {
    if (!out.empty()) out += ", ";
    out += withIds ? std::to_string(i.ggml) + " (" + i.name + ")" : std::string("'") + i.name + "'";
  }
  return out;
}

}  // namespace

WeightType ParseWeightType(const std::string& s) {
  for (const TypeInfo& i : kTypes)
    if (s == i.name) return i.type;
  throw UserError("unknown weight type '" + s + "': use one of " + TypeList(false));
}

const char* WeightTypeName(WeightType t) { return Info(t).name; }

int GgmlTypeId(WeightType t) { return Info(t).ggml; }

WeightType WeightTypeFromGgml(int id) {
  for (const TypeInfo& i : kTypes)
    if (i.ggml == id) return i.type;
  const std::string why = id == 15 ? " (q8_K is ggml's activation format, not a weight type)" : "";
  throw UserError("ggml type id " + std::to_string(id) + why +
                  " is not supported: re-quantize the model to one of " + TypeList(true));
}

int64_t BlockElements(WeightType t) { return Info(t).blockElements; }

bool IsQ8KActivated(WeightType t) {
  return t == WeightType::Q2_K || t == WeightType::Q3_K || t == WeightType::Q4_K || t == WeightType::Q5_K || t == WeightType::Q6_K ||
         t == WeightType::IQ4_XS;
}

bool IsQ8Activated(WeightType t) {
  return t == WeightType::Q8_0 || t == WeightType::Q4_0 || t == WeightType::Q4_1 || t == WeightType::Q5_0 ||
         t == WeightType::Q5_1 || t == WeightType::IQ4_NL;
}

int64_t RowBytes(WeightType t, int64_t k) {
  if (k < 0) throw UserError("row length k must be non-negative");
  const TypeInfo& i = Info(t);
  if (k % i.blockElements != 0)
    throw UserError(std::string(i.name) + " rows must hold a multiple of " + std::to_string(i.blockElements) +
                    " elements (one block = " + std::to_string(i.blockElements) + "), got k=" + std::to_string(k) +
                    ": pick another type for this tensor or pad its rows");
  return k / i.blockElements * i.blockBytes;
}

namespace {

Q8Block Q8BlockScalar(const float* x, int8_t* lo, int8_t* hi) {
  float amax = 0.0f;
  for (int j = 0; j < kQBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int32_t sum = 0;
  for (int j = 0; j < kQBlock; ++j) {
    const int8_t q = static_cast<int8_t>(std::roundf(x[j] * id));
    (j < 16 ? lo[j] : hi[j - 16]) = q;
    sum += q;
  }
  return {d, sum};
}

// roundf (half away from zero) is trunc(v), plus sign(v) where the dropped fraction is ≥ 0.5
// (v − trunc(v) is exact).
__attribute__((target("avx512f,avx512bw,avx512vl"))) __m512i RoundAwayI32(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(_mm512_set1_ps(1.0f)), _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN))));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) Q8Block Q8BlockAvx512(const float* x, int8_t* lo,
                                                                                       int8_t* hi) {
  const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m512i qa = RoundAwayI32(_mm512_mul_ps(a, _mm512_set1_ps(id)));
  const __m512i qb = RoundAwayI32(_mm512_mul_ps(b, _mm512_set1_ps(id)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lo), _mm512_cvtepi32_epi8(qa));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(hi), _mm512_cvtepi32_epi8(qb));
  return {d, _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb))};
}

// Q8BlockScalar's arithmetic in AVX2, bit for bit: the same max, the same d and 1/d, the same
// x·(1/d) per value, rounded half away from zero as roundf (trunc, then ±1 where the dropped
// fraction is ≥ 0.5). A prompt batch quantizes every activation row before each matmul: scalar,
// this was 7 % of prompt time.
__attribute__((target("avx2"))) Q8Block Q8BlockAvx2(const float* x, int8_t* lo, int8_t* hi) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(x + 8 * i);
  const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float amax = _mm_cvtss_f32(m4);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  __m256i q[4];
  for (int i = 0; i < 4; ++i) {
    const __m256 t = _mm256_mul_ps(v[i], vid);
    const __m256 tr = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(t, tr)), half, _CMP_GE_OQ);
    const __m256 step = _mm256_or_ps(one, _mm256_and_ps(t, sign));  // ±1 with t's sign
    q[i] = _mm256_cvttps_epi32(_mm256_add_ps(tr, _mm256_and_ps(up, step)));
  }
  __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
  // packs work per 128-bit lane: dwords come out as q0[0:4] q1[0:4] q2[0:4] q3[0:4] q0[4:8] ...
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  const __m256i ordered = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lo), _mm256_castsi256_si128(ordered));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(hi), _mm256_extracti128_si256(ordered, 1));
  return {d, _mm_cvtsi128_si32(s4)};
}

// quantize_row_q8_0_ref
void QuantizeQ8_0(const float* x, int64_t k, BlockQ8_0* y, Q8BlockFn block) {
  for (int64_t b = 0; b < k / kQBlock; ++b, x += kQBlock) {
    const Q8Block r = block(x, y[b].qs, y[b].qs + 16);
    y[b].d = F32ToF16(r.d);
  }
}

// The first of a block's 32 values with the largest magnitude, sign kept.
float SignedExtreme(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQBlock; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

// quantize_row_q4_0_ref: the scale is the signed value of largest magnitude over −8, so that
// value maps exactly to q = 0 and the 16 levels are used asymmetrically as ggml does.
void QuantizeQ4_0(const float* x, int64_t k, BlockQ4_0* y) {
  for (int64_t b = 0; b < k / kQBlock; ++b, x += kQBlock) {
    const float d = SignedExtreme(x) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = F32ToF16(d);
    for (int j = 0; j < kQBlock / 2; ++j) {
      const float x0 = x[j] * id, x1 = x[kQBlock / 2 + j] * id;
      const uint8_t q0 = std::min<int8_t>(15, static_cast<int8_t>(x0 + 8.5f));
      const uint8_t q1 = std::min<int8_t>(15, static_cast<int8_t>(x1 + 8.5f));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// Four bits of q0 | q1 << 4 into qs[j], the fifth bits into qh (bit j, bit j + 16).
void PackNibbles5(int j, uint8_t q0, uint8_t q1, uint8_t* qs, uint32_t& qh) {
  qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
  qh |= ((q0 & 0x10u) >> 4) << j;
  qh |= ((q1 & 0x10u) >> 4) << (j + kQBlock / 2);
}

// quantize_row_q4_1_ref / quantize_row_q5_1_ref: 2^bits − 1 steps from the block's min to its max.
template <typename Block, int kBits>
void QuantizeAffine32(const float* x, int64_t k, Block* y) {
  for (int64_t b = 0; b < k / kQBlock; ++b, x += kQBlock) {
    float min = x[0], max = x[0];
    for (int j = 1; j < kQBlock; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / ((1 << kBits) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = F32ToF16(d);
    y[b].m = F32ToF16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQBlock / 2; ++j) {
      const float x0 = (x[j] - min) * id, x1 = (x[kQBlock / 2 + j] - min) * id;
      if constexpr (kBits == 4) {
        const uint8_t q0 = std::min<int8_t>(15, static_cast<int8_t>(x0 + 0.5f));
        const uint8_t q1 = std::min<int8_t>(15, static_cast<int8_t>(x1 + 0.5f));
        y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
      } else {
        PackNibbles5(j, static_cast<uint8_t>(x0 + 0.5f), static_cast<uint8_t>(x1 + 0.5f), y[b].qs, qh);
      }
    }
    if constexpr (kBits == 5) std::memcpy(y[b].qh, &qh, 4);
  }
}

// quantize_row_q5_0_ref: as Q4_0 with 32 levels (the signed extreme maps to q = 0).
void QuantizeQ5_0(const float* x, int64_t k, BlockQ5_0* y) {
  for (int64_t b = 0; b < k / kQBlock; ++b, x += kQBlock) {
    const float d = SignedExtreme(x) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = F32ToF16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQBlock / 2; ++j) {
      const float x0 = x[j] * id, x1 = x[kQBlock / 2 + j] * id;
      const uint8_t q0 = std::min<int8_t>(31, static_cast<int8_t>(x0 + 16.5f));
      const uint8_t q1 = std::min<int8_t>(31, static_cast<int8_t>(x1 + 16.5f));
      PackNibbles5(j, q0, q1, y[b].qs, qh);
    }
    std::memcpy(y[b].qh, &qh, 4);
  }
}

// One 32-element block of any of Q4_0 … Q5_1 and IQ4_NL → its 32 unsigned levels q (0..15 or
// 0..31), in element order; x = d·Value(q) (+ m for the _1 types).
template <typename Block>
void Levels32(const Block& blk, uint8_t q[kQBlock]) {
  uint32_t qh = 0;
  if constexpr (Nibble32Traits<Block>::kFifthBit) std::memcpy(&qh, blk.qh, 4);
  for (int j = 0; j < kQBlock / 2; ++j) {
    q[j] = static_cast<uint8_t>((blk.qs[j] & 0x0F) | (((qh >> j) & 1) << 4));
    q[j + 16] = static_cast<uint8_t>((blk.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
  }
}

template <typename Block>
void Dequantize32(const uint8_t* row, int64_t k, float* o) {
  const Block* b = reinterpret_cast<const Block*>(row);
  for (int64_t i = 0; i < k / kQBlock; ++i) {
    uint8_t q[kQBlock];
    Levels32(b[i], q);
    const float d = F16ToF32(b[i].d);
    if constexpr (Nibble32Traits<Block>::kAffine) {
      const float m = F16ToF32(b[i].m);
      for (int j = 0; j < kQBlock; ++j) o[i * kQBlock + j] = q[j] * d + m;
    } else {
      for (int j = 0; j < kQBlock; ++j) o[i * kQBlock + j] = d * Nibble32Traits<Block>::Value(q[j]);
    }
  }
}

}  // namespace

Q8BlockFn Q8BlockQuantizer(bool allowSimd) {
  const CpuFeatures& f = DetectCpu();
  if (!allowSimd) return Q8BlockScalar;
  if (f.avx512f && f.avx512bw && f.avx512vl) return Q8BlockAvx512;
  return f.avx2 ? Q8BlockAvx2 : Q8BlockScalar;
}

void QuantizeRows(WeightType t, const float* x, int64_t rows, int64_t k, int64_t ldx, uint8_t* out, bool allowSimd) {
  const Q8BlockFn q8 = Q8BlockQuantizer(allowSimd);
  const int64_t rb = RowBytes(t, k);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    uint8_t* o = out + r * rb;
    switch (t) {
      case WeightType::F32: std::memcpy(o, xr, static_cast<size_t>(4 * k)); break;
      case WeightType::Q2_K:
      case WeightType::Q3_K:
      case WeightType::Q4_K:
      case WeightType::Q5_K:
      case WeightType::Q6_K: QuantizeKRow(t, xr, k, o); break;
      case WeightType::F16:
        for (int64_t i = 0; i < k; ++i) {
          uint16_t h = F32ToF16(xr[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
      case WeightType::BF16:
        for (int64_t i = 0; i < k; ++i) {
          uint16_t h = F32ToBf16(xr[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
      case WeightType::Q8_0: QuantizeQ8_0(xr, k, reinterpret_cast<BlockQ8_0*>(o), q8); break;
      case WeightType::Q4_0: QuantizeQ4_0(xr, k, reinterpret_cast<BlockQ4_0*>(o)); break;
      case WeightType::Q4_1: QuantizeAffine32<BlockQ4_1, 4>(xr, k, reinterpret_cast<BlockQ4_1*>(o)); break;
      case WeightType::Q5_0: QuantizeQ5_0(xr, k, reinterpret_cast<BlockQ5_0*>(o)); break;
      case WeightType::Q5_1: QuantizeAffine32<BlockQ5_1, 5>(xr, k, reinterpret_cast<BlockQ5_1*>(o)); break;
      case WeightType::IQ4_NL:
      case WeightType::IQ4_XS: QuantizeIq4Row(t, xr, k, o); break;
    }
  }
}

void DequantizeRows(WeightType t, const uint8_t* w, int64_t rows, int64_t k, float* out, int64_t ldo) {
  const int64_t rb = RowBytes(t, k);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* wr = w + r * rb;
    float* o = out + r * ldo;
    switch (t) {
      case WeightType::F32: std::memcpy(o, wr, static_cast<size_t>(4 * k)); break;
      case WeightType::Q2_K:
      case WeightType::Q3_K:
      case WeightType::Q4_K:
      case WeightType::Q5_K:
      case WeightType::Q6_K: DequantizeKRow(t, wr, k, o); break;
      case WeightType::F16:
      case WeightType::BF16:
        for (int64_t i = 0; i < k; ++i) {
          uint16_t h;
          std::memcpy(&h, wr + 2 * i, 2);
          o[i] = t == WeightType::F16 ? F16ToF32(h) : Bf16ToF32(h);
        }
        break;
      case WeightType::Q8_0: {
        const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(wr);
        for (int64_t i = 0; i < k / kQBlock; ++i) {
          const float d = F16ToF32(b[i].d);
          for (int j = 0; j < kQBlock; ++j) o[i * kQBlock + j] = d * b[i].qs[j];
        }
        break;
      }
      case WeightType::Q4_0: Dequantize32<BlockQ4_0>(wr, k, o); break;
      case WeightType::Q4_1: Dequantize32<BlockQ4_1>(wr, k, o); break;
      case WeightType::Q5_0: Dequantize32<BlockQ5_0>(wr, k, o); break;
      case WeightType::Q5_1: Dequantize32<BlockQ5_1>(wr, k, o); break;
      case WeightType::IQ4_NL: Dequantize32<BlockIQ4_NL>(wr, k, o); break;
      case WeightType::IQ4_XS: DequantizeIq4XsRow(wr, k, o); break;
    }
  }
}

}  // namespace redblue
