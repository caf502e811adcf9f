#include "ucx/ucx_link.h"

#include <ucp/api/ucp.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <poll.h>

namespace redblue::ucx {
namespace {

std::atomic<uint64_t> gBytesSent{0};
// Set when the process is stopping: an exchange still waiting ends at once instead of at its
// timeout (its peer may be unreachable, and the executor must exit).
std::atomic<bool> gAbort{false};

[[noreturn]] void Fail(const std::string& what, ucs_status_t st) {
  throw std::runtime_error(what + ": " + ucs_status_string(st));
}

// Tags: the run (24 bits, the top one 0) | the exchange's seq (32 bits) | the sending host (8 bits).
constexpr uint64_t kHostBits = 8, kSeqBits = 32;
uint64_t TagOf(uint64_t run, uint64_t seq, int host) {
  return run << (kHostBits + kSeqBits) | (seq & ((1ull << kSeqBits) - 1)) << kHostBits | static_cast<uint64_t>(host);
}

// FNV-1a of the run name, folded to 23 bits: the tag's top bit stays clear (bulk reads' replies
// set it, ucx_rma.cc).
uint64_t RunTag(const std::string& run) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : run) h = (h ^ c) * 1099511628211ull;
  return (h ^ (h >> 24) ^ (h >> 48)) & 0x7FFFFF;
}

void PeerFailed(void* arg, ucp_ep_h, ucs_status_t st) {
  *static_cast<ucs_status_t*>(arg) = st;
}

}  // namespace

Worker::Worker() {
  ucp_config_t* config = nullptr;
  ucs_status_t st = ucp_config_read(nullptr, nullptr, &config);
  if (st != UCS_OK) Fail("UCX configuration", st);
  ucp_params_t p{};
  p.field_mask = UCP_PARAM_FIELD_FEATURES;
  p.features = UCP_FEATURE_TAG | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  st = ucp_init(&p, config, &context_);
  ucp_config_release(config);
  if (st != UCS_OK) Fail("UCX (ucp_init)", st);
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  // Serialized, not single: the worker is touched from several threads (the JS thread making
  // endpoints, the step or transfer thread, the progress thread), one at a time under mu_.
  wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
  st = ucp_worker_create(context_, &wp, &worker_);
  if (st != UCS_OK) {
    ucp_cleanup(context_);
    Fail("UCX (ucp_worker_create)", st);
  }
  ucp_address_t* a = nullptr;
  size_t len = 0;
  st = ucp_worker_get_address(worker_, &a, &len);
  if (st != UCS_OK) {
    ucp_worker_destroy(worker_);
    ucp_cleanup(context_);
    Fail("UCX (ucp_worker_get_address)", st);
  }
  address_.assign(reinterpret_cast<const uint8_t*>(a), reinterpret_cast<const uint8_t*>(a) + len);
  ucp_worker_release_address(worker_, a);
  st = ucp_worker_get_efd(worker_, &efd_);
  if (st != UCS_OK) {
    ucp_worker_destroy(worker_);
    ucp_cleanup(context_);
    Fail("UCX (ucp_worker_get_efd)", st);
  }
}

void Worker::Wait(int ms) {
  // Armed: nothing is pending, so sleep on the worker's event descriptor until something comes.
  if (ucp_worker_arm(worker_) != UCS_OK) return;
  pollfd p{efd_, POLLIN, 0};
  ::poll(&p, 1, ms);
}

void Worker::KeepProgressing() {
  std::lock_guard<std::mutex> lk(mu_);
  if (progress_.joinable()) return;
  progress_ = std::thread([this] {
    while (!stop_.load()) {
      ucs_status_t st;
      {
        std::lock_guard<std::mutex> g(mu_);
        while (ucp_worker_progress(worker_)) {
        }
        st = ucp_worker_arm(worker_);
      }
      if (st == UCS_ERR_BUSY) continue;  // events came in meanwhile
      pollfd p{efd_, POLLIN, 0};
      ::poll(&p, 1, 100);  // woken by events, or by ucp_worker_signal at the end
    }
  });
}

Worker::~Worker() {
  if (progress_.joinable()) {
    stop_ = true;
    ucp_worker_signal(worker_);
    progress_.join();
  }
  ucp_worker_destroy(worker_);
  ucp_cleanup(context_);
}

struct UcxHostLink::Peer {
  int host = -1;
  ucp_ep_h ep = nullptr;
  ucs_status_t failed = UCS_OK;  // set by UCX's error handler
};

