// What an executor step needs from its peers on the host. The shared-memory communicator
// implements it; a step never knows which transport is underneath, so the same step code can
// run over another transport between hosts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace redblue {

// The ways an all-reduce runs, chosen by its size and by where the ranks are; a step reports how
// many of each it ran (ModelForwardTimings), so a run's timings say which algorithm moved its sums.
enum class AllReduceAlgo : int {
  kShmFlat = 0,  // one host, small: one sync, then every rank sums every rank's slot
  kShmSplit,     // one host, large: reduce-scatter then all-gather through the slots
  kHostsDirect,  // across hosts, small (or one rank per host): every rank's vector to every host
  kHostsChain,   // across hosts, large: summed inside each host, the running sum passed host to host
  kCount
};
// "shm-flat", "shm-split", "hosts-direct", "hosts-chain".
inline const char* AllReduceAlgoName(int i) {
  static const char* const kNames[] = {"shm-flat", "shm-split", "hosts-direct", "hosts-chain"};
  return i >= 0 && i < static_cast<int>(AllReduceAlgo::kCount) ? kNames[i] : "?";
}
struct AllReduceTally {
  uint32_t runs[static_cast<int>(AllReduceAlgo::kCount)] = {};
  void Add(AllReduceAlgo a) { ++runs[static_cast<int>(a)]; }
  // What ran since `before`.
  AllReduceTally Since(const AllReduceTally& before) const {
    AllReduceTally d;
    for (int i = 0; i < static_cast<int>(AllReduceAlgo::kCount); ++i) d.runs[i] = runs[i] - before.runs[i];
    return d;
  }
};

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void Barrier() = 0;
  // Waits for the peers whose lateness a step should report as load imbalance rather than as
  // exchange: every rank here; a transport may narrow it to the ranks it can wait for cheaply.
  virtual void WaitForPeers() { Barrier(); }
  // Every rank contributes `mine` (bytes[rank()] bytes); `out` receives all contributions
  // concatenated in rank order.
  virtual void AllGatherV(const void* mine, void* out, const std::vector<size_t>& bytes) = 0;
  // Every rank ends with the element-wise sum of all ranks' `data`, bit-identical on every rank
  // (tensor parallelism keeps one replicated hidden state: ranks that disagree by a rounding
  // would drift apart). This default gathers every contribution and sums in rank order, so any
  // transport has it; a transport with a native all-reduce of the same guarantee overrides it.
  virtual void AllReduceSumF32(float* data, size_t count) { GatherSumF32(data, count); }
  // All-reduces run so far, by algorithm (a transport without its own counts reports none).
  virtual AllReduceTally Tally() const { return {}; }

 protected:
  // The default all-reduce: gather every rank's vector, sum in rank order.
  void GatherSumF32(float* data, size_t count) {
    const size_t P = static_cast<size_t>(size());
    if (P <= 1 || count == 0) return;
    std::vector<float> all(P * count);
    AllGatherV(data, all.data(), std::vector<size_t>(P, count * sizeof(float)));
    std::memcpy(data, all.data(), count * sizeof(float));
    for (size_t r = 1; r < P; ++r) {
      const float* src = all.data() + r * count;
      for (size_t i = 0; i < count; ++i) data[i] += src[i];
    }
  }
};

}  // namespace redblue

