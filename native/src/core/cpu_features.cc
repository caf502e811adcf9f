#include "core/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace redblue {
namespace {
CpuFeatures Detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid_count(0, 0, &a, &b, &c, &d)) return f;
  f.intel = b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;  // "Genu" "ineI" "ntel"
  if (!__get_cpuid_count(1, 0, &a, &b, &c, &d)) return f;
  bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
  // XTILECFG and XTILEDATA (bits 17, 18): Linux sets them in XCR0 when it supports tile state
  // (>= 5.16; a process still asks for it, EnableAmx, before its first tile instruction).
  bool tiles = (xcr0 & 0x60000) == 0x60000;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = ymm && (b & (1u << 5));
  f.avx512f = zmm && (b & (1u << 16));
  f.avx512bw = zmm && (b & (1u << 30));
  f.avx512vl = zmm && (b & (1u << 31));
  f.avx512vnni = zmm && (c & (1u << 11));
  f.amxBf16 = tiles && (d & (1u << 22));
  f.amxTile = tiles && (d & (1u << 24));
  f.amxInt8 = tiles && (d & (1u << 25));
  unsigned a1, b1, c1, d1;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512bf16 = zmm && (a1 & (1u << 5));
  return f;
}
}  // namespace

const CpuFeatures& DetectCpu() {
  static const CpuFeatures f = Detect();
  return f;
}

bool KernelSupportsAmx() {
  // XCR0, not ARCH_GET_XCOMP_SUPP: a 6.18 guest kernel answered that without XTILEDATA (0x200e7)
  // while XCR0 had it (0x600e7), granted ARCH_REQ_XCOMP_PERM and ran tdpbssd correctly.
  return DetectCpu().amxTile;
}

bool EnableAmx() {
  constexpr int ARCH_REQ_XCOMP_PERM = 0x1023;
  constexpr int XFEATURE_XTILEDATA = 18;
  if (!DetectCpu().amxTile) return false;
  return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}
}  // namespace redblue
