// The addon's way to UCX: the UCX library (redblue_ucx.so, built from ucx_link.cc beside the
// addon) is loaded on first use only, by an executor started with `--transport ucx`, since UCX
// installs signal handlers and memory hooks in any process that loads it (which it is told not
// to: see Load in ucx_loader.cc).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "executor/host_link.h"

namespace redblue::ucx {

// A UCX worker (a UCP context and worker) of the loaded library.
class LoadedWorker {
 public:
  // Loads the library if need be; throws naming what failed (the library, or UCX itself).
  static std::shared_ptr<LoadedWorker> Create();
  ~LoadedWorker();
  const std::vector<uint8_t>& address() const { return address_; }
  void* handle() const { return handle_; }

 private:
  LoadedWorker() = default;
  void* handle_ = nullptr;
  std::vector<uint8_t> address_;
};

// The exchange with the other leaders over UCX (ucx_link.h), from every leader's worker address.
std::shared_ptr<HostLink> MakeLink(std::shared_ptr<LoadedWorker> worker, const std::string& run, int host,
                                   const std::vector<std::vector<uint8_t>>& peers, uint64_t timeoutMs);

// Bytes this process has sent to other leaders over UCX (0 when the library was never loaded).
uint64_t BytesSent();

// The process is stopping: exchanges still waiting end now, with an error (no-op when the library
// was never loaded).
void AbortExchanges();

// A memory range of this process registered with the worker for peers to read and write
// (ucx_rma.h), for as long as this object lives; `descriptor` is what a peer needs to reach it.
class Exposed {
 public:
  Exposed(std::shared_ptr<LoadedWorker> worker, void* base, uint64_t size);
  ~Exposed();
  Exposed(const Exposed&) = delete;
  Exposed& operator=(const Exposed&) = delete;
  const std::vector<uint8_t>& descriptor() const { return descriptor_; }

 private:
  std::shared_ptr<LoadedWorker> worker_;
  void* handle_ = nullptr;
  std::vector<uint8_t> descriptor_;
};

// A peer's exposed range (from its descriptor), read, read-and-added (f32) or written over UCX;
// each call blocks until done and throws with UCX's reason.
class Remote {
 public:
  Remote(std::shared_ptr<LoadedWorker> worker, const std::vector<uint8_t>& descriptor, uint64_t timeoutMs);
  ~Remote();
  Remote(const Remote&) = delete;
  Remote& operator=(const Remote&) = delete;
  enum class Op { kRead = 0, kReadAdd = 1, kWrite = 2 };
  void Move(Op op, uint64_t offset, void* p, uint64_t bytes);

 private:
  std::shared_ptr<LoadedWorker> worker_;
  void* handle_ = nullptr;
};

// Bytes this process has moved to and from peers' areas over UCX (0 when the library was never
// loaded).
uint64_t BytesMoved();

}  // namespace redblue::ucx
