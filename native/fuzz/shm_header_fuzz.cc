// A mutation fuzzer for the shared segment's header check (shm/segment_layout.h HeaderProblem):
// what a rank reads from a file in /dev/shm before it trusts any offset in it. Valid headers of
// random geometry are damaged (random values in random fields, bit flips, a shorter file); a
// header the check accepts must keep every control line, slot and mailbox a rank touches inside
// the file, which is a buffer of exactly that size here, so AddressSanitizer reports any access
// past it. Built and run by scripts/fuzz-native.sh.
//   shm_header_fuzz [iterations] [seed]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>

#include "shm/segment_layout.h"

using namespace redblue::shm;

namespace {

// Touches the first and last byte of everything a rank of this segment reads or writes.
uint64_t TouchAll(const uint8_t* base, const Header& h) {
  uint64_t sum = 0;
  auto touch = [&](uint64_t off, uint64_t len) { sum += base[off] + base[off + len - 1]; };
  for (uint64_t g = 0; g < h.maxGroups; ++g)
    for (uint64_t r = 0; r < h.ranks; ++r) {
      touch(h.ctrlOffset + (g * h.ranks + r) * sizeof(CtrlLine), sizeof(CtrlLine));
      touch(h.slotsOffset + (g * h.ranks + r) * h.slotBytes, h.slotBytes);
    }
  for (uint64_t s = 0; s < h.ranks; ++s)
    for (uint64_t d = 0; d < h.ranks; ++d) {
      touch(h.p2pCtrlOffset + (s * h.ranks + d) * sizeof(P2PLine), sizeof(P2PLine));
      touch(h.p2pDataOffset + (s * h.ranks + d) * h.p2pBytes, h.p2pBytes);
    }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t iterations = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  std::mt19937_64 rng(seed);
  uint64_t accepted = 0, sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < iterations; ++i) {
    // Small geometries: every accepted one is mapped and walked.
    Header h{};
    h.magic = kMagic;
    h.version = kVersion;
    h.ranks = 1 + uint32_t(rng() % 4);
    h.maxGroups = 1 + uint32_t(rng() % 3);
    const SegmentLayout l = LayoutFor(h.ranks, h.maxGroups, kMinSlotBytes * (1 + rng() % 2), kMinP2PBytes);
    h.slotBytes = l.slotBytes;
    h.p2pBytes = l.p2pBytes;
    h.ctrlOffset = l.ctrlOffset;
    h.p2pCtrlOffset = l.p2pCtrlOffset;
    h.slotsOffset = l.slotsOffset;
    h.p2pDataOffset = l.p2pDataOffset;
    h.totalBytes = l.end;
    uint64_t file = l.end;
    // Damage: fields set to edge or random values, bits flipped, the file cut short.
    const int ops = int(rng() % 4);
    for (int o = 0; o < ops; ++o) {
      const uint64_t edge[] = {0, 1, 63, 64, 65, 4096, l.end, l.end - 1, l.end + 1, ~0ull, 1ull << 32, rng()};
      const uint64_t v = edge[rng() % (sizeof edge / sizeof edge[0])];
      switch (rng() % 10) {
        case 0: h.ranks = uint32_t(v); break;
        case 1: h.maxGroups = uint32_t(v); break;
        case 2: h.slotBytes = v; break;
        case 3: h.p2pBytes = v; break;
        case 4: h.ctrlOffset = v; break;
        case 5: h.p2pCtrlOffset = v; break;
        case 6: h.slotsOffset = v; break;
        case 7: h.p2pDataOffset = v; break;
        case 8: h.totalBytes = v; break;
        default: file = rng() % (l.end + 1); break;
      }
      if (rng() % 4 == 0) {  // and a bit flipped somewhere in the geometry
        auto* g = reinterpret_cast<uint8_t*>(&h.ranks);
        const size_t span = reinterpret_cast<uint8_t*>(&h.creatorPid) - g;
        g[rng() % span] ^= uint8_t(1u << (rng() % 8));
      }
    }
    if (!HeaderProblem(h, file).empty()) continue;
    ++accepted;
    // The file as the rank maps it: exactly `file` bytes (ASan sees one past the end).
    std::unique_ptr<uint8_t[]> mapping(new (std::nothrow) uint8_t[file]());
    if (!mapping) continue;
    sum += TouchAll(mapping.get(), h);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("shm_header_fuzz: %llu inputs (seed %llu), %llu accepted and walked, %.1f s, no sanitizer report%s\n",
              static_cast<unsigned long long>(iterations), static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(accepted), s, sum == 1 ? " " : "");
  return 0;
}
