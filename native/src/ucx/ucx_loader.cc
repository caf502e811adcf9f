#include "ucx/ucx_loader.h"

#include <dlfcn.h>
#include <stdlib.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace redblue::ucx {
namespace {

struct Api {
  void* (*workerNew)(char*, size_t) = nullptr;
  void (*workerFree)(void*) = nullptr;
  size_t (*workerAddress)(void*, const uint8_t**) = nullptr;
  HostLink* (*linkNew)(void*, const char*, int, const uint8_t* const*, const size_t*, int, uint64_t, char*,
                       size_t) = nullptr;
  void (*linkFree)(HostLink*) = nullptr;
  uint64_t (*bytesSent)() = nullptr;
  void (*abort)() = nullptr;
  void* (*expose)(void*, void*, uint64_t, char*, size_t) = nullptr;
  size_t (*exposedDescriptor)(void*, const uint8_t**) = nullptr;
  void (*exposedFree)(void*) = nullptr;
  void* (*remoteNew)(void*, const uint8_t*, size_t, uint64_t, char*, size_t) = nullptr;
  int (*remoteMove)(void*, int, uint64_t, void*, uint64_t, char*, size_t) = nullptr;
  void (*remoteFree)(void*) = nullptr;
  uint64_t (*bytesMoved)() = nullptr;
};

std::mutex gMu;
Api* gApi = nullptr;

// redblue_ucx.so beside this library (the addon), whichever build it is.
std::string LibraryPath() {
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&LibraryPath), &info) || !info.dli_fname)
    throw std::runtime_error("cannot find the addon's own path to load UCX from");
  std::string self = info.dli_fname;
  size_t slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/redblue_ucx.so";
}

const Api& Load() {
  std::lock_guard<std::mutex> lk(gMu);
  if (gApi) return *gApi;
  const std::string path = LibraryPath();
  // Before UCX loads (its memory library reads these when it starts), unless the user set them:
  // no malloc or mmap hooks (replacing node's malloc corrupted V8's heap: executors died by
  // SIGSEGV inside V8's allocator), and no signal handlers of UCX's over node's own.
  setenv("UCX_MEM_MALLOC_HOOKS", "no", 0);
  setenv("UCX_MEM_EVENTS", "no", 0);
  setenv("UCX_HANDLE_ERRORS", "none", 0);
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    throw std::runtime_error(std::string("UCX is not available: ") + dlerror() +
                             " (build it with `npm run build`; the set-up installs libucx-dev)");
  auto api = new Api();
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (!fn) throw std::runtime_error(path + " lacks " + name + ": rebuild with `npm run build`");
  };
  sym(api->workerNew, "rbucx_worker_new");
  sym(api->workerFree, "rbucx_worker_free");
  sym(api->workerAddress, "rbucx_worker_address");
  sym(api->linkNew, "rbucx_link_new");
  sym(api->linkFree, "rbucx_link_free");
  sym(api->bytesSent, "rbucx_bytes_sent");
  sym(api->abort, "rbucx_abort");
  sym(api->expose, "rbucx_expose");
  sym(api->exposedDescriptor, "rbucx_exposed_descriptor");
  sym(api->exposedFree, "rbucx_exposed_free");
  sym(api->remoteNew, "rbucx_remote_new");
  sym(api->remoteMove, "rbucx_remote_move");
  sym(api->remoteFree, "rbucx_remote_free");
  sym(api->bytesMoved, "rbucx_bytes_moved");
  gApi = api;  // the library stays loaded for the life of the process
  return *gApi;
}

}  // namespace

std::shared_ptr<LoadedWorker> LoadedWorker::Create() {
  const Api& api = Load();
  char err[512] = {0};
  void* h = api.workerNew(err, sizeof err);
  if (!h) throw std::runtime_error(err);
  std::shared_ptr<LoadedWorker> w(new LoadedWorker());
  w->handle_ = h;
  const uint8_t* data = nullptr;
  size_t n = api.workerAddress(h, &data);
  w->address_.assign(data, data + n);
  return w;
}

LoadedWorker::~LoadedWorker() {
  if (handle_) Load().workerFree(handle_);
}

std::shared_ptr<HostLink> MakeLink(std::shared_ptr<LoadedWorker> worker, const std::string& run, int host,
                                   const std::vector<std::vector<uint8_t>>& peers, uint64_t timeoutMs) {
  const Api& api = Load();
  std::vector<const uint8_t*> addrs;
  std::vector<size_t> lens;
  for (const auto& p : peers) {
    addrs.push_back(p.data());
    lens.push_back(p.size());
  }
  char err[512] = {0};
  HostLink* l = api.linkNew(worker->handle(), run.c_str(), host, addrs.data(), lens.data(),
                            static_cast<int>(peers.size()), timeoutMs, err, sizeof err);
  if (!l) throw std::runtime_error(err);
  // The link is freed by the library that made it, and keeps its worker alive until then.
  auto free = api.linkFree;
  return std::shared_ptr<HostLink>(l, [free, worker](HostLink* p) { free(p); });
}

uint64_t BytesSent() {
  {
    std::lock_guard<std::mutex> lk(gMu);
    if (!gApi) return 0;
  }
  return gApi->bytesSent();
}

void AbortExchanges() {
  {
    std::lock_guard<std::mutex> lk(gMu);
    if (!gApi) return;
  }
  gApi->abort();
}

Exposed::Exposed(std::shared_ptr<LoadedWorker> worker, void* base, uint64_t size) : worker_(std::move(worker)) {
  const Api& api = Load();
  char err[512] = {0};
  handle_ = api.expose(worker_->handle(), base, size, err, sizeof err);
  if (!handle_) throw std::runtime_error(err);
  const uint8_t* d = nullptr;
  size_t n = api.exposedDescriptor(handle_, &d);
  descriptor_.assign(d, d + n);
}

Exposed::~Exposed() { Load().exposedFree(handle_); }

Remote::Remote(std::shared_ptr<LoadedWorker> worker, const std::vector<uint8_t>& descriptor, uint64_t timeoutMs)
    : worker_(std::move(worker)) {
  const Api& api = Load();
  char err[512] = {0};
  handle_ = api.remoteNew(worker_->handle(), descriptor.data(), descriptor.size(), timeoutMs, err, sizeof err);
  if (!handle_) throw std::runtime_error(err);
}

Remote::~Remote() { Load().remoteFree(handle_); }

void Remote::Move(Op op, uint64_t offset, void* p, uint64_t bytes) {
  char err[512] = {0};
  if (Load().remoteMove(handle_, static_cast<int>(op), offset, p, bytes, err, sizeof err) != 0)
    throw std::runtime_error(err);
}

uint64_t BytesMoved() {
  {
    std::lock_guard<std::mutex> lk(gMu);
    if (!gApi) return 0;
  }
  return gApi->bytesMoved();
}

}  // namespace redblue::ucx
