// ggml's K-type super-blocks (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and the Q8_K activations their dot products
// take: quantizers following ggml's reference algorithm (quantize_row_q*_K_ref, no importance
// matrix, the way llama-quantize writes files without one) and dequantizers giving ggml's
// values bit for bit (same float operations in the same order, no fused multiply-add).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/cpu_features.h"
#include "kernels/half.h"
#include "kernels/quant.h"
#include "kernels/quant_impl.h"

namespace redblue {

namespace {

// Affine fit x ≈ scale·L + min with L in 0..nmax and min ≤ 0, minimising Σ w·(fit − x)² (Σ w·|fit − x|
// with useMad, as Q2_K asks): the plain min/max grid first, then nstep+1 grids of nmax + rmin +
// rdelta·is levels over the range, each refined by weighted least squares (make_qkx2_quants).
// Returns the scale and writes −min to *negMin.
float FitAffine(int n, int nmax, const float* x, const float* w, uint8_t* L, float* negMin, float rmin, float rdelta,
                int nstep, bool useMad = false) {
  auto cost = [useMad](float diff) { return useMad ? std::fabs(diff) : diff * diff; };
  float lo = x[0], hi = x[0];
  float sumW = w[0], sumX = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sumW += w[i];
    sumX += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    std::fill(L, L + n, 0);
    *negMin = -lo;
    return 0.0f;
  }
  float iscale = nmax / (hi - lo);
  float scale = 1 / iscale;
  float bestErr = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(NearestInt(iscale * (x[i] - lo)), 0, nmax));
    bestErr += w[i] * cost(scale * L[i] + lo - x[i]);
  }
  uint8_t trial[kQBlock];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (hi - lo);
    float sumL = 0, sumL2 = 0, sumXL = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(NearestInt(iscale * (x[i] - lo)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      sumL += w[i] * l;
      sumL2 += w[i] * l * l;
      sumXL += w[i] * l * x[i];
    }
    const float det = sumW * sumL2 - sumL * sumL;
    if (!(det > 0)) continue;
    float s = (sumW * sumXL - sumX * sumL) / det;
    float m = (sumL2 * sumX - sumL * sumXL) / det;
    if (m > 0) {  // the offset may only lower values: refit the scale alone
      m = 0;
      s = sumXL / sumL2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) err += w[i] * cost(s * trial[i] + m - x[i]);
    if (err < bestErr) {
      std::copy(trial, trial + n, L);
      bestErr = err;
      scale = s;
      lo = m;
    }
  }
  *negMin = -lo;
  return scale;
}

// Symmetric fit x ≈ scale·(L − nmax), L − nmax in −nmax..nmax−1, weights x² (make_qx_quants
// with rmse_type = 1): the scale mapping the extreme to −nmax, then 18 nearby grids, keeping the
// least-squares scale of the best.
float FitSymmetric(int n, int nmax, const float* x, int8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < kGroupEps) {
    std::fill(L, L + n, 0);
    return 0.0f;
  }
  auto sums = [&](float iscale, float& sumLX, float& sumL2) {
    sumLX = sumL2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumLX += w * x[i] * l;
      sumL2 += w * l * l;
    }
  };
  auto levels = [&](float iscale) {
    for (int i = 0; i < n; ++i)
      L[i] = static_cast<int8_t>(nmax + std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
  };
  float iscale = -nmax / max;
  float sumLX, sumL2;
  levels(iscale);
  sums(iscale, sumLX, sumL2);
  float scale = sumL2 != 0 ? sumLX / sumL2 : 0.0f;
  float best = scale * sumLX;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sums(iscale, sumLX, sumL2);
    if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
      levels(iscale);
      scale = sumLX / sumL2;
      best = scale * sumLX;
    }
  }
  return scale;
}

