// Scalar reference kernels: the semantics every SIMD path must reproduce (tests compare them).
#include <cstring>
#include <type_traits>

#include "kernels/half.h"
#include "kernels/quant_impl.h"

namespace redblue {
namespace {

void Q8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  for (int64_t r = r0; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(a.w + j * a.wStride);
      float sum = 0.0f;
      for (int64_t b = 0; b < act.nb; ++b)
        sum += F16ToF32(w[b].d) * act.d(r)[b] * static_cast<float>(DotQ8Block(w[b].qs, act.qs(r) + b * kQBlock));
      a.y[r * a.ldy + j] = sum;
    }
}

// Q4_0 / Q4_1 / Q5_0 / Q5_1 / IQ4_NL as ggml_vec_dot_q*_q8_*: exact integer sums per block, then
// d_w·d_x·Σ(q−8)·x (Q4_0), d_w·d_x·Σ(q−16)·x (Q5_0), d_w·d_x·Σ kIq4Values[q]·x (IQ4_NL), or
// d_w·d_x·Σq·x + m_w·s_x for the _1 types (s_x in ActRows::c).
template <typename Block>
void Nibble32Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  using T = Nibble32Traits<Block>;
  for (int64_t r = r0; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const Block* w = reinterpret_cast<const Block*>(a.w + j * a.wStride);
      float sum = 0.0f;
      for (int64_t b = 0; b < act.nb; ++b) {
        const int8_t* x = act.qs(r) + b * kQBlock;
        uint32_t qh = 0;
        if constexpr (T::kFifthBit) std::memcpy(&qh, w[b].qh, 4);
        int32_t s = 0;
        for (int i = 0; i < kQBlock / 2; ++i) {
          const int q0 = T::Value((w[b].qs[i] & 0x0F) | (((qh >> i) & 1) << 4));
          const int q1 = T::Value((w[b].qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4));
          s += q0 * x[i] + q1 * x[i + 16];
        }
        sum += F16ToF32(w[b].d) * act.d(r)[b] * static_cast<float>(s);
        if constexpr (T::kAffine) sum += F16ToF32(w[b].m) * act.c(r)[b];
      }
      a.y[r * a.ldy + j] = sum;
    }
}

template <int kKind>
float WeightAt(const uint8_t* w, int64_t i) {
  if (kKind == kF32) {
    float f;
    std::memcpy(&f, w + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, w + 2 * i, 2);
  return kKind == kBf16 ? Bf16ToF32(h) : F16ToF32(h);
}

template <int kKind>
void HalfScalar(const QuantMatmulArgs& a, const ActRows&, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  for (int64_t r = r0; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const uint8_t* w = a.w + j * a.wStride;
      const float* x = a.x + r * a.ldx;
      float sum = 0.0f;
      for (int64_t i = 0; i < a.k; ++i) sum += WeightAt<kKind>(w, i) * x[i];
      a.y[r * a.ldy + j] = sum;
    }
}

// The loop every ggml_vec_dot_*_q8_K shares: per super-block exact integer sums (the sub-block
// scales applied as integers), then one float multiply by d_w·d_x; the affine types (Q2_K, Q4_K,
// Q5_K) subtract dmin_w·d_x·Σ m_g·(Σ q_x over sub-block g), taken from the activation's bsums.
struct SuperBlockSums {
  int32_t isum = 0, imin = 0;
};
template <typename Block>
constexpr bool kHasMins =
    std::is_same_v<Block, BlockQ2_K> || std::is_same_v<Block, BlockQ4_K> || std::is_same_v<Block, BlockQ5_K>;
template <typename Block, typename BlockDot>
void SuperBlockScalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1,
                      BlockDot dot) {
  const int64_t nb = a.k / kQKBlock;
  for (int64_t r = r0; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const Block* w = reinterpret_cast<const Block*>(a.w + j * a.wStride);
      const BlockQ8_K* x = act.q8k(r);
      float sum = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const SuperBlockSums s = dot(w[b], x[b]);
        sum += F16ToF32(w[b].d) * x[b].d * static_cast<float>(s.isum);
        if constexpr (kHasMins<Block>) sum -= F16ToF32(w[b].dmin) * x[b].d * static_cast<float>(s.imin);
      }
      a.y[r * a.ldy + j] = sum;
    }
}

