// The shared segment of one host group: a file in /dev/shm (or a hugetlbfs mount when huge
// pages are available) named "redblue-shm-<name>", created by rank 0 and attached by the others.
//
// Layout (all offsets in the header; every line is one 64-byte cache line so that no two ranks
// write the same line):
//   Header      magic, geometry, creator pid + start time, rank table, group table, dead mask
//   Ctrl        [maxGroups][ranks] CtrlLine      per-group sequence word each rank posts
//   P2PCtrl     [ranks][ranks] P2PLine           per ordered pair (src, dst) mailbox words
//   Slots       [maxGroups][ranks] slotBytes     each rank's outgoing data for a group, two halves
//   P2PData     [ranks][ranks] p2pBytes          one mailbox buffer per ordered pair
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace redblue::shm {

constexpr uint64_t kMagic = 0x3167736d62646572ull;  // "redbmsg1" little-endian
constexpr uint32_t kVersion = 1;
constexpr int kMaxRanks = 64;
constexpr int kMaxGroups = 64;

enum RankState : uint32_t { kEmpty = 0, kAlive = 1, kLeft = 2 };

struct alignas(64) RankEntry {
  std::atomic<int32_t> pid;
  std::atomic<uint32_t> state;
  std::atomic<uint64_t> startTime;  // guards against pid reuse
};

struct alignas(64) GroupEntry {
  std::atomic<uint64_t> mask;    // members; 0 = free entry
  std::atomic<uint32_t> broken;  // 0 = healthy, else an ErrorCode: the group is unusable
  std::atomic<int32_t> culprit;  // rank whose failure broke it (-1 if none)
};

// One rank's synchronisation word for one group. `seq` counts this rank's posts; peers wait for
// it with a futex. `sig` holds the signature of the operation started in each round parity, so
// peers can detect mismatched calls.
struct alignas(64) CtrlLine {
  std::atomic<uint32_t> seq;
  std::atomic<uint32_t> waiters;
  std::atomic<uint64_t> sig[2];
};

// Mailbox of one ordered pair: the sender bumps `sent` after filling the buffer, the receiver
// bumps `acked` after draining it.
struct alignas(64) P2PLine {
  std::atomic<uint32_t> sent;
  std::atomic<uint32_t> sentWaiters;
  std::atomic<uint32_t> acked;
  std::atomic<uint32_t> ackedWaiters;
  std::atomic<uint64_t> chunkBytes;  // bytes in the buffer now
  std::atomic<uint64_t> totalBytes;  // bytes of the whole message (first chunk)
};

struct Header {
  uint64_t magic;
  uint32_t version;
  uint32_t ranks;
  uint32_t maxGroups;
  uint32_t pad0;
  uint64_t slotBytes;
  uint64_t p2pBytes;
  uint64_t totalBytes;
  uint64_t token;  // chosen by the launcher; attachers check it (0 = any)
  uint64_t ctrlOffset, p2pCtrlOffset, slotsOffset, p2pDataOffset;
  int32_t creatorPid;
  uint32_t pad1;
  uint64_t creatorStart;
  alignas(64) std::atomic<uint32_t> ready;  // 1 once the creator initialised everything
  alignas(64) std::atomic<uint64_t> deadMask;  // ranks found dead or gone
  std::atomic<uint32_t> wakeAll;               // bumped to wake every waiter on failure
  alignas(64) RankEntry rank[kMaxRanks];
  GroupEntry group[kMaxGroups];
};

struct SegmentOptions {
  std::string name;  // [A-Za-z0-9._-], the file is "redblue-shm-<name>"
  int rank = 0;
  int ranks = 1;
  size_t slotBytes = 4u << 20;
  size_t p2pBytes = 1u << 20;
  int maxGroups = 8;
  uint64_t token = 0;
  uint64_t attachTimeoutNs = 10'000'000'000ull;
  std::string hugePages = "auto";  // "auto" | "none" | "require"
};

// A mapping of the segment. Rank 0 creates it (replacing a stale one left by a killed run),
// the others attach by name. The destructor leaves: marks this rank gone and, if it was the
// last live rank, removes the file.
class Segment {
 public:
  explicit Segment(const SegmentOptions& opt);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  Header* header() const { return hdr_; }
  char* base() const { return reinterpret_cast<char*>(hdr_); }
  int rank() const { return rank_; }
  int ranks() const { return static_cast<int>(hdr_->ranks); }
  const std::string& path() const { return path_; }
  const std::string& backing() const { return backing_; }
  size_t bytes() const { return bytes_; }

  CtrlLine& ctrl(int group, int rank) const {
    return reinterpret_cast<CtrlLine*>(base() + hdr_->ctrlOffset)[group * hdr_->ranks + rank];
  }
  P2PLine& p2p(int src, int dst) const {
    return reinterpret_cast<P2PLine*>(base() + hdr_->p2pCtrlOffset)[src * hdr_->ranks + dst];
  }
  // One half (parity 0/1) of a rank's slot for a group.
  char* slot(int group, int rank, int parity) const {
    return base() + hdr_->slotsOffset + (static_cast<size_t>(group) * hdr_->ranks + rank) * hdr_->slotBytes +
           parity * (hdr_->slotBytes / 2);
  }
  size_t slotHalfBytes() const { return hdr_->slotBytes / 2; }
  char* p2pData(int src, int dst) const {
    return base() + hdr_->p2pDataOffset + (static_cast<size_t>(src) * hdr_->ranks + dst) * hdr_->p2pBytes;
  }
  size_t p2pBytes() const { return hdr_->p2pBytes; }

  // Marks this rank gone (peers waiting on it fail at once) and unlinks when last. Idempotent.
  void Leave();
  // Wakes every futex waiter of the segment (they re-check for failures).
  void WakeAll() const;

 private:
  void Create(const SegmentOptions& opt);
  void Attach(const SegmentOptions& opt);
  void Join();
  void Map(int fd, size_t bytes);

  Header* hdr_ = nullptr;
  size_t bytes_ = 0;
  int rank_ = 0;
  bool left_ = false;
  std::string path_;
  std::string backing_;
  uint64_t ino_ = 0;  // to unlink only our own file, never a successor's
};

// Directory of the segment files ("/dev/shm"), and the hugetlbfs mount if one is usable.
std::string SegmentPathFor(const std::string& dir, const std::string& name);
// Removes the segment `name` if it is stale (no live rank); true if something was removed.
bool RemoveIfStale(const std::string& name);

}  // namespace redblue::shm
