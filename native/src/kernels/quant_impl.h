// Internal interface between the matmul driver (quant_matmul.cc) and the per-ISA kernels.
#pragma once
#include <cstdint>

#include "kernels/quant.h"

namespace redblue {

// Rows of X quantized to Q8_0-like blocks (scales kept as the f16-rounded value in f32, exactly
// what dequantize(quantize_q8_0(X)) gives). Per row: k int8 values (padded to 64 bytes), then
// nb scales d, then nb Q4_0 corrections c = −8·d·Σq (used by kernels that keep Q4_0 nibbles
// unsigned: Σ d_w·d_x·(q_w−8)·q_x = d_w·(d_x·Σ q_w·q_x + c)).
struct ActRows {
  const uint8_t* base = nullptr;
  int64_t stride = 0, k = 0, nb = 0, qsBytes = 0;
  const int8_t* qs(int64_t r) const { return reinterpret_cast<const int8_t*>(base + r * stride); }
  const float* d(int64_t r) const { return reinterpret_cast<const float*>(base + r * stride + qsBytes); }
  const float* c(int64_t r) const { return d(r) + nb; }
};

// Byte order of the int8 values: natural, or per quad of blocks the order the AVX-512 Q4_0
// kernels unpack nibbles in: [b0..b3 values 0..15][b0..b3 values 16..31] (16 bytes each); the
// last nb % 4 blocks are always natural.
enum class ActLayout { Natural, Q4Quads };

// Y[r0..r0+rows) × [j0, j1) for one weight type on one ISA. F16/BF16 kernels read X directly.
using QKernel = void (*)(const QuantMatmulArgs& a, const ActRows& act, int64_t r0, int64_t rows, int64_t j0,
                         int64_t j1);

struct KernelSet {
  QKernel q8 = nullptr, q4 = nullptr, f16 = nullptr, bf16 = nullptr;
  ActLayout q4Layout = ActLayout::Natural;
};
KernelSet ScalarKernels();
KernelSet Avx2Kernels();
KernelSet Avx512Kernels(bool vnni, bool vbmi);  // vbmi implies vnni

// Quantizes 32 values to Q8_0 as quantize_row_q8_0_ref does (q = roundf(x·(1/d)), d = amax/127),
// writing values 0..15 to lo and 16..31 to hi; returns the unrounded d and Σq. The AVX-512
// version is bit-identical (tests compare them).
struct Q8Block {
  float d;
  int32_t sum;
};
using Q8BlockFn = Q8Block (*)(const float* x, int8_t* lo, int8_t* hi);
Q8BlockFn Q8BlockQuantizer(bool allowSimd);

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
