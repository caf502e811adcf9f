// Scalar IEEE half and bfloat16 conversions, bit-identical to ggml's (round to nearest even),
// so quantized blocks written here are byte-for-byte what llama.cpp writes.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace redblue {

inline uint32_t F32Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float F32FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// From the FP16 library (Maratyszcza), as used by ggml.
inline uint16_t F32ToF16(float f) {
  const float scaleToInf = 0x1.0p+112f;
  const float scaleToZero = 0x1.0p-110f;
  float base = (std::fabs(f) * scaleToInf) * scaleToZero;
  const uint32_t w = F32Bits(f);
  const uint32_t shl1 = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1 & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = F32FromBits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = F32Bits(base);
  const uint32_t expBits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantBits = bits & 0x00000FFFu;
  return static_cast<uint16_t>((sign >> 16) | (shl1 > 0xFF000000u ? 0x7E00u : expBits + mantBits));
}

inline float F16ToF32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t twoW = w + w;
  const float normalized = F32FromBits((twoW >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = F32FromBits((twoW >> 17) | (126u << 23)) - 0.5f;
  const uint32_t result = sign | (twoW < (1u << 27) ? F32Bits(denormalized) : F32Bits(normalized));
  return F32FromBits(result);
}

// ggml_compute_fp32_to_bf16: round to nearest even, NaN kept quiet.
inline uint16_t F32ToBf16(float f) {
  uint32_t u = F32Bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}
inline float Bf16ToF32(uint16_t h) { return F32FromBits(static_cast<uint32_t>(h) << 16); }

}  // namespace redblue
