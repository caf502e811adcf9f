#include "ucx/ucx_rma.h"

#include <ucp/api/ucp.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "ucx/ucx_link.h"

namespace redblue::ucx {
namespace {

std::atomic<uint64_t> gMoved{0};

// Descriptor: "RBA2" | base u64 | size u64 | address bytes u32 | the owner's worker address.
constexpr char kMagic[4] = {'R', 'B', 'A', '2'};
constexpr size_t kHead = 4 + 8 + 8 + 4;
// Reads with add go through registered bounce buffers of this size: two are on their way while
// the third is added into the destination.
constexpr uint64_t kChunk = 4u << 20;
constexpr uint64_t kBuffers = 3;
// Reads and writes move in pieces of this size, up to kDepth of them in flight. Between two
// namespaces over TCP (best of 4 interleaved runs, 1 and 64 MiB blocks): 1 MiB × 4 moved 3.2-3.4
// GB/s, 512 KiB × 8 3.0-3.3, 256 KiB × 8 1.9-2.7 (this VM's runs spread by ±30%).
constexpr uint64_t kPiece = 1u << 20;
constexpr uint64_t kDepth = 4;

[[noreturn]] void Fail(const std::string& what, ucs_status_t st) {
  throw std::runtime_error(what + ": " + ucs_status_string(st));
}

void PeerFailed(void* arg, ucp_ep_h, ucs_status_t st) { *static_cast<int*>(arg) = static_cast<int>(st); }

// Gives up a request still in flight (a failed transfer's others).
void Cancel(ucp_worker_h w, void* r) {
  if (!r || !UCS_PTR_IS_PTR(r)) return;
  ucp_request_cancel(w, r);
  ucp_request_free(r);
}

// A read's request (an active message to the owner) and the tag its answer comes with; the
// reply tags have the top bit set, which the leaders' exchange tags never have (ucx_link.cc).
constexpr unsigned kAskId = 0x5242;
constexpr unsigned kPutId = 0x5243;
constexpr uint32_t kAskMagic = 0x51524252;  // "RBRQ"
constexpr uint32_t kPutMagic = 0x57524252;  // "RBRW"
constexpr uint64_t kReplyBit = 1ull << 63;
struct AskHeader {
  uint32_t magic;
  uint32_t pad;
  uint64_t base;  // the area the reader's descriptor names: a replaced area answers nothing
  uint64_t offset, bytes, tag;
};
std::atomic<uint64_t> gNextTag{1};

}  // namespace

struct ExposedArea::Served {
  ucp_worker_h worker = nullptr;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  ucp_mem_h memh = nullptr;
  int inflight = 0;  // answers being sent, writes landing (touched only in progress, under the worker's lock)
};

namespace {

void Answered(void* req, ucs_status_t, void* user) {
  --static_cast<ExposedArea::Served*>(user)->inflight;
  ucp_request_free(req);
}

// Runs in the owner's progress: sends the asked bytes straight from the area, or an empty
// answer when the range or the area does not match (the reader reports it).
ucs_status_t OnAsk(void* arg, const void* header, size_t headerLen, void*, size_t, const ucp_am_recv_param_t* param) {
  auto* s = static_cast<ExposedArea::Served*>(arg);
  if (headerLen != sizeof(AskHeader) || !(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) return UCS_OK;
  AskHeader h;
  std::memcpy(&h, header, sizeof h);
  if (h.magic != kAskMagic || !(h.tag & kReplyBit)) return UCS_OK;
  const bool ok = h.base == reinterpret_cast<uintptr_t>(s->base) && h.offset <= s->size && h.bytes <= s->size - h.offset;
  ucp_request_param_t prm{};
  prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | (ok ? UCP_OP_ATTR_FIELD_MEMH : 0);
  prm.cb.send = Answered;
  prm.user_data = s;
  prm.memh = s->memh;
  ucs_status_ptr_t r = ucp_tag_send_nbx(param->reply_ep, ok ? s->base + h.offset : nullptr, ok ? h.bytes : 0, h.tag, &prm);
  if (UCS_PTR_IS_PTR(r)) ++s->inflight;
  return UCS_OK;
}


// A write's acknowledgement: the bytes that landed (0: refused), as 8 bytes on the writer's tag.
struct Landing {
  ExposedArea::Served* served;
  ucp_ep_h replyEp;
  uint64_t tag;
  uint64_t bytes;
  uint64_t ack = 0;
};

void Acked(void* req, ucs_status_t, void* user) {
  auto* l = static_cast<Landing*>(user);
  --l->served->inflight;
  if (req) ucp_request_free(req);
  delete l;
}

void Ack(Landing* l, uint64_t landed) {
  l->ack = landed;
  ucp_request_param_t prm{};
  prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  prm.cb.send = Acked;
  prm.user_data = l;
  ++l->served->inflight;
  ucs_status_ptr_t r = ucp_tag_send_nbx(l->replyEp, &l->ack, sizeof l->ack, l->tag, &prm);
  if (!UCS_PTR_IS_PTR(r)) Acked(nullptr, UCS_OK, l);  // sent at once (or failed: the writer times out)
}

void Landed(void* req, ucs_status_t st, size_t, void* user) {
  auto* l = static_cast<Landing*>(user);
  --l->served->inflight;
  ucp_request_free(req);
  Ack(l, st == UCS_OK ? l->bytes : 0);
}

// Runs in the owner's progress: the bytes of a write go straight into the area (small ones come
// with the message; large ones by rendezvous, received in place), then the writer hears back.
ucs_status_t OnPut(void* arg, const void* header, size_t headerLen, void* data, size_t length,
                   const ucp_am_recv_param_t* param) {
  auto* s = static_cast<ExposedArea::Served*>(arg);
  const bool rndv = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV;
  const bool canReply = param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP;
  AskHeader h{};
  if (headerLen == sizeof h) std::memcpy(&h, header, sizeof h);
  const bool tagged = headerLen == sizeof h && h.magic == kPutMagic && (h.tag & kReplyBit);
  const bool ok = tagged && canReply && h.bytes == length && h.base == reinterpret_cast<uintptr_t>(s->base) &&
                  h.offset <= s->size && h.bytes <= s->size - h.offset;
  if (!ok) {
    if (rndv) ucp_am_data_release(s->worker, data);
    if (tagged && canReply) Ack(new Landing{s, param->reply_ep, h.tag, 0}, 0);
    return UCS_OK;
  }
  auto* l = new Landing{s, param->reply_ep, h.tag, h.bytes};
  if (!rndv) {
    std::memcpy(s->base + h.offset, data, length);
    Ack(l, length);
    return UCS_OK;
  }
  ucp_request_param_t prm{};
  prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_MEMH;
  prm.cb.recv_am = Landed;
  prm.user_data = l;
  prm.memh = s->memh;
  ucs_status_ptr_t r = ucp_am_recv_data_nbx(s->worker, data, s->base + h.offset, length, &prm);
  if (UCS_PTR_IS_PTR(r)) {
    ++s->inflight;
  } else {
    Ack(l, UCS_PTR_IS_ERR(r) ? 0 : length);
  }
  return UCS_INPROGRESS;  // UCP owns the descriptor now
}

}  // namespace

ExposedArea::ExposedArea(std::shared_ptr<Worker> worker, void* base, uint64_t size) : worker_(std::move(worker)) {
  worker_->KeepProgressing();  // peers' reads and writes are answered in this worker's progress
  std::lock_guard<std::mutex> lk(worker_->mu());
  ucp_mem_map_params_t mp{};
  mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  mp.address = base;
  mp.length = size;
  ucs_status_t st = ucp_mem_map(worker_->context(), &mp, &memh_);
  if (st != UCS_OK) Fail("UCX could not register the staging area (" + std::to_string(size) + " bytes)", st);
  const auto& addr = worker_->address();
  descriptor_.resize(kHead + addr.size());
  uint8_t* d = descriptor_.data();
  const uint64_t b = reinterpret_cast<uintptr_t>(base);
  const auto al = static_cast<uint32_t>(addr.size());
  std::memcpy(d, kMagic, 4);
  std::memcpy(d + 4, &b, 8);
  std::memcpy(d + 12, &size, 8);
  std::memcpy(d + 20, &al, 4);
  std::memcpy(d + kHead, addr.data(), addr.size());
  served_ = std::make_unique<Served>();
  served_->worker = worker_->get();
  served_->base = static_cast<uint8_t*>(base);
  served_->size = size;
  served_->memh = memh_;
  ucp_am_handler_param_t hp{};
  hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_FLAGS | UCP_AM_HANDLER_PARAM_FIELD_CB |
                  UCP_AM_HANDLER_PARAM_FIELD_ARG;
  hp.id = kAskId;
  hp.flags = UCP_AM_FLAG_WHOLE_MSG;
  hp.cb = OnAsk;
  hp.arg = served_.get();
  st = ucp_worker_set_am_recv_handler(worker_->get(), &hp);
  if (st == UCS_OK) {
    hp.id = kPutId;
    hp.cb = OnPut;
    st = ucp_worker_set_am_recv_handler(worker_->get(), &hp);
  }
  if (st != UCS_OK) {
    ucp_mem_unmap(worker_->context(), memh_);
    Fail("UCX could not serve the staging area (ucp_worker_set_am_recv_handler)", st);
  }
}

ExposedArea::~ExposedArea() {
  std::lock_guard<std::mutex> lk(worker_->mu());
  ucp_am_handler_param_t hp{};
  hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG;
  hp.id = kAskId;
  hp.cb = nullptr;  // asks that come now find no handler and are dropped: their readers time out
  hp.arg = nullptr;
  ucp_worker_set_am_recv_handler(worker_->get(), &hp);
  hp.id = kPutId;
  ucp_worker_set_am_recv_handler(worker_->get(), &hp);
  // Answers still leaving read the area, and writes may be landing: let them finish before it
  // goes (bounded).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (served_->inflight > 0 && std::chrono::steady_clock::now() < until) ucp_worker_progress(worker_->get());
  ucp_mem_unmap(worker_->context(), memh_);
}

struct RemoteArea::Bounce {
  ucp_context_h context = nullptr;
  void* mem = nullptr;
  ucp_mem_h memh = nullptr;
  ~Bounce() {
    if (memh) ucp_mem_unmap(context, memh);
    std::free(mem);
  }
};

RemoteArea::RemoteArea(std::shared_ptr<Worker> worker, const uint8_t* d, size_t len, uint64_t timeoutMs)
    : worker_(std::move(worker)), timeoutMs_(timeoutMs) {
  uint32_t al = 0;
  if (len < kHead || std::memcmp(d, kMagic, 4) != 0)
    throw std::runtime_error("not a UCX area descriptor (it comes from a peer's Stage reply)");
  std::memcpy(&base_, d + 4, 8);
  std::memcpy(&size_, d + 12, 8);
  std::memcpy(&al, d + 20, 4);
  if (al == 0 || uint64_t(kHead) + al != len)
    throw std::runtime_error("a UCX area descriptor of " + std::to_string(len) + " bytes does not hold its " +
                             std::to_string(al) + "-byte worker address");
  std::lock_guard<std::mutex> lk(worker_->mu());
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                  UCP_EP_PARAM_FIELD_ERR_HANDLER;
  ep.address = reinterpret_cast<const ucp_address_t*>(d + kHead);
  ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  ep.err_handler.cb = PeerFailed;
  ep.err_handler.arg = &failed_;
  ucs_status_t st = ucp_ep_create(worker_->get(), &ep, &ep_);
  if (st != UCS_OK) Fail("UCX endpoint to the area's host", st);
}

RemoteArea::~RemoteArea() {
  std::lock_guard<std::mutex> lk(worker_->mu());
  bounce_.reset();
  ucp_request_param_t prm{};
  prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  prm.flags = failed_ == UCS_OK ? 0 : UCP_EP_CLOSE_FLAG_FORCE;
  ucs_status_ptr_t r = ucp_ep_close_nbx(ep_, &prm);
  if (!UCS_PTR_IS_PTR(r)) return;
  // Bounded: a peer that is gone is closed by force.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (ucp_request_check_status(r) == UCS_INPROGRESS && std::chrono::steady_clock::now() < until)
    ucp_worker_progress(worker_->get());
  if (ucp_request_check_status(r) == UCS_INPROGRESS) ucp_request_cancel(worker_->get(), r);
  ucp_request_free(r);
}

uint64_t RemoteArea::BytesMoved() { return gMoved.load(); }

void RemoteArea::CheckRange(uint64_t offset, uint64_t bytes) const {
  if (offset > size_ || bytes > size_ - offset)
    throw std::runtime_error(std::to_string(bytes) + " bytes at " + std::to_string(offset) +
                             " lie outside the peer's " + std::to_string(size_) + "-byte area");
}

void RemoteArea::Wait(void* req, const char* what) {
  if (UCS_PTR_IS_ERR(req)) Fail(std::string("UCX ") + what, UCS_PTR_STATUS(req));
  if (UCS_PTR_IS_PTR(req)) Await(req, what, nullptr);  // else done at once
}

void RemoteArea::Await(void* req, const char* what, size_t* received) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs_);
  for (size_t spins = 0;; ++spins) {
    ucp_tag_recv_info_t info{};
    const ucs_status_t st = received ? ucp_tag_recv_request_test(req, &info) : ucp_request_check_status(req);
    if (st != UCS_INPROGRESS) {
      ucp_request_free(req);
      if (st != UCS_OK) Fail(std::string("UCX ") + what, st);
      if (received) *received = info.length;
      return;
    }
    const bool gone = failed_ != UCS_OK;
    if (gone || ((spins & 255) == 255 && std::chrono::steady_clock::now() > deadline)) {
      ucp_request_cancel(worker_->get(), req);
      ucp_request_free(req);
      if (gone) Fail(std::string("UCX ") + what + ": the area's host failed", static_cast<ucs_status_t>(failed_));
      throw std::runtime_error(std::string("UCX ") + what + ": no answer within " + std::to_string(timeoutMs_) + " ms");
    }
    if (ucp_worker_progress(worker_->get())) continue;
    if (spins > 4096) worker_->Wait(10);
  }
}

