// Element-wise sums of several sources, the arithmetic inside the collectives. Sources are
// summed in the order given (so every rank computing the same chunk gets identical bits).
#pragma once
#include <cstddef>
#include <cstdint>

namespace redblue::shm {

// out[i] = src[0][i] + src[1][i] + ... ; out may alias any source. When out2 is not null the
// sum is stored there too in the same pass (saves re-reading out to copy it).
void SumF32(float* out, float* out2, const float* const* src, int nsrc, size_t n);
// bf16 sources, accumulated in f32, rounded once to bf16 (round to nearest even).
void SumBf16(uint16_t* out, uint16_t* out2, const uint16_t* const* src, int nsrc, size_t n);

inline float Bf16ToF32(uint16_t v) {
  uint32_t u = static_cast<uint32_t>(v) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
inline uint16_t F32ToBf16(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Copy used by the collectives (large copies stream with wide stores).
void CopyBytes(void* dst, const void* src, size_t bytes);

}  // namespace redblue::shm
