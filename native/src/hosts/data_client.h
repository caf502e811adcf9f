// The native data path between hosts, its client: reads and writes of a peer host's staging area
// through the Data service (data_service.h), each a blocking call for a worker thread.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hosts/credentials.h"

namespace redblue::data {

class Pipe;

class DataClient {
 public:
  // TLS credentials make the channel TLS (the server's certificate checked against the CA and
  // the cluster name); the token, when given, goes with every call.
  DataClient(const std::string& address, const Credentials& creds);
  ~DataClient();
  // Opens the connection now (TCP and HTTP/2 set-up), so that the first call does not pay for
  // it; false if the peer could not be reached before the deadline.
  bool Connect(uint64_t deadlineMs);
  // Reads `bytes` of the peer's staging area at `offset` into dst; throws with the peer's status.
  void Read(uint64_t offset, uint8_t* dst, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs);
  // Adds `bytes` / 4 f32 values of the peer's staging area at `offset` into dst (f32, aligned):
  // the exchange of a cross-host reduction, without a copy in between. bytes and a given chunk
  // are multiples of 4.
  void ReadAdd(uint64_t offset, float* dst, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs);
  // The peer's all-gather block `tag` (mailbox.h), waiting until the peer has posted it.
  std::vector<uint8_t> Fetch(const std::string& tag, uint32_t fromHost, uint64_t deadlineMs);
  // Writes src into the peer's staging area at `offset`.
  void Write(uint64_t offset, const uint8_t* src, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs);

  // Fetches of a run's all-gather blocks, one after another on a pipe of their own, asked for
  // ahead of their use (one by one, or all at once with `follow`): the request already waits at
  // the peer when a block is posted, so a block costs one trip, not a round trip. For one
  // thread; the client must outlive it.
  class FetchStream {
   public:
    ~FetchStream();
    // Sends the fetch of `tag`; returns once gRPC has taken it. `follow` ("run:N"): and of
    // every block after it ("run:N+1", …), each sent as it is posted; nothing more is asked.
    void Ask(const std::string& tag, uint32_t fromHost, uint64_t deadlineMs, bool follow = false);
    // The block of the fetch asked for first and not yet taken, into dst: exactly `bytes`.
    void Take(uint8_t* dst, uint64_t bytes, uint64_t deadlineMs);

   private:
    friend class DataClient;
    FetchStream(DataClient& client);
    DataClient& client_;
    std::unique_ptr<Pipe> pipe_;
    bool broken_ = false;
  };
  std::unique_ptr<FetchStream> OpenFetches();
  const std::string& address() const { return address_; }

 private:
  struct Stub;  // the channel and gRPC's generic stub (a typedef, so not declared here)
  template <typename Op>
  void OnPipe(uint64_t deadlineMs, Op op);
  // A read whose chunks go to `into(offsetInBlock, length, reader)` (which consumes them).
  template <typename Into>
  void ReadInto(uint64_t offset, uint64_t bytes, uint32_t chunk, uint64_t deadlineMs, Into into);
  std::string address_, token_;  // token_: the credentials' token
  std::unique_ptr<Stub> stub_;
  // Pipes (long-lived Data.Pipe streams) not in use; one per call in flight at most is made.
  std::mutex mu_;
  std::vector<std::unique_ptr<Pipe>> idle_;
};

}  // namespace redblue::data