void* RemoteArea::Ask(uint64_t offset, void* dst, uint64_t bytes, ucp_mem* memh) {
  const uint64_t tag = kReplyBit | (gNextTag.fetch_add(1) & ~kReplyBit);
  ucp_request_param_t rp{};
  rp.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE | (memh ? UCP_OP_ATTR_FIELD_MEMH : 0);
  rp.datatype = ucp_dt_make_contig(1);
  rp.memh = memh;
  void* recv = ucp_tag_recv_nbx(worker_->get(), dst, bytes, tag, ~0ull, &rp);
  if (UCS_PTR_IS_ERR(recv)) Fail("UCX receive", UCS_PTR_STATUS(recv));
  const AskHeader h{kAskMagic, 0, base_, offset, bytes, tag};
  ucp_request_param_t sp{};
  sp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  sp.flags = UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER;
  try {
    Wait(ucp_am_send_nbx(ep_, kAskId, &h, sizeof h, nullptr, 0, &sp), "request to the area's host");
  } catch (...) {
    ucp_request_cancel(worker_->get(), recv);
    ucp_request_free(recv);
    throw;
  }
  return recv;
}

void RemoteArea::Take(void* req, uint64_t bytes) {
  size_t got = 0;
  Await(req, "read", &got);
  if (got != bytes)
    throw std::runtime_error("the area's host answered " + std::to_string(got) + " bytes, not " + std::to_string(bytes) +
                             ": its staging area was replaced (Stage again) or the range lies outside it");
}

