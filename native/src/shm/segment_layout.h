// The byte layout of a shared segment (segment.h) as a pure function of its geometry, and the
// check of a header found in a file against it: Create writes what Layout gives, Attach accepts a
// header only when its geometry is in range and its offsets are exactly Layout's within the file
// (a damaged or foreign file must not send a rank's reads and writes outside its mapping).
// Plain C++: native/fuzz/shm_header_fuzz.cc drives HeaderProblem with mutated headers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "shm/segment.h"

namespace redblue::shm {

constexpr size_t kPageBytes = 4096;
constexpr uint64_t kMinSlotBytes = 8u << 10, kMaxSlotBytes = 4ull << 30;
constexpr uint64_t kMinP2PBytes = 4u << 10, kMaxP2PBytes = 4ull << 30;

inline uint64_t RoundUpTo(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

struct SegmentLayout {
  uint64_t slotBytes = 0, p2pBytes = 0;  // as stored (rounded)
  uint64_t ctrlOffset = 0, p2pCtrlOffset = 0, slotsOffset = 0, p2pDataOffset = 0;
  uint64_t end = 0;  // bytes the layout needs (the file may be larger: page rounding)
};

// Geometry in range is the caller's to check (HeaderProblem does, Create checks its options).
inline SegmentLayout LayoutFor(uint64_t ranks, uint64_t maxGroups, uint64_t slotBytes, uint64_t p2pBytes) {
  SegmentLayout l;
  l.slotBytes = RoundUpTo(slotBytes, 2 * kPageBytes);
  l.p2pBytes = RoundUpTo(p2pBytes, kPageBytes);
  uint64_t off = RoundUpTo(sizeof(Header), kPageBytes);
  l.ctrlOffset = off;
  off += maxGroups * ranks * sizeof(CtrlLine);
  l.p2pCtrlOffset = off;
  off += ranks * ranks * sizeof(P2PLine);
  off = RoundUpTo(off, kPageBytes);
  l.slotsOffset = off;
  off += maxGroups * ranks * l.slotBytes;
  l.p2pDataOffset = off;
  off += ranks * ranks * l.p2pBytes;
  l.end = off;
  return l;
}

// Empty when `h` (magic and version already checked) describes a segment that fits a file of
// `fileBytes`; else what is wrong with it.
inline std::string HeaderProblem(const Header& h, uint64_t fileBytes) {
  if (h.ranks < 1 || h.ranks > static_cast<uint32_t>(kMaxRanks))
    return "its rank count " + std::to_string(h.ranks) + " is outside 1-" + std::to_string(kMaxRanks);
  if (h.maxGroups < 1 || h.maxGroups > static_cast<uint32_t>(kMaxGroups))
    return "its group count " + std::to_string(h.maxGroups) + " is outside 1-" + std::to_string(kMaxGroups);
  if (h.slotBytes < kMinSlotBytes || h.slotBytes > kMaxSlotBytes || h.slotBytes % (2 * kPageBytes) != 0)
    return "its slot size " + std::to_string(h.slotBytes) + " is not a whole number of page pairs from 8 KiB to 4 GiB";
  if (h.p2pBytes < kMinP2PBytes || h.p2pBytes > kMaxP2PBytes || h.p2pBytes % kPageBytes != 0)
    return "its mailbox size " + std::to_string(h.p2pBytes) + " is not a whole number of pages from 4 KiB to 4 GiB";
  const SegmentLayout l = LayoutFor(h.ranks, h.maxGroups, h.slotBytes, h.p2pBytes);
  if (h.ctrlOffset != l.ctrlOffset || h.p2pCtrlOffset != l.p2pCtrlOffset || h.slotsOffset != l.slotsOffset ||
      h.p2pDataOffset != l.p2pDataOffset)
    return "its offsets do not match its geometry";
  if (l.end > fileBytes || h.totalBytes > fileBytes || h.totalBytes < l.end)
    return "it needs " + std::to_string(l.end) + " bytes (says " + std::to_string(h.totalBytes) + ") but the file has " +
           std::to_string(fileBytes);
  return "";
}

}  // namespace redblue::shm