// Q4_K and Q5_K share everything but the level count and the search grid: per sub-block an
// affine fit, the 8 scales and 8 mins quantized to 6 bits against the super-block's largest,
// then every value re-quantized against the stored (f16 × 6-bit) scale and min.
template <int kMax>
void FitAffineSuperBlock(const float* x, uint16_t& d, uint16_t& dmin, uint8_t* packed, uint8_t* L) {
  constexpr float kRmin = kMax == 15 ? -1.0f : -0.5f;
  constexpr int kSteps = kMax == 15 ? 20 : 15;
  float scales[8], mins[8], w[kQBlock];
  float maxScale = 0, maxMin = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xj = x + 32 * j;
    float sumX2 = 0;
    for (int l = 0; l < 32; ++l) sumX2 += xj[l] * xj[l];
    const float avX = std::sqrt(sumX2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = avX + std::fabs(xj[l]);
    scales[j] = FitAffine(32, kMax, xj, w, L + 32 * j, &mins[j], kRmin, 0.1f, kSteps);
    maxScale = std::max(maxScale, scales[j]);
    maxMin = std::max(maxMin, mins[j]);
  }
  const float invScale = maxScale > 0 ? 63.0f / maxScale : 0.0f;
  const float invMin = maxMin > 0 ? 63.0f / maxMin : 0.0f;
  std::memset(packed, 0, kKScaleBytes);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(NearestInt(invScale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(NearestInt(invMin * mins[j])));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = (ls & 0x0F) | ((lm & 0x0F) << 4);
      packed[j - 4] |= (ls >> 4) << 6;
      packed[j] |= (lm >> 4) << 6;
    }
  }
  d = F32ToF16(maxScale / 63.0f);
  dmin = F32ToF16(maxMin / 63.0f);
  uint8_t sc[8], m[8];
  UnpackScalesK4(packed, sc, m);
  for (int j = 0; j < 8; ++j) {
    const float dj = F16ToF32(d) * sc[j];
    if (dj == 0.0f) continue;  // as ggml: the fit's levels stay
    const float mj = F16ToF32(dmin) * m[j];
    for (int l = 0; l < 32; ++l) L[32 * j + l] = static_cast<uint8_t>(std::clamp(NearestInt((x[32 * j + l] + mj) / dj), 0, kMax));
  }
}

void QuantizeQ4_K(const float* x, int64_t k, BlockQ4_K* y) {
  uint8_t L[kQKBlock];
  for (int64_t b = 0; b < k / kQKBlock; ++b, x += kQKBlock) {
    FitAffineSuperBlock<15>(x, y[b].d, y[b].dmin, y[b].scales, L);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) y[b].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

void QuantizeQ5_K(const float* x, int64_t k, BlockQ5_K* y) {
  uint8_t L[kQKBlock];
  for (int64_t b = 0; b < k / kQKBlock; ++b, x += kQKBlock) {
    FitAffineSuperBlock<31>(x, y[b].d, y[b].dmin, y[b].scales, L);
    std::memset(y[b].qh, 0, sizeof(y[b].qh));
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        y[b].qs[32 * c + l] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
        y[b].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
  }
}

// quantize_row_q2_K_ref: per 16 an affine fit of 4 levels (weights |x|, absolute error), the 16
// scales and 16 mins stored as 4-bit multiples of the super-block's largest, then every value
// re-quantized against the stored scale and min.
void QuantizeQ2_K(const float* x, int64_t k, BlockQ2_K* y) {
  constexpr float kQ4Scale = 15.0f;
  for (int64_t b = 0; b < k / kQKBlock; ++b, x += kQKBlock) {
    BlockQ2_K& o = y[b];
    uint8_t L[kQKBlock];
    float scales[16], mins[16], w[16];
    float maxScale = 0, maxMin = 0;
    for (int g = 0; g < 16; ++g) {
      for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * g + l]);
      scales[g] = FitAffine(16, 3, x + 16 * g, w, L + 16 * g, &mins[g], -0.5f, 0.1f, 15, true);
      maxScale = std::max(maxScale, scales[g]);
      maxMin = std::max(maxMin, mins[g]);
    }
    std::memset(o.scales, 0, sizeof o.scales);
    o.d = F32ToF16(0.0f);
    o.dmin = F32ToF16(0.0f);
    if (maxScale > 0) {
      const float iscale = kQ4Scale / maxScale;
      for (int g = 0; g < 16; ++g) o.scales[g] = static_cast<uint8_t>(NearestInt(iscale * scales[g]));
      o.d = F32ToF16(maxScale / kQ4Scale);
    }
    if (maxMin > 0) {
      const float iscale = kQ4Scale / maxMin;
      for (int g = 0; g < 16; ++g) o.scales[g] |= static_cast<uint8_t>(NearestInt(iscale * mins[g]) << 4);
      o.dmin = F32ToF16(maxMin / kQ4Scale);
    }
    for (int g = 0; g < 16; ++g) {
      const float d = F16ToF32(o.d) * (o.scales[g] & 0xF);
      if (d == 0.0f) continue;  // as ggml: the fit's levels stay
      const float dm = F16ToF32(o.dmin) * (o.scales[g] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * g + l] = static_cast<uint8_t>(std::clamp(NearestInt((x[16 * g + l] + dm) / d), 0, 3));
    }
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const uint8_t* q = L + 128 * h + l;
        o.qs[32 * h + l] = static_cast<uint8_t>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
      }
  }
}

