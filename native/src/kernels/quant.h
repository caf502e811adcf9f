// Quantized and half-precision weights in the exact ggml / GGUF layouts, and Y = X·Wᵀ on them.
// Plain C++ API for executors; the N-API layer only validates JS buffers and forwards here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/thread_pool.h"

namespace redblue {

enum class WeightType { F16, BF16, Q8_0, Q4_0 };

constexpr int kQBlock = 32;  // elements per Q8_0 / Q4_0 block (ggml QK8_0 = QK4_0 = 32)

#pragma pack(push, 1)
struct BlockQ8_0 {  // 34 bytes: fp16 scale, 32 signed values; x = d·q
  uint16_t d;
  int8_t qs[kQBlock];
};
struct BlockQ4_0 {  // 18 bytes: fp16 scale, nibbles; low = elements 0..15, high = 16..31; x = d·(q−8)
  uint16_t d;
  uint8_t qs[kQBlock / 2];
};
#pragma pack(pop)
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "ggml block sizes");

WeightType ParseWeightType(const std::string& s);  // "f16" | "bf16" | "q8_0" | "q4_0"
const char* WeightTypeName(WeightType t);
// Row length k must be a multiple of this (32 for Q formats, 1 otherwise).
int64_t BlockElements(WeightType t);
// Bytes of one row of k elements; throws UserError if k is not a multiple of the block size.
int64_t RowBytes(WeightType t, int64_t k);

// rows×k f32 (row stride ldx elements) → rows packed rows of RowBytes(t, k) bytes each.
// allowSimd = false forces the scalar Q8_0 quantizer (the SIMD one is bit-identical).
void QuantizeRows(WeightType t, const float* x, int64_t rows, int64_t k, int64_t ldx, uint8_t* out,
                  bool allowSimd = true);
void DequantizeRows(WeightType t, const uint8_t* w, int64_t rows, int64_t k, float* out, int64_t ldo);

// Instruction-set paths of the matmul kernels. Auto picks the best the cpu has. Avx512: F/BW/VL;
// Avx512Vnni adds vpdpbusd; Avx512Vbmi adds VBMI's byte permute (gathers Q4_0 nibbles).
enum class Isa { Auto, Scalar, Avx2, Avx512, Avx512Vnni, Avx512Vbmi };
Isa ParseIsa(const std::string& s);  // "auto" | "scalar" | "avx2" | "avx512" | "avx512vnni" | "avx512vbmi"
const char* IsaName(Isa i);
bool IsaSupported(Isa i);
Isa ResolveIsa(Isa requested);  // Auto → best; an unsupported explicit path throws UserError

// Y[m×n] = X[m×k]·Wᵀ where W is n rows of k elements of type `type`, rows `wStride` bytes
// apart (≥ RowBytes). X is f32 with row stride ldx, Y f32 with row stride ldy (overwritten).
// Q8_0/Q4_0: each row of X is quantized to Q8_0 blocks first (as llama.cpp does) and the dot
// products run on int8. F16/BF16: weights are widened to f32 and X stays f32.
struct QuantMatmulArgs {
  WeightType type = WeightType::Q4_0;
  const uint8_t* w = nullptr;
  int64_t n = 0, k = 0, wStride = 0;
  const float* x = nullptr;
  int64_t m = 0, ldx = 0;
  float* y = nullptr;
  int64_t ldy = 0;
  Isa isa = Isa::Auto;
};
void CheckQuantMatmulArgs(const QuantMatmulArgs& a);
void MatmulQ(const QuantMatmulArgs& a, ThreadPool& pool);

// Reads `bytes` at p on every worker's share (STREAM-like read bandwidth reference);
// returns a checksum so the reads cannot be optimised away.
uint64_t ReadBytes(const uint8_t* p, size_t bytes, ThreadPool& pool);

}  // namespace redblue
