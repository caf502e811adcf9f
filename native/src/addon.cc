// Entry point of the redblue addon: collects the exports of every registered module.
#include <napi.h>

#include "core/module_registry.h"

namespace redblue {
std::vector<ModuleInit>& Modules() {
  static std::vector<ModuleInit> modules;
  return modules;
}
}  // namespace redblue

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (auto fn : redblue::Modules()) fn(env, exports);
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

NODE_API_MODULE(redblue, Init)