// make_q3_quants with do_rmse: levels −nmax..nmax−1 from the signed extreme, then up to 5 passes
// moving single levels where that raises the x²-weighted fit (Σ w·x·l)² / Σ w·l². Returns the
// scale; L gets the levels + nmax.
float FitQ3(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < kGroupEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.0f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        const int l = std::clamp(NearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (l != L[i]) {
          slx += w * x[i] * l;
          sl2 += w * l * l;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(l);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// quantize_row_q3_K_ref: per 16 values a 4-level-a-side fit, the 16 scales to 6 bits against the
// largest (signed), then every value re-quantized against its stored scale.
void QuantizeQ3_K(const float* x, int64_t k, BlockQ3_K* y) {
  int8_t L[kQKBlock];
  for (int64_t b = 0; b < k / kQKBlock; ++b, x += kQKBlock) {
    float scales[16], maxScale = 0, amax = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = FitQ3(16, 4, x + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > amax) {
        amax = std::fabs(scales[g]);
        maxScale = scales[g];
      }
    }
    BlockQ3_K& o = y[b];
    std::memset(o.scales, 0, sizeof(o.scales));
    if (maxScale != 0.0f) {
      const float iscale = -32.0f / maxScale;
      for (int g = 0; g < 16; ++g) {
        int l = std::clamp(NearestInt(iscale * scales[g]), -32, 31) + 32;
        if (g < 8) o.scales[g] = static_cast<uint8_t>(l & 0xF);
        else o.scales[g - 8] = static_cast<uint8_t>(o.scales[g - 8] | ((l & 0xF) << 4));
        l >>= 4;
        o.scales[g % 4 + 8] = static_cast<uint8_t>(o.scales[g % 4 + 8] | (l << (2 * (g / 4))));
      }
      o.d = F32ToF16(1 / iscale);
    } else {
      o.d = F32ToF16(0.0f);
    }
    int8_t sc[16];
    UnpackScalesQ3K(o.scales, sc);
    for (int g = 0; g < 16; ++g) {
      const float d = F16ToF32(o.d) * sc[g];
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * g + l] = static_cast<int8_t>(std::clamp(NearestInt(x[16 * g + l] / d), -4, 3) + 4);
    }
    std::memset(o.hmask, 0, sizeof(o.hmask));
    for (int e = 0; e < kQKBlock; ++e)
      if (L[e] > 3) {
        o.hmask[e % 32] = static_cast<uint8_t>(o.hmask[e % 32] | (1 << (e / 32)));
        L[e] = static_cast<int8_t>(L[e] - 4);
      }
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const int8_t* Lh = L + 128 * h;
        o.qs[32 * h + l] = static_cast<uint8_t>(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
      }
  }
}

void QuantizeQ6_K(const float* x, int64_t k, BlockQ6_K* y) {
  int8_t L[kQKBlock];
  for (int64_t b = 0; b < k / kQKBlock; ++b, x += kQKBlock) {
    float scales[16], maxScale = 0, maxAbs = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = FitSymmetric(16, 32, x + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > maxAbs) {
        maxAbs = std::fabs(scales[g]);
        maxScale = scales[g];
      }
    }
    BlockQ6_K& o = y[b];
    std::memset(&o, 0, sizeof(o));
    if (maxAbs < kGroupEps) continue;  // all zero: d = 0
    const float iscale = -128.0f / maxScale;
    o.d = F32ToF16(1 / iscale);
    for (int g = 0; g < 16; ++g) o.scales[g] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[g])));
    for (int g = 0; g < 16; ++g) {
      const float dg = F16ToF32(o.d) * o.scales[g];
      if (dg == 0.0f) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * g + l] = static_cast<int8_t>(std::clamp(NearestInt(x[16 * g + l] / dg), -32, 31) + 32);
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      uint8_t* ql = o.ql + 64 * h;
      uint8_t* qh = o.qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((Lh[l] & 0x0F) | ((Lh[l + 64] & 0x0F) << 4));
        ql[l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0x0F) | ((Lh[l + 96] & 0x0F) << 4));
        qh[l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                     ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

// Q4_K / Q5_K: x = d·sc·q − dmin·m, rounded as ggml rounds it (d·sc first, then ·q, then − m).
template <typename Block>
void DequantizeAffineK(const Block* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d), dmin = F16ToF32(b[i].dmin);
    uint8_t sc[8], m[8];
    UnpackScalesK4(b[i].scales, sc, m);
    for (int j = 0; j < 8; ++j) {
      const float dj = d * sc[j], mj = dmin * m[j];
      const int c = j / 2, shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        int q = (b[i].qs[32 * c + l] >> shift) & 0x0F;
        if constexpr (std::is_same_v<Block, BlockQ5_K>) q += ((b[i].qh[l] >> j) & 1) << 4;
        const float v = dj * q;
        y[256 * i + 32 * j + l] = v - mj;
      }
    }
  }
}