UcxHostLink::UcxHostLink(std::shared_ptr<Worker> worker, const std::string& run, int host,
                         std::vector<std::vector<uint8_t>> peers, uint64_t timeoutMs)
    : worker_(std::move(worker)), host_(host), runTag_(RunTag(run)), timeoutMs_(timeoutMs) {
  if (host < 0 || host >= static_cast<int>(peers.size()))
    throw std::runtime_error("host " + std::to_string(host) + " is not one of the " + std::to_string(peers.size()) +
                             " leaders");
  if (peers.size() > (1u << kHostBits)) throw std::runtime_error("UCX exchanges span at most 256 hosts");
  std::lock_guard<std::mutex> lk(worker_->mu());
  for (int h = 0; h < static_cast<int>(peers.size()); ++h) {
    if (h == host) continue;
    const auto& a = peers[static_cast<size_t>(h)];
    if (a.empty()) throw std::runtime_error("host " + std::to_string(h) + "'s leader gave no UCX address");
    auto p = std::make_unique<Peer>();
    p->host = h;
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                    UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep.address = reinterpret_cast<const ucp_address_t*>(a.data());
    ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep.err_handler.cb = PeerFailed;
    ep.err_handler.arg = &p->failed;
    ucs_status_t st = ucp_ep_create(worker_->get(), &ep, &p->ep);
    if (st != UCS_OK) {
      for (auto& q : peers_) ucp_ep_destroy(q->ep);
      Fail("UCX endpoint to host " + std::to_string(h) + "'s leader", st);
    }
    peers_.push_back(std::move(p));
  }
}

UcxHostLink::~UcxHostLink() {
  std::lock_guard<std::mutex> lk(worker_->mu());
  // Flush and close every endpoint, bounded: a peer that is gone is closed by force.
  std::vector<void*> closing;
  for (auto& p : peers_) {
    ucp_request_param_t prm{};
    prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    prm.flags = p->failed == UCS_OK ? 0 : UCP_EP_CLOSE_FLAG_FORCE;
    ucs_status_ptr_t r = ucp_ep_close_nbx(p->ep, &prm);
    if (UCS_PTR_IS_PTR(r)) closing.push_back(r);
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!closing.empty() && std::chrono::steady_clock::now() < until) {
    ucp_worker_progress(worker_->get());
    for (size_t i = 0; i < closing.size();) {
      if (ucp_request_check_status(closing[i]) != UCS_INPROGRESS) {
        ucp_request_free(closing[i]);
        closing[i] = closing.back();
        closing.pop_back();
      } else {
        ++i;
      }
    }
  }
  for (void* r : closing) {
    ucp_request_cancel(worker_->get(), r);
    ucp_request_free(r);
  }
}

uint64_t UcxHostLink::BytesSent() { return gBytesSent.load(); }

void AbortAll() { gAbort = true; }

void SayError(char* err, size_t n, const char* what) {
  if (!err || n == 0) return;
  std::strncpy(err, what, n - 1);
  err[n - 1] = '\0';
}