// Q4_K / Q5_K: 8 sub-blocks of 32, 6-bit scales and mins.
template <typename Block>
void AffineKScalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockScalar<Block>(a, act, r0, rows, j0, j1, [](const Block& w, const BlockQ8_K& x) {
    uint8_t sc[8], m[8];
    UnpackScalesK4(w.scales, sc, m);
    SuperBlockSums out;
    for (int s = 0; s < 8; ++s) {
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) {
        int q = (w.qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0x0F;
        if constexpr (std::is_same_v<Block, BlockQ5_K>) q |= ((w.qh[l] >> s) & 1) << 4;
        dot += q * x.qs[32 * s + l];
      }
      out.isum += sc[s] * dot;
      out.imin += m[s] * (x.bsums[2 * s] + x.bsums[2 * s + 1]);
    }
    return out;
  });
}

// Q8_0 and the nibble types in the rows8 layout: Q8Scalar's and Nibble32Scalar's sums and float
// steps, read from the groups; dot(block, row, x) is row's exact integer sum over one block.
template <typename BlockX8, typename BlockDot>
void Rows8Scalar32(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1,
                   BlockDot dot) {
  constexpr bool kAffine = std::is_same_v<BlockX8, BlockQ4_1x8> || std::is_same_v<BlockX8, BlockQ5_1x8>;
  for (int64_t r = r0; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const int row = static_cast<int>(j % 8);
      const BlockX8* w = reinterpret_cast<const BlockX8*>(a.w + (j - row) * a.wStride);
      float sum = 0.0f;
      for (int64_t b = 0; b < act.nb; ++b) {
        sum += F16ToF32(w[b].d[row]) * act.d(r)[b] * static_cast<float>(dot(w[b], row, act.qs(r) + b * kQBlock));
        if constexpr (kAffine) sum += F16ToF32(w[b].m[row]) * act.c(r)[b];
      }
      a.y[r * a.ldy + j] = sum;
    }
}
void Q8Rows8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  Rows8Scalar32<BlockQ8_0x8>(a, act, r0, rows, j0, j1, [](const BlockQ8_0x8& w, int row, const int8_t* x) {
    int32_t s = 0;
    for (int i = 0; i < kQBlock; ++i) s += int32_t(w.qs[32 * (i / 4) + 4 * row + i % 4]) * x[i];
    return s;
  });
}
// The nibble types: levels (with Q5's fifth bits) less the _0 types' offset.
template <typename Block, typename BlockX8>
void Nibble32Rows8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                         int64_t j1) {
  using T = Nibble32Traits<Block>;
  Rows8Scalar32<BlockX8>(a, act, r0, rows, j0, j1, [](const BlockX8& w, int row, const int8_t* x) {
    int32_t s = 0;
    for (int i = 0; i < kQBlock / 2; ++i) {
      const uint8_t byte = w.qs[32 * (i / 4) + 4 * row + i % 4];
      int lo = byte & 0x0F, hi = byte >> 4;
      if constexpr (T::kFifthBit) {
        const uint8_t fifth = w.qh[4 * row + i % 4];
        lo |= ((fifth >> (i / 4)) & 1) << 4;
        hi |= ((fifth >> (4 + i / 4)) & 1) << 4;
      }
      s += T::Value(lo) * x[i] + T::Value(hi) * x[i + 16];
    }
    return s;
  });
}

