// Bulk data over UCX: a host's staging area registered once (ucp_mem_map) and read or written
// by its peers, the way staging areas and gemm's partial sums move between hosts when
// `--transport ucx` is on.
// - Reads: the reader asks with a small active message and the owner answers with one tagged
//   send straight from the registered area (zero-copy, rendezvous for large blocks). Over TCP
//   this moved 1 MiB blocks at 2.97 GB/s in `ucx_perftest -t tag_bw` on loopback where
//   `ucp_get` moved 0.55 GB/s; over RDMA the rendezvous is itself an RDMA read.
// - Writes: an active message carrying the bytes, received by the owner straight into the area
//   (rendezvous for large blocks), then acknowledged. RMA put over TCP moved 0.15 GB/s in
//   `ucx_perftest -t ucp_put_bw` on loopback.
// The owner's worker answers in its progress, which Worker's progress thread drives while an
// area is exposed.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct ucp_mem;
struct ucp_ep;

namespace redblue::ucx {

class Worker;

// An exposed area: registered with the worker's context for the life of this object. Its
// descriptor (worker address, base and size) is all a peer needs; it travels
// over the authenticated control path (StageReply, PullAddRequest).
class ExposedArea {
 public:
  ExposedArea(std::shared_ptr<Worker> worker, void* base, uint64_t size);
  ~ExposedArea();
  ExposedArea(const ExposedArea&) = delete;
  ExposedArea& operator=(const ExposedArea&) = delete;
  const std::vector<uint8_t>& descriptor() const { return descriptor_; }

  struct Served;  // what the active-message handler answers from (ucx_rma.cc)

 private:
  std::shared_ptr<Worker> worker_;
  ucp_mem* memh_ = nullptr;
  std::vector<uint8_t> descriptor_;
  std::unique_ptr<Served> served_;
};

// A peer's exposed area, reached from this worker: reads (optionally adding f32 values into the
// destination: a cross-host reduction) and writes, each blocking until done, failing with the
// peer named within `timeoutMs` when the peer dies or stops answering.
class RemoteArea {
 public:
  RemoteArea(std::shared_ptr<Worker> worker, const uint8_t* descriptor, size_t len, uint64_t timeoutMs);
  ~RemoteArea();
  RemoteArea(const RemoteArea&) = delete;
  RemoteArea& operator=(const RemoteArea&) = delete;
  uint64_t size() const { return size_; }
  void Read(uint64_t offset, uint8_t* dst, uint64_t bytes);
  void ReadAdd(uint64_t offset, float* dst, uint64_t bytes);
  void Write(uint64_t offset, const uint8_t* src, uint64_t bytes);

  // Bytes moved to and from peers' areas in this process, for reports and tests.
  static uint64_t BytesMoved();

 private:
  void CheckRange(uint64_t offset, uint64_t bytes) const;
  // Waits for `req` (a UCX request pointer or status) with progress; throws naming the peer.
  void Wait(void* req, const char* what);
  // Waits for a request in flight; for a receive, `received` gets its length.
  void Await(void* req, const char* what, size_t* received);
  // Asks the owner for `bytes` at `offset`, to arrive in dst (tagged); returns the receive.
  void* Ask(uint64_t offset, void* dst, uint64_t bytes, ucp_mem* memh);
  // Waits for a receive made by Ask and checks that all `bytes` came.
  void Take(void* req, uint64_t bytes);
  struct Bounce;
  std::shared_ptr<Worker> worker_;
  uint64_t timeoutMs_;
  uint64_t base_ = 0, size_ = 0;
  int failed_ = 0;  // ucs_status_t set by UCX's error handler
  ucp_ep* ep_ = nullptr;
  std::unique_ptr<Bounce> bounce_;
};

}  // namespace redblue::ucx
