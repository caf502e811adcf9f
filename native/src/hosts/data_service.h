// The native data path between hosts: the Data service of proto/hosts.proto (Read, Write of a
// host's staging area) served and called with gRPC's C++ core, off the JS event loop. grpc-js
// costs about 2 ns of CPU per byte here; the C++ core moves bulk blocks at nearly what a raw TCP
// socket does between the same hosts. The wire format is plain gRPC (any gRPC client can call it).
#pragma once
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>

namespace grpc {
class Server;
class CallbackGenericService;
}  // namespace grpc

namespace redblue::data {

// The bytes the server reads from and writes into. Replaced (or cleared) under the exclusive
// lock, which waits for the chunk copies in flight; a call that sees another generation fails.
struct Area {
  std::shared_mutex mu;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  uint64_t generation = 0;
};

constexpr uint32_t kDefaultChunk = 1u << 20;
constexpr uint32_t kMaxChunk = 4u << 20;

class DataServer {
 public:
  // Listens on `address` (host:port; port 0 picks one). An empty token accepts any caller (for
  // loopback only; the supervisor never starts it so on another address).
  DataServer(const std::string& address, const std::string& token);
  ~DataServer();
  int port() const { return port_; }
  void SetArea(uint8_t* base, uint64_t size);
  void Shutdown();

 private:
  std::shared_ptr<Area> area_;
  std::unique_ptr<grpc::CallbackGenericService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

class DataClient {
 public:
  DataClient(const std::string& address, const std::string& token);
  ~DataClient();
  // Reads `bytes` of the peer's staging area at `offset` into dst; throws with the peer's status.
  void Read(uint64_t offset, uint8_t* dst, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs);
  // Writes src into the peer's staging area at `offset`.
  void Write(uint64_t offset, const uint8_t* src, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs);

 private:
  struct Stub;  // the channel and gRPC's generic stub (a typedef, so not declared here)
  std::string address_, token_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace redblue::data
