// A Collective that spans hosts, hierarchically: all-gather inside the host over shared memory,
// then the host's leader (local rank 0) exchanges the host's block with the other hosts' leaders
// through `exchange` (gRPC, driven from JS), then the leader broadcasts the result inside the
// host. Steps written against Collective (the layer stack) run unchanged across hosts.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "executor/collective.h"
#include "shm/communicator.h"

namespace redblue {

class HostsCollective : public Collective {
 public:
  // Fills `out` (every host's block in host order, hostBytes[h] bytes each) given this host's
  // block; throws on failure. Called on the leader only, from the step's thread.
  using Exchange = std::function<void(const char* mine, size_t mineBytes, char* out,
                                      const std::vector<size_t>& hostBytes, uint64_t seq)>;

  // hostFirst: the first global rank of every host, then the world size (hosts + 1 entries).
  HostsCollective(std::shared_ptr<shm::Communicator> local, int firstRank, std::vector<int> hostFirst,
                  Exchange exchange);
  int rank() const override;
  int size() const override { return hostFirst_.back(); }
  void Barrier() override;
  // Only the ranks of this host: a barrier across hosts costs a network round trip per layer,
  // so waiting for another host stays in the exchange time.
  void WaitForPeers() override;
  void AllGatherV(const void* mine, void* out, const std::vector<size_t>& bytes) override;

 private:
  std::shared_ptr<shm::Communicator> local_;
  std::vector<int> hostFirst_;
  int host_ = -1;
  Exchange exchange_;
  uint64_t seq_ = 0;
};

}  // namespace redblue
