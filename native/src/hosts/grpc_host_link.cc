#include "hosts/grpc_host_link.h"

#include <cstring>
#include <stdexcept>

#include "hosts/mailbox.h"

namespace redblue::data {

LeaderEndpoint::LeaderEndpoint(const std::string& address, const Credentials& creds)
    : server_(address, creds), creds_(creds) {}

std::shared_ptr<DataClient> LeaderEndpoint::Peer(const std::string& address) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& c = peers_[address];
  if (!c) {
    c = std::make_shared<DataClient>(address, creds_);
    c->Connect(0);  // starts connecting now; the first exchange waits for it if it must
  }
  return c;
}

GrpcHostLink::GrpcHostLink(std::shared_ptr<LeaderEndpoint> endpoint, std::string run, int host,
                           std::vector<std::string> leaders, uint64_t timeoutMs)
    : endpoint_(std::move(endpoint)), run_(std::move(run)), host_(host), leaders_(std::move(leaders)),
      timeoutMs_(timeoutMs) {
  if (run_.empty() || run_.size() > 64 || run_.find(':') != std::string::npos)
    throw std::runtime_error("a run name has 1-64 characters and no ':'");
  if (host_ < 0 || host_ >= static_cast<int>(leaders_.size()))
    throw std::runtime_error("host " + std::to_string(host_) + " is not one of the " +
                             std::to_string(leaders_.size()) + " leaders");
  for (int h = 0; h < static_cast<int>(leaders_.size()); ++h) {
    if (h == host_) continue;
    Peer p;
    p.host = h;
    p.client = endpoint_->Peer(leaders_[static_cast<size_t>(h)]);
    p.fetches = p.client->OpenFetches();
    peers_.push_back(std::move(p));
  }
}

void GrpcHostLink::Exchange(uint64_t seq, const char* mine, size_t mineBytes, char* out,
                            const std::vector<size_t>& hostBytes) {
  if (!broken_.empty()) throw std::runtime_error(broken_);
  if (hostBytes.size() != leaders_.size())
    throw std::runtime_error("an exchange of " + std::to_string(hostBytes.size()) + " hosts on a link of " +
                             std::to_string(leaders_.size()));
  if (mineBytes != hostBytes[static_cast<size_t>(host_)])
    throw std::runtime_error("this host's block does not match its size in hostBytes");
  if (!started_) {
    // Blocks and waits of an earlier run of the session will never be used.
    endpoint_->mailbox().ForgetOtherRuns(run_);
    started_ = true;
  }
  // Every block goes to every peer, empty ones too: each peer fetches each seq exactly once.
  endpoint_->mailbox().Post(Tag(seq), std::vector<uint8_t>(mine, mine + mineBytes),
                            static_cast<int>(leaders_.size()) - 1);
  std::vector<size_t> off(hostBytes.size() + 1, 0);
  for (size_t h = 0; h < hostBytes.size(); ++h) off[h + 1] = off[h] + hostBytes[h];
  if (out + off[static_cast<size_t>(host_)] != mine && mineBytes)
    std::memmove(out + off[static_cast<size_t>(host_)], mine, mineBytes);
  Peer* at = nullptr;
  try {
    for (auto& p : peers_) {
      at = &p;
      if (p.next < 0) {
        // One request for the whole run: the peer then sends each block of it as it is posted
        // (one message a block, not a request and its answer), waiting for none of ours.
        p.fetches->Ask(Tag(seq), static_cast<uint32_t>(host_), timeoutMs_, /*follow=*/true);
        p.next = static_cast<int64_t>(seq);
      } else if (p.next != static_cast<int64_t>(seq)) {
        throw std::runtime_error("exchange " + std::to_string(seq) + " out of order (the peer sends " +
                                 std::to_string(p.next) + " next)");
      }
    }
    for (auto& p : peers_) {
      at = &p;
      p.fetches->Take(reinterpret_cast<uint8_t*>(out) + off[static_cast<size_t>(p.host)],
                      hostBytes[static_cast<size_t>(p.host)], timeoutMs_);
      p.next = static_cast<int64_t>(seq + 1);
    }
  } catch (const std::exception& e) {
    broken_ = "the exchange with host " + std::to_string(at->host) + "'s leader failed: " + e.what();
    throw std::runtime_error(broken_);
  }
}

}  // namespace redblue::data
