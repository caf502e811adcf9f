// IQ4_NL and IQ4_XS: 4-bit indices into ggml's fixed non-linear table kIq4Values. The quantizer
// follows ggml's quantize_row_iq4_nl_impl without an importance matrix (what llama-quantize
// writes without one): per 32 values a weighted least-squares scale, tried over 15 starting
// grids; IQ4_XS then stores those scales as 6-bit multiples of one super-block scale and picks
// the indices again. Dequantizing gives ggml's values bit for bit (same float operations).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/half.h"
#include "kernels/quant.h"
#include "kernels/quant_impl.h"

namespace redblue {

namespace {

constexpr int kTries = 7;  // ggml's ntry: grids (itry + values[0]) / max for itry in −7..7

// kIq4Values as floats, made at compile time: converting an int8 in the search cost a third of it.
struct Levels {
  float v[16];
};
constexpr Levels MakeLevels() {
  Levels l{};
  for (int i = 0; i < 16; ++i) l.v[i] = kIq4Values[i];
  return l;
}
constexpr Levels kLevelsF = MakeLevels();
constexpr const float* kLevels = kLevelsF.v;

// The index of the table value nearest x, as ggml's best_index_int8 picks it: its binary search
// finds v[k] ≤ x < v[k+1] and takes k + 1 unless x − v[k] < v[k+1] − x. That test fails for every
// pair (i, i+1) below k (x is past both values), holds for every pair above (x is below both), and
// pair k decides as ggml's does: the index is the number of pairs where it fails, and since those
// come first, four halving steps count them, with no branch to mispredict. The searches are most
// of the quantizer's time.
int BestIndex(float x) {
  int pos = 0;
  for (int step = 8; step > 0; step /= 2) {
    const int i = pos + step - 1;  // pair (i, i + 1); i ≤ 14
    pos += step * !(x - kLevels[i] < kLevels[i + 1] - x);
  }
  return pos;
}

// The best scale for 32 values x (weights x²), writing their indices to L; 0 for an all-zero group.
float FitBlock(const float* x, uint8_t* L) {
  float weight[kQBlock];
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQBlock; ++j) {
    weight[j] = x[j] * x[j];
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (amax < kGroupEps) return 0.0f;
  const float* wt = weight;
  auto fit = [&](float id, uint8_t* out, float& sumqx, float& sumq2) {
    sumqx = sumq2 = 0.0f;
    for (int j = 0; j < kQBlock; ++j) {
      const int l = BestIndex(id * x[j]);
      if (out) out[j] = static_cast<uint8_t>(l);
      const float q = kLevels[l], w = wt[j];
      sumqx += w * q * x[j];
      sumq2 += w * q * q;
    }
  };
  float sumqx, sumq2;
  fit(1.0f / (-max / kIq4Values[0]), L, sumqx, sumq2);
  float d = sumqx / sumq2, best = d * sumqx;
  for (int itry = -kTries; itry <= kTries; ++itry) {
    fit((itry + kIq4Values[0]) / max, nullptr, sumqx, sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// Two indices per byte: elements 0..15 low nibbles, 16..31 high.
void PackIndices(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQBlock / 2; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

void QuantizeIq4Nl(const float* x, int64_t k, BlockIQ4_NL* y) {
  for (int64_t b = 0; b < k / kQBlock; ++b, x += kQBlock) {
    uint8_t L[kQBlock];
    const float d = FitBlock(x, L);
    y[b].d = F32ToF16(d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQBlock; ++j) L[j] = static_cast<uint8_t>(BestIndex(id * x[j]));
    PackIndices(L, y[b].qs);
  }
}

void QuantizeIq4Xs(const float* x, int64_t k, BlockIQ4_XS* y) {
  for (int64_t b = 0; b < k / kQKBlock; ++b, x += kQKBlock) {
    BlockIQ4_XS& o = y[b];
    std::memset(&o, 0, sizeof o);
    float scales[8];
    uint8_t L[kQKBlock];
    float maxScale = 0.0f, amaxScale = 0.0f;
    for (int j = 0; j < 8; ++j) {
      scales[j] = FitBlock(x + 32 * j, L + 32 * j);
      if (std::fabs(scales[j]) > amaxScale) {
        amaxScale = std::fabs(scales[j]);
        maxScale = scales[j];
      }
    }
    const float d = -maxScale / 32;
    o.d = F32ToF16(d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 8; ++j) {
      const int l = std::clamp(NearestInt(id * scales[j]), -32, 31);
      const float dl = d * l;
      const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
      for (int e = 0; e < 32; ++e) L[32 * j + e] = static_cast<uint8_t>(BestIndex(idl * x[32 * j + e]));
      const int ls = l + 32;
      o.scales_l[j / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (j % 2)));
      o.scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * j));
    }
    for (int j = 0; j < 8; ++j) PackIndices(L + 32 * j, o.qs + 16 * j);
  }
}

}  // namespace

void QuantizeIq4Row(WeightType t, const float* x, int64_t k, uint8_t* out) {
  if (t == WeightType::IQ4_NL) QuantizeIq4Nl(x, k, reinterpret_cast<BlockIQ4_NL*>(out));
  else QuantizeIq4Xs(x, k, reinterpret_cast<BlockIQ4_XS*>(out));
}

void DequantizeIq4XsRow(const uint8_t* w, int64_t k, float* out) {
  const BlockIQ4_XS* b = reinterpret_cast<const BlockIQ4_XS*>(w);
  for (int64_t i = 0; i < k / kQKBlock; ++i) {
    const float d = F16ToF32(b[i].d);
    int8_t sc[8];
    UnpackScalesIq4Xs(b[i], sc);
    for (int j = 0; j < 8; ++j) {
      const float dl = d * sc[j];
      const uint8_t* qs = b[i].qs + 16 * j;
      float* o = out + i * kQKBlock + 32 * j;
      for (int e = 0; e < 16; ++e) {
        o[e] = dl * kIq4Values[qs[e] & 0xF];
        o[e + 16] = dl * kIq4Values[qs[e] >> 4];
      }
    }
  }
}

}  // namespace redblue
