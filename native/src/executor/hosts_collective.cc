#include "executor/hosts_collective.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/errors.h"
#include "executor/shm_collective.h"

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
  for (size_t h = 0; h + 1 < hostFirst_.size(); ++h) sharedHost_ = sharedHost_ || hostFirst_[h + 1] - hostFirst_[h] > 1;
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
  // 3. The leader's outcome, then its data, to the host.
  ShareFromLeader(status, error, out, off[world]);
}

void HostsCollective::ShareFromLeader(uint64_t status, const std::string& error, void* data, size_t bytes) {
  const bool leader = local_->rank() == 0;
  const int localSize = local_->size();
  if (localSize == 1) {
    if (status) throw UserError(error);
    return;
  }
  // The outcome first: a failed exchange must not leave the other ranks waiting on a broadcast
  // that never comes.
  std::vector<size_t> sb(static_cast<size_t>(localSize), 0);
  sb[0] = sizeof status;
  local_->AllGatherV(&status, &status, sb, local_->World());
  if (status) throw UserError(leader ? error : "the host leader's exchange with the other hosts failed");
  if (bytes == 0) return;
  std::vector<size_t> db(static_cast<size_t>(localSize), 0);
  db[0] = bytes;
  local_->AllGatherV(data, data, db, local_->World());
}

size_t HostsCollective::DefaultChainMinBytes() {
  const char* v = std::getenv("REDBLUE_ALLREDUCE_CHAIN_BYTES");
  if (!v || !*v) return 256u << 10;
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (*v < '0' || *v > '9' || !end || *end != '\0' || errno == ERANGE)
    throw UserError(std::string("REDBLUE_ALLREDUCE_CHAIN_BYTES must be a whole number of bytes (0: chain every "
                                "all-reduce across hosts), got '") +
                    v + "': fix or unset it in the supervisor's environment");
  return static_cast<size_t>(n);
}

void HostsCollective::AllReduceSumF32(float* data, size_t count) {
  if (size() <= 1 || count == 0) return;
  if (hostFirst_.size() == 2) {
    // Every rank on this host: the communicator's own all-reduce (the same sum).
    TallyShmAllReduce(tally_, local_->AllReduceF32(data, count, local_->World()));
    return;
  }
  if (!sharedHost_ || count * sizeof(float) < chainMinBytes_) {
    GatherSumF32(data, count);
    tally_.Add(AllReduceAlgo::kHostsDirect);
    return;
  }
  ChainSumF32(data, count);
  tally_.Add(AllReduceAlgo::kHostsChain);
}

void HostsCollective::ChainSumF32(float* data, size_t count) {
  const int hosts = static_cast<int>(hostFirst_.size()) - 1;
  const size_t bytes = count * sizeof(float);
  const bool leader = local_->rank() == 0;
  // On a leader: the running sum of the hosts before this one, then the total.
  std::vector<float> carried(leader ? count : 0);
  uint64_t status = 0;
  std::string error;
  for (int h = 0; h < hosts; ++h) {
    if (h == host_) {
      // Host h adds its ranks, in order, to the sum of the ranks before it: the leader (this
      // host's first rank) starts from the carried sum, then the communicator's all-reduce sums
      // the host's ranks in member order. (After a failed exchange the leader still takes part,
      // so that its host's ranks are not left waiting; the failure is shared below.)
      if (leader && h > 0 && !status)
        for (size_t i = 0; i < count; ++i) data[i] = carried[i] + data[i];
      local_->AllReduceF32(data, count, local_->World());
    }
    // Host h's leader sends its sum to every other leader: host h + 1 goes on from it, and the
    // last host's is the total, which every host needs.
    if (leader && !status) {
      std::vector<size_t> hostBytes(static_cast<size_t>(hosts), 0);
      hostBytes[static_cast<size_t>(h)] = bytes;
      try {
        const char* mine = reinterpret_cast<const char*>(data);
        char* into = h == host_ ? reinterpret_cast<char*>(data) : reinterpret_cast<char*>(carried.data());
        link_->Exchange(seq_, mine, h == host_ ? bytes : 0, into, hostBytes);
      } catch (const std::exception& e) {
        status = 1;
        error = e.what();
      }
    }
    ++seq_;
  }
  if (leader && !status && host_ != hosts - 1) std::memcpy(data, carried.data(), bytes);
  // The last host's ranks hold the total already (its all-reduce made it); the others get it
  // from their leader.
  ShareFromLeader(status, error, data, host_ == hosts - 1 ? 0 : bytes);
}

}  // namespace redblue