// The K types in the rows8 layout: SuperBlockScalar's float steps, read from the groups;
// dot(group block, row, x) is row's exact integer sums over one super-block.
template <typename BlockX8, typename BlockDot>
void SuperBlockRows8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                           int64_t j1, BlockDot dot) {
  constexpr bool kMins = std::is_same_v<BlockX8, BlockQ4_Kx8> || std::is_same_v<BlockX8, BlockQ5_Kx8> ||
                         std::is_same_v<BlockX8, BlockQ2_Kx8>;
  const int64_t nb = a.k / kQKBlock;
  for (int64_t r = r0; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const int row = static_cast<int>(j % 8);
      const BlockX8* w = reinterpret_cast<const BlockX8*>(a.w + (j - row) * a.wStride);
      const BlockQ8_K* x = act.q8k(r);
      float sum = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const SuperBlockSums s = dot(w[b], row, x[b]);
        sum += F16ToF32(w[b].d[row]) * x[b].d * static_cast<float>(s.isum);
        if constexpr (kMins) sum -= F16ToF32(w[b].dmin[row]) * x[b].d * static_cast<float>(s.imin);
      }
      a.y[r * a.ldy + j] = sum;
    }
}

// Q4_K / Q5_K in the rows8 layout: AffineKScalar's sums, so each row comes out bit for bit as
// AffineKScalar gives it.
template <typename BlockX8>
void AffineKRows8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockRows8Scalar<BlockX8>(a, act, r0, rows, j0, j1, [](const BlockX8& w, int row, const BlockQ8_K& x) {
    SuperBlockSums out;
    for (int s = 0; s < 8; ++s) {
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) {
        const int at = 32 * (l / 4) + 4 * row + l % 4;
        int q = (w.qs[256 * (s / 2) + at] >> (4 * (s % 2))) & 0x0F;
        if constexpr (std::is_same_v<BlockX8, BlockQ5_Kx8>) q |= ((w.qh[32 * s + 4 * row + l % 4] >> (l / 4)) & 1) << 4;
        dot += q * x.qs[32 * s + l];
      }
      out.isum += Rows8Six(w.scales, row, s) * dot;
      out.imin += Rows8Six(w.mins, row, s) * (x.bsums[2 * s] + x.bsums[2 * s + 1]);
    }
    return out;
  });
}

// Q6_K in the rows8 layout: Q6KScalar's sums.
void Q6KRows8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockRows8Scalar<BlockQ6_Kx8>(a, act, r0, rows, j0, j1, [](const BlockQ6_Kx8& w, int row, const BlockQ8_K& x) {
    SuperBlockSums out;
    for (int g = 0; g < 16; ++g) {
      int32_t dot = 0;
      for (int e = 16 * g; e < 16 * g + 16; ++e) {
        const int c = e / 64, h = (e / 32) % 2, v = (e / 4) % 8, t = e % 4;
        const int lo = (w.ql[32 * (8 * c + v) + 4 * row + t] >> (4 * h)) & 0xF;
        const int hi = (w.qh[32 * g + 4 * row + t] >> (2 * (v % 4))) & 3;
        dot += ((lo | hi << 4) - 32) * x.qs[e];
      }
      out.isum += w.scales[32 * (g / 4) + Rows8SixIndex(row, g)] * dot;
    }
    return out;
  });
}

// Q3_K in the rows8 layout: Q3KScalar's sums.
void Q3KRows8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockRows8Scalar<BlockQ3_Kx8>(a, act, r0, rows, j0, j1, [](const BlockQ3_Kx8& w, int row, const BlockQ8_K& x) {
    SuperBlockSums out;
    for (int g = 0; g < 16; ++g) {
      int32_t dot = 0;
      for (int e = 16 * g; e < 16 * g + 16; ++e) {
        const int v = (e % 16) / 4, t = e % 4;
        const int lo = (w.qs[32 * g + 4 * row + t] >> (2 * v)) & 3;
        const int hi = (w.hm[32 * (g / 2) + 4 * row + t] >> Q3KRows8HighBit(g, v)) & 1;
        dot += (lo - (hi ? 0 : 4)) * x.qs[e];
      }
      out.isum += (Rows8Six(w.scales + 48 * (g / 8), row, g % 8) - 32) * dot;
    }
    return out;
  });
}

