// Counter-based random numbers: the value at (seed, stream, index) is the same whichever rank
// computes it, so weights and inputs made on different executors agree without any exchange,
// and a plan's split never changes the data.
#pragma once
#include <cstdint>

namespace redblue {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1), 24 bits of precision.
inline float CounterUniform(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t h = SplitMix64(seed ^ SplitMix64(stream * 0x632be59bd9b4e019ull + index));
  return static_cast<float>(static_cast<int64_t>(h >> 40) - (1ll << 23)) * (1.0f / (1 << 23));
}

}  // namespace redblue
