// Runtime CPU feature detection; SIMD kernels are chosen from this, never at compile time.
#pragma once
#include <string>

namespace redblue {
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
  bool amxTile = false, amxBf16 = false, amxInt8 = false;
  bool intel = false;  // vendor "GenuineIntel" (tuning choices measured per vendor)
};
const CpuFeatures& DetectCpu();
// Asks the kernel for permission to use AMX tile state (Linux >= 5.16); false if refused.
bool EnableAmx();
// Whether the kernel supports AMX tile state for this cpu (XCR0's tile bits), without asking
// for it: the grant enlarges every signal frame of the process, so it is asked only when used.
bool KernelSupportsAmx();
}  // namespace redblue