// dequantize_row_q3_K: d·(sc − 32) first, then · (q − 4).
// dequantize_row_q2_K: x = d·sc_g·q − dmin·m_g, g = element / 16.
void DequantizeQ2_K(const BlockQ2_K* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, y += kQKBlock) {
    const float d = F16ToF32(b[i].d), min = F16ToF32(b[i].dmin);
    for (int e = 0; e < kQKBlock; ++e) {
      const int g = e / 16, h = e / 128, t = (e % 128) / 32, l = e % 32;
      const float dl = d * (b[i].scales[g] & 0xF), ml = min * (b[i].scales[g] >> 4);
      y[e] = dl * static_cast<int8_t>((b[i].qs[32 * h + l] >> (2 * t)) & 3) - ml;
    }
  }
}

void DequantizeQ3_K(const BlockQ3_K* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d);
    int8_t sc[16];
    UnpackScalesQ3K(b[i].scales, sc);
    for (int e = 0; e < kQKBlock; ++e) {
      const int h = e / 128, t = (e % 128) / 32, l = e % 32;
      const int q = ((b[i].qs[32 * h + l] >> (2 * t)) & 3) - (((b[i].hmask[l] >> (e / 32)) & 1) ? 0 : 4);
      const float dl = d * sc[e / 16];
      y[256 * i + e] = dl * static_cast<float>(q);
    }
  }
}

void DequantizeQ6_K(const BlockQ6_K* b, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = F16ToF32(b[i].d);
    for (int e = 0; e < kQKBlock; ++e) {
      const int h = e / 128, t = (e % 128) / 32, l = e % 32;
      const uint8_t lowByte = b[i].ql[64 * h + l + 32 * (t & 1)];
      const int lo = t < 2 ? lowByte & 0x0F : lowByte >> 4;
      const int hi = (b[i].qh[32 * h + l] >> (2 * t)) & 3;
      const float dg = d * b[i].scales[e / 16];
      y[256 * i + e] = dg * static_cast<float>((lo | (hi << 4)) - 32);
    }
  }
}

}  // namespace

