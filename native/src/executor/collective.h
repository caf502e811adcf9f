// What an executor step needs from its peers on the host. The shared-memory communicator
// implements it; a step never knows which transport is underneath, so the same step code can
// run over another transport between hosts.
#pragma once
#include <cstddef>
#include <cstring>
#include <vector>

namespace redblue {

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
  virtual void AllReduceSumF32(float* data, size_t count) {
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

