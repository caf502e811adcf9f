// The host's shared-memory communicator as a step's Collective (all ranks of the host).
#pragma once
#include <memory>

#include "executor/collective.h"
#include "shm/communicator.h"

namespace redblue {

std::shared_ptr<Collective> MakeShmCollective(std::shared_ptr<shm::Communicator> comm);

// Counts an all-reduce the communicator ran (shm-flat or shm-split; nothing when it had nothing to do).
inline void TallyShmAllReduce(AllReduceTally& tally, shm::Communicator::ReduceWay way) {
  if (way == shm::Communicator::ReduceWay::kFlat) tally.Add(AllReduceAlgo::kShmFlat);
  if (way == shm::Communicator::ReduceWay::kSplit) tally.Add(AllReduceAlgo::kShmSplit);
}

}  // namespace redblue
