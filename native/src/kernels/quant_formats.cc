// ggml block formats: quantize (bit-exact with ggml's *_reference functions) and dequantize.
#include <algorithm>
#include <cmath>

#include "core/napi_util.h"
#include "kernels/half.h"
#include "kernels/quant.h"

namespace redblue {

WeightType ParseWeightType(const std::string& s) {
  if (s == "f16") return WeightType::F16;
  if (s == "bf16") return WeightType::BF16;
  if (s == "q8_0") return WeightType::Q8_0;
  if (s == "q4_0") return WeightType::Q4_0;
  throw UserError("unknown weight type '" + s + "': use 'q4_0', 'q8_0', 'f16' or 'bf16'");
}

const char* WeightTypeName(WeightType t) {
  switch (t) {
    case WeightType::F16: return "f16";
    case WeightType::BF16: return "bf16";
    case WeightType::Q8_0: return "q8_0";
    case WeightType::Q4_0: return "q4_0";
  }
  return "?";
}

int64_t BlockElements(WeightType t) { return t == WeightType::Q8_0 || t == WeightType::Q4_0 ? kQBlock : 1; }

int64_t RowBytes(WeightType t, int64_t k) {
  if (k < 0) throw UserError("row length k must be non-negative");
  if (k % BlockElements(t) != 0)
    throw UserError(std::string(WeightTypeName(t)) + " rows must hold a multiple of 32 elements (one block = 32), got k=" +
                    std::to_string(k));
  switch (t) {
    case WeightType::F16:
    case WeightType::BF16: return 2 * k;
    case WeightType::Q8_0: return k / kQBlock * int64_t(sizeof(BlockQ8_0));
    case WeightType::Q4_0: return k / kQBlock * int64_t(sizeof(BlockQ4_0));
  }
  return 0;
}

namespace {

// quantize_row_q8_0_ref
void QuantizeQ8_0(const float* x, int64_t k, BlockQ8_0* y) {
  for (int64_t b = 0; b < k / kQBlock; ++b, x += kQBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = F32ToF16(d);
    for (int j = 0; j < kQBlock; ++j) y[b].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

// quantize_row_q4_0_ref: the scale is the signed value of largest magnitude over −8, so that
// value maps exactly to q = 0 and the 16 levels are used asymmetrically as ggml does.
void QuantizeQ4_0(const float* x, int64_t k, BlockQ4_0* y) {
  for (int64_t b = 0; b < k / kQBlock; ++b, x += kQBlock) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQBlock; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.0f;
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

}  // namespace

void QuantizeRows(WeightType t, const float* x, int64_t rows, int64_t k, int64_t ldx, uint8_t* out) {
  const int64_t rb = RowBytes(t, k);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    uint8_t* o = out + r * rb;
    switch (t) {
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
      case WeightType::Q8_0: QuantizeQ8_0(xr, k, reinterpret_cast<BlockQ8_0*>(o)); break;
      case WeightType::Q4_0: QuantizeQ4_0(xr, k, reinterpret_cast<BlockQ4_0*>(o)); break;
    }
  }
}

void DequantizeRows(WeightType t, const uint8_t* w, int64_t rows, int64_t k, float* out, int64_t ldo) {
  const int64_t rb = RowBytes(t, k);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* wr = w + r * rb;
    float* o = out + r * ldo;
    switch (t) {
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
      case WeightType::Q4_0: {
        const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(wr);
        for (int64_t i = 0; i < k / kQBlock; ++i) {
          const float d = F16ToF32(b[i].d);
          for (int j = 0; j < kQBlock / 2; ++j) {
            o[i * kQBlock + j] = d * ((b[i].qs[j] & 0x0F) - 8);
            o[i * kQBlock + j + 16] = d * ((b[i].qs[j] >> 4) - 8);
          }
        }
        break;
      }
    }
  }
}

}  // namespace redblue
