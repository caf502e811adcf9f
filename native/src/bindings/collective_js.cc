#include "bindings/collective_js.h"

#include "executor/shm_collective.h"
#include "shm/communicator.h"

namespace redblue {

std::shared_ptr<shm::Communicator> CommunicatorFromJs(Napi::Value v);  // bindings/shm_bindings.cc
std::shared_ptr<Collective> ExternalCollectiveFromJs(Napi::Value v);    // bindings/hosts_bindings.cc

std::shared_ptr<Collective> CollectiveFromJs(Napi::Value v) {
  if (auto c = ExternalCollectiveFromJs(v)) return c;
  return MakeShmCollective(CommunicatorFromJs(v));
}

}  // namespace redblue