void UcxHostLink::Exchange(uint64_t seq, const char* mine, size_t mineBytes, char* out,
                           const std::vector<size_t>& hostBytes) {
  if (!broken_.empty()) throw std::runtime_error(broken_);
  if (hostBytes.size() != peers_.size() + 1)
    throw std::runtime_error("an exchange of " + std::to_string(hostBytes.size()) + " hosts on a link of " +
                             std::to_string(peers_.size() + 1));
  if (mineBytes != hostBytes[static_cast<size_t>(host_)])
    throw std::runtime_error("this host's block does not match its size in hostBytes");
  std::vector<size_t> off(hostBytes.size() + 1, 0);
  for (size_t h = 0; h < hostBytes.size(); ++h) off[h + 1] = off[h] + hostBytes[h];
  if (out + off[static_cast<size_t>(host_)] != mine && mineBytes)
    std::memmove(out + off[static_cast<size_t>(host_)], mine, mineBytes);

  std::lock_guard<std::mutex> lk(worker_->mu());
  struct Op {
    Peer* peer;
    void* req;
    bool recv;
  };
  std::vector<Op> ops;
  auto fail = [&](Peer* p, const std::string& why) {
    for (auto& o : ops) {
      if (!o.req) continue;
      ucp_request_cancel(worker_->get(), o.req);
      ucp_request_free(o.req);
    }
    broken_ = "the exchange with host " + std::to_string(p->host) + "'s leader failed: " + why;
    throw std::runtime_error(broken_);
  };
  // Receives first (a block that comes early waits in UCX as an unexpected message anyway).
  for (auto& p : peers_) {
    ucp_request_param_t prm{};
    prm.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE;
    prm.datatype = ucp_dt_make_contig(1);
    const size_t h = static_cast<size_t>(p->host);
    ucs_status_ptr_t r = ucp_tag_recv_nbx(worker_->get(), out + off[h], hostBytes[h], TagOf(runTag_, seq, p->host),
                                          ~0ull, &prm);
    if (UCS_PTR_IS_ERR(r)) fail(p.get(), ucs_status_string(UCS_PTR_STATUS(r)));
    ops.push_back({p.get(), UCS_PTR_IS_PTR(r) ? r : nullptr, true});
  }
  for (auto& p : peers_) {
    ucp_request_param_t prm{};
    prm.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE;
    prm.datatype = ucp_dt_make_contig(1);
    ucs_status_ptr_t r = ucp_tag_send_nbx(p->ep, mine, mineBytes, TagOf(runTag_, seq, host_), &prm);
    if (UCS_PTR_IS_ERR(r)) fail(p.get(), ucs_status_string(UCS_PTR_STATUS(r)));
    ops.push_back({p.get(), UCS_PTR_IS_PTR(r) ? r : nullptr, false});
  }
  gBytesSent += mineBytes * peers_.size();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs_);
  for (size_t spins = 0;; ++spins) {
    bool pending = false;
    for (auto& o : ops) {
      if (o.peer->failed != UCS_OK) fail(o.peer, ucs_status_string(o.peer->failed));
      if (!o.req) continue;
      ucs_status_t st = ucp_request_check_status(o.req);
      if (st == UCS_INPROGRESS) {
        pending = true;
        continue;
      }
      if (st != UCS_OK) fail(o.peer, ucs_status_string(st));
      if (o.recv) {
        ucp_tag_recv_info_t info{};
        ucp_tag_recv_request_test(o.req, &info);
        if (info.length != hostBytes[static_cast<size_t>(o.peer->host)]) {
          ucp_request_free(o.req);
          o.req = nullptr;
          fail(o.peer, "a block of " + std::to_string(info.length) + " bytes, not " +
                           std::to_string(hostBytes[static_cast<size_t>(o.peer->host)]));
        }
      }
      ucp_request_free(o.req);
      o.req = nullptr;
    }
    if (!pending) return;
    if (gAbort.load()) {
      for (auto& o : ops)
        if (o.req) fail(o.peer, "this executor is stopping");
    }
    // Spin while blocks are close (a layer's exchange is usually microseconds away), then sleep
    // on the worker's events, so that a slow peer does not cost this core.
    if ((spins & 255) == 255 && std::chrono::steady_clock::now() > deadline) {
      for (auto& o : ops)
        if (o.req) fail(o.peer, "no block within " + std::to_string(timeoutMs_) + " ms");
    }
    if (ucp_worker_progress(worker_->get())) continue;
    if (spins > 4096) worker_->Wait(10);
  }
}

}  // namespace redblue::ucx

// The library's C face (ucx_loader.h loads it): no C++ exception crosses it; failures come back
// as text in `err` (SayError).
using redblue::ucx::SayError;

extern "C" {

__attribute__((visibility("default"))) void* rbucx_worker_new(char* err, size_t errLen) {
  try {
    return new std::shared_ptr<redblue::ucx::Worker>(std::make_shared<redblue::ucx::Worker>());
  } catch (const std::exception& e) {
    SayError(err, errLen, e.what());
    return nullptr;
  }
}

__attribute__((visibility("default"))) void rbucx_worker_free(void* w) {
  delete static_cast<std::shared_ptr<redblue::ucx::Worker>*>(w);
}

__attribute__((visibility("default"))) size_t rbucx_worker_address(void* w, const uint8_t** data) {
  const auto& a = (*static_cast<std::shared_ptr<redblue::ucx::Worker>*>(w))->address();
  *data = a.data();
  return a.size();
}

__attribute__((visibility("default"))) redblue::HostLink* rbucx_link_new(void* w, const char* run, int host,
                                                                          const uint8_t* const* addrs,
                                                                          const size_t* lens, int n,
                                                                          uint64_t timeoutMs, char* err,
                                                                          size_t errLen) {
  try {
    std::vector<std::vector<uint8_t>> peers;
    for (int i = 0; i < n; ++i) peers.emplace_back(addrs[i], addrs[i] + lens[i]);
    return new redblue::ucx::UcxHostLink(*static_cast<std::shared_ptr<redblue::ucx::Worker>*>(w), run, host,
                                         std::move(peers), timeoutMs);
  } catch (const std::exception& e) {
    SayError(err, errLen, e.what());
    return nullptr;
  }
}

__attribute__((visibility("default"))) void rbucx_link_free(redblue::HostLink* l) { delete l; }

__attribute__((visibility("default"))) void rbucx_abort() { redblue::ucx::AbortAll(); }

__attribute__((visibility("default"))) uint64_t rbucx_bytes_sent() {
  return redblue::ucx::UcxHostLink::BytesSent();
}

}  // extern "C"