namespace {

void QuantizeRowQ8_KScalar(const float* x, int64_t k, BlockQ8_K* y) {
  for (int64_t b = 0; b < k / kQKBlock; ++b, x += kQKBlock) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQKBlock; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    if (amax == 0) {  // ggml leaves bsums unset here; zero is what they sum to
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;  // the extreme maps to −127 whatever its sign
    for (int j = 0; j < kQKBlock; ++j) y[b].qs[j] = static_cast<int8_t>(std::min(127, NearestInt(iscale * x[j])));
    for (int g = 0; g < kQKBlock / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[b].qs[16 * g + l];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1 / iscale;
  }
}

// The AVX2 twin, byte-identical: the same products iscale·x, rounded half to even by vroundps
// (what nearest_int's float trick does for |v| < 2²²); the values lie within ±127 by
// construction, so the saturating packs never clip and ggml's cap at 127 is implied.
__attribute__((target("avx2"))) void QuantizeRowQ8_KAvx2(const float* x, int64_t k, BlockQ8_K* y) {
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), ones8 = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < k / kQKBlock; ++b, x += kQKBlock) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < kQKBlock; j += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), absMask));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    int first = 0;  // the first value of largest magnitude gives the sign, as in the scalar loop
    while (std::fabs(x[first]) != amax) ++first;
    const float iscale = -127.0f / x[first];
    const __m256 vs = _mm256_set1_ps(iscale);
    for (int j = 0; j < kQKBlock; j += 32) {
      __m256i q[4];
      for (int t = 0; t < 4; ++t)
        q[t] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * t), vs),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      const __m256i packed = _mm256_permutevar8x32_epi32(
          _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3])), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + j), packed);
      // Σ of each 16: lanes 0-3 hold quarter sums of the first 16, lanes 4-7 of the next 16.
      __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, packed), _mm256_set1_epi16(1));
      s = _mm256_hadd_epi32(s, s);
      s = _mm256_hadd_epi32(s, s);
      y[b].bsums[j / 16] = static_cast<int16_t>(_mm256_extract_epi32(s, 0));
      y[b].bsums[j / 16 + 1] = static_cast<int16_t>(_mm256_extract_epi32(s, 4));
    }
    y[b].d = 1 / iscale;
  }
}

}  // namespace

Q8KRowFn Q8KQuantizer(bool allowSimd) {
  return allowSimd && DetectCpu().avx2 ? QuantizeRowQ8_KAvx2 : QuantizeRowQ8_KScalar;
}

void QuantizeRowQ8_K(const float* x, int64_t k, BlockQ8_K* y, bool allowSimd) { Q8KQuantizer(allowSimd)(x, k, y); }

void QuantizeKRow(WeightType t, const float* x, int64_t k, uint8_t* out) {
  switch (t) {
    case WeightType::Q2_K: QuantizeQ2_K(x, k, reinterpret_cast<BlockQ2_K*>(out)); break;
    case WeightType::Q3_K: QuantizeQ3_K(x, k, reinterpret_cast<BlockQ3_K*>(out)); break;
    case WeightType::Q4_K: QuantizeQ4_K(x, k, reinterpret_cast<BlockQ4_K*>(out)); break;
    case WeightType::Q5_K: QuantizeQ5_K(x, k, reinterpret_cast<BlockQ5_K*>(out)); break;
    case WeightType::Q6_K: QuantizeQ6_K(x, k, reinterpret_cast<BlockQ6_K*>(out)); break;
    default: break;
  }
}

void DequantizeKRow(WeightType t, const uint8_t* w, int64_t k, float* out) {
  const int64_t nb = k / kQKBlock;
  switch (t) {
    case WeightType::Q2_K: DequantizeQ2_K(reinterpret_cast<const BlockQ2_K*>(w), nb, out); break;
    case WeightType::Q3_K: DequantizeQ3_K(reinterpret_cast<const BlockQ3_K*>(w), nb, out); break;
    case WeightType::Q4_K: DequantizeAffineK(reinterpret_cast<const BlockQ4_K*>(w), nb, out); break;
    case WeightType::Q5_K: DequantizeAffineK(reinterpret_cast<const BlockQ5_K*>(w), nb, out); break;
    case WeightType::Q6_K: DequantizeQ6_K(reinterpret_cast<const BlockQ6_K*>(w), nb, out); break;
    default: break;
  }
}

}  // namespace redblue
