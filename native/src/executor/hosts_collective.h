// A Collective that spans hosts, hierarchically: all-gather inside the host over shared memory,
// then the host's leader (local rank 0) exchanges the host's block with the other hosts' leaders
// through its HostLink (executor/host_link.h: natively, leader to leader), then the leader
// broadcasts the result inside the host. Steps written against Collective (the layer stack, the
// model's step) run unchanged across hosts.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "executor/collective.h"
#include "executor/host_link.h"
#include "shm/communicator.h"

namespace redblue {

class HostsCollective : public Collective {
 public:
  // hostFirst: the first global rank of every host, then the world size (hosts + 1 entries).
  // `link` is needed on the host's leader (local rank 0) only.
  HostsCollective(std::shared_ptr<shm::Communicator> local, int firstRank, std::vector<int> hostFirst,
                  std::shared_ptr<HostLink> link);
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
  std::shared_ptr<HostLink> link_;
  uint64_t seq_ = 0;
};

}  // namespace redblue
