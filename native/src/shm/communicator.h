// Collectives and point-to-point messages between the ranks (processes) of one host, through
// the shared Segment. This is the C++ API native executor code calls directly; every call is
// synchronous, runs entirely in the calling thread, and throws CommError on failure (a dead or
// departed peer, a timeout, mismatched calls). Calls on different groups may run concurrently
// from different threads; calls on one group are serialised.
//
// Semantics follow MPI: every member of a group makes the same sequence of calls on that group
// with matching sizes; a mismatch is detected and reported on all members.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "shm/segment.h"

namespace redblue::shm {

enum class DType { F32, Bf16 };
inline size_t ElemBytes(DType t) { return t == DType::F32 ? 4 : 2; }

struct CommError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A set of ranks that runs collectives together. Made by Communicator::MakeGroup on every
// member; the same rank set always maps to the same channel (own slots and sequence words).
struct Group {
  uint64_t mask = 0;
  int channel = -1;
  std::vector<int> ranks;  // ascending
  int me = -1;             // index of this rank in `ranks`
  int size() const { return static_cast<int>(ranks.size()); }
  std::string Describe() const;
};

struct CommOptions : SegmentOptions {
  uint64_t timeoutNs = 30'000'000'000ull;  // bound of every wait on a live peer
  int64_t spinNs = -1;                     // busy-wait before sleeping; -1 = by cpu count
  size_t smallBytes = 0;                   // all-reduce below this: one sync; 0 = default
  size_t roundBytes = 0;                   // bytes per rank per round (cache-sized); 0 = default
};

class Communicator {
 public:
  explicit Communicator(const CommOptions& opt);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return seg_.rank(); }
  uint64_t spinNs() const { return spinNs_; }  // busy-wait budget before sleeping
  int size() const { return seg_.ranks(); }
  const Segment& segment() const { return seg_; }
  const Group& World() const { return world_; }
  // Every member must call this with the same set (any order); this rank must be in it.
  Group MakeGroup(std::vector<int> ranks);

  void Barrier(const Group& g);
  // Which way an all-reduce ran: nothing to do, flat (small) or split (large).
  enum class ReduceWay { kNone, kFlat, kSplit };
  ReduceWay AllReduce(void* data, size_t count, DType t, const Group& g);
  ReduceWay AllReduceF32(float* data, size_t count, const Group& g) { return AllReduce(data, count, DType::F32, g); }
  ReduceWay AllReduceBf16(uint16_t* data, size_t count, const Group& g) { return AllReduce(data, count, DType::Bf16, g); }
  // Zero-copy all-reduce: write `count` elements into SlotBuffer(g, ...) (this rank's slot in
  // shared memory), then call AllReduceSlot; the sum is then in that buffer, valid until the next
  // collective on g. count * element size must fit in half a slot.
  void* SlotBuffer(const Group& g, size_t count, DType t);
  void AllReduceSlot(size_t count, DType t, const Group& g);
  // recv holds the members' blocks one after the other, recvBytes[i] bytes from member i.
  void AllGatherV(const void* send, void* recv, const std::vector<size_t>& recvBytes, const Group& g);
  void AllGather(const void* send, size_t bytes, void* recv, const Group& g);
  // send holds sum(counts) elements; recv gets this member's block of counts[me] summed elements.
  void ReduceScatterV(const void* send, void* recv, const std::vector<size_t>& counts, DType t, const Group& g);
  void ReduceScatter(const void* send, void* recv, size_t countPerRank, DType t, const Group& g);
  void Broadcast(void* data, size_t bytes, int root, const Group& g);  // root: a world rank

  // Point-to-point: messages between a pair arrive in order; large ones are chunked.
  void Send(int dst, const void* data, size_t bytes);
  // `alloc(total)` returns where the message of `total` bytes goes (may throw to refuse it).
  size_t Recv(int src, const std::function<void*(size_t)>& alloc);
  // Zero-copy send: wait until the mailbox to dst is free, write up to *capacity bytes, post.
  void* SendBuffer(int dst, size_t* capacity);
  void PostSend(int dst, size_t bytes);
  // Zero-copy receive of a message that fits in one mailbox; ReleaseRecv hands the buffer back.
  const void* RecvBuffer(int src, size_t* bytes);
  void ReleaseRecv(int src);

  // Copies and sums of at least minBytes per round are split over this pool's workers (the
  // rank's own node-local cpus); without a pool the calling thread does them. May be changed
  // between calls.
  void UsePool(std::shared_ptr<ThreadPool> pool, size_t minBytes = 256u << 10);

  // Makes every wait of this process fail with "closed" (for shutdown with calls in flight).
  void Abort();
  // Abort, then leave the segment now (peers see this rank gone; the last one removes the file).
  // The mapping stays valid until the Communicator is destroyed.
  void Leave() {
    Abort();
    seg_.Leave();
  }
  bool aborted() const { return aborted_.load(); }

 private:
  struct Channel {
    std::mutex mu;        // one collective at a time per group in this process
    uint64_t rounds = 0;  // rounds done, selects the slot half (parity)
  };
  enum class Op : uint8_t { Barrier = 1, AllReduce, AllGather, ReduceScatter, Broadcast };

  void CheckGroup(const Group& g) const;
  int NextParity(const Group& g) { return static_cast<int>(channels_[g.channel]->rounds++ & 1); }
  // Posts this rank's next sequence number on the group and waits until all members posted it.
  // `sig` (non-zero on an operation's first round) is checked against every member's.
  void Sync(const Group& g, int parity, uint64_t sig, const char* what);
  void WaitWord(std::atomic<uint32_t>& word, std::atomic<uint32_t>& waiters, uint32_t target,
                uint64_t peers, int channel, int peer, const char* what);
  [[noreturn]] void Fail(int channel, uint32_t code, int culprit, const std::string& msg);
  // Throws if the wait on `word` (for `target`) can no longer succeed.
  void CheckHealth(uint64_t peers, int channel, const char* what, const std::atomic<uint32_t>* word, uint32_t target);
  void Post(std::atomic<uint32_t>& word, std::atomic<uint32_t>& waiters);
  void WakeEverything();
  std::string RankName(int r) const;
  void Copy(void* dst, const void* src, size_t bytes);
  void Reduce(DType t, void* out, void* out2, const void* const* src, int n, size_t count);
  void AllReduceSplit(char* data, size_t count, DType t, const Group& g, uint64_t sig);
  void AllReduceFlat(char* data, size_t count, DType t, const Group& g, uint64_t sig);

  Segment seg_;
  Group world_;
  uint64_t timeoutNs_;
  uint64_t spinNs_;
  uint64_t yieldNs_;
  size_t smallBytes_;
  size_t roundBytes_;
  // Bytes one round moves per rank: small enough that a round's data stays in cache.
  size_t RoundBytes() const { return roundBytes_; }
  uint64_t joinDeadline_;
  std::atomic<bool> aborted_{false};
  std::vector<std::unique_ptr<Channel>> channels_;
  std::mutex groupsMu_;
  std::vector<std::unique_ptr<std::mutex>> sendMu_, recvMu_;
  std::mutex poolMu_;
  std::shared_ptr<ThreadPool> pool_;
  size_t poolMinBytes_ = 0;
};

}  // namespace redblue::shm

namespace Napi {
class Value;
}
namespace redblue {
// The native communicator behind a JS ShmCommunicator's `handle`, for native code of the addon
// that receives one from JS (e.g. an executor running whole steps natively). Throws a JS
// TypeError for anything else, an Error for a closed communicator.
std::shared_ptr<shm::Communicator> CommunicatorFromJs(Napi::Value v);
}  // namespace redblue
