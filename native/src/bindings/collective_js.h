// The Collective behind a JS peers object: a cross-host collective (multi-host mode) as is, or
// the host's shared-memory communicator; a JS TypeError for anything else.
#pragma once
#include <napi.h>

#include <memory>

#include "executor/collective.h"

namespace redblue {
std::shared_ptr<Collective> CollectiveFromJs(Napi::Value v);
}  // namespace redblue