// Q2_K in the rows8 layout: Q2KScalar's sums.
void Q2KRows8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockRows8Scalar<BlockQ2_Kx8>(a, act, r0, rows, j0, j1, [](const BlockQ2_Kx8& w, int row, const BlockQ8_K& x) {
    SuperBlockSums out;
    for (int g = 0; g < 16; ++g) {
      int32_t dot = 0;
      for (int e = 16 * g; e < 16 * g + 16; ++e) dot += ((w.qs[32 * g + 4 * row + e % 4] >> (2 * ((e % 16) / 4))) & 3) * x.qs[e];
      const uint8_t sm = w.scales[32 * (g / 4) + Rows8SixIndex(row, g)];
      out.isum += (sm & 0xF) * dot;
      out.imin += (sm >> 4) * x.bsums[g];
    }
    return out;
  });
}

// IQ4_XS in the rows8 layout: Iq4XsScalar's sums. Element e of sub-block s sits in natural byte
// 16·(s % 2) + e % 16 of pair s / 2 (the high nibble from e = 16 on).
void Iq4XsRows8Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                      int64_t j1) {
  SuperBlockRows8Scalar<BlockIQ4_XSx8>(a, act, r0, rows, j0, j1, [](const BlockIQ4_XSx8& w, int row, const BlockQ8_K& x) {
    SuperBlockSums out;
    for (int s = 0; s < 8; ++s) {
      int32_t dot = 0;
      for (int e = 0; e < 32; ++e) {
        const int byte = 16 * (s % 2) + e % 16;
        const uint8_t q = w.qs[256 * (s / 2) + 32 * (byte / 4) + 4 * row + byte % 4];
        dot += kIq4Values[(q >> (4 * (e / 16))) & 0xF] * x.qs[32 * s + e];
      }
      out.isum += (Rows8Six(w.scales, row, s) - 32) * dot;
    }
    return out;
  });
}

// Q2_K: 16 sub-blocks of 16, 4-bit scales (low nibble) and mins (high).
void Q2KScalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockScalar<BlockQ2_K>(a, act, r0, rows, j0, j1, [](const BlockQ2_K& w, const BlockQ8_K& x) {
    SuperBlockSums out;
    for (int g = 0; g < 16; ++g) {
      int32_t dot = 0;
      for (int e = 16 * g; e < 16 * g + 16; ++e) {
        const int h = e / 128, t = (e % 128) / 32, l = e % 32;
        dot += ((w.qs[32 * h + l] >> (2 * t)) & 3) * x.qs[e];
      }
      out.isum += (w.scales[g] & 0xF) * dot;
      out.imin += (w.scales[g] >> 4) * x.bsums[g];
    }
    return out;
  });
}

// Q3_K: Σ_g (sc_g − 32)·Σ (q − 4)·x over each 16.
void Q3KScalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockScalar<BlockQ3_K>(a, act, r0, rows, j0, j1, [](const BlockQ3_K& w, const BlockQ8_K& x) {
    int8_t sc[16];
    UnpackScalesQ3K(w.scales, sc);
    int32_t isum = 0;
    for (int g = 0; g < 16; ++g) {
      int32_t dot = 0;
      for (int e = 16 * g; e < 16 * g + 16; ++e) {
        const int h = e / 128, t = (e % 128) / 32, l = e % 32;
        const int q = ((w.qs[32 * h + l] >> (2 * t)) & 3) - (((w.hmask[l] >> (e / 32)) & 1) ? 0 : 4);
        dot += q * x.qs[e];
      }
      isum += sc[g] * dot;
    }
    return SuperBlockSums{isum};
  });
}

