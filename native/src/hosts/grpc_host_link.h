// The host leaders' link on the native data path (gRPC's C++ core): each leader executor serves
// its own blocks from a mailbox (mailbox.h) and fetches the other leaders' blocks from theirs,
// so a layer's exchange between hosts runs in the step's thread, leader to leader, with no JS
// and no supervisor in between.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "executor/host_link.h"
#include "hosts/data_client.h"
#include "hosts/data_service.h"

namespace redblue::data {

// One leader's end for the whole session (the executor process): the server peers fetch from
// (its port is told to them through the supervisors) and a client per peer, kept across runs
// so that a run pays no connection set-up.
class LeaderEndpoint {
 public:
  // `address` host:port to serve on (port 0: a free one); credentials as the data path's.
  LeaderEndpoint(const std::string& address, const Credentials& creds);
  int port() const { return server_.port(); }
  Mailbox& mailbox() { return server_.mailbox(); }
  std::shared_ptr<DataClient> Peer(const std::string& address);
  void Shutdown() { server_.Shutdown(); }

 private:
  DataServer server_;
  Credentials creds_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<DataClient>> peers_;
};

// One run's link: blocks tagged "<run>:<seq>", posted in this leader's mailbox for every peer,
// fetched from every peer's: one followed fetch for the run, then each block as it is posted.
class GrpcHostLink : public HostLink {
 public:
  // `leaders`: every host's leader address in host order (this host's, `host`, is not used).
  GrpcHostLink(std::shared_ptr<LeaderEndpoint> endpoint, std::string run, int host,
               std::vector<std::string> leaders, uint64_t timeoutMs);
  void Exchange(uint64_t seq, const char* mine, size_t mineBytes, char* out,
                const std::vector<size_t>& hostBytes) override;

 private:
  struct Peer {
    int host = 0;
    std::shared_ptr<DataClient> client;  // outlives `fetches`
    std::unique_ptr<DataClient::FetchStream> fetches;
    int64_t next = -1;  // the seq the peer sends next (-1: nothing asked yet)
  };
  std::string Tag(uint64_t seq) const { return run_ + ":" + std::to_string(seq); }
  std::shared_ptr<LeaderEndpoint> endpoint_;
  std::string run_;
  int host_;
  std::vector<std::string> leaders_;
  uint64_t timeoutMs_;
  std::vector<Peer> peers_;
  bool started_ = false;
  std::string broken_;
};

}  // namespace redblue::data
