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
  // By size: below chainMinBytes (or with one rank on every host) the default gather-and-sum,
  // one exchange between the leaders ("hosts-direct"); from chainMinBytes, "hosts-chain": each
  // host sums inside itself over shared memory, starting from the running sum of the hosts
  // before it, whose leader passes it on; the last host's total goes back to every host. A
  // leader then receives about two vectors instead of every other host's ranks' vectors. Both
  // sum in rank order: the same bits as each other and as one host's all-reduce.
  void AllReduceSumF32(float* data, size_t count) override;
  AllReduceTally Tally() const override { return tally_; }
  // 256 KiB unless REDBLUE_ALLREDUCE_CHAIN_BYTES says otherwise (0: always chain).
  static size_t DefaultChainMinBytes();

 private:
  void ChainSumF32(float* data, size_t count);
  // The leader's outcome (`status`, `error`), then with `bytes` > 0 its `data`, to the host's
  // other ranks; throws on every rank when the leader failed.
  void ShareFromLeader(uint64_t status, const std::string& error, void* data, size_t bytes);

  std::shared_ptr<shm::Communicator> local_;
  std::vector<int> hostFirst_;
  int host_ = -1;
  std::shared_ptr<HostLink> link_;
  uint64_t seq_ = 0;
  size_t chainMinBytes_ = DefaultChainMinBytes();
  bool sharedHost_ = false;  // some host has several ranks (else chaining saves nothing)
  AllReduceTally tally_;
};

}  // namespace redblue