void RemoteArea::Read(uint64_t offset, uint8_t* dst, uint64_t bytes) {
  CheckRange(offset, bytes);
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lk(worker_->mu());
  // In pieces, several asked ahead: each answer's rendezvous costs round trips that the pieces
  // in flight hide.
  const uint64_t pieces = (bytes + kPiece - 1) / kPiece;
  auto len = [&](uint64_t c) { return std::min(kPiece, bytes - c * kPiece); };
  std::vector<void*> req(kDepth, nullptr);
  uint64_t asked = 0;
  try {
    for (uint64_t c = 0; c < pieces; ++c) {
      for (; asked < pieces && asked < c + kDepth; ++asked)
        req[asked % kDepth] = Ask(offset + asked * kPiece, dst + asked * kPiece, len(asked), nullptr);
      void* r = req[c % kDepth];
      req[c % kDepth] = nullptr;
      Take(r, len(c));
    }
  } catch (...) {
    for (void* r : req) Cancel(worker_->get(), r);
    throw;
  }
  gMoved += bytes;
}

void RemoteArea::ReadAdd(uint64_t offset, float* dst, uint64_t bytes) {
  CheckRange(offset, bytes);
  if (bytes % 4) throw std::runtime_error("readAdd adds whole f32 values: bytes must be a multiple of 4");
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lk(worker_->mu());
  if (!bounce_) {
    auto b = std::make_unique<Bounce>();
    b->context = worker_->context();
    b->mem = std::aligned_alloc(4096, kBuffers * kChunk);
    if (!b->mem) throw std::runtime_error("out of memory for UCX's bounce buffers");
    ucp_mem_map_params_t mp{};
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
    mp.address = b->mem;
    mp.length = kBuffers * kChunk;
    ucs_status_t st = ucp_mem_map(b->context, &mp, &b->memh);
    if (st != UCS_OK) Fail("UCX could not register its bounce buffers", st);
    bounce_ = std::move(b);
  }
  auto buf = [&](uint64_t c) { return static_cast<float*>(bounce_->mem) + (c % kBuffers) * (kChunk / 4); };
  const uint64_t chunks = (bytes + kChunk - 1) / kChunk;
  auto len = [&](uint64_t c) { return std::min(kChunk, bytes - c * kChunk); };
  // kBuffers - 1 chunks travel while one is added.
  void* req[kBuffers] = {};
  uint64_t asked = 0;
  try {
    for (; asked < chunks && asked < kBuffers - 1; ++asked)
      req[asked % kBuffers] = Ask(offset + asked * kChunk, buf(asked), len(asked), bounce_->memh);
    for (uint64_t c = 0; c < chunks; ++c) {
      void* r = req[c % kBuffers];
      req[c % kBuffers] = nullptr;
      Take(r, len(c));
      if (asked < chunks) {
        req[asked % kBuffers] = Ask(offset + asked * kChunk, buf(asked), len(asked), bounce_->memh);
        ++asked;
      }
      const uint64_t n = len(c) / 4;
      float* out = dst + c * (kChunk / 4);
      const float* in = buf(c);
      for (uint64_t i = 0; i < n; ++i) out[i] += in[i];
    }
  } catch (...) {
    for (void* r : req) Cancel(worker_->get(), r);
    throw;
  }
  gMoved += bytes;
}

