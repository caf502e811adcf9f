// The host's shared-memory communicator as a step's Collective (all ranks of the host).
#pragma once
#include <memory>

#include "executor/collective.h"

namespace redblue {
namespace shm {
class Communicator;
}

std::shared_ptr<Collective> MakeShmCollective(std::shared_ptr<shm::Communicator> comm);

}  // namespace redblue
