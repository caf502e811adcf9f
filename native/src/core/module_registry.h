// Each binding file registers its exports here with REDBLUE_MODULE, so adding a module needs
// no edit to addon.cc.
#pragma once
#include <napi.h>

#include <vector>

namespace redblue {
using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);
std::vector<ModuleInit>& Modules();
struct ModuleRegistrar {
  explicit ModuleRegistrar(ModuleInit fn) { Modules().push_back(fn); }
};
}  // namespace redblue

#define REDBLUE_MODULE_CAT2(a, b) a##b
#define REDBLUE_MODULE_CAT(a, b) REDBLUE_MODULE_CAT2(a, b)
#define REDBLUE_MODULE(fn) static ::redblue::ModuleRegistrar REDBLUE_MODULE_CAT(redblue_module_, __LINE__)(fn)
