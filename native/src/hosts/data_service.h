// The native data path between hosts, its server: the Data service of proto/hosts.proto (Read,
// Write and Pipe of a host's staging area) on gRPC's C++ core, off the JS event loop. grpc-js
// costs about 2 ns of CPU per byte here; the C++ core moves bulk blocks at nearly what a raw TCP
// socket does between the same hosts. The wire format is plain gRPC (any gRPC client can call it).
#pragma once
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>

#include "hosts/credentials.h"

namespace grpc {
class Server;
class CallbackGenericService;
}  // namespace grpc

namespace redblue {
class SharedFile;
}

namespace redblue::data {

class Mailbox;

// The bytes the server reads from and writes into: its own mapping of the host's staging file.
// Replaced (or cleared) under the exclusive lock; a call that sees another generation fails.
// Chunks of a read are sent straight from the mapping, each holding a reference to it, so a
// replaced mapping lives on until gRPC has sent (or dropped) the last of them: nothing waits.
struct Area {
  std::shared_mutex mu;
  std::shared_ptr<SharedFile> file;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  uint64_t generation = 0;
};

constexpr uint32_t kDefaultChunk = 1u << 20;
constexpr uint32_t kMaxChunk = 4u << 20;
constexpr size_t kMaxTag = 200;  // an all-gather block's tag, in bytes

class DataServer {
 public:
  // Listens on `address` (host:port; port 0 picks one). With TLS credentials only callers with a
  // certificate from the same CA get in; an empty token (and no TLS) accepts any caller (for
  // loopback only; the supervisor never starts it so on another address).
  DataServer(const std::string& address, const Credentials& creds);
  ~DataServer();
  int port() const { return port_; }
  // Maps the first `bytes` of the staging file `name` (SharedFile; empty: no area; bytes 0: the
  // whole file); throws if it cannot.
  void SetArea(const std::string& name, size_t bytes = 0);
  // The all-gather blocks peers fetch on a Pipe (mailbox.h).
  Mailbox& mailbox() { return *mailbox_; }
  void Shutdown();

 private:
  std::shared_ptr<Area> area_;
  std::shared_ptr<Mailbox> mailbox_;
  std::unique_ptr<grpc::CallbackGenericService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace redblue::data
