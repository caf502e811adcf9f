// Errors meant for the user ("node 3 does not exist: ..."). Plain C++, so that domain code throws
// them without knowing about N-API; the bindings (core/napi_util.h, Guarded) turn them into JS
// errors.
#pragma once
#include <stdexcept>

namespace redblue {

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace redblue
