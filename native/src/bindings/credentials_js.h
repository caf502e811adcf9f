// Data-path credentials from a JS options object: `token?: string` and
// `tls?: { cert, key, ca }` (PEM text as strings or Buffers). A JS TypeError for anything else.
#pragma once
#include <napi.h>

#include "hosts/credentials.h"

namespace redblue {
data::Credentials CredentialsFromJs(const Napi::Object& o);
}  // namespace redblue
