// What the cross-host collective needs from the network between host leaders: one exchange of
// blocks per all-gather. The gRPC data path implements it (hosts/grpc_host_link.h, with or
// without TLS); a faster transport (UCX, RDMA) is one more implementation, and no step changes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace redblue {

class HostLink {
 public:
  virtual ~HostLink() = default;
  // This host's block (`mine`, hostBytes[thisHost] bytes) goes to every other host's leader;
  // `out` receives every host's block in host order (hostBytes[h] bytes each, this host's
  // included). `seq` numbers the exchanges of a run from 0, one after another. Throws on failure,
  // naming the peer. Called on the host's leader only, from the step's thread.
  virtual void Exchange(uint64_t seq, const char* mine, size_t mineBytes, char* out,
                        const std::vector<size_t>& hostBytes) = 0;
};

}  // namespace redblue