void RemoteArea::Write(uint64_t offset, const uint8_t* src, uint64_t bytes) {
  CheckRange(offset, bytes);
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lk(worker_->mu());
  // In pieces, several in flight, each acknowledged with the bytes that landed.
  struct Piece {
    void* send = nullptr;
    void* ack = nullptr;
    uint64_t landed = 0;
    AskHeader header{};
  };
  const uint64_t pieces = (bytes + kPiece - 1) / kPiece;
  auto len = [&](uint64_t c) { return std::min(kPiece, bytes - c * kPiece); };
  std::vector<Piece> p(kDepth);
  uint64_t sent = 0;
  try {
    for (uint64_t c = 0; c < pieces; ++c) {
      for (; sent < pieces && sent < c + kDepth; ++sent) {
        Piece& q = p[sent % kDepth];
        const uint64_t tag = kReplyBit | (gNextTag.fetch_add(1) & ~kReplyBit);
        q.landed = 0;
        ucp_request_param_t rp{};
        rp.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE;
        rp.datatype = ucp_dt_make_contig(1);
        q.ack = ucp_tag_recv_nbx(worker_->get(), &q.landed, sizeof q.landed, tag, ~0ull, &rp);
        if (UCS_PTR_IS_ERR(q.ack)) {
          const ucs_status_t st = UCS_PTR_STATUS(q.ack);
          q.ack = nullptr;
          Fail("UCX receive", st);
        }
        q.header = AskHeader{kPutMagic, 0, base_, offset + sent * kPiece, len(sent), tag};
        ucp_request_param_t sp{};
        sp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        sp.flags = UCP_AM_SEND_FLAG_REPLY;
        q.send = ucp_am_send_nbx(ep_, kPutId, &q.header, sizeof q.header, src + sent * kPiece, len(sent), &sp);
        if (UCS_PTR_IS_ERR(q.send)) {
          const ucs_status_t st = UCS_PTR_STATUS(q.send);
          q.send = nullptr;
          Fail("UCX write", st);
        }
      }
      Piece& q = p[c % kDepth];
      void* s = q.send;
      q.send = nullptr;
      Wait(s, "write");
      void* a = q.ack;
      q.ack = nullptr;
      Take(a, sizeof q.landed);
      if (q.landed != len(c))
        throw std::runtime_error("the area's host took " + std::to_string(q.landed) + " of " + std::to_string(len(c)) +
                                 " bytes: its staging area was replaced (Stage again) or the range lies outside it");
    }
  } catch (...) {
    for (Piece& q : p) {
      Cancel(worker_->get(), q.send);
      Cancel(worker_->get(), q.ack);
    }
    throw;
  }
  gMoved += bytes;
}

}  // namespace redblue::ucx

