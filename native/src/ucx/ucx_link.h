// The exchange between host leaders over UCX (UCP tagged messages): a second HostLink beside the
// gRPC one (hosts/grpc_host_link.h). UCX picks its transports itself: RC/UD/DC verbs where an
// RDMA device exists, TCP and shared memory otherwise; `UCX_TLS` and `UCX_NET_DEVICES` pass
// through. No listener is opened here: each leader's worker address travels over the
// authenticated control connection (OpenHostLink, then the supervisors' LeaderPort), and
// endpoints are made from those addresses.
#pragma once
#include <cstdint>
#include <memory>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "executor/host_link.h"

struct ucp_context;
struct ucp_worker;

namespace redblue::ucx {

// A UCP context and one worker, used by one thread at a time (mu()).
class Worker {
 public:
  Worker();
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // The worker's address, for the peers to reach it.
  const std::vector<uint8_t>& address() const { return address_; }
  ucp_worker* get() const { return worker_; }
  ucp_context* context() const { return context_; }
  std::mutex& mu() { return mu_; }
  // Sleeps until the worker has an event or `ms` pass (after progress found nothing to do).
  void Wait(int ms);
  // Drives progress from a thread of its own from now on, so that peers' reads and writes of an
  // exposed area are answered while nothing else here touches the worker (ucx_rma.cc answers
  // them in the owner's progress). Idle, the thread sleeps on the worker's event descriptor.
  void KeepProgressing();

 private:
  ucp_context* context_ = nullptr;
  ucp_worker* worker_ = nullptr;
  std::vector<uint8_t> address_;
  int efd_ = -1;
  std::mutex mu_;
  std::atomic<bool> stop_{false};
  std::thread progress_;
};

class UcxHostLink : public HostLink {
 public:
  // `peers`: every host's leader worker address, in host order (this host's entry unused).
  // `run` names the run: its exchanges are tagged with it, so a late block of another run never
  // matches.
  UcxHostLink(std::shared_ptr<Worker> worker, const std::string& run, int host,
              std::vector<std::vector<uint8_t>> peers, uint64_t timeoutMs);
  ~UcxHostLink() override;
  void Exchange(uint64_t seq, const char* mine, size_t mineBytes, char* out,
                const std::vector<size_t>& hostBytes) override;

  // Bytes this process has sent to other leaders over UCX (all links), for reports and tests.
  static uint64_t BytesSent();

 private:
  struct Peer;
  std::shared_ptr<Worker> worker_;
  int host_;
  uint64_t runTag_;
  uint64_t timeoutMs_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::string broken_;
};

// The process is stopping: every exchange still waiting ends with an error, now and from now on.
void AbortAll();

// Copies `what` into the C face's error buffer (ucx_loader.h reads it), cut to fit.
void SayError(char* err, size_t n, const char* what);

}  // namespace redblue::ucx
