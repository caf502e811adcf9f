// Scalar reference kernels: the semantics every SIMD path must reproduce (tests compare them).
#include <cstring>

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

void Q4Scalar(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  for (int64_t r = r0; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const BlockQ4_0* w = reinterpret_cast<const BlockQ4_0*>(a.w + j * a.wStride);
      float sum = 0.0f;
      for (int64_t b = 0; b < act.nb; ++b) {
        const int8_t* x = act.qs(r) + b * kQBlock;
        int32_t s = 0;
        for (int i = 0; i < kQBlock / 2; ++i)
          s += ((w[b].qs[i] & 0x0F) - 8) * x[i] + ((w[b].qs[i] >> 4) - 8) * x[i + 16];
        sum += F16ToF32(w[b].d) * act.d(r)[b] * static_cast<float>(s);
      }
      a.y[r * a.ldy + j] = sum;
    }
}

template <bool kBf16>
void HalfScalar(const QuantMatmulArgs& a, const ActRows&, int64_t r0, int64_t rows, int64_t j0, int64_t j1) {
  for (int64_t r = r0; r < r0 + rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const uint8_t* w = a.w + j * a.wStride;
      const float* x = a.x + r * a.ldx;
      float sum = 0.0f;
      for (int64_t i = 0; i < a.k; ++i) {
        uint16_t h;
        std::memcpy(&h, w + 2 * i, 2);
        sum += (kBf16 ? Bf16ToF32(h) : F16ToF32(h)) * x[i];
      }
      a.y[r * a.ldy + j] = sum;
    }
}

}  // namespace

KernelSet ScalarKernels() {
  KernelSet s;
  s.q8 = Q8Scalar;
  s.q4 = Q4Scalar;
  s.f16 = HalfScalar<false>;
  s.bf16 = HalfScalar<true>;
  return s;
}

}  // namespace redblue