// The library's C face for bulk data (ucx_loader.h loads it); no C++ exception crosses it.
namespace {
using WorkerPtr = std::shared_ptr<redblue::ucx::Worker>;
using redblue::ucx::SayError;
}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* rbucx_expose(void* w, void* base, uint64_t size, char* err,
                                                          size_t errLen) {
  try {
    return new redblue::ucx::ExposedArea(*static_cast<WorkerPtr*>(w), base, size);
  } catch (const std::exception& e) {
    SayError(err, errLen, e.what());
    return nullptr;
  }
}

__attribute__((visibility("default"))) size_t rbucx_exposed_descriptor(void* a, const uint8_t** data) {
  const auto& d = static_cast<redblue::ucx::ExposedArea*>(a)->descriptor();
  *data = d.data();
  return d.size();
}

__attribute__((visibility("default"))) void rbucx_exposed_free(void* a) {
  delete static_cast<redblue::ucx::ExposedArea*>(a);
}

__attribute__((visibility("default"))) void* rbucx_remote_new(void* w, const uint8_t* d, size_t len,
                                                              uint64_t timeoutMs, char* err, size_t errLen) {
  try {
    return new redblue::ucx::RemoteArea(*static_cast<WorkerPtr*>(w), d, len, timeoutMs);
  } catch (const std::exception& e) {
    SayError(err, errLen, e.what());
    return nullptr;
  }
}

// op: 0 read, 1 read and add (f32), 2 write. Returns 0, or -1 with the reason in err.
__attribute__((visibility("default"))) int rbucx_remote_move(void* r, int op, uint64_t offset, void* p,
                                                             uint64_t bytes, char* err, size_t errLen) {
  try {
    auto* a = static_cast<redblue::ucx::RemoteArea*>(r);
    if (op == 0) a->Read(offset, static_cast<uint8_t*>(p), bytes);
    else if (op == 1) a->ReadAdd(offset, static_cast<float*>(p), bytes);
    else a->Write(offset, static_cast<const uint8_t*>(p), bytes);
    return 0;
  } catch (const std::exception& e) {
    SayError(err, errLen, e.what());
    return -1;
  }
}

__attribute__((visibility("default"))) void rbucx_remote_free(void* r) {
  delete static_cast<redblue::ucx::RemoteArea*>(r);
}

__attribute__((visibility("default"))) uint64_t rbucx_bytes_moved() {
  return redblue::ucx::RemoteArea::BytesMoved();
}

}  // extern "C"