// Q6_K: Σ_g scales_g·Σ (q − 32)·x over each 16.
void Q6KScalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockScalar<BlockQ6_K>(a, act, r0, rows, j0, j1, [](const BlockQ6_K& w, const BlockQ8_K& x) {
    int32_t isum = 0;
    for (int g = 0; g < 16; ++g) {
      int32_t dot = 0;
      for (int e = 16 * g; e < 16 * g + 16; ++e) {
        const int h = e / 128, t = (e % 128) / 32, l = e % 32;
        const uint8_t lowByte = w.ql[64 * h + l + 32 * (t & 1)];
        const int lo = t < 2 ? lowByte & 0x0F : lowByte >> 4;
        const int hi = (w.qh[32 * h + l] >> (2 * t)) & 3;
        dot += ((lo | (hi << 4)) - 32) * x.qs[e];
      }
      isum += w.scales[g] * dot;
    }
    return SuperBlockSums{isum};
  });
}

// IQ4_XS (as ggml's AVX2 dot, which sums in integers where its scalar one sums per 32 in floats):
// Σ_j (ls_j − 32)·Σ kIq4Values[q]·x over each 32.
void Iq4XsScalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  SuperBlockScalar<BlockIQ4_XS>(a, act, r0, rows, j0, j1, [](const BlockIQ4_XS& w, const BlockQ8_K& x) {
    int8_t sc[8];
    UnpackScalesIq4Xs(w, sc);
    int32_t isum = 0;
    for (int s = 0; s < 8; ++s) {
      const uint8_t* qs = w.qs + 16 * s;
      const int8_t* q8 = x.qs + 32 * s;
      int32_t dot = 0;
      for (int e = 0; e < 16; ++e) dot += kIq4Values[qs[e] & 0xF] * q8[e] + kIq4Values[qs[e] >> 4] * q8[e + 16];
      isum += sc[s] * dot;
    }
    return SuperBlockSums{isum};
  });
}

}  // namespace

KernelSet ScalarKernels() {
  KernelSet s;
  s.q8 = Q8Scalar;
  s.q4 = Nibble32Scalar<BlockQ4_0>;
  s.f16 = HalfScalar<kF16>;
  s.bf16 = HalfScalar<kBf16>;
  s.f32 = HalfScalar<kF32>;
  s.q2k = Q2KScalar;
  s.q3k = Q3KScalar;
  s.q4k = AffineKScalar<BlockQ4_K>;
  s.q5k = AffineKScalar<BlockQ5_K>;
  s.q6k = Q6KScalar;
  s.q41 = Nibble32Scalar<BlockQ4_1>;
  s.q50 = Nibble32Scalar<BlockQ5_0>;
  s.q51 = Nibble32Scalar<BlockQ5_1>;
  s.iq4nl = Nibble32Scalar<BlockIQ4_NL>;
  s.iq4xs = Iq4XsScalar;
  s.q8Rows8 = Q8Rows8Scalar;
  s.q4Rows8 = Nibble32Rows8Scalar<BlockQ4_0, BlockQ4_0x8>;
  s.q50Rows8 = Nibble32Rows8Scalar<BlockQ5_0, BlockQ5_0x8>;
  s.q41Rows8 = Nibble32Rows8Scalar<BlockQ4_1, BlockQ4_1x8>;
  s.q51Rows8 = Nibble32Rows8Scalar<BlockQ5_1, BlockQ5_1x8>;
  s.iq4nlRows8 = Nibble32Rows8Scalar<BlockIQ4_NL, BlockIQ4_NLx8>;
  s.q4kRows8 = AffineKRows8Scalar<BlockQ4_Kx8>;
  s.q5kRows8 = AffineKRows8Scalar<BlockQ5_Kx8>;
  s.q6kRows8 = Q6KRows8Scalar;
  s.q3kRows8 = Q3KRows8Scalar;
  s.q2kRows8 = Q2KRows8Scalar;
  s.iq4xsRows8 = Iq4XsRows8Scalar;
  return s;
}

}  // namespace redblue
