#include "executor/hosts_collective.h"

#include <cstring>

#include "core/errors.h"

namespace redblue {

HostsCollective::HostsCollective(std::shared_ptr<shm::Communicator> local, int firstRank,
                                 std::vector<int> hostFirst, std::shared_ptr<HostLink> link)
    : local_(std::move(local)), hostFirst_(std::move(hostFirst)), link_(std::move(link)) {
  if (hostFirst_.size() < 2) throw UserError("hostFirstRanks needs the first rank of every host and the world size");
  for (size_t h = 0; h + 1 < hostFirst_.size(); ++h)
    if (hostFirst_[h] > hostFirst_[h + 1]) throw UserError("hostFirstRanks must be non-decreasing");
  if (hostFirst_[0] != 0) throw UserError("hostFirstRanks must start at 0");
  for (size_t h = 0; h + 1 < hostFirst_.size(); ++h)
    if (hostFirst_[h] == firstRank && hostFirst_[h + 1] - hostFirst_[h] == local_->size()) host_ = static_cast<int>(h);
  if (host_ < 0)
    throw UserError("no host in hostFirstRanks starts at rank " + std::to_string(firstRank) + " with " +
                    std::to_string(local_->size()) + " ranks (this host's executors)");
  if (local_->rank() == 0 && !link_) throw UserError("the host leader (local rank 0) needs a link to the other hosts");
}

int HostsCollective::rank() const { return hostFirst_[static_cast<size_t>(host_)] + local_->rank(); }

void HostsCollective::Barrier() {
  std::vector<size_t> zero(static_cast<size_t>(size()), 0);
  AllGatherV(nullptr, nullptr, zero);
}

void HostsCollective::WaitForPeers() { local_->Barrier(local_->World()); }

void HostsCollective::AllGatherV(const void* mine, void* outv, const std::vector<size_t>& bytes) {
  const int world = size();
  if (static_cast<int>(bytes.size()) != world)
    throw UserError("allGatherV across hosts needs one size per rank (" + std::to_string(world) + "), got " +
                    std::to_string(bytes.size()));
  std::vector<size_t> off(static_cast<size_t>(world) + 1, 0);
  for (int r = 0; r < world; ++r) off[r + 1] = off[r] + bytes[r];
  const int lo = hostFirst_[host_], hi = hostFirst_[host_ + 1];
  char* out = static_cast<char*>(outv);
  // 1. Inside the host.
  std::vector<size_t> localBytes(bytes.begin() + lo, bytes.begin() + hi);
  if (off[world] > 0) local_->AllGatherV(mine, out + off[lo], localBytes, local_->World());
  const bool leader = local_->rank() == 0;
  const int localSize = local_->size();
  // 2. Between host leaders.
  std::vector<size_t> hostBytes(hostFirst_.size() - 1);
  for (size_t h = 0; h < hostBytes.size(); ++h) hostBytes[h] = off[hostFirst_[h + 1]] - off[hostFirst_[h]];
  uint64_t status = 0;
  std::string error;
  if (leader) {
    try {
      link_->Exchange(seq_, out + off[lo], hostBytes[static_cast<size_t>(host_)], out, hostBytes);
    } catch (const std::exception& e) {
      status = 1;
      error = e.what();
    }
  }
  ++seq_;
  if (localSize == 1) {
    if (status) throw UserError(error);
    return;
  }
  // 3. The leader's outcome, then its data, to the host (a failed exchange must not leave the
  // other ranks waiting on a broadcast that never comes).
  std::vector<size_t> sb(static_cast<size_t>(localSize), 0);
  sb[0] = sizeof status;
  local_->AllGatherV(&status, &status, sb, local_->World());
  if (status) throw UserError(leader ? error : "the host leader's exchange with the other hosts failed");
  if (off[world] == 0) return;
  std::vector<size_t> db(static_cast<size_t>(localSize), 0);
  db[0] = off[world];
  local_->AllGatherV(out, out, db, local_->World());
}

}  // namespace redblue
