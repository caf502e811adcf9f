// What an executor step needs from its peers on the host. The shared-memory communicator
// implements it; a step never knows which transport is underneath, so the same step code can
// run over another transport between hosts.
#pragma once
#include <cstddef>
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
};

}  // namespace redblue

#include <memory>
namespace Napi { class Value; }
namespace redblue {
// The Collective behind a JS communicator object (the shared-memory transport's), or a JS
// TypeError for anything else.
std::shared_ptr<Collective> CollectiveFromJs(Napi::Value v);
}  // namespace redblue
